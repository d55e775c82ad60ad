/**
 * A drop-in for RepTree's `knownOps` (a Set of "counter@peerId" strings, one string per op ever
 * seen: about 180 bytes an item in a 100k-item tree) that stores the same ids as counter ranges
 * per peer. RepTree only calls `has` and `add` on it. It extends Set so RepTree's and our checks of
 * the field's type still hold; the Set's own storage stays empty.
 */
import { OpRangeSet } from './opRanges';

export class CompactOpIdSet extends Set<string> {
  private readonly ranges = new OpRangeSet();
  private count = 0;

  constructor(ids?: Iterable<string>) {
    super();
    if (ids) for (const id of ids) this.add(id);
  }

  override has(id: string): boolean {
    const at = id.indexOf('@');
    return at > 0 && this.ranges.has(id.slice(at + 1), Number(id.slice(0, at)));
  }

  override add(id: string): this {
    const at = id.indexOf('@');
    if (at <= 0) throw new Error(`not an op id: ${id}`);
    const peer = id.slice(at + 1);
    const counter = Number(id.slice(0, at));
    if (!this.ranges.has(peer, counter)) {
      this.ranges.add(peer, counter);
      this.count++;
    }
    return this;
  }

  override get size(): number {
    return this.count;
  }

  override delete(): boolean {
    throw new Error('op ids are never forgotten');
  }

  override clear(): void {
    throw new Error('op ids are never forgotten');
  }
}

/** Replaces a RepTree's `knownOps` with a CompactOpIdSet holding the same ids. */
export function compactKnownOps(tree: object): void {
  const t = tree as { knownOps: Set<string> };
  if (t.knownOps instanceof CompactOpIdSet) return;
  t.knownOps = new CompactOpIdSet(t.knownOps);
}

interface VertexStorage {
  properties: unknown[];
  children: string[];
}

/**
 * Trims each vertex's property and children arrays to their length. RepTree grows them with
 * push(), and V8 gives an array that grows from empty room for 17 elements: about 130 bytes a
 * vertex of unused slots after a bulk load. Arrays that grow later regrow as usual.
 */
export function trimVertexArrays(tree: object): void {
  const state = (tree as { state: { getAllVertices(): readonly VertexStorage[] } }).state;
  for (const v of state.getAllVertices()) {
    if (v.properties.length > 0) v.properties = v.properties.slice();
    if (v.children.length > 0) v.children = v.children.slice();
  }
}
