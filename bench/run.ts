/**
 * Benchmarks, one JSON line per result on stdout (progress on stderr). Each runs the same
 * workload on raw reptree in a child process (bench/raw.ts, no fixes loaded) and reports ours/raw.
 *
 *   npm run bench -- [--only open,heap,build,flat,saves] [--groups 1000] [--per-group 100]
 *                    [--flat 20000] [--save-mb 50] [--save-seconds 10] [--no-raw]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import initSqlJs from 'sql.js';
import { RepTree } from '../src/crdt';
import { FileLayer } from '../src/persistence/file/fileLayer';
import { AppTree } from '../src/spaces/appTree';
import { Chat } from '../src/spaces/apps/chat';
import { encodeOps } from '../src/spaces/opCodec';
import { newPeerId } from '../src/spaces/peerId';
import { SpaceManager } from '../src/spaces/spaceManager';
import { groupedTreeOps, mb, round, settledHeap } from './workloads';

const { values: opt } = parseArgs({
  options: {
    only: { type: 'string', default: 'open,heap,build,flat,saves' },
    groups: { type: 'string', default: '1000' },
    'per-group': { type: 'string', default: '100' },
    flat: { type: 'string', default: '20000' },
    'save-mb': { type: 'string', default: '50' },
    'save-seconds': { type: 'string', default: '10' },
    'no-raw': { type: 'boolean', default: false },
  },
});
const only = new Set(String(opt.only).split(','));
const KEY = Buffer.alloc(32, 7);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-bench-'));
const log = (...a: unknown[]) => console.error('[bench]', ...a);
/** Every line carries the machine's load (1-minute average, as `uptime` shows it): figures under load are slower. */
const emit = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ ...o, load: round(os.loadavg()[0], 2), node: process.version, at: new Date().toISOString() }) + '\n');

function raw(args: string[]): Record<string, number> | undefined {
  if (opt['no-raw']) return undefined;
  const out = execFileSync(process.execPath, ['--expose-gc', '--max-old-space-size=8192', path.join(__dirname, 'raw.js'), ...args], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out) as Record<string, number>;
}

/** A space file holding one notes app tree with the given ops; returns its ids. */
async function makeSpaceFile(file: string, treeOps: (treeId: string) => ReturnType<typeof groupedTreeOps>): Promise<{ spaceId: string; treeId: string; opCount: number }> {
  const manager = new SpaceManager();
  const space = await manager.create('bench', async (id) => [await FileLayer.create(file, id, { secretKey: KEY })]);
  const treeId = space.createAppTree('notes', 'Big').id;
  const spaceId = space.id;
  await manager.close(spaceId);
  await manager.dispose();
  const ops = treeOps(treeId);
  if (ops.length === 0) return { spaceId, treeId, opCount: 0 };
  const layer = await FileLayer.open(file, { secretKey: KEY });
  for (let i = 0; i < ops.length; i += 50_000) await layer.saveOps(treeId, ops.slice(i, i + 50_000));
  await layer.close();
  return { spaceId, treeId, opCount: ops.length };
}

