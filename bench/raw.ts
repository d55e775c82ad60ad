/**
 * The raw-reptree side of each benchmark, run in its own process so that none of our fixes
 * (installed by src/spaces/appTree) are loaded and heap figures are not shared.
 *   node --expose-gc out/bench/raw.js load OPS.json      → {ms, heapBytes}
 *   node --expose-gc out/bench/raw.js flat N             → {ms, heapBytes}
 */
import fs from 'node:fs';
import { RepTree, compareOpId, type VertexOperation } from 'reptree';
import { decodeOps } from '../src/spaces/opCodec';
import { settledHeap } from './workloads';

function dispose(t: RepTree): void {
  (t as unknown as { state: { dispose(): void } }).state.dispose();
}

const [mode, arg, treeId] = process.argv.slice(2);
const base = settledHeap();
let result: Record<string, number>;
if (mode === 'load') {
  // The heap is measured from before the ops exist, as for ours: the tree keeps every op object.
  const before = settledHeap();
  const ops = decodeOps(JSON.parse(fs.readFileSync(arg, 'utf8')), treeId, arg) as VertexOperation[];
  const t0 = performance.now();
  ops.sort((a, b) => compareOpId(a.id, b.id));
  const tree = new RepTree('rawreader', ops);
  tree.getChildrenIds(treeId);
  const ms = performance.now() - t0;
  ops.length = 0;
  result = { ms, heapBytes: settledHeap() - before };
  dispose(tree);
} else if (mode === 'flat') {
  const n = Number(arg);
  const t0 = performance.now();
  const tree = new RepTree('rawwriter');
  const root = tree.createRoot();
  for (let i = 0; i < n; i++) {
    // The same ops Chat.post makes: a move and three properties.
    const id = i.toString(16).padStart(32, '0');
    tree.moveVertex(id, root.id);
    tree.setVertexProperties(id, { author: 'ann', text: `message ${i}`, time: i });
  }
  tree.getChildren(root.id);
  const ms = performance.now() - t0;
  result = { ms, heapBytes: settledHeap() - base, peakRss: process.memoryUsage().rss };
  dispose(tree);
} else {
  throw new Error(`unknown mode ${mode}`);
}
process.stdout.write(JSON.stringify(result) + '\n');
