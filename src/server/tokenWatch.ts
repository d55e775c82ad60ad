/**
 * Token changes reach open sockets quickly. Tokens are managed by the `token` commands, usually
 * in another process writing the same database, so the server polls: every `intervalMs` it reads
 * SQLite's `data_version` (TokenStore.changeStamp: no query, no I/O beyond the WAL index). Only
 * when it moved does it re-read the tokens of the open connections (one lookup per distinct
 * token). Each tick also checks expiry times, from memory. Each connection then applies what it
 * got (ClientConnection.applyToken): revoked, expired or deleted → closed with 4401; a new role →
 * used from the next message on.
 *
 * So a revocation or a role change takes effect on open sockets within about one interval
 * (default 250 ms) of the command's commit.
 */
import { errorText, type Logger } from './log';
import type { TokenInfo, TokenStore } from './store/tokenStore';

export const DEFAULT_TOKEN_RECHECK_MS = 250;
/** Below this the poll would only burn CPU: a commit takes longer than that anyway. */
export const MIN_TOKEN_RECHECK_MS = 10;

/** The re-check interval of `ServerOptions.tokenRecheckMs`; throws RangeError on a bad value. */
export function tokenRecheckInterval(ms: number | undefined): number {
  if (ms === undefined) return DEFAULT_TOKEN_RECHECK_MS;
  if (!Number.isFinite(ms) || ms < MIN_TOKEN_RECHECK_MS) throw new RangeError(`tokenRecheckMs must be a number of milliseconds >= ${MIN_TOKEN_RECHECK_MS}`);
  return ms;
}

/** What the watch needs of a connection. */
export interface TokenHolder {
  /** The token it authenticated with; undefined before `hello` and after close. */
  readonly tokenInfo: TokenInfo | undefined;
  /** The token as stored now (undefined: it no longer exists). */
  applyToken(fresh: TokenInfo | undefined, now: number): void;
}

export interface TokenWatchOptions {
  readonly tokens: TokenStore;
  readonly intervalMs: number;
  readonly holders: () => Iterable<TokenHolder>;
  readonly logger: Logger;
}

export class TokenWatch {
  private stamp: number;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly opts: TokenWatchOptions) {
    this.stamp = opts.tokens.changeStamp();
    this.timer = setInterval(() => this.tick(), opts.intervalMs);
    this.timer.unref();
  }

  /** One round: re-reads tokens if the database changed, and re-checks every holder. */
  tick(now = Date.now()): void {
    let stamp: number;
    try {
      stamp = this.opts.tokens.changeStamp();
    } catch (e) {
      // The next tick tries again; a failure here must not stop the server.
      this.opts.logger.warn('token re-check failed', { error: errorText(e) });
      return;
    }
    const changed = stamp !== this.stamp;
    this.stamp = stamp;
    const fresh = new Map<string, TokenInfo | undefined>();
    for (const h of Array.from(this.opts.holders())) {
      const current = h.tokenInfo;
      if (!current) continue;
      if (!changed) {
        h.applyToken(current, now); // expiry only
        continue;
      }
      if (!fresh.has(current.id)) fresh.set(current.id, this.lookUp(current.id));
      h.applyToken(fresh.get(current.id), now);
    }
  }

  /** The stored token; a row that cannot be read any more (e.g. an unknown role) grants nothing. */
  private lookUp(id: string): TokenInfo | undefined {
    try {
      return this.opts.tokens.get(id);
    } catch (e) {
      this.opts.logger.warn('token unreadable; its sockets are closed', { tokenId: id, error: errorText(e) });
      return undefined;
    }
  }

  dispose(): void {
    clearInterval(this.timer);
  }
}
