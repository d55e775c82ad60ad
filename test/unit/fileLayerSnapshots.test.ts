/**
 * Snapshots in the file layer (src/persistence/file/snapshotStore.ts): written in the background
 * once the ops after the last one pass `snapshotTailOps`, read with the ops after them when a
 * tree is opened, history kept; bad ones (truncated, damaged, newer, disagreeing with the ops)
 * are dropped and rebuilt from the ops with one log line, nothing lost; files without one (made
 * with snapshots off, or schema 1) open from their ops and get one later.
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import zlib from 'node:zlib';
import initSqlJs, { type SqlJsStatic } from 'sql.js';
import { RepTree, SNAPSHOT_VERSION, TreeSnapshot } from '../../src/crdt';
import { crc32 } from '../../src/crdt/snapshot';
import { FileLayer, type FileLayerOptions } from '../../src/persistence/file/fileLayer';
import { SNAPSHOT_MIN_TREE_FACTOR } from '../../src/persistence/file/snapshotStore';
import { AppTree } from '../../src/spaces/appTree';
import type { Op } from '../../src/spaces/ops';
import { SpaceManager } from '../../src/spaces/spaceManager';
import { TEST_KEY, TempDir, canonical, makeOps, newId, rootOp } from '../helpers/fileFixtures';
import { writeV1SpaceFile } from '../helpers/v1SpaceFile';

/** snapshotTailOps of these tests: a few saves make a snapshot due. */
const TAIL = 40;
const LOG_LINE = /the snapshot of tree [0-9a-f]{32} could not be used \(.+\); the tree was loaded from its ops and gets a new snapshot/;

function treeOps(treeId: string, n: number): Op[] {
  return [rootOp(treeId, 'p1'), ...makeOps(treeId, 'p1', 2, n)];
}

/** A file's snapshot row of a tree, inflated (undefined: none). */
function snapshotRow(SQL: SqlJsStatic, file: string, treeId: string): { chunk: number; newest: number; bytes: Uint8Array } | undefined {
  const db = new SQL.Database(fs.readFileSync(file));
  try {
    const r = db.exec('SELECT s.chunk, s.data, (SELECT max(c.id) FROM chunks c WHERE c.tree = s.tree) FROM snapshots s JOIN trees t ON t.id = s.tree WHERE t.tree = ?', [treeId])[0]?.values[0];
    if (!r) return undefined;
    return { chunk: Number(r[0]), bytes: zlib.inflateRawSync(r[1] as Uint8Array), newest: Number(r[2]) };
  } finally {
    db.close();
  }
}

/** Replaces a tree's stored snapshot (its raw `data` column) in the file, as another program would. */
function replaceSnapshotData(SQL: SqlJsStatic, file: string, treeId: string, data: Uint8Array): void {
  const db = new SQL.Database(fs.readFileSync(file));
  try {
    db.run('UPDATE snapshots SET data = ? WHERE tree = (SELECT id FROM trees WHERE tree = ?)', [data, treeId]);
    assert.equal(db.getRowsModified(), 1, 'the file has a snapshot to replace');
    fs.writeFileSync(`${file}.tmp`, db.export());
  } finally {
    db.close();
  }
  fs.renameSync(`${file}.tmp`, file);
}

const deflate = (b: Uint8Array): Uint8Array => zlib.deflateRawSync(b);

/** A snapshot with its body changed at `at` and the checksum made to match again. */
function resigned(bytes: Uint8Array, at: number): Uint8Array {
  const b = Uint8Array.from(bytes);
  b[at] ^= 0x5a;
  new DataView(b.buffer).setUint32(10, crc32(b.subarray(14)), true);
  return b;
}