async function benchOpenAndHeap(): Promise<void> {
  const groups = Number(opt.groups);
  const per = Number(opt['per-group']);
  const items = groups * per + groups;
  const file = path.join(dir, 'open.space');
  log(`open: writing ${items} items`);
  let allOps: ReturnType<typeof groupedTreeOps> = [];
  const { spaceId, treeId, opCount } = await makeSpaceFile(file, (id) => (allOps = groupedTreeOps('benchwriter', id, groups, per)));
  const opsFile = path.join(dir, 'open-ops.json');
  fs.writeFileSync(opsFile, JSON.stringify(encodeOps(allOps)));
  allOps = [];

  // The same file without snapshots (as files made before them): the tree is built from every op.
  const noSnapshot = path.join(dir, 'open-ops.space');
  fs.copyFileSync(file, noSnapshot);
  await dropSnapshots(noSnapshot);

  const runs: Array<{ name: string } & Awaited<ReturnType<typeof openOnce>>> = [];
  // Alternating, twice each: the machine is shared, so compare within a run.
  for (const [name, f] of [['snapshot', file], ['ops', noSnapshot], ['snapshot', file], ['ops', noSnapshot]] as const) runs.push({ name, ...(await openOnce(f, spaceId, treeId)) });
  const best = (name: string) => runs.filter((x) => x.name === name).sort((a, b) => a.ms - b.ms)[0];
  const snap = best('snapshot');
  const ops = best('ops');
  log(`open: ${round(snap.ms)} ms from the snapshot, ${round(ops.ms)} ms from the ops`);
  const r = raw(['load', opsFile, treeId]);
  if (only.has('open')) {
    emit({ bench: items >= 1_000_000 ? 'open-1m' : 'open-100k', items, ops: opCount, fileMB: mb(fs.statSync(file).size), ms: round(snap.ms), spaceTreeMs: round(snap.spaceMs), tailOps: snap.tailOps, fromOpsMs: round(ops.ms), fromOpsFileMB: mb(fs.statSync(noSnapshot).size), ratioToFromOps: round(snap.ms / ops.ms, 2), rssMB: mb(snap.rss), rawReptreeMs: r && round(r.ms), ratio: r && round(snap.ms / r.ms, 2), ...(items < 1_000_000 ? { targetMs: 300 } : { target: 'opens' }) });
  }
  if (only.has('heap')) {
    emit({ bench: 'heap-per-item', items, heapMB: mb(snap.heapBytes), bytesPerItem: Math.round(snap.heapBytes / items), fromOpsBytesPerItem: Math.round(ops.heapBytes / items), rawReptreeBytesPerItem: r && Math.round(r.heapBytes / items), ratio: r && round(snap.heapBytes / r.heapBytes, 2), targetBytesPerItem: 500 });
  }
}

/** Opens the space file and its app tree until readable (top level and one group listed). */
async function openOnce(file: string, spaceId: string, treeId: string): Promise<{ ms: number; spaceMs: number; heapBytes: number; tailOps: number; rss: number }> {
  const manager = new SpaceManager();
  settledHeap();
  const t0 = performance.now();
  // Snapshots off for the measured layer: it must not write one while being measured.
  const layer = await FileLayer.open(file, { secretKey: KEY, snapshotTailOps: Infinity });
  const space = await manager.open(spaceId, [layer]);
  const tSpace = performance.now();
  // The heap is measured around the app tree's load alone: what the open tree keeps alive.
  const heap0 = settledHeap();
  const t1 = performance.now();
  const tree = await space.openAppTree(treeId);
  const top = tree.childIds();
  tree.childIds(top[0]);
  const ms = tSpace - t0 + (performance.now() - t1);
  const heapBytes = settledHeap() - heap0;
  const rss = process.memoryUsage().rss;
  const tailOps = (await layer.loadTreeState(treeId)).ops.length;
  await manager.dispose();
  return { ms, spaceMs: tSpace - t0, heapBytes, tailOps, rss };
}

/** Deletes every snapshot row of a space file (sql.js directly, as another program would). */
async function dropSnapshots(file: string): Promise<void> {
  const SQL = await initSqlJs();
  const db = new SQL.Database(fs.readFileSync(file));
  db.run('DELETE FROM snapshots');
  db.exec('VACUUM');
  fs.writeFileSync(file, db.export());
  db.close();
}

/**
 * The CRDT alone on the open path: AppTree.fromOps on a tree's ops in memory, in op-id order as a
 * layer hands them over (raw reptree: the same, bench/raw.ts `load`). The heap an open tree keeps
 * is the `heap-per-item` row (there the ops come from a file, here they stay alive with the tree).
 */
