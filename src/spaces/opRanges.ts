/**
 * A compact set of op ids: per peer, sorted disjoint inclusive counter ranges. The server uses it
 * as a tree's state vector; a client uses it to send the server exactly the ops it lacks.
 */
import type { Op } from './ops';

export type Ranges = Record<string, Array<[number, number]>>;

export class OpRangeSet {
  private readonly byPeer = new Map<string, Array<[number, number]>>();

  static fromRanges(r: Ranges): OpRangeSet {
    const s = new OpRangeSet();
    for (const [peer, list] of Object.entries(r)) for (const [a, b] of list) s.addRange(peer, a, b);
    return s;
  }

  static fromOps(ops: readonly Op[]): OpRangeSet {
    const s = new OpRangeSet();
    s.addOps(ops);
    return s;
  }

  add(peer: string, counter: number): void {
    this.addRange(peer, counter, counter);
  }

  /**
   * Adds the ids of `ops`, in any order, in O(n log n + ranges): per peer the counters are sorted
   * and merged with the existing ranges in one pass. (Adding one by one costs O(ranges) per op
   * that lands before the last range — a tree's ops come moves first, then properties, so that
   * would be quadratic for a big batch.)
   */
  addOps(ops: readonly Op[]): void {
    const byPeer = new Map<string, number[]>();
    for (const op of ops) {
      const list = byPeer.get(op.id.peerId);
      if (list) list.push(op.id.counter);
      else byPeer.set(op.id.peerId, [op.id.counter]);
    }
    for (const [peer, counters] of byPeer) {
      counters.sort((x, y) => x - y);
      const fresh: Array<[number, number]> = [];
      for (const c of counters) {
        const last = fresh[fresh.length - 1];
        if (last && c <= last[1] + 1) last[1] = Math.max(last[1], c);
        else fresh.push([c, c]);
      }
      const old = this.byPeer.get(peer);
      this.byPeer.set(peer, old?.length ? mergeRanges(old, fresh) : fresh);
    }
  }

  /** Adds [a, b], merging with neighbours. Appends in increasing order are O(1). */
  addRange(peer: string, a: number, b: number): void {
    let list = this.byPeer.get(peer);
    if (!list) this.byPeer.set(peer, (list = []));
    const last = list[list.length - 1];
    if (!last || a > last[1] + 1) {
      list.push([a, b]);
      return;
    }
    if (a >= last[0]) {
      last[1] = Math.max(last[1], b);
      return;
    }
    // General case: insert then merge overlapping or touching ranges.
    let i = lowerBound(list, a);
    list.splice(i, 0, [a, b]);
    if (i > 0 && list[i - 1][1] + 1 >= a) i--;
    while (i + 1 < list.length && list[i][1] + 1 >= list[i + 1][0]) {
      list[i][1] = Math.max(list[i][1], list[i + 1][1]);
      list.splice(i + 1, 1);
    }
  }

  has(peer: string, counter: number): boolean {
    const list = this.byPeer.get(peer);
    if (!list) return false;
    let lo = 0;
    let hi = list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const [a, b] = list[mid];
      if (counter < a) hi = mid - 1;
      else if (counter > b) lo = mid + 1;
      else return true;
    }
    return false;
  }

  hasOp(op: Op): boolean {
    return this.has(op.id.peerId, op.id.counter);
  }

  toRanges(): Ranges {
    const out: Ranges = {};
    for (const [peer, list] of this.byPeer) out[peer] = list.map(([a, b]) => [a, b]);
    return out;
  }
}

/** The union of two sorted lists of disjoint ranges, touching ranges joined, in one pass. */
function mergeRanges(x: ReadonlyArray<[number, number]>, y: ReadonlyArray<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    const next = j >= y.length || (i < x.length && x[i][0] <= y[j][0]) ? x[i++] : y[j++];
    const last = out[out.length - 1];
    if (last && next[0] <= last[1] + 1) last[1] = Math.max(last[1], next[1]);
    else out.push([next[0], next[1]]);
  }
  return out;
}

/** Index of the first range whose start is ≥ a. */
function lowerBound(list: Array<[number, number]>, a: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid][0] < a) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
