/**
 * History of one item from the op log (src/spaces/history.ts), one JSON line per tree size:
 * a notes tree of N items (each a move + text/done/order) where one item was changed `--changes`
 * times (text edits, check toggles and moves between two parents). Measured: the history of that
 * item as "Show History" builds it (`itemHistory` over `AppTree.itemOps`, the item's ops read from
 * the columns), and beside it in the same run the peer figure `allOps` (every op of the tree read
 * out as objects, what a history built from the whole op log would start with), as a ratio.
 * Target: 1000 changes ≤ 100 ms.
 *
 *   node out/bench/history.js [--items 10000,100000] [--changes 1000] [--runs 7]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { AppTree } from '../src/spaces/appTree';
import { itemHistory } from '../src/spaces/history';
import { round } from './workloads';

const { values: opt } = parseArgs({ options: { items: { type: 'string', default: '10000,100000' }, changes: { type: 'string', default: '1000' }, runs: { type: 'string', default: '7' } } });
const emit = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ ...o, load: os.loadavg()[0], node: process.version, at: new Date().toISOString() }) + '\n');
const PEER = 'aaaa000000000001';
const AUTHORS = new Map([[PEER, 'alice']]);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function build(items: number, changes: number): { tree: AppTree; itemId: string } {
  const tree = AppTree.createNew(PEER, 'h'.repeat(32), { name: 'bench' });
  const parents = [tree.addItem(tree.id, { text: 'A', done: false }), tree.addItem(tree.id, { text: 'B', done: false })];
  for (let i = 0; i < items; i++) tree.addItem(parents[i % 2], { text: `item ${i}`, done: false });
  const itemId = tree.addItem(parents[0], { text: 'watched', done: false });
  for (let c = 0; c < changes; c++) {
    if (c % 5 === 3) tree.setProps(itemId, { done: c % 2 === 0 });
    else if (c % 5 === 4) tree.move(itemId, parents[Math.floor(c / 5) % 2 === 0 ? 1 : 0]);
    else tree.setProps(itemId, { text: `watched ${c}` });
  }
  return { tree, itemId };
}

const runs = Number(opt.runs);
for (const items of String(opt.items).split(',').map(Number)) {
  const changes = Number(opt.changes);
  const { tree, itemId } = build(items, changes);
  const read: number[] = [];
  const hist: number[] = [];
  let entries = 0;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    tree.allOps();
    const t1 = performance.now();
    entries = itemHistory(tree.itemOps(itemId), itemId, (p) => AUTHORS.get(p)).length;
    const t2 = performance.now();
    read.push(t1 - t0);
    hist.push(t2 - t1);
  }
  emit({ bench: 'history', items, changes, treeOps: tree.opCount, entries, historyMs: round(median(hist)), allOpsMs: round(median(read)), ratio: round(median(hist) / median(read), 4), targetMs: 100 });
  tree.dispose();
}
