/**
 * The SyncStateStore rules (src/persistence/server/syncState.ts) for both stores — MemorySyncStateStore
 * and FileLayer — plus what only the file does: durability across reopen, and the merge of another
 * writer's outbox (union) and watermark (maximum).
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import initSqlJs from 'sql.js';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import { MemorySyncStateStore, type SyncStateStore } from '../../src/persistence/server/syncState';
import { opKey, type Op } from '../../src/spaces/ops';
import { faultyWorkerPath, injectFileFault } from '../helpers/fileFaults';
import { TEST_KEY, TempDir, makeOps, newId, rootOp } from '../helpers/fileFixtures';

const L1 = 'server:https://one.example';
const L2 = 'server:https://two.example';

function keys(ops: readonly Op[] | undefined): string[] {
  return (ops ?? []).map(opKey).sort();
}

interface StoreHarness {
  open(): Promise<{ store: SyncStateStore; spaceId: string }>;
  /** A new instance over the same storage (a restart). */
  reopen(): Promise<SyncStateStore>;
  close(): Promise<void>;
}

function describeStore(name: string, make: () => StoreHarness): void {
  describe(`SyncStateStore: ${name}`, function () {
    let h: StoreHarness;
    beforeEach(() => (h = make()));
    afterEach(() => h.close());

    it('starts at seq 0 with an empty outbox', async function () {
      const { store } = await h.open();
      const s = await store.loadSyncState(L1);
      assert.equal(s.seq, 0);
      assert.equal(s.outbox.size, 0);
    });

    it('keeps the outbox per layer and tree, removes acknowledged ops', async function () {
      const { store, spaceId } = await h.open();
      const app = newId();
      const a = [rootOp(spaceId, 'p1'), ...makeOps(spaceId, 'p1', 2, 20)];
      const b = makeOps(app, 'p2', 1, 10);
      await store.addToOutbox(L1, spaceId, a);
      await store.addToOutbox(L1, app, b);
      await store.addToOutbox(L2, app, b.slice(0, 3));
      await store.removeFromOutbox(L1, spaceId, a.slice(0, 5));
      await store.removeFromOutbox(L1, app, makeOps(app, 'zz', 1, 3)); // unknown ops: nothing happens
      const s1 = await store.loadSyncState(L1);
      assert.deepEqual(keys(s1.outbox.get(spaceId)), keys(a.slice(5)));
      assert.deepEqual(keys(s1.outbox.get(app)), keys(b));
      const s2 = await store.loadSyncState(L2);
      assert.deepEqual([...s2.outbox.keys()], [app]);
      assert.deepEqual(keys(s2.outbox.get(app)), keys(b.slice(0, 3)));
      const again = await h.reopen();
      assert.deepEqual(keys((await again.loadSyncState(L1)).outbox.get(spaceId)), keys(a.slice(5)), 'after reopen');
    });

    it('outbox ops come back whole (values included)', async function () {
      const { store, spaceId } = await h.open();
      const ops = makeOps(spaceId, 'p1', 1, 8);
      await store.addToOutbox(L1, spaceId, ops);
      const back = (await (await h.reopen()).loadSyncState(L1)).outbox.get(spaceId) ?? [];
      const byKey = new Map(back.map((o) => [opKey(o), o]));
      for (const op of ops) {
        const got = byKey.get(opKey(op));
        assert.ok(got, `missing ${opKey(op)}`);
        assert.deepEqual({ ...got, transient: undefined }, { ...op, transient: undefined });
      }
    });

    it('the watermark only grows, per layer', async function () {
      const { store, spaceId } = await h.open();
      await store.saveIncoming(L1, spaceId, makeOps(spaceId, 'p9', 1, 4), 5);
      await store.saveIncoming(L1, spaceId, [], 3);
      await store.saveIncoming(L2, spaceId, [], 2);
      assert.equal((await store.loadSyncState(L1)).seq, 5);
      assert.equal((await store.loadSyncState(L2)).seq, 2);
      await store.saveIncoming(L1, spaceId, [], 8);
      const again = await h.reopen();
      assert.equal((await again.loadSyncState(L1)).seq, 8, 'after reopen');
    });

    it('rejects invalid ops and stores nothing of them', async function () {
      const { store, spaceId } = await h.open();
      const bad = [...makeOps(spaceId, 'p1', 1, 2), { id: { counter: 0, peerId: 'p1' }, targetId: 'x', parentId: spaceId }] as Op[];
      await assert.rejects(store.addToOutbox(L1, spaceId, bad));
      await assert.rejects(store.saveIncoming(L1, spaceId, bad, 4));
      const s = await store.loadSyncState(L1);
      assert.equal(s.outbox.size, 0);
      assert.equal(s.seq, 0);
    });
  });
}

