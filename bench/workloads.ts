/** Workloads shared by the benchmarks (ours and raw reptree's run the same ops). */
import { RepTree } from 'reptree';
import type { Op } from '../src/spaces/ops';

/**
 * Ops of an app tree holding `groups` × `perGroup` items with one short text each, made with
 * raw RepTree (no fixes installed in the calling process is fine: this is a nested shape).
 */
export function groupedTreeOps(peerId: string, treeId: string, groups: number, perGroup: number): Op[] {
  const tree = new RepTree(peerId);
  tree.moveVertex(treeId, null as unknown as string);
  for (let g = 0; g < groups; g++) {
    const group = tree.newVertex(treeId, { text: `group ${g}`, order: g + 1 });
    for (let i = 0; i < perGroup; i++) tree.newVertex(group.id, { text: `item ${g}.${i}`, order: i + 1 });
  }
  const ops = [...tree.getAllOps()];
  (tree as unknown as { state: { dispose(): void } }).state.dispose();
  return ops;
}

export function mb(bytes: number): number {
  return Math.round((bytes / 1024 / 1024) * 10) / 10;
}

export function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Forces a full GC when node runs with --expose-gc; returns heapUsed afterwards. */
export function settledHeap(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  return process.memoryUsage().heapUsed;
}
