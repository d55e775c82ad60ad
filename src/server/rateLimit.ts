/**
 * Per-connection rate limits: token buckets of messages, ops and bytes. A message passes only
 * when every bucket holds its cost; otherwise the connection stops reading its socket until the
 * buckets refill (TCP pushes back on the client, so a flood costs the server no memory), and the
 * client is told once per episode (`error rate-limited`). A client that stays over its limits for
 * `floodCloseMs` — it never let the buckets refill to half — is closed with 4429.
 */
import { PROTOCOL_LIMITS } from '../protocol/messages';

export interface RateLimits {
  readonly messagesPerSecond: number;
  readonly messageBurst: number;
  readonly opsPerSecond: number;
  readonly opsBurst: number;
  readonly bytesPerSecond: number;
  readonly bytesBurst: number;
  /** How long a client may stay over its limits before it is closed with 4429. */
  readonly floodCloseMs: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = {
  messagesPerSecond: 1_000,
  messageBurst: 2_000,
  opsPerSecond: 50_000,
  opsBurst: 100_000,
  bytesPerSecond: 16 * 1024 * 1024,
  bytesBurst: 32 * 1024 * 1024,
  floodCloseMs: 5_000,
};

/** Fills in defaults and checks that the largest legal message fits in every bucket. */
export function rateLimits(partial: Partial<RateLimits> = {}): RateLimits {
  const r = { ...DEFAULT_RATE_LIMITS, ...partial };
  for (const [k, v] of Object.entries(r)) {
    if (typeof v !== 'number' || !(v > 0)) throw new RangeError(`rate limit ${k} must be a positive number`);
  }
  if (r.opsBurst < PROTOCOL_LIMITS.maxOpsPerBatch) throw new RangeError(`opsBurst must be at least ${PROTOCOL_LIMITS.maxOpsPerBatch} (one full batch)`);
  if (r.bytesBurst < PROTOCOL_LIMITS.maxFrameBytes) throw new RangeError(`bytesBurst must be at least ${PROTOCOL_LIMITS.maxFrameBytes} (one full frame)`);
  if (r.messageBurst < 1) throw new RangeError('messageBurst must be at least 1');
  return r;
}

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Tokens available at `now` (refills first). */
  level(now: number): number {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perSecond) / 1000);
      this.last = now;
    }
    return this.tokens;
  }

  /** Milliseconds until `n` tokens are available (0: now). */
  waitFor(n: number, now: number): number {
    const missing = n - this.level(now);
    return missing <= 0 ? 0 : Math.ceil((missing * 1000) / this.perSecond);
  }

  isAtLeastHalfFull(now: number): boolean {
    return this.level(now) >= this.burst / 2;
  }

  take(n: number): void {
    this.tokens -= n;
  }
}

export interface MessageCost {
  readonly messages: number;
  readonly ops: number;
  readonly bytes: number;
}

export type TakeResult =
  | { readonly ok: true }
  /** `first`: the client was within its limits until now; `flood`: close it with 4429. */
  | { readonly ok: false; readonly waitMs: number; readonly first: boolean; readonly flood: boolean };

export class RateLimiter {
  private readonly messages: TokenBucket;
  private readonly ops: TokenBucket;
  private readonly bytes: TokenBucket;
  /** When the client last went over its limits without recovering since (undefined: it is within them). */
  private limitedSince: number | undefined;

  constructor(
    private readonly limits: RateLimits,
    now: number,
  ) {
    this.messages = new TokenBucket(limits.messagesPerSecond, limits.messageBurst, now);
    this.ops = new TokenBucket(limits.opsPerSecond, limits.opsBurst, now);
    this.bytes = new TokenBucket(limits.bytesPerSecond, limits.bytesBurst, now);
  }

  get limited(): boolean {
    return this.limitedSince !== undefined;
  }

  /** Takes `cost` from every bucket, or from none when one lacks it. */
  take(cost: MessageCost, now: number): TakeResult {
    const wait = Math.max(this.messages.waitFor(cost.messages, now), this.ops.waitFor(cost.ops, now), this.bytes.waitFor(cost.bytes, now));
    if (wait === 0) {
      if (this.limitedSince !== undefined && this.messages.isAtLeastHalfFull(now) && this.ops.isAtLeastHalfFull(now) && this.bytes.isAtLeastHalfFull(now)) {
        this.limitedSince = undefined;
      }
      this.messages.take(cost.messages);
      this.ops.take(cost.ops);
      this.bytes.take(cost.bytes);
      return { ok: true };
    }
    const first = this.limitedSince === undefined;
    this.limitedSince ??= now;
    return { ok: false, waitMs: wait, first, flood: now - this.limitedSince >= this.limits.floodCloseMs };
  }
}
