/** Workloads shared by the benchmarks (ours and raw reptree's run the same ops). */
import { RepTree } from '../src/crdt';
import type { Op } from '../src/spaces/ops';

/**
 * Ops of an app tree holding `groups` × `perGroup` items with one short text each (and the
 * `order` every outline item has), as AppTree.addItem makes them: a move, `text`, `order`.
 */
export function groupedTreeOps(peerId: string, treeId: string, groups: number, perGroup: number): Op[] {
  const tree = new RepTree(peerId);
  tree.moveVertex(treeId, null);
  let n = 0;
  const add = (parent: string, text: string, order: number): string => {
    const id = `${(++n).toString(16).padStart(32, '0')}`;
    tree.moveVertex(id, parent);
    tree.setVertexProperties(id, { text, order });
    return id;
  };
  for (let g = 0; g < groups; g++) {
    const group = add(treeId, `group ${g}`, g + 1);
    for (let i = 0; i < perGroup; i++) add(group, `item ${g}.${i}`, i + 1);
  }
  const ops = [...tree.getAllOps()];
  tree.dispose();
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
