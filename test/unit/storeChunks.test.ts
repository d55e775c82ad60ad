import * as assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import initSqlJs from 'sql.js';
import { chunksToMerge } from '../../src/codec/chunking';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import { DB_FILE } from '../../src/server/store/database';
import { ServerStore } from '../../src/server/store/serverStore';
import type { Op } from '../../src/spaces/ops';
import { rootOp, setOp } from '../conformance/opFixtures';
import { TEST_KEY, TempDir, canonical, makeOps } from '../helpers/fileFixtures';
import { tempDir } from '../helpers/syncServer';

const S = 'a'.repeat(32);
const T = 'c'.repeat(32);

describe('stored chunks of ops', () => {
  it('merge policy: runs of small chunks are merged, sealed ones never', () => {
    assert.equal(chunksToMerge([]), 0);
    assert.equal(chunksToMerge(Array(31).fill(4)), 0);
    assert.equal(chunksToMerge(Array(32).fill(4)), 32);
    assert.equal(chunksToMerge([128, ...Array(15).fill(128), 4]), 16);
    assert.equal(chunksToMerge([4, ...Array(20).fill(128)]), 0, 'the newest run is of level 0 and short');
    assert.equal(chunksToMerge(Array(40).fill(5000)), 0);
  });

  describe('server store', () => {
    let dir: string;
    let store: ServerStore | undefined;
    beforeEach(() => (dir = tempDir('spaces-store-chunks-')));
    afterEach(() => {
      store?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('2000 one-edit batches end in a few chunks; catch-up from any seq, dedupe, conflicts and state vectors still hold', () => {
      store = ServerStore.open(dir, { secretKey: Buffer.alloc(32, 1) });
      store.createSpace(S, 'S', [rootOp(S, 1, 'srv')]);
      const edits: Op[][] = [[rootOp(T, 1, 'p1')]];
      for (let i = 0; i < 2000; i++) edits.push(makeOps(T, i % 3 === 0 ? 'p2' : 'p1', 2 + 4 * i, 4));
      for (let i = 0; i < edits.length; i += 7) store.appendBatches(S, edits.slice(i, i + 7).map((ops) => ({ treeId: T, ops })));
      const db = new Database(path.join(dir, DB_FILE), { readonly: true });
      const chunks = db.prepare('SELECT count(*) FROM chunks').pluck().get() as number;
      db.close();
      assert.ok(chunks < 60, `${chunks} chunks`);
      const all = edits.flat();
      assert.deepEqual(canonical(store.loadTreeOps(S, T)), canonical(all));
      assert.equal(store.lastSeq(S), 1 + edits.length);
      for (const after of [0, 1, 2, 37, 500, 1999, 2001]) {
        const got = store.batchesAfter(S, after, 5);
        const want = [after + 1, after + 2, after + 3, after + 4, after + 5].filter((s) => s <= 1 + edits.length);
        assert.deepEqual(got.map((b) => b.seq), want, `after ${after}`);
        for (const b of got) if (b.seq > 1) assert.deepEqual(JSON.parse(b.opsJson), JSON.parse(JSON.stringify(edits[b.seq - 2].map((op) => ('parentId' in op ? [0, op.id.counter, op.id.peerId, op.targetId, op.parentId] : op.value === undefined ? [2, op.id.counter, op.id.peerId, op.targetId, op.key] : [1, op.id.counter, op.id.peerId, op.targetId, op.key, op.value])))));
      }
      const sv = store.stateVectors(S).get(T);
      for (const op of all) assert.ok(sv?.has(op.id.peerId, op.id.counter));
      // An op deep in a merged chunk: resent as is it is a duplicate; with other content a conflict.
      const old = edits[10][1];
      const [dup, conflict] = store.appendBatches(S, [
        { treeId: T, ops: [old] },
        { treeId: T, ops: [setOp(old.id.counter, old.id.peerId, T, 'other', 1)] },
      ]);
      assert.equal(dup.seq, undefined);
      assert.equal(dup.refused, undefined);
      assert.equal(conflict.refused?.code, 'conflict');
      assert.equal(store.opCount(S), 1 + all.length);
      let blobs = 0;
      store.readEncodedChunks(S, 1500, (c) => (blobs++, c.lastSeq > 1500));
      assert.ok(blobs >= 1);
    });
  });

  describe('file layer', () => {
    let tmp: TempDir;
    beforeEach(() => (tmp = new TempDir()));
    afterEach(() => tmp.cleanup());

    it('300 saves end in a few chunks and every op reads back after reopen', async function () {
      const file = tmp.file();
      const layer = await FileLayer.create(file, S, { secretKey: TEST_KEY, watch: false });
      const all: Op[] = [rootOp(S, 1, 'p1')];
      await layer.saveOps(S, all);
      for (let i = 0; i < 300; i++) {
        const ops = makeOps(S, 'p1', 2 + 4 * i, 4);
        for (const op of ops) all.push(op);
        await layer.saveOps(S, ops);
      }
      await layer.close();
      const SQL = await initSqlJs();
      const db = new SQL.Database(fs.readFileSync(file));
      const chunks = Number(db.exec('SELECT count(*) FROM chunks')[0].values[0][0]);
      db.close();
      assert.ok(chunks < 60, `${chunks} chunks`);
      const again = await FileLayer.open(file, { secretKey: TEST_KEY, watch: false });
      try {
        assert.deepEqual(canonical(await again.loadTree(S)), canonical(all));
      } finally {
        await again.close();
      }
    });
  });
});
