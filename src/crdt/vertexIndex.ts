/**
 * Vertex id → vertex index, built lazily. A tree built from ops interns ids one by one and uses
 * a Map from the start. A tree opened from a snapshot gets its ids sorted (snapshot.ts writes
 * them so): until enough lookups were made to pay for it, an id is found by binary search in that
 * sorted prefix (and ids interned after the load in a small Map), so opening a 100k-vertex tree
 * does not hash 100k strings before its first read.
 */

/** Lookups by binary search, as a share of the sorted ids, after which the full Map is built. */
const LOOKUPS_PER_VERTEX_BEFORE_MAP = 0.25;
/** …but never before this many (small trees build their Map at once). */
const MIN_LOOKUPS_BEFORE_MAP = 1024;

export class VertexIndex {
  private readonly map = new Map<string, number>();
  /**
   * Ids of vertices 0..sortedCount-1, ascending (code unit order); sortedCount is 0 once the Map
   * holds them. The array is the tree's own list, which grows past sortedCount as ids are added.
   */
  private sorted: readonly string[] = [];
  private sortedCount = 0;
  private searchesLeft = 0;

  /**
   * Starts with `ids` (vertex i has id ids[i]). Returns false when they are not strictly
   * ascending; then nothing was indexed and the caller adds them one by one with `add`.
   */
  static sortedOrFalse(ids: readonly string[]): VertexIndex | false {
    for (let i = 1; i < ids.length; i++) if (!(ids[i - 1] < ids[i])) return false;
    const x = new VertexIndex();
    x.sorted = ids;
    x.sortedCount = ids.length;
    x.searchesLeft = Math.max(MIN_LOOKUPS_BEFORE_MAP, Math.ceil(ids.length * LOOKUPS_PER_VERTEX_BEFORE_MAP));
    return x;
  }

  get size(): number {
    return this.sortedCount + this.map.size;
  }

  get(id: string): number | undefined {
    const m = this.map.get(id);
    if (m !== undefined || this.sortedCount === 0) return m;
    if (--this.searchesLeft < 0) {
      this.indexSorted();
      return this.map.get(id);
    }
    const s = this.sorted;
    let lo = 0;
    let hi = this.sortedCount - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const x = s[mid];
      if (x === id) return mid;
      if (x < id) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  /** Indexes a new vertex (an id not in the index). */
  add(id: string, v: number): void {
    this.map.set(id, v);
  }

  private indexSorted(): void {
    const s = this.sorted;
    const n = this.sortedCount;
    this.sorted = [];
    this.sortedCount = 0;
    for (let i = 0; i < n; i++) this.map.set(s[i], i);
  }
}