async function benchBuild(): Promise<void> {
  const groups = Number(opt.groups);
  const per = Number(opt['per-group']);
  const items = groups * per + groups;
  const treeId = 'b'.repeat(32);
  const ops = groupedTreeOps('benchwriter', treeId, groups, per);
  ops.sort((a, b) => a.id.counter - b.id.counter);
  const opsFile = path.join(dir, 'build-ops.json');
  fs.writeFileSync(opsFile, JSON.stringify(encodeOps(ops)));
  const runs: number[] = [];
  for (let i = 0; i < BUILD_RUNS; i++) {
    const copy = ops.map((op) => ({ ...op }));
    settledHeap();
    const t0 = performance.now();
    const tree = AppTree.fromOps('benchreader', treeId, copy);
    runs.push(performance.now() - t0);
    tree.dispose();
  }
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[xs.length >> 1];
  const ms = median(runs);
  log(`build: ${round(ms)} ms (median of ${BUILD_RUNS})`);
  // The same tree from a snapshot (src/crdt/snapshot.ts): what an open costs without the ops.
  const tree = AppTree.fromOps('benchreader', treeId, ops);
  const encodeRuns: number[] = [];
  const loadRuns: number[] = [];
  let bytes: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < BUILD_RUNS; i++) {
    let t0 = performance.now();
    bytes = tree.snapshot();
    encodeRuns.push(performance.now() - t0);
    t0 = performance.now();
    AppTree.fromSnapshot('benchreader', treeId, bytes).dispose();
    loadRuns.push(performance.now() - t0);
  }
  tree.dispose();
  const r = raw(['load', opsFile, treeId]);
  emit({ bench: 'tree-build', items, ops: ops.length, ms: round(ms), rawReptreeMs: r && round(r.ms), ratio: r && round(ms / r.ms, 3), targetMs: 300 });
  emit({ bench: 'tree-snapshot', items, snapshotMB: mb(bytes.length), bytesPerOp: round(bytes.length / ops.length), encodeMs: round(median(encodeRuns)), loadMs: round(median(loadRuns)), buildFromOpsMs: round(ms), ratio: round(median(loadRuns) / ms, 2) });
}

/** Builds measured by `build`; the median is reported. */
const BUILD_RUNS = 5;

async function benchFlat(): Promise<void> {
  const n = Number(opt.flat);
  const heap0 = settledHeap();
  const t0 = performance.now();
  // A peer id as the app makes them: new items get ids derived from their op id (src/spaces/ids.ts).
  const tree = AppTree.createNew(newPeerId(), 'c'.repeat(32));
  const chat = new Chat(tree);
  for (let i = 0; i < n; i++) chat.post('ann', `message ${i}`, i);
  const count = chat.messages().length;
  const ms = performance.now() - t0;
  const heapBytes = settledHeap() - heap0;
  tree.dispose();
  log(`flat: ${round(ms)} ms; raw reptree next (slow: it is quadratic)`);
  const r = raw(['flat', String(n)]);
  emit({ bench: 'flat-children', children: count, ms: round(ms), heapMB: mb(heapBytes), rawReptreeMs: r && round(r.ms), rawReptreeHeapMB: r && mb(r.heapBytes), rawReptreeRssMB: r && mb(r.peakRss), ratio: r && round(ms / r.ms, 3), targetMs: 100, targetHeapMB: 300 });
}

