/**
 * What the server admits from a client beyond a well-formed message: op counters close to the
 * tree's clock, and secret times close to the server's clock.
 *
 * A counter is a Lamport clock and a secret's time decides last-writer-wins, so one value near
 * 2^53 from one writer would end everyone's writes (the next counter or time is not a safe
 * integer). A batch with such a value is refused whole with `out-of-range` (docs/protocol.md).
 * Replicas also survive values that got in elsewhere (src/crdt/clock.ts,
 * secrets.ts `isInertSecretTime`); this is the first line.
 */
import type { SecretRecord } from '../persistence/contract';
import type { OpRangeSet } from '../spaces/opRanges';
import type { Op } from '../spaces/ops';
import { MAX_CLOCK_STEP, followCounter } from '../crdt';

export interface AdmissionLimits {
  /**
   * How far an op's counter may be above its tree's clock (counting the batch's own ops below it,
   * in counter order). A client's counter is one above the highest it has seen, so only ops the
   * server lacks make a jump; 1,000,000 of them is a very long offline session. The default is the
   * step replicas' clocks follow (MAX_CLOCK_STEP); a larger gap admits ops clocks do not follow.
   */
  readonly maxCounterGap: number;
  /** How far a secret record's time may be ahead of the server's clock (ms). */
  readonly maxSecretSkewMs: number;
}

export const DEFAULT_ADMISSION_LIMITS: AdmissionLimits = {
  maxCounterGap: MAX_CLOCK_STEP,
  maxSecretSkewMs: 24 * 60 * 60 * 1000,
};

/**
 * The clock of a tree on the server, by the rule every replica's clock follows (src/crdt/clock.ts
 * `followCounter`): its stored counters in increasing order, each followed when at most
 * MAX_CLOCK_STEP above the clock so far. A counter stored before these checks existed (e.g.
 * 2^53-1 by an older server) is not followed here nor by any client, so it opens no door to
 * others, and an op clients did follow is followed here too, so their next ops are admitted.
 */
export function clockOfRanges(set: OpRangeSet | undefined): number {
  if (!set) return 0;
  const ranges: Array<[number, number]> = [];
  for (const list of Object.values(set.toRanges())) for (const r of list) ranges.push(r);
  ranges.sort((a, b) => a[0] - b[0]);
  let clock = 0;
  // Counters inside a range are consecutive: once its start is followed, so is its end.
  for (const [a, b] of ranges) if (followCounter(clock, a) === a || (a <= clock && b > clock)) clock = b;
  return clock;
}

/** The clock after `ops` arrive, followed like any replica's. */
function followOps(clock: number, ops: readonly Op[]): number {
  const counters = ops.map((op) => op.id.counter).sort((a, b) => a - b);
  let c = clock;
  for (const n of counters) c = followCounter(c, n);
  return c;
}

export type CounterCheck = { readonly ok: true; readonly clock: number } | { readonly ok: false; readonly message: string };

/**
 * Checks the counters of `ops` (ops the tree lacks) against the tree's `clock`: in counter order,
 * each may be at most `gap` above the highest so far. Returns the clock after them, or why not.
 */
export function checkCounters(clock: number, ops: readonly Op[], gap: number): CounterCheck {
  const counters = ops.map((op) => op.id.counter).sort((a, b) => a - b);
  let c = clock;
  for (const n of counters) {
    if (n - c > gap) {
      const op = ops.find((o) => o.id.counter === n) as Op;
      return { ok: false, message: `op ${n}@${op.id.peerId}: its counter is ${n - c} above the tree's highest counter ${c} (at most ${gap} is admitted)` };
    }
    if (n > c) c = n;
  }
  return { ok: true, clock: c };
}

/** Why these records are refused (a time too far ahead of `now`), or undefined. */
export function checkSecretTimes(records: readonly SecretRecord[], now: number, skewMs: number): string | undefined {
  for (const r of records) {
    if (r.time - now > skewMs) {
      return `secret ${r.key}: its time ${r.time} is ${Math.round((r.time - now) / 1000)} s ahead of the server's clock (at most ${Math.round(skewMs / 1000)} s); check the writer's clock`;
    }
  }
  return undefined;
}

/** The clocks of a space's trees, computed from their state vectors when first needed. */
export class TreeClocks {
  private readonly clocks = new Map<string, number>();

  constructor(private readonly stateVector: (treeId: string) => OpRangeSet | undefined) {}

  get(treeId: string): number {
    let c = this.clocks.get(treeId);
    if (c === undefined) this.clocks.set(treeId, (c = clockOfRanges(this.stateVector(treeId))));
    return c;
  }

  /** Stored ops (admitted, or the server's own) move the clock like any other replica's. */
  advance(treeId: string, ops: readonly Op[]): void {
    if (ops.length > 0) this.clocks.set(treeId, followOps(this.get(treeId), ops));
  }
}
