/**
 * Which op ids a tree holds: per peer, sorted disjoint inclusive counter ranges (reptree's
 * StateVector.ts, stored flat: [start0, end0, start1, end1, ...] per peer instead of one array
 * per range). A tree's ops are dense per peer, so a tree of any size usually has a few ranges.
 * It is also the tree's set of known ops: every op applied, or stored after losing
 * last-writer-wins, is in it; ops parked for a missing parent or vertex are not.
 */
export type StateVectorRanges = Record<string, number[][]>;

export class StateVector {
  private readonly byPeer = new Map<string, number[]>();
  /**
   * Counters added below a peer's last range, merged into its ranges on the next read. A batch
   * applies moves before properties, so one peer's counters often arrive out of order: inserting
   * each into the middle of the list would cost O(ranges) per op.
   */
  private readonly unsorted = new Map<string, number[]>();

  has(peerId: string, counter: number): boolean {
    if (this.unsorted.size > 0) this.normalize();
    const r = this.byPeer.get(peerId);
    if (!r) return false;
    const i = rangeAtOrBefore(r, counter);
    return i >= 0 && counter <= r[i + 1];
  }

  /** Adds one id: O(1) above the peer's last range, deferred (merged on the next read) below it. */
  add(peerId: string, counter: number): void {
    const r = this.byPeer.get(peerId);
    if (!r) {
      this.byPeer.set(peerId, [counter, counter]);
      return;
    }
    const last = r[r.length - 1];
    if (counter > last) {
      if (counter === last + 1) r[r.length - 1] = counter;
      else r.push(counter, counter);
      return;
    }
    if (counter >= r[r.length - 2]) return;
    const list = this.unsorted.get(peerId);
    if (list) list.push(counter);
    else this.unsorted.set(peerId, [counter]);
  }

  /** Adds [start, end] (start ≤ end). */
  addRange(peerId: string, start: number, end: number): void {
    const r = this.byPeer.get(peerId);
    if (!r || start > r[r.length - 1] + 1) {
      if (r) r.push(start, end);
      else this.byPeer.set(peerId, [start, end]);
      return;
    }
    this.byPeer.set(peerId, mergeSorted(r, [start, end]));
  }

  /** The ranges as reptree's `getStateVector()` shaped them: peer → [[start, end], ...]. A copy. */
  getState(): StateVectorRanges {
    const out: StateVectorRanges = {};
    this.forEachRange((peer, a, b) => {
      const list = out[peer] ?? (out[peer] = []);
      list.push([a, b]);
    });
    return out;
  }

  /** Calls `fn` for every range, peers in insertion order, ranges ascending. */
  forEachRange(fn: (peerId: string, start: number, end: number) => void): void {
    if (this.unsorted.size > 0) this.normalize();
    for (const [peer, r] of this.byPeer) for (let i = 0; i < r.length; i += 2) fn(peer, r[i], r[i + 1]);
  }

  /** Number of ids held. */
  count(): number {
    let n = 0;
    this.forEachRange((_p, a, b) => (n += b - a + 1));
    return n;
  }

  private normalize(): void {
    for (const [peer, counters] of this.unsorted) {
      counters.sort((a, b) => a - b);
      const fresh: number[] = [];
      for (const c of counters) {
        const m = fresh.length;
        if (m > 0 && c <= fresh[m - 1] + 1) fresh[m - 1] = Math.max(fresh[m - 1], c);
        else fresh.push(c, c);
      }
      this.byPeer.set(peer, mergeSorted(this.byPeer.get(peer) ?? [], fresh));
    }
    this.unsorted.clear();
  }
}

/** The union of two flat sorted range lists, touching ranges joined, in one pass. */
function mergeSorted(x: readonly number[], y: readonly number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    let a: number;
    let b: number;
    if (j >= y.length || (i < x.length && x[i] <= y[j])) {
      a = x[i];
      b = x[i + 1];
      i += 2;
    } else {
      a = y[j];
      b = y[j + 1];
      j += 2;
    }
    const m = out.length;
    if (m > 0 && a <= out[m - 1] + 1) out[m - 1] = Math.max(out[m - 1], b);
    else out.push(a, b);
  }
  return out;
}

/** True when `ranges` (reptree's shape, as another peer sends it) holds the id. */
export function rangesHave(ranges: StateVectorRanges, peerId: string, counter: number): boolean {
  const list = Object.prototype.hasOwnProperty.call(ranges, peerId) ? ranges[peerId] : undefined;
  if (!Array.isArray(list)) return false;
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const range = list[mid];
    if (counter < range[0]) hi = mid - 1;
    else if (counter > range[1]) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Index (even) of the last range whose start is ≤ counter, or -2 when there is none. */
function rangeAtOrBefore(r: readonly number[], counter: number): number {
  let lo = 0;
  let hi = r.length / 2 - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (r[mid * 2] <= counter) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found * 2;
}
