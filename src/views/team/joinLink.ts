/**
 * Join links: `vscode://<publisher>.<name>/join?server=<URL>&space=<id>` (docs/team.md). Anyone can
 * send a link, so everything in it is hostile: the path must be `/join`, the query may hold
 * `server` and `space` once each and nothing else, `server` must be a server URL the settings
 * would accept (http(s) or ws(s), no user name or password), `space` a space id. A link that
 * breaks a rule is refused with the rule; nothing is contacted before the user confirms it.
 * No `vscode` here (unit-tested).
 */
import { isHexId, ID_RULES } from '../../spaces/ids';
import { normalizeServerUrl } from '../sync/settings';

export const JOIN_PATH = '/join';

/** Longest query a join link may have: two parameters, a URL of the settings' length at most. */
export const MAX_JOIN_QUERY_LENGTH = 4096;

export interface JoinLink {
  /** The server's base URL, normalized. */
  readonly url: string;
  readonly spaceId: string;
}

export type JoinLinkResult = { readonly ok: true; readonly link: JoinLink } | { readonly ok: false; readonly reason: string };

const PARAMS: readonly string[] = ['server', 'space'];

function refuse(reason: string): JoinLinkResult {
  return { ok: false, reason };
}

/** Parses the path and query of a link VS Code handed to the extension's UriHandler. */
export function parseJoinLink(pathName: string, query: string): JoinLinkResult {
  if (pathName !== JOIN_PATH) return refuse(`unknown link path ${JSON.stringify(pathName.slice(0, 64))}: expected ${JOIN_PATH}`);
  if (query.length > MAX_JOIN_QUERY_LENGTH) return refuse(`the link's query is longer than ${MAX_JOIN_QUERY_LENGTH} characters`);
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(query);
  } catch {
    return refuse('the link has a malformed query');
  }
  for (const key of params.keys()) if (!PARAMS.includes(key)) return refuse(`unknown link parameter ${JSON.stringify(key.slice(0, 64))}: a join link has server and space only`);
  for (const key of PARAMS) {
    const n = params.getAll(key).length;
    if (n !== 1) return refuse(n === 0 ? `the link has no ${key} parameter` : `the link has ${key} more than once`);
  }
  const spaceId = params.get('space') as string;
  if (!isHexId(spaceId)) return refuse(`space must be a space id (${ID_RULES.hex})`);
  const server = params.get('server') as string;
  let url: string;
  try {
    url = normalizeServerUrl(server);
  } catch (e) {
    return refuse(`server: ${e instanceof Error ? e.message : String(e)}`);
  }
  // Dropped silently, a query or fragment would make the link look like it names another place.
  const raw = new URL(server.trim());
  if (raw.search || raw.hash) return refuse('server must not hold a query or a fragment');
  return { ok: true, link: { url, spaceId } };
}

/** The link that joins `spaceId` on the server at `url` (for "Copy Join Link"). */
export function joinLinkFor(extensionId: string, link: JoinLink): string {
  const q = new URLSearchParams({ server: link.url, space: link.spaceId });
  return `vscode://${extensionId}${JOIN_PATH}?${q.toString()}`;
}
