/**
 * Token changes reach open sockets quickly. Tokens are managed by the `token` commands, usually
 * in another process writing the same database, so the server polls: every `intervalMs` it reads
 * the store's change stamp (SQLite: `data_version`, no query, no I/O beyond the WAL index;
 * PostgreSQL: a counter every token write bumps, one tiny query — so every server process of
 * one database sees a revocation). Only when it moved does it re-read the tokens of the open
 * connections (one lookup per distinct token). A round that is still waiting for the store when
 * the next is due is not doubled: the next tick is skipped. Each tick also checks expiry times, from memory. Each connection then applies what it
 * got (ClientConnection.applyToken): revoked, expired or deleted → closed with 4401; a new role →
 * used from the next message on.
 *
 * So a revocation or a role change takes effect on open sockets within about one interval
 * (default 250 ms) of the command's commit.
 */
import { errorText, type Logger } from './log';
import type { TokenRegistry } from './store/spaceStore';
import { TokenError, type TokenInfo } from './store/tokenStore';

export const DEFAULT_TOKEN_RECHECK_MS = 250;
const RETRY = Symbol('retry');
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
  readonly tokens: TokenRegistry;
  readonly intervalMs: number;
  readonly holders: () => Iterable<TokenHolder>;
  readonly logger: Logger;
}

export class TokenWatch {
  /** NaN until the first read: the first round re-reads every token. */
  private stamp = Number.NaN;
  private readonly timer: NodeJS.Timeout;
  private running: Promise<void> | undefined;

  constructor(private readonly opts: TokenWatchOptions) {
    this.timer = setInterval(() => void this.tick(), opts.intervalMs);
    this.timer.unref();
  }

  /** Reads the change stamp once, so the first round re-reads only if tokens changed since. */
  async start(): Promise<void> {
    this.stamp = await this.opts.tokens.changeStamp();
  }

  /** One round: re-reads tokens if the database changed, and re-checks every holder. */
  tick(now = Date.now()): Promise<void> {
    this.running ??= this.round(now).finally(() => (this.running = undefined));
    return this.running;
  }

  private async round(now: number): Promise<void> {
    let stamp: number;
    try {
      stamp = await this.opts.tokens.changeStamp();
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
      if (changed && !fresh.has(current.id)) {
        const looked = await this.lookUp(current.id);
        if (looked === RETRY) {
          this.stamp = Number.NaN; // read everything again next round
          continue;
        }
        fresh.set(current.id, looked);
      }
      try {
        h.applyToken(changed ? fresh.get(current.id) : current, now); // unchanged: expiry only
      } catch (e) {
        // A timer callback that throws would end the process: one socket's failure stays its own.
        this.opts.logger.error('token re-check of a socket failed', { tokenId: current.id, error: errorText(e) });
      }
    }
  }

  /**
   * The stored token. A row that cannot be understood any more (an unknown role) grants nothing;
   * a failed read (the database, not the token) is tried again next round, closing nobody.
   */
  private async lookUp(id: string): Promise<TokenInfo | undefined | typeof RETRY> {
    try {
      return await this.opts.tokens.get(id);
    } catch (e) {
      if (e instanceof TokenError) {
        this.opts.logger.warn('token unreadable; its sockets are closed', { tokenId: id, error: errorText(e) });
        return undefined;
      }
      this.opts.logger.warn('token re-check failed', { tokenId: id, error: errorText(e) });
      return RETRY;
    }
  }

  dispose(): void {
    clearInterval(this.timer);
  }
}