async function benchSaves(): Promise<void> {
  const targetBytes = Number(opt['save-mb']) * 1024 * 1024;
  const seconds = Number(opt['save-seconds']);
  const file = path.join(dir, 'saves.space');
  const text = 'x'.repeat(1000);
  log(`saves: prefilling to ${mb(targetBytes)} MB`);
  const { spaceId, treeId } = await makeSpaceFile(file, () => []);
  {
    // Grow the file in chunks until it reaches the target size (saves resolve once on disk).
    const filler = new RepTree('benchfill');
    filler.moveVertex(treeId, null);
    const layer = await FileLayer.open(file, { secretKey: KEY });
    let g = 0;
    while (fs.statSync(file).size < targetBytes) {
      const gv = filler.newVertex(treeId, { text: `g${g++}` });
      for (let i = 0; i < 500; i++) filler.newVertex(gv.id, { text });
      await layer.saveOps(treeId, filler.popLocalOps());
    }
    await layer.close();
    filler.dispose();
  }
  const fileMB = mb(fs.statSync(file).size);
  const manager = new SpaceManager();
  const layer = await FileLayer.open(file, { secretKey: KEY });
  const space = await manager.open(spaceId, [layer]);
  const tree = await space.openAppTree(treeId);
  const parent = tree.addItem(tree.rootId, { text: 'saves' });
  await manager.flush(spaceId);

  const offeredOpsPerSec = 40_000;
  const opsPerItem = 4; // move, _c, text, order
  const t0 = performance.now();
  const run = await produce(tree, parent, seconds, offeredOpsPerSec, opsPerItem);
  const unsaved = await manager.flush(spaceId);
  const elapsed = (performance.now() - t0) / 1000;
  const opsSaved = run.made;
  await manager.dispose();
  // The same producer with no file behind it: the event-loop delay the producer causes itself.
  const alone = AppTree.createNew('benchalone', 'b'.repeat(32));
  const aloneParent = alone.addItem(alone.rootId, {});
  const baseline = await produce(alone, aloneParent, Math.min(seconds, 5), offeredOpsPerSec, opsPerItem);
  alone.dispose();
  // Raw reptree: the same items made in memory, nothing saved.
  const rt = new RepTree('rawwriter');
  rt.createRoot();
  const rp = rt.newVertex(rt.root?.id as string, {});
  const r0 = performance.now();
  for (let i = 0; i < opsSaved / opsPerItem; i++) rt.newVertex(rp.id, { text: `saved item ${i}`, order: i });
  const rawOpsPerSec = opsSaved / ((performance.now() - r0) / 1000);
  rt.dispose();
  emit({
    bench: 'sustained-saves',
    fileMB,
    finalFileMB: mb(fs.statSync(file).size),
    seconds: round(elapsed, 2),
    opsSaved,
    opsPerSec: Math.round(opsSaved / elapsed),
    offeredOpsPerSec,
    eventLoopDelayP99Ms: run.p99Ms,
    eventLoopDelayMaxMs: run.maxMs,
    producerAloneP99Ms: baseline.p99Ms,
    producerAloneMaxMs: baseline.maxMs,
    itemsPerTick: ITEMS_PER_TICK,
    unsavedLayers: unsaved.length,
    rawReptreeInMemoryOpsPerSec: Math.round(rawOpsPerSec),
    targetOpsPerSec: 20_000,
    targetP99Ms: 20,
  });
}

/** Most items the producer makes in one synchronous step (a user or a sync batch, not a bulk import). */
const ITEMS_PER_TICK = 50;

/**
 * Adds items under `parent` at `offered` ops/s for `seconds`, in small synchronous steps, while
 * measuring the event loop's delay. Returns the ops made and the delay's p99 and max (ms).
 */
async function produce(tree: AppTree, parent: string, seconds: number, offered: number, opsPerItem: number): Promise<{ made: number; p99Ms: number; maxMs: number }> {
  let made = 0;
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    const due = ((performance.now() - t0) / 1000) * offered;
    const items = Math.min(ITEMS_PER_TICK, Math.max(0, Math.floor((due - made) / opsPerItem)));
    if (items > 0) {
      tree.transact((t) => {
        for (let i = 0; i < items; i++) t.newVertex(parent, { text: `saved item ${made / opsPerItem + i}`, order: made + i });
      });
      made += items * opsPerItem;
    }
    await new Promise<void>((r) => setTimeout(r, 1));
  }
  h.disable();
  return { made, p99Ms: round(h.percentile(99) / 1e6, 2), maxMs: round(h.max / 1e6, 2) };
}

async function main(): Promise<void> {
  try {
    if (only.has('open') || only.has('heap')) await benchOpenAndHeap();
    if (only.has('build')) await benchBuild();
    if (only.has('flat')) await benchFlat();
    if (only.has('saves')) await benchSaves();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
