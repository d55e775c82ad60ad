/**
 * The server store conformance suite: what every SpaceStore (SQLite, PostgreSQL) must do, run by
 * serverStoreSqlite.test.ts and serverStorePostgres.test.ts against the real databases.
 *
 * `open()` gives a store over a fresh, empty database for the test; `openAgain()` another handle
 * on that same database (a second server process), for the concurrent-writer cases.
 */
import * as assert from 'node:assert/strict';
import { SpaceExistsError } from '../../src/server/store/serverStore';
import type { SpaceStore } from '../../src/server/store/spaceStore';
import { TokenError } from '../../src/server/store/tokenStore';
import type { Op } from '../../src/spaces/ops';
import { assertSameOps, makeOps, newTreeId, rootOp, secret, setOp } from './opFixtures';

export interface StoreFactory {
  /** A store over a fresh database. */
  open(): Promise<SpaceStore>;
  /** Another handle on the database of the last `open()`. */
  openAgain(): Promise<SpaceStore>;
}

/** Writers appending at once in the concurrency case, and batches each. */
const WRITERS = 4;
const BATCHES_PER_WRITER = 25;

function spaceId(): string {
  return newTreeId('space');
}

export function storeConformance(name: string, factory: () => StoreFactory): void {
  describe(`server store conformance: ${name}`, function () {
    this.timeout(120_000);
    let f: StoreFactory;
    const open: SpaceStore[] = [];
    let store: SpaceStore;

    beforeEach(async () => {
      f = factory();
      store = await f.open();
      open.push(store);
    });
    afterEach(async () => {
      for (const s of open.splice(0)) await s.close();
    });

    async function again(): Promise<SpaceStore> {
      const s = await f.openAgain();
      open.push(s);
      return s;
    }

    async function newSpace(): Promise<string> {
      const id = spaceId();
      await store.createSpace(id, 'Team', [rootOp(id, 1, 'srv')], 1000);
      return id;
    }

    it('creates a space with its tree ops at seq 1, lists it, and refuses the id twice', async () => {
      const id = spaceId();
      const info = await store.createSpace(id, 'Team', [rootOp(id, 1, 'srv')], 1234);
      assert.deepEqual(info, { id, name: 'Team', created: 1234, lastSeq: 1 });
      assert.deepEqual(await store.getSpace(id), info);
      assert.equal(await store.getSpace(spaceId()), undefined);
      assert.deepEqual((await store.listSpaces()).map((s) => s.id), [id]);
      await assert.rejects(store.createSpace(id, 'Other', [rootOp(id, 1, 'srv')]), SpaceExistsError);
      await store.setSpaceName(id, 'Renamed');
      assert.equal((await store.getSpace(id))?.name, 'Renamed');
      assert.equal(await store.lastSeq(id), 1);
    });

    it('gives each batch with new ops the next seq, drops stored ops and duplicates, and reads them back in order', async () => {
      const id = await newSpace();
      const tree = newTreeId();
      const a = makeOps(tree, 'pa', 1, 10);
      const b = makeOps(tree, 'pa', 11, 5);
      const r = await store.appendBatches(id, [{ treeId: tree, ops: a }, { treeId: tree, ops: a }, { treeId: tree, ops: [...b, ...b] }, { treeId: tree, ops: [] }]);
      assert.deepEqual(
        r.map((x) => x.seq),
        [2, undefined, 3, undefined],
      );
      assert.equal(r[2].fresh.length, 5);
      assert.deepEqual(JSON.parse(r[0].opsJson as string).length, 10);
      // Partly stored: only the new ops get a seq.
      const c = makeOps(tree, 'pa', 16, 3);
      const r2 = await store.appendBatches(id, [{ treeId: tree, ops: [...b, ...c] }]);
      assert.equal(r2[0].seq, 4);
      assert.equal(r2[0].fresh.length, 3);
      assert.equal(await store.lastSeq(id), 4);
      const batches = await store.batchesAfter(id, 1, 100);
      assert.deepEqual(
        batches.map((x) => [x.seq, x.treeId, x.nOps]),
        [
          [2, tree, 10],
          [3, tree, 5],
          [4, tree, 3],
        ],
      );
      assert.deepEqual((await store.batchesAfter(id, 2, 1)).map((x) => x.seq), [3]);
      const seen: number[] = [];
      assert.equal(await store.readBatches(id, 0, 100, (x) => seen.push(x.seq) < 2), 2);
      assert.deepEqual(seen, [1, 2]);
      assertSameOps(await store.loadTreeOps(id, tree), [...a, ...b, ...c], tree);
      assert.deepEqual(await store.listTrees(id), [id, tree]);
      assert.equal(await store.opCount(id), 19);
      const sv = await store.stateVectors(id);
      assert.deepEqual(sv.get(tree)?.toRanges(), { pa: [[1, 18]] });
      assert.deepEqual(sv.get(id)?.toRanges(), { srv: [[1, 1]] });
    });

    it('state vectors keep gaps between counter runs', async () => {
      const id = await newSpace();
      const tree = newTreeId();
      await store.appendBatches(id, [{ treeId: tree, ops: [rootOp(tree, 1, 'p'), setOp(2, 'p', tree, 'k', 1), setOp(5, 'p', tree, 'k', 2), setOp(9, 'q', tree, 'k', 3)] }]);
      assert.deepEqual((await store.stateVectors(id)).get(tree)?.toRanges(), {
        p: [
          [1, 2],
          [5, 5],
        ],
        q: [[9, 9]],
      });
    });

    it('refuses a batch that reuses a stored op id with other content, keeping the other batches of the call', async () => {
      const id = await newSpace();
      const tree = newTreeId();
      await store.appendBatches(id, [{ treeId: tree, ops: [rootOp(tree, 1, 'p'), setOp(2, 'p', tree, 'k', 'one')] }]);
      const r = await store.appendBatches(id, [
        { treeId: tree, ops: [setOp(2, 'p', tree, 'k', 'other'), setOp(3, 'p', tree, 'k', 'x')] },
        { treeId: tree, ops: [setOp(4, 'p', tree, 'k', 'y')] },
        { treeId: tree, ops: [setOp(5, 'p', tree, 'k', 'a'), setOp(5, 'p', tree, 'k', 'b')] },
      ]);
      assert.equal(r[0].refused?.code, 'conflict');
      assert.equal(r[0].seq, undefined);
      assert.equal(r[1].seq, 3);
      assert.equal(r[2].refused?.code, 'conflict');
      const ops = await store.loadTreeOps(id, tree);
      assert.deepEqual(
        ops.map((o) => o.id.counter).sort((x, y) => x - y),
        [1, 2, 4],
      );
      assert.equal(await store.lastSeq(id), 3);
    });

    it('binds a writer’s own peer id to its user and refuses other users and the server’s own peer id', async () => {
      const id = await newSpace();
      const tree = newTreeId();
      const alice = { user: 'alice', ownPeer: 'pa', reservedPeers: new Set(['srv']) };
      const r1 = await store.appendBatches(id, [{ treeId: tree, ops: [rootOp(tree, 1, 'pa')], writer: alice }]);
      assert.equal(r1[0].seq, 2);
      assert.equal(await store.peerOwner(id, 'pa'), 'alice');
      const bob = { user: 'bob', ownPeer: 'pb', reservedPeers: new Set(['srv']) };
      const r2 = await store.appendBatches(id, [
        { treeId: tree, ops: [setOp(2, 'pa', tree, 'k', 'x')], writer: bob },
        { treeId: tree, ops: [setOp(3, 'srv', tree, 'k', 'x')], writer: bob },
        { treeId: tree, ops: [setOp(4, 'pz', tree, 'k', 'x')], writer: bob },
      ]);
      assert.equal(r2[0].refused?.code, 'peer-forbidden');
      assert.equal(r2[1].refused?.code, 'peer-forbidden');
      // A peer id that is neither the writer's nor bound stays unbound (relayed ops).
      assert.equal(r2[2].seq, 3);
      assert.equal(await store.peerOwner(id, 'pz'), undefined);
      assert.equal(await store.bindPeer(id, 'pb', 'bob'), 'bob');
      assert.equal(await store.bindPeer(id, 'pb', 'carol'), 'bob');
      assert.equal(await store.bindPeer(id, 'pa', 'bob'), 'alice');
    });

    it('merges secrets last-writer-wins, encrypted, and returns the records that won', async () => {
      const id = await newSpace();
      const won = await store.mergeSecrets(id, [secret('API', 'v1', 10, 'pa'), secret('DB', 'd1', 10, 'pa')]);
      assert.deepEqual(won.map((r) => r.key).sort(), ['API', 'DB']);
      const later = await store.mergeSecrets(id, [secret('API', 'old', 5, 'pb'), secret('API', 'v2', 20, 'pb'), secret('DB', null, 30, 'pb')]);
      assert.deepEqual(later.map((r) => [r.key, r.value]).sort(), [
        ['API', 'v2'],
        ['DB', null],
      ]);
      const all = await store.loadSecrets(id);
      assert.deepEqual(
        all.map((r) => [r.key, r.value, r.time, r.peerId]),
        [
          ['API', 'v2', 20, 'pb'],
          ['DB', null, 30, 'pb'],
        ],
      );
      assert.deepEqual(await store.mergeSecrets(id, []), []);
    });

    it('creates, verifies, lists, re-roles and revokes tokens, and moves the change stamp for another handle', async () => {
      const other = await again();
      const stamp0 = await other.tokens.changeStamp();
      const { token, info } = await store.tokens.create({ user: 'alice', space: '*', role: 'write' }, 5000);
      assert.ok(token.startsWith('spt_'));
      assert.notEqual(await other.tokens.changeStamp(), stamp0);
      const v = await other.tokens.verify(token, 6000);
      assert.ok(v.ok && v.token.id === info.id && v.token.user === 'alice' && v.token.role === 'write');
      assert.deepEqual(await other.tokens.verify('spt_nope'), { ok: false, reason: 'unknown' });
      assert.deepEqual(await other.tokens.verify('not a token'), { ok: false, reason: 'unknown' });
      assert.deepEqual((await other.tokens.list()).map((t) => t.id), [info.id]);
      const stamp1 = await other.tokens.changeStamp();
      assert.equal(await store.tokens.setRole(info.id, 'read'), true);
      assert.notEqual(await other.tokens.changeStamp(), stamp1);
      assert.equal((await other.tokens.get(info.id))?.role, 'read');
      assert.equal(await store.tokens.setRole('nosuch', 'read'), false);
      assert.equal(await store.tokens.revoke(info.id, 7000), true);
      assert.equal(await store.tokens.revoke(info.id, 8000), true);
      assert.equal((await other.tokens.get(info.id))?.revoked, 7000);
      assert.deepEqual(await other.tokens.verify(token), { ok: false, reason: 'revoked' });
      assert.equal(await store.tokens.revoke('nosuch'), false);
      const exp = await store.tokens.create({ user: 'bob', space: '*', role: 'read', expiresDays: 1 }, 0);
      assert.deepEqual(await store.tokens.verify(exp.token, 2 * 86_400_000), { ok: false, reason: 'expired' });
      await assert.rejects(store.tokens.create({ user: '', space: '*', role: 'read' }), TokenError);
      await assert.rejects(store.tokens.create({ user: 'x', space: 'nothex', role: 'read' }), TokenError);
    });

    it(`keeps seqs gap-free and every batch once with ${WRITERS} handles appending to one space at the same time`, async () => {
      const id = await newSpace();
      const tree = newTreeId();
      const handles = [store];
      for (let i = 1; i < WRITERS; i++) handles.push(await again());
      const seqs: number[] = [];
      const sent: Op[] = [];
      await Promise.all(
        handles.map(async (h, w) => {
          for (let i = 0; i < BATCHES_PER_WRITER; i++) {
            const ops = makeOps(tree, `w${w}`, i * 3 + 1, 3);
            // The same batch twice, as a client resending after a lost ack might: stored once.
            const r = await h.appendBatches(id, [{ treeId: tree, ops }, { treeId: tree, ops }]);
            assert.equal(r[1].seq, undefined);
            seqs.push(r[0].seq as number);
            for (const op of ops) sent.push(op);
          }
        }),
      );
      seqs.sort((a, b) => a - b);
      assert.deepEqual(
        seqs,
        Array.from({ length: WRITERS * BATCHES_PER_WRITER }, (_, i) => i + 2),
      );
      const stored = await store.batchesAfter(id, 1, 10_000);
      assert.deepEqual(
        stored.map((b) => b.seq),
        seqs,
      );
      assertSameOps(await store.loadTreeOps(id, tree), sent, tree);
      assert.equal(await store.lastSeq(id), WRITERS * BATCHES_PER_WRITER + 1);
    });

    it('a write to a space that does not exist fails and creates nothing', async () => {
      const id = spaceId();
      await assert.rejects(store.appendBatches(id, [{ treeId: id, ops: [rootOp(id, 1, 'p')] }]));
      assert.equal(await store.getSpace(id), undefined);
      assert.deepEqual(await store.batchesAfter(id, 0, 10), []);
      assert.equal(await store.lastSeq(id), 0);
      assert.deepEqual(await store.loadSecrets(id), []);
      await store.ensureSpace(id);
      assert.equal((await store.getSpace(id))?.lastSeq, 0);
    });

    it('reports itself healthy and refuses use after close', async () => {
      const h = await store.health();
      assert.equal(h.ok, true);
      assert.equal(h.kind, store.kind);
      await store.close();
      await assert.rejects(store.getSpace(spaceId()));
      await store.close(); // idempotent
    });
  });
}