describe('FileLayer snapshots', function () {
  let SQL: SqlJsStatic;
  let tmp: TempDir;
  let layers: FileLayer[];
  let logs: string[];
  const opts = (o: FileLayerOptions = {}): FileLayerOptions => ({ secretKey: TEST_KEY, snapshotTailOps: TAIL, watch: false, log: (line) => logs.push(line), ...o });
  const track = (l: FileLayer): FileLayer => {
    layers.push(l);
    return l;
  };
  const open = async (o?: FileLayerOptions): Promise<FileLayer> => track(await FileLayer.open(tmp.file(), opts(o)));
  const check = (): void => undefined;

  /** A file whose tree (id = the space id) holds `n` + 1 ops saved in batches of 50, with a snapshot of all but the last `tail`. */
  async function fileWithSnapshot(n = 200, tail = 10): Promise<{ treeId: string; ops: Op[] }> {
    const treeId = newId();
    const ops = treeOps(treeId, n);
    const layer = track(await FileLayer.create(tmp.file(), treeId, opts()));
    const head = ops.slice(0, ops.length - tail);
    for (let i = 0; i < head.length; i += 50) await layer.saveOps(treeId, head.slice(i, i + 50));
    await layer.close(); // waits for the snapshot built in the background
    const more = track(await FileLayer.open(tmp.file(), opts({ snapshotTailOps: Infinity })));
    await more.saveOps(treeId, ops.slice(ops.length - tail));
    await more.close();
    return { treeId, ops };
  }

  async function openTree(layer: FileLayer, treeId: string): Promise<AppTree> {
    return (await AppTree.fromTreeLoad('reader', treeId, await layer.loadTreeState(treeId), check)).tree;
  }

  function assertSameTree(tree: AppTree, ops: readonly Op[], what: string): void {
    const want = AppTree.fromOps('want', tree.id, ops);
    assert.deepEqual(tree.dump(), want.dump(), `${what}: tree`);
    assert.equal(tree.opCount + tree.tree.parkedCount, want.opCount + want.tree.parkedCount, `${what}: op count`);
    assert.deepEqual(tree.tree.getStateVector(), want.tree.getStateVector(), `${what}: state vector`);
    want.dispose();
  }

  before(async function () {
    SQL = await initSqlJs();
  });
  beforeEach(function () {
    tmp = new TempDir();
    layers = [];
    logs = [];
  });
  afterEach(async function () {
    await Promise.allSettled(layers.map((l) => l.close()));
    tmp.cleanup();
  });

  it('writes a snapshot in the background once the tail passes snapshotTailOps, and opens from it plus the ops after it', async function () {
    const { treeId, ops } = await fileWithSnapshot(200, 10);
    const row = snapshotRow(SQL, tmp.file(), treeId);
    assert.ok(row, 'a snapshot was written');
    assert.ok(row.chunk < row.newest, 'the last save came after the snapshot');
    const layer = await open();
    const load = await layer.loadTreeState(treeId);
    assert.ok(load.snapshot, 'the load offers the snapshot');
    assert.equal(load.snapshot.storedOps, ops.length);
    assert.equal(load.ops.length, 10, 'only the ops after the snapshot are read');
    const { tree, have } = await AppTree.fromTreeLoad('reader', treeId, load, check);
    assertSameTree(tree, ops, 'snapshot + tail');
    assert.deepEqual(have, tree.tree.getStateVector());
    // History stays in the file.
    assert.deepEqual(canonical(await layer.loadTree(treeId)), canonical(ops));
    assert.deepEqual(logs, []);
  });

  it('a layer with snapshotTailOps Infinity writes none; such a file opens from its ops and gets one from the next layer that writes them', async function () {
    const treeId = newId();
    const ops = treeOps(treeId, 200);
    const off = track(await FileLayer.create(tmp.file(), treeId, opts({ snapshotTailOps: Infinity })));
    for (let i = 0; i < ops.length; i += 50) await off.saveOps(treeId, ops.slice(i, i + 50));
    await off.close();
    assert.equal(snapshotRow(SQL, tmp.file(), treeId), undefined);
    const on = await open();
    const load = await on.loadTreeState(treeId);
    assert.equal(load.snapshot, undefined);
    assert.deepEqual(canonical(load.ops), canonical(ops));
    await on.close();
    const row = snapshotRow(SQL, tmp.file(), treeId);
    assert.ok(row, 'opening the tree wrote a snapshot');
    assert.equal(row.chunk, row.newest);
    assertSameTree(await openTree(await open(), treeId), ops, 'from the new snapshot');
  });

  it('a tree smaller than SNAPSHOT_MIN_TREE_FACTOR × snapshotTailOps gets none: it opens from its ops', async function () {
    const treeId = newId();
    const ops = treeOps(treeId, TAIL * SNAPSHOT_MIN_TREE_FACTOR - 10);
    const layer = track(await FileLayer.create(tmp.file(), treeId, opts()));
    for (let i = 0; i < ops.length; i += TAIL) await layer.saveOps(treeId, ops.slice(i, i + TAIL));
    await layer.close();
    assert.equal(snapshotRow(SQL, tmp.file(), treeId), undefined);
    const load = await (await open()).loadTreeState(treeId);
    assert.equal(load.snapshot, undefined);
    assert.deepEqual(canonical(load.ops), canonical(ops));
  });

  it('a schema-1 file migrates, opens from its ops and gets a snapshot later', async function () {
    const spaceId = newId();
    const ops = treeOps(spaceId, 200);
    writeV1SpaceFile(SQL, tmp.file(), { spaceId, trees: [{ treeId: spaceId, ops }] });
    const layer = await open();
    const load = await layer.loadTreeState(spaceId);
    assert.equal(load.snapshot, undefined);
    assert.deepEqual(canonical(load.ops), canonical(ops));
    await layer.close();
    assert.ok(snapshotRow(SQL, tmp.file(), spaceId), 'a snapshot was written after the migration');
    const again = await open();
    const state = await again.loadTreeState(spaceId);
    assert.ok(state.snapshot);
    assertSameTree((await AppTree.fromTreeLoad('reader', spaceId, state, check)).tree, ops, 'schema 1 → 2 → snapshot');
  });

  const BAD: ReadonlyArray<{ name: string; data: (good: Uint8Array, ops: readonly Op[], treeId: string) => Uint8Array; why: RegExp }> = [
    { name: 'truncated', data: (b) => deflate(b.subarray(0, b.length - 9)), why: /snapshot truncated/ },
    { name: 'from a newer version', data: (b) => deflate(Uint8Array.from(b, (x, i) => (i === 4 ? SNAPSHOT_VERSION + 1 : x))), why: /snapshot newer-version/ },
    { name: 'damaged (checksum)', data: (b) => deflate(Uint8Array.from(b, (x, i) => (i === b.length - 3 ? x ^ 1 : x))), why: /snapshot checksum/ },
    { name: 'not deflated', data: (b) => b, why: /snapshot corrupt: does not inflate/ },
    { name: 'whose body does not decode behind a valid checksum', data: (b) => deflate(resigned(b, 14)), why: /snapshot corrupt/ },
    {
      name: 'of another tree',
      data: () => {
        const other = AppTree.createNew('x', newId());
        const bytes = other.snapshot();
        other.dispose();
        return deflate(bytes);
      },
      why: /the snapshot is not one of tree/,
    },
    {
      name: 'disagreeing with its ops (a snapshot of fewer ops)',
      data: (_b, ops, treeId) => {
        const fewer = new RepTree('x', ops.slice(0, ops.length - 30));
        assert.equal(fewer.parentIdOf(treeId), null);
        const bytes = TreeSnapshot.encode(fewer);
        fewer.dispose();
        return deflate(bytes);
      },
      why: /it and the ops after it hold \d+ ops, the store \d+/,
    },
  ];

  for (const bad of BAD) {
    it(`a snapshot ${bad.name} is detected, the tree loads from its ops with one log line, and the snapshot is rebuilt`, async function () {
      const { treeId, ops } = await fileWithSnapshot(200, 10);
      const good = snapshotRow(SQL, tmp.file(), treeId);
      assert.ok(good);
      replaceSnapshotData(SQL, tmp.file(), treeId, bad.data(good.bytes, ops, treeId));
      const layer = await open();
      assertSameTree(await openTree(layer, treeId), ops, 'after the bad snapshot');
      assert.equal(logs.length, 1, `one log line: ${logs.join(' | ')}`);
      assert.match(logs[0], LOG_LINE);
      assert.match(logs[0], bad.why);
      assert.ok(logs[0].includes(tmp.file()), 'the line names the file');
      await layer.close();
      // Rebuilt from the ops: usable, covering every chunk; nothing lost.
      const row = snapshotRow(SQL, tmp.file(), treeId);
      assert.ok(row, 'a new snapshot was written');
      assert.equal(row.chunk, row.newest);
      logs = [];
      const again = await open();
      const load = await again.loadTreeState(treeId);
      assert.ok(load.snapshot);
      assertSameTree((await AppTree.fromTreeLoad('reader', treeId, load, check)).tree, ops, 'from the rebuilt snapshot');
      assert.deepEqual(canonical(await again.loadTree(treeId)), canonical(ops));
      assert.deepEqual(logs, []);
    });
  }

  it('a space opened through the SpaceManager reads its app tree from the snapshot, and recovers from a bad one', async function () {
    const file = tmp.file();
    const manager = new SpaceManager();
    const space = await manager.create('snap', async (id) => [track(await FileLayer.create(file, id, opts()))]);
    const notes = space.createAppTree('notes', 'Notes');
    const treeId = notes.id;
    for (let i = 0; i < 80; i++) notes.addItem(treeId, { text: `item ${i}` });
    const want = notes.dump();
    await manager.close(space.id);
    await manager.dispose();
    const row = snapshotRow(SQL, file, treeId);
    assert.ok(row, 'the app tree got a snapshot');

    const reopen = async (): Promise<{ m: SpaceManager; dump: unknown }> => {
      const m = new SpaceManager();
      const s = await m.open(space.id, [await open()]);
      return { m, dump: (await s.openAppTree(treeId)).dump() };
    };
    let r = await reopen();
    assert.deepEqual(r.dump, want);
    assert.deepEqual(logs, []);
    await r.m.dispose();

    // The space session decodes the snapshot; one that disagrees with the ops goes back to the file.
    const fewer = AppTree.fromSnapshot('x', treeId, row.bytes);
    const cut = new RepTree('x', fewer.allOps().slice(0, 60));
    fewer.dispose();
    replaceSnapshotData(SQL, file, treeId, deflate(TreeSnapshot.encode(cut)));
    cut.dispose();
    r = await reopen();
    assert.deepEqual(r.dump, want);
    assert.equal(logs.length, 1, logs.join(' | '));
    assert.match(logs[0], LOG_LINE);
    await r.m.dispose();
  });
});
