/**
 * Access tokens. A token is `spt_` + 32 random bytes (base64url): shown once when created and
 * stored only as its SHA-256 (a fast hash is enough for 256 bits of entropy: there is nothing to
 * brute-force). A token grants one role (`read` < `write` < `admin`) on one space or on every
 * space (`*`), optionally until an expiry time, until it is revoked.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Role } from '../../protocol/messages';
import type { Db } from './database';
import { ID_RULES, isHexId } from '../../spaces/ids';

export const TOKEN_PREFIX = 'spt_';
export const ALL_SPACES = '*';
export const ROLES: readonly Role[] = ['read', 'write', 'admin'];
const MAX_USER_LENGTH = 100;
const DAY_MS = 86_400_000;

export interface TokenInfo {
  readonly id: string;
  readonly user: string;
  /** A space id, or `*` for every space. */
  readonly space: string;
  readonly role: Role;
  /** Milliseconds since the epoch. */
  readonly created: number;
  readonly expires: number | null;
  readonly revoked: number | null;
}

export interface NewToken {
  readonly user: string;
  readonly space: string;
  readonly role: Role;
  /** Days until the token expires (fractions allowed); none: it does not expire. */
  readonly expiresDays?: number;
}

export type TokenCheck = { readonly ok: true; readonly token: TokenInfo } | { readonly ok: false; readonly reason: 'unknown' | 'expired' | 'revoked' };

export class TokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

export interface TokenRow {
  id: string;
  user: string;
  space: string;
  role: string;
  created: number;
  expires: number | null;
  revoked: number | null;
}

export function isRole(v: unknown): v is Role {
  return typeof v === 'string' && (ROLES as readonly string[]).includes(v);
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** The role `token` has in space `spaceId`, or undefined when it grants nothing there. */
export function roleIn(token: TokenInfo, spaceId: string): Role | undefined {
  return token.space === ALL_SPACES || token.space === spaceId ? token.role : undefined;
}

export function canWrite(role: Role | undefined): boolean {
  return role === 'write' || role === 'admin';
}

/** Why a stored token no longer grants anything at `now`, or undefined when it is valid. */
export function tokenProblem(t: TokenInfo, now: number): 'expired' | 'revoked' | undefined {
  if (t.revoked !== null) return 'revoked';
  if (t.expires !== null && t.expires <= now) return 'expired';
  return undefined;
}

/**
 * A new token for `spec` (validated: throws TokenError), with the hash to store; every store
 * creates tokens through this, so the rules are the same everywhere.
 */
export function newToken(spec: NewToken, now: number): { token: string; info: TokenInfo; hash: Buffer } {
  const user = spec.user.trim();
  if (user.length === 0 || user.length > MAX_USER_LENGTH || /\p{Cc}/u.test(user)) throw new TokenError(`user must be 1..${MAX_USER_LENGTH} printable characters`);
  if (spec.space !== ALL_SPACES && !isHexId(spec.space)) throw new TokenError(`space must be a space id (${ID_RULES.hex}) or '*'`);
  if (!isRole(spec.role)) throw new TokenError(`role must be one of ${ROLES.join(', ')}`);
  let expires: number | null = null;
  if (spec.expiresDays !== undefined) {
    if (!Number.isFinite(spec.expiresDays) || spec.expiresDays <= 0 || spec.expiresDays > 36_500) throw new TokenError('expiry must be a positive number of days (at most 36500)');
    expires = now + Math.round(spec.expiresDays * DAY_MS);
  }
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const info: TokenInfo = { id: randomBytes(6).toString('hex'), user, space: spec.space, role: spec.role, created: now, expires, revoked: null };
  return { token, info, hash: hashToken(token) };
}

/** Whether `token` could be one of ours at all (looked up only then). */
export function plausibleToken(token: string): boolean {
  return token.startsWith(TOKEN_PREFIX) && token.length <= 200;
}

/** The check of a stored token (undefined: none under that hash) at `now`. */
export function checkToken(info: TokenInfo | undefined, now: number): TokenCheck {
  if (!info) return { ok: false, reason: 'unknown' };
  const problem = tokenProblem(info, now);
  return problem ? { ok: false, reason: problem } : { ok: true, token: info };
}

export function toInfo(r: TokenRow): TokenInfo {
  if (!isRole(r.role)) throw new TokenError(`token ${r.id} has an unknown role ${JSON.stringify(r.role)}`);
  return { id: r.id, user: r.user, space: r.space, role: r.role, created: r.created, expires: r.expires, revoked: r.revoked };
}

const COLUMNS = 'id, user, space, role, created, expires, revoked';

export class TokenStore {
  constructor(private readonly db: Db) {}

  /** Creates a token; the returned `token` string is the only copy there will ever be. */
  create(spec: NewToken, now = Date.now()): { token: string; info: TokenInfo } {
    const { token, info, hash } = newToken(spec, now);
    this.db
      .prepare('INSERT INTO tokens (id, hash, user, space, role, created, expires, revoked) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)')
      .run(info.id, hash, info.user, info.space, info.role, info.created, info.expires);
    return { token, info };
  }

  list(): TokenInfo[] {
    return (this.db.prepare(`SELECT ${COLUMNS} FROM tokens ORDER BY created, id`).all() as TokenRow[]).map(toInfo);
  }

  get(id: string): TokenInfo | undefined {
    const r = this.db.prepare(`SELECT ${COLUMNS} FROM tokens WHERE id = ?`).get(id) as TokenRow | undefined;
    return r ? toInfo(r) : undefined;
  }

  /** Revokes a token; false when there is no token with that id. Revoking twice keeps the first time. */
  revoke(id: string, now = Date.now()): boolean {
    const r = this.db.prepare('UPDATE tokens SET revoked = coalesce(revoked, ?) WHERE id = ?').run(now, id);
    return r.changes > 0;
  }

  /** Gives a token another role; false when there is no token with that id. */
  setRole(id: string, role: Role): boolean {
    if (!isRole(role)) throw new TokenError(`role must be one of ${ROLES.join(', ')}`);
    return this.db.prepare('UPDATE tokens SET role = ? WHERE id = ?').run(role, id).changes > 0;
  }

  /**
   * A number that changes whenever another connection to the database committed (SQLite's
   * `data_version`): the `token` commands, run next to the server, change it; the server's own
   * writes do not. Reading it costs no I/O beyond a look at the WAL index, so it can be polled.
   */
  changeStamp(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  /** Looks a presented token up by its hash and checks it is neither expired nor revoked. */
  verify(token: string, now = Date.now()): TokenCheck {
    if (!plausibleToken(token)) return { ok: false, reason: 'unknown' };
    const r = this.db.prepare(`SELECT ${COLUMNS} FROM tokens WHERE hash = ?`).get(hashToken(token)) as TokenRow | undefined;
    return checkToken(r ? toInfo(r) : undefined, now);
  }
}
