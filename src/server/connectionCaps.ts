/**
 * ConnectionCaps: how many WebSocket connections the server holds in total, per remote address
 * and per token. Each socket costs memory however little it is sent (the per-socket bound caps
 * what is queued for it), so the number of sockets is what bounds the whole.
 *
 * - Total and per address are checked at the upgrade, before the handshake: over them the
 *   request is answered `503` (total) or `429` (address), with `Retry-After` and a JSON body.
 * - Per token is checked at `hello` (the token is known only then): over it the socket is closed
 *   with 4002 (`tooManyConnections`).
 * Clients back off and try again (src/persistence/server/connection.ts).
 */
import { Metrics } from './metrics';

export interface ConnectionCapLimits {
  /** Open WebSocket connections in all. */
  readonly total: number;
  /** Per remote address (behind a reverse proxy every client has the proxy's address: raise it). */
  readonly perAddress: number;
  /** Per token (counted from `hello` on). */
  readonly perToken: number;
}

/**
 * 10,000 sockets is what one process serves comfortably (file descriptors, ~100 KB of memory
 * each when idle); 1,000 per address leaves room for an office behind one NAT; 500 per token is
 * far more than one person's editors and CLIs, and bounds what one leaked token can hold
 * (500 × the per-socket bound).
 */
export const DEFAULT_CONNECTION_CAPS: ConnectionCapLimits = { total: 10_000, perAddress: 1_000, perToken: 500 };

/** The caps of `given` over the defaults (undefined keeps a default); each must be a positive integer. */
export function connectionCapLimits(given: Partial<ConnectionCapLimits> = {}): ConnectionCapLimits {
  const pick = (k: keyof ConnectionCapLimits): number => {
    const v = given[k] ?? DEFAULT_CONNECTION_CAPS[k];
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`connection cap ${k} must be a positive integer (got ${v})`);
    return v;
  };
  return { total: pick('total'), perAddress: pick('perAddress'), perToken: pick('perToken') };
}

/** `Retry-After` seconds of a refused upgrade: the server is full / this address has enough. */
export const RETRY_AFTER_FULL_S = 30;
export const RETRY_AFTER_ADDRESS_S = 10;

export type RefusalReason = 'total' | 'address' | 'token';

export interface UpgradeRefusal {
  readonly status: 429 | 503;
  readonly retryAfterS: number;
  readonly message: string;
  readonly reason: RefusalReason;
}

/** What is counted for one connection, so that release takes back exactly that. */
interface Held {
  readonly address: string;
  tokenId?: string;
}

export class ConnectionCaps {
  private readonly perAddress = new Map<string, number>();
  private readonly perToken = new Map<string, number>();
  private readonly held = new Map<object, Held>();

  constructor(
    readonly limits: ConnectionCapLimits,
    private readonly metrics: Metrics,
  ) {}

  private refuse(reason: RefusalReason): void {
    Metrics.inc(this.metrics.connectionsRefused, reason);
  }

  /** Checks an upgrade from `address`; undefined when it may go ahead. */
  checkUpgrade(address: string): UpgradeRefusal | undefined {
    if (this.held.size >= this.limits.total) {
      this.refuse('total');
      return { status: 503, retryAfterS: RETRY_AFTER_FULL_S, reason: 'total', message: `the server holds its maximum of ${this.limits.total} connections; try again later` };
    }
    if ((this.perAddress.get(address) ?? 0) >= this.limits.perAddress) {
      this.refuse('address');
      return { status: 429, retryAfterS: RETRY_AFTER_ADDRESS_S, reason: 'address', message: `at most ${this.limits.perAddress} connections per address; try again later` };
    }
    return undefined;
  }

  /** Counts an accepted connection from `address` (right after checkUpgrade, same tick). */
  admit(conn: object, address: string): void {
    this.held.set(conn, { address });
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
  }

  /** Counts the connection under its token; false (nothing counted) when the token is at its cap. */
  bindToken(conn: object, tokenId: string): boolean {
    const h = this.held.get(conn);
    if (!h || h.tokenId !== undefined) return true;
    if ((this.perToken.get(tokenId) ?? 0) >= this.limits.perToken) {
      this.refuse('token');
      return false;
    }
    h.tokenId = tokenId;
    this.perToken.set(tokenId, (this.perToken.get(tokenId) ?? 0) + 1);
    return true;
  }

  /** The connection closed: it no longer counts. Idempotent. */
  release(conn: object): void {
    const h = this.held.get(conn);
    if (!h) return;
    this.held.delete(conn);
    dec(this.perAddress, h.address);
    if (h.tokenId !== undefined) dec(this.perToken, h.tokenId);
  }
}

function dec(m: Map<string, number>, k: string): void {
  const n = (m.get(k) ?? 0) - 1;
  if (n > 0) m.set(k, n);
  else m.delete(k);
}