describeStore('MemorySyncStateStore', () => {
  const store = new MemorySyncStateStore();
  return {
    async open() {
      return { store, spaceId: newId() };
    },
    async reopen() {
      return store;
    },
    async close() {},
  };
});

describeStore('FileLayer', () => {
  const dir = new TempDir();
  const layers: FileLayer[] = [];
  let file = '';
  return {
    async open() {
      const spaceId = newId();
      file = dir.file();
      const l = await FileLayer.create(file, spaceId, { secretKey: TEST_KEY });
      layers.push(l);
      return { store: l, spaceId };
    },
    async reopen() {
      await Promise.all(layers.map((l) => l.close()));
      const l = await FileLayer.open(file, { secretKey: TEST_KEY });
      layers.push(l);
      return l;
    },
    async close() {
      await Promise.all(layers.map((l) => l.close()));
      dir.cleanup();
    },
  };
});

describe('FileLayer as SyncStateStore', function () {
  let dir: TempDir;
  const open: FileLayer[] = [];
  const track = (l: FileLayer): FileLayer => (open.push(l), l);
  beforeEach(() => (dir = new TempDir()));
  afterEach(async () => {
    await Promise.all(open.splice(0).map((l) => l.close()));
    dir.cleanup();
  });

  it('incoming ops and outbox ops are ops of the file (loadTree sees them)', async function () {
    const spaceId = newId();
    const l = track(await FileLayer.create(dir.file(), spaceId, { secretKey: TEST_KEY }));
    const incoming = [rootOp(spaceId, 'srv'), ...makeOps(spaceId, 'srv', 2, 10)];
    const mine = makeOps(spaceId, 'me', 1, 5);
    await l.saveIncoming(L1, spaceId, incoming, 3);
    await l.addToOutbox(L1, spaceId, mine);
    await l.removeFromOutbox(L1, spaceId, mine);
    await l.close();
    const again = track(await FileLayer.open(dir.file(), { secretKey: TEST_KEY }));
    assert.deepEqual(keys(await again.loadTree(spaceId)), keys([...incoming, ...mine]));
    const s = await again.loadSyncState(L1);
    assert.equal(s.seq, 3);
    assert.equal(s.outbox.size, 0);
  });

  it('the watermark and its ops are written by the same flush', async function () {
    const spaceId = newId();
    const l = track(await FileLayer.create(dir.file(), spaceId, { secretKey: TEST_KEY, debounceMs: 50 }));
    const flushes = l.stats.flushes;
    const ops = makeOps(spaceId, 'srv', 1, 100);
    await Promise.all([l.saveIncoming(L1, spaceId, ops.slice(0, 50), 1), l.saveIncoming(L1, spaceId, ops.slice(50), 2)]);
    assert.equal(l.stats.flushes - flushes, 1, 'both batches and both watermarks in one flush');
    const again = track(await FileLayer.open(dir.file(), { secretKey: TEST_KEY }));
    assert.equal((await again.loadSyncState(L1)).seq, 2);
    assert.equal((await again.loadTree(spaceId)).length, 100);
  });

  it("a merge of another writer's file: outbox union, watermark maximum", async function () {
    const spaceId = newId();
    const file = dir.file();
    const a = track(await FileLayer.create(file, spaceId, { secretKey: TEST_KEY }));
    const b = track(await FileLayer.open(file, { secretKey: TEST_KEY, watch: false }));
    const app = newId();
    const aOps = makeOps(spaceId, 'pa', 1, 10);
    const bOps = makeOps(app, 'pb', 1, 10);
    await a.saveIncoming(L1, spaceId, makeOps(spaceId, 'srv', 1, 4), 9);
    await a.addToOutbox(L1, spaceId, aOps);
    await a.saveIncoming(L2, spaceId, [], 4);
    // b has not seen a's writes: its flush merges them in.
    await b.saveIncoming(L1, spaceId, [], 7);
    await b.saveIncoming(L2, spaceId, [], 6);
    await b.addToOutbox(L1, app, bOps);
    await b.removeFromOutbox(L1, spaceId, aOps.slice(0, 2)); // b acknowledged two of a's ops
    await Promise.all([a.close(), b.close()]);
    const c = track(await FileLayer.open(file, { secretKey: TEST_KEY }));
    const s1 = await c.loadSyncState(L1);
    assert.equal(s1.seq, 9, 'the higher watermark wins');
    assert.deepEqual(keys(s1.outbox.get(spaceId)), keys(aOps.slice(2)));
    assert.deepEqual(keys(s1.outbox.get(app)), keys(bOps));
    assert.equal((await c.loadSyncState(L2)).seq, 6);
  });

  it('an entry another writer still lists comes back in a merge (union), to be dropped against the server later', async function () {
    const spaceId = newId();
    const file = dir.file();
    const a = track(await FileLayer.create(file, spaceId, { secretKey: TEST_KEY, watch: false }));
    const ops = makeOps(spaceId, 'pa', 1, 3);
    await a.addToOutbox(L1, spaceId, ops);
    fs.copyFileSync(file, `${file}.copy`);
    await a.removeFromOutbox(L1, spaceId, ops);
    assert.equal((await a.loadSyncState(L1)).outbox.size, 0);
    // Another writer's copy that still lists the ops replaces the file; a's next flush merges it.
    fs.renameSync(`${file}.copy`, file);
    await a.saveIncoming(L1, spaceId, [], 1);
    assert.equal((await a.loadSyncState(L1)).outbox.get(spaceId)?.length, 3);
  });

  it('a file without the sync tables (made by another tool) reads as empty and gets them on first use', async function () {
    const spaceId = newId();
    const file = dir.file();
    const l = await FileLayer.create(file, spaceId, { secretKey: TEST_KEY });
    await l.saveOps(spaceId, [rootOp(spaceId, 'p1')]);
    await l.close();
    const SQL = await initSqlJs();
    const db = new SQL.Database(fs.readFileSync(file));
    db.exec('DROP TABLE outbox; DROP TABLE watermarks;');
    fs.writeFileSync(file, db.export());
    db.close();
    const again = track(await FileLayer.open(file, { secretKey: TEST_KEY }));
    const s = await again.loadSyncState(L1);
    assert.equal(s.seq, 0);
    assert.equal(s.outbox.size, 0);
    await again.addToOutbox(L1, spaceId, makeOps(spaceId, 'p1', 2, 3));
    await again.saveIncoming(L1, spaceId, [], 2);
    await again.close();
    const third = track(await FileLayer.open(file, { secretKey: TEST_KEY }));
    assert.equal((await third.loadSyncState(L1)).seq, 2);
    assert.equal((await third.loadSyncState(L1)).outbox.get(spaceId)?.length, 3);
  });

  it('sync writes are refused after a failed load, like any write', async function () {
    const spaceId = newId();
    const l = track(await FileLayer.create(dir.file(), spaceId, { secretKey: TEST_KEY, workerPath: faultyWorkerPath }));
    await injectFileFault(l, 'fail-next-load');
    await assert.rejects(l.loadTree(spaceId));
    await assert.rejects(l.addToOutbox(L1, spaceId, makeOps(spaceId, 'p1', 1, 2)), /not writing/);
    await assert.rejects(l.saveIncoming(L1, spaceId, [], 3), /not writing/);
  });
});
