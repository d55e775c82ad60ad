/**
 * The Team Server view's source: `GET /v1/spaces/page` (src/server/spacePage.ts), one bounded
 * page at a time. The answer is untrusted: entries that are not well-formed are dropped, names
 * and roles are cut to a length a tree item can show, and a `next` that does not move forward
 * ends the listing (a hostile or broken server cannot make the view loop). No `vscode` here.
 */
import { ServerApiError, errorOf, request, type ApiOptions } from '../../persistence/server/serverApi';
import { serverBaseUrl } from '../../persistence/server/connection';
import { isHexId } from '../../spaces/ids';

export const TEAM_PAGE_PATH = '/v1/spaces/page';

export const TEAM_LIST_LIMITS = {
  /** Spaces asked for per page. */
  pageSize: 100,
  /** Longest name and role kept from the server's answer. */
  maxNameLength: 200,
  maxRoleLength: 16,
} as const;

export interface TeamSpace {
  readonly id: string;
  readonly name: string;
  readonly role: string;
  /** Milliseconds since the epoch; undefined when the server did not say. */
  readonly created: number | undefined;
  /** The server's sequence of the space's newest change (0: none). */
  readonly lastSeq: number;
}

export interface TeamSpacePage {
  readonly spaces: TeamSpace[];
  /** Pass as `after` for the next page; undefined on the last one. */
  readonly next: string | undefined;
}

function entry(x: unknown): TeamSpace | undefined {
  if (!x || typeof x !== 'object') return undefined;
  const { id, name, role, created, lastSeq } = x as Record<string, unknown>;
  if (!isHexId(id) || typeof name !== 'string' || typeof role !== 'string') return undefined;
  return {
    id,
    name: name.slice(0, TEAM_LIST_LIMITS.maxNameLength),
    role: role.slice(0, TEAM_LIST_LIMITS.maxRoleLength),
    created: typeof created === 'number' && Number.isSafeInteger(created) && created > 0 ? created : undefined,
    lastSeq: typeof lastSeq === 'number' && Number.isSafeInteger(lastSeq) && lastSeq >= 0 ? lastSeq : 0,
  };
}

/** One page of the spaces the token may read, after space id `after` (undefined: from the start). */
export async function listTeamSpacePage(url: string, token: string, after?: string, opts: ApiOptions & { limit?: number } = {}): Promise<TeamSpacePage> {
  if (after !== undefined && !isHexId(after)) throw new TypeError(`not a space id: ${after}`);
  const base = serverBaseUrl(url);
  const query = new URLSearchParams({ limit: String(opts.limit ?? TEAM_LIST_LIMITS.pageSize) });
  if (after !== undefined) query.set('after', after);
  const { status, body } = await request(url, token, `${TEAM_PAGE_PATH}?${query.toString()}`, { method: 'GET' }, opts);
  if (status === 404) throw new ServerApiError(`${base} does not list spaces page by page (GET ${TEAM_PAGE_PATH}): update the server`, status);
  if (status !== 200) throw errorOf(status, body, base, 'listing spaces');
  const list = body && typeof body === 'object' ? (body as { spaces?: unknown }).spaces : undefined;
  if (!Array.isArray(list)) throw new ServerApiError(`${base} is not a spaces server (GET ${TEAM_PAGE_PATH} did not answer {"spaces": […]})`, status);
  const spaces = list.flatMap((s: unknown) => {
    const e = entry(s);
    return e && (after === undefined || e.id > after) ? [e] : [];
  });
  const rawNext = (body as { next?: unknown }).next;
  // Only a cursor past `after` and past this page moves forward; anything else ends the listing.
  const next = isHexId(rawNext) && (after === undefined || rawNext > after) && spaces.length > 0 ? rawNext : undefined;
  return { spaces, next };
}

/** The space id just before `id` in the id order (the `after` that starts a page at `id`); undefined for the first id. */
export function idBefore(id: string): string | undefined {
  if (!isHexId(id)) throw new TypeError(`not a space id: ${id}`);
  const digits = id.split('');
  let i = digits.length - 1;
  while (i >= 0 && digits[i] === '0') digits[i--] = 'f';
  if (i < 0) return undefined;
  digits[i] = (parseInt(digits[i], 16) - 1).toString(16);
  return digits.join('');
}

/** Space `spaceId` as the token sees it, or undefined when the token cannot read it (one request of one entry). */
export async function findTeamSpace(url: string, token: string, spaceId: string, opts: ApiOptions = {}): Promise<TeamSpace | undefined> {
  const page = await listTeamSpacePage(url, token, idBefore(spaceId), { ...opts, limit: 1 });
  return page.spaces.find((s) => s.id === spaceId);
}
