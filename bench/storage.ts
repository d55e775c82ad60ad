/**
 * Storage bytes of the peer-benchmark workload (root → 256 buckets → one leaf per edit with one
 * short string; each edit = a move + `text`/`done`/`order`, made by AppTree.addItem), one JSON
 * line per result:
 *
 *   - file: a `*.space` file written through FileLayer (saves as they come, batched by the layer),
 *     with its snapshots and without (snapshotTailOps Infinity), against the same ops in schema 1
 *     (one row per op, test/helpers/v1SpaceFile.ts);
 *   - server: the server's store (ServerStore, one batch per edit, as one client sending each edit
 *     in its own frame), database + WAL after a checkpoint.
 *
 *   node out/bench/storage.js [--edits 10000,100000]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import initSqlJs from 'sql.js';
import { FileLayer } from '../src/persistence/file/fileLayer';
import { ServerStore } from '../src/server/store/serverStore';
import { AppTree } from '../src/spaces/appTree';
import { newPeerId } from '../src/spaces/peerId';
import type { Op } from '../src/spaces/ops';
import { Space } from '../src/spaces/space';
import { v1SpaceFileBytes } from '../test/helpers/v1SpaceFile';
import { round } from './workloads';

const { values: opt } = parseArgs({ options: { edits: { type: 'string', default: '10000,100000' } } });
const KEY = Buffer.alloc(32, 7);
const BUCKETS = 256;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-bench-storage-'));
const emit = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ ...o, load: os.loadavg()[0], node: process.version, at: new Date().toISOString() }) + '\n');

interface Workload {
  readonly spaceId: string;
  readonly spaceOps: Op[];
  readonly treeId: string;
  /** The app tree's ops per local change: the root and buckets first, then one entry per edit. */
  readonly batches: Op[][];
}

function workload(edits: number): Workload {
  const peer = newPeerId();
  const spaceTree = Space.newSpaceTree(peer, 'bench');
  const spaceOps = spaceTree.allOps();
  spaceTree.dispose();
  const treeId = 'b'.repeat(32);
  const tree = AppTree.createNew(peer, treeId, { name: 'bench' });
  const batches: Op[][] = [tree.allOps()];
  tree.onDidChange((c) => batches.push(c.ops.slice()));
  const buckets: string[] = [];
  for (let b = 0; b < BUCKETS; b++) buckets.push(tree.addItem(treeId, { text: `bucket ${b}` }));
  for (let i = 0; i < edits; i++) tree.addItem(buckets[i % BUCKETS], { text: `edit ${i}`, done: false });
  tree.dispose();
  return { spaceId: spaceTree.id, spaceOps, treeId, batches };
}

function sizeOf(files: string[]): number {
  return files.reduce((n, f) => n + (fs.existsSync(f) ? fs.statSync(f).size : 0), 0);
}

async function fileBytes(w: Workload, edits: number): Promise<void> {
  const SQL = await initSqlJs();
  const ops = w.batches.flat();
  const v1 = v1SpaceFileBytes(SQL, { spaceId: w.spaceId, trees: [{ treeId: w.spaceId, ops: w.spaceOps }, { treeId: w.treeId, ops }] }).length;
  // With snapshots (the default) and without (as the files of builds before them).
  const save = async (name: string, snapshotTailOps?: number): Promise<{ saveMs: number; bytes: number }> => {
    const file = path.join(dir, `f${edits}-${name}.space`);
    const layer = await FileLayer.create(file, w.spaceId, { secretKey: KEY, watch: false, snapshotTailOps });
    const t0 = performance.now();
    await layer.saveOps(w.spaceId, w.spaceOps);
    await Promise.all(w.batches.map((b) => layer.saveOps(w.treeId, b)));
    await layer.close();
    return { saveMs: round(performance.now() - t0), bytes: fs.statSync(file).size };
  };
  const { saveMs, bytes } = await save('snapshots');
  const plain = await save('plain', Infinity);
  emit({
    bench: 'storage-file',
    edits,
    ops: ops.length,
    saveMs,
    bytes,
    kib: round(bytes / 1024),
    bytesPerEdit: round(bytes / edits, 1),
    withoutSnapshotsBytes: plain.bytes,
    withoutSnapshotsSaveMs: plain.saveMs,
    schema1Bytes: v1,
    schema1PerEdit: round(v1 / edits, 1),
    ratioToSchema1: round(bytes / v1, 3),
  });
}

function serverBytes(w: Workload, edits: number): void {
  const dataDir = path.join(dir, `s${edits}`);
  const store = ServerStore.open(dataDir, { secretKey: KEY });
  store.createSpace(w.spaceId, 'bench', w.spaceOps);
  const t0 = performance.now();
  // One transaction per 100 edits (the server's write queue groups a space's writes so).
  for (let i = 0; i < w.batches.length; i += 100) store.appendBatches(w.spaceId, w.batches.slice(i, i + 100).map((ops) => ({ treeId: w.treeId, ops })));
  const appendMs = round(performance.now() - t0);
  const t1 = performance.now();
  let caughtUp = 0;
  store.readBatches(w.spaceId, 0, Number.MAX_SAFE_INTEGER, (b) => (caughtUp += b.nOps) >= 0);
  const catchUpMs = round(performance.now() - t1);
  store.close();
  const bytes = sizeOf(['spaces.db', 'spaces.db-wal'].map((f) => path.join(dataDir, f)));
  emit({ bench: 'storage-server', edits, ops: w.batches.reduce((n, b) => n + b.length, 0), appendMs, catchUpMs, caughtUp, bytes, kib: round(bytes / 1024), bytesPerEdit: round(bytes / edits, 1) });
}

async function main(): Promise<void> {
  try {
    for (const edits of String(opt.edits).split(',').map(Number)) {
      const w = workload(edits);
      await fileBytes(w, edits);
      serverBytes(w, edits);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();
