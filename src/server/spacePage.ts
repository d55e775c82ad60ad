/**
 * `GET /v1/spaces/page?after=ID&limit=N` (Bearer): the spaces the token may read, one bounded
 * page at a time, for the extension's Team Server view (docs/team.md). `GET /v1/spaces` answers
 * every space in one response; a server with many spaces would make that answer (and the view)
 * unbounded, so this route pages by space id:
 *
 *   {"spaces": [{"id", "name", "role", "created", "lastSeq"}], "next"?: "<id>"}
 *
 * `next` is there when more spaces follow: pass it as `after` for the next page. Pages are in id
 * order, so a space created between two requests is seen by a later page or not at all, never
 * twice. `lastSeq` is the server's sequence of the space's newest batch (0: nothing written yet):
 * it grows with every accepted change, so a client can tell which spaces changed since it looked.
 *
 * The query is untrusted: a bad `after` or `limit` is a 400 with the rule, never a guess.
 */
import { isHexId, ID_RULES } from '../spaces/ids';
import type { SpaceInfo } from './store/serverStore';
import type { SpaceStore } from './store/spaceStore';
import { ALL_SPACES, roleIn, type TokenInfo } from './store/tokenStore';

export const SPACE_PAGE_PATH = '/v1/spaces/page';

export const SPACE_PAGE_LIMITS = {
  /** Spaces per page when the request names no `limit`. */
  defaultLimit: 100,
  /** Most spaces per page. */
  maxLimit: 500,
} as const;

export interface PagedSpace {
  readonly id: string;
  readonly name: string;
  readonly role: string;
  /** Milliseconds since the epoch. */
  readonly created: number;
  readonly lastSeq: number;
}

export interface SpacePage {
  readonly spaces: PagedSpace[];
  readonly next?: string;
}

export type SpacePageAnswer = { readonly status: 200; readonly body: SpacePage } | { readonly status: 400; readonly body: { readonly error: string } };

/** The query of a request target (`req.url`, already accepted by parseRequestTarget). */
function queryOf(target: string | undefined): URLSearchParams {
  try {
    return new URL(target ?? '/', 'http://server').searchParams;
  } catch {
    return new URLSearchParams();
  }
}

function bad(error: string): SpacePageAnswer {
  return { status: 400, body: { error } };
}

/** Answers one page request of an authenticated token. */
export async function spacePage(target: string | undefined, token: TokenInfo, store: Pick<SpaceStore, 'listSpaces' | 'getSpace'>): Promise<SpacePageAnswer> {
  const q = queryOf(target);
  for (const key of q.keys()) if (key !== 'after' && key !== 'limit') return bad(`unknown query parameter ${JSON.stringify(key.slice(0, 64))}: expected after and limit`);
  if (q.getAll('after').length > 1 || q.getAll('limit').length > 1) return bad('after and limit may each be given once');
  const after = q.get('after');
  if (after !== null && !isHexId(after)) return bad(`after must be a space id (${ID_RULES.hex})`);
  const limitText = q.get('limit');
  let limit: number = SPACE_PAGE_LIMITS.defaultLimit;
  if (limitText !== null) {
    if (!/^[0-9]{1,4}$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > SPACE_PAGE_LIMITS.maxLimit) return bad(`limit must be an integer from 1 to ${SPACE_PAGE_LIMITS.maxLimit}`);
    limit = Number(limitText);
  }
  const readable: SpaceInfo[] = token.space === ALL_SPACES ? await store.listSpaces() : [await store.getSpace(token.space)].filter((s): s is SpaceInfo => s !== undefined);
  const rest = readable.filter((s) => after === null || s.id > after).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const page = rest.slice(0, limit);
  const spaces = page.map((s) => ({ id: s.id, name: s.name, role: roleIn(token, s.id) ?? 'read', created: s.created, lastSeq: s.lastSeq }));
  return { status: 200, body: rest.length > limit ? { spaces, next: page[page.length - 1].id } : { spaces } };
}
