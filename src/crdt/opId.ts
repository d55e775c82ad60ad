/**
 * Op ids: a Lamport counter and the peer that made the op (from reptree's OpId.ts). Ops are
 * totally ordered by counter, then peer id.
 *
 * reptree compares peer ids with `localeCompare`; this module compares code points. The two
 * agree on [0-9a-z], the only characters a peer id may have in this project (src/spaces/peerId.ts,
 * validated on every op that comes in), and code points are the same on every machine, where
 * `localeCompare` depends on the ICU data Node was built with.
 */
export interface OpId {
  readonly counter: number;
  readonly peerId: string;
}

export function createOpId(counter: number, peerId: string): OpId {
  return { counter, peerId };
}

/** -1, 0 or 1: counter first, then peer id by code points. */
export function compareOpId(a: OpId, b: OpId): number {
  return compareIds(a.counter, a.peerId, b.counter, b.peerId);
}

export function compareIds(counterA: number, peerA: string, counterB: number, peerB: string): number {
  if (counterA !== counterB) return counterA > counterB ? 1 : -1;
  return peerA === peerB ? 0 : peerA > peerB ? 1 : -1;
}

export function opIdToString(id: OpId): string {
  return `${id.counter}@${id.peerId}`;
}
