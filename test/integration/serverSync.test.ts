/** The team server's sync: fan-out with seq, resume, state vectors, idempotence, secrets, the merged copy. */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { ServerOpsMessage } from '../../src/protocol/messages';
import { newVertexId } from '../../src/spaces/appTree';
import { decodeOps } from '../../src/spaces/opCodec';
import { opKey, type Op } from '../../src/spaces/ops';
import { makeOps, moveOp, rootOp, secret, setOp } from '../conformance/opFixtures';
import { startTestServer, withStore, type TestServer } from '../helpers/syncServer';

const keysOf = (msgs: readonly ServerOpsMessage[]): string[] => msgs.flatMap((m) => decodeOps(m.ops, m.treeId, 'test').map(opKey)).sort();
const keys = (ops: readonly Op[]): string[] => ops.map(opKey).sort();

/** An app tree's first ops: its root and a few items. */
function appTreeOps(treeId: string, peer: string, first: number, count: number): Op[] {
  return [rootOp(treeId, first, peer), ...makeOps(treeId, peer, first + 1, count - 1)];
}

describe('team server: sync', function () {
  this.timeout(60_000);
  let t: TestServer;
  let spaceId: string;
  /** How many ops the server's creation of the space tree took. */
  let createOps: number;

  const countCreateOps = (): number => withStore(t.dir, (s) => s.opCount(spaceId));

  beforeEach(async () => {
    t = await startTestServer();
    spaceId = await t.createSpace('Team');
    createOps = countCreateOps();
  });
  afterEach(() => t.stop());

  it('ops from one client reach the other with the seq the sender was acked with', async () => {
    const writer = t.token('write');
    const a = await t.open(writer, ['pa']);
    const b = await t.open(writer, ['pb']);
    const first = await a.subscribe(spaceId);
    assert.equal(first.synced.seq, 1, 'the space tree was created as seq 1');
    assert.deepEqual(first.synced.role, 'write');
    await b.subscribe(spaceId);

    const tree = newVertexId();
    const ops = appTreeOps(tree, 'pa', 1, 50);
    const ack = await a.ack(a.sendOps(spaceId, tree, ops));
    assert.equal(ack.seq, 2);
    const got = await b.next('ops');
    assert.equal(got.seq, 2);
    assert.equal(got.treeId, tree);
    assert.deepEqual(keysOf([got]), keys(ops));

    // And back the other way; A never gets its own batch echoed.
    const bOps = makeOps(tree, 'pb', 1, 10);
    const ackB = await b.ack(b.sendOps(spaceId, tree, bOps));
    assert.equal(ackB.seq, 3);
    const back = await a.next('ops');
    assert.equal(back.seq, 3);
    assert.deepEqual(keysOf([back]), keys(bOps));
    assert.ok(!a.received.some((m) => m.type === 'ops' && m.seq === 2), 'the writer got its own batch back');
  });

  it('resume with since sends only later batches, and since past the end starts over', async () => {
    const writer = t.token('write');
    const a = await t.open(writer, ['pa']);
    await a.subscribe(spaceId);
    const tree = newVertexId();
    const batches = [appTreeOps(tree, 'pa', 1, 20), makeOps(tree, 'pa', 21, 20), makeOps(tree, 'pa', 41, 20), makeOps(tree, 'pa', 61, 20)];
    const seqs: number[] = [];
    for (const b of batches) seqs.push((await a.ack(a.sendOps(spaceId, tree, b))).seq);
    assert.deepEqual(seqs, [2, 3, 4, 5]);

    const reader = await t.open(t.token('read'), ['r1']);
    const later = await reader.subscribe(spaceId, 3);
    assert.equal(later.synced.seq, 5);
    assert.deepEqual(keysOf(later.ops), keys([...batches[2], ...batches[3]]));
    assert.ok(later.ops.every((m) => m.seq > 3));
    assert.equal(later.ops[later.ops.length - 1].seq, 5, 'the last frame carries the last seq');

    const upToDate = await (await t.open(t.token('read'), ['r2'])).subscribe(spaceId, 5);
    assert.equal(upToDate.ops.length, 0);
    assert.equal(upToDate.synced.seq, 5);

    const fromAnotherDb = await (await t.open(t.token('read'), ['r3'])).subscribe(spaceId, 99);
    assert.equal(fromAnotherDb.synced.seq, 5);
    assert.equal(keysOf(fromAnotherDb.ops).length, createOps + batches.flat().length, 'everything, from seq 1');
  });

  it('catch-up coalesces consecutive batches of a tree into few frames', async () => {
    const a = await t.open(t.token('write'), ['pa']);
    await a.subscribe(spaceId);
    const tree = newVertexId();
    let ref = 0;
    a.sendOps(spaceId, tree, [rootOp(tree, 1, 'pa')]);
    for (let i = 0; i < 200; i++) ref = a.sendOps(spaceId, tree, makeOps(tree, 'pa', 2 + i * 5, 5));
    const last = await a.ack(ref);
    assert.equal(last.seq, 202);
    const c = await t.open(t.token('read'), ['r1']);
    const { ops, synced } = await c.subscribe(spaceId);
    assert.equal(synced.seq, 202);
    assert.equal(keysOf(ops).length, 1001 + createOps);
    assert.ok(ops.length <= 3, `expected at most 3 frames (space tree, app tree), got ${ops.length}`);
    assert.equal(ops[ops.length - 1].seq, 202);
  });

  it('synced.trees holds the exact state vector of every tree', async () => {
    const a = await t.open(t.token('write'), ['pa', 'pb']);
    await a.subscribe(spaceId);
    const tree = newVertexId();
    const ops = [rootOp(tree, 1, 'pa'), ...makeOps(tree, 'pa', 2, 9), ...makeOps(tree, 'pa', 20, 5), ...makeOps(tree, 'pb', 7, 3)];
    await a.ack(a.sendOps(spaceId, tree, ops));
    await a.ack(a.sendOps(spaceId, spaceId, [setOp(100, 'pb', spaceId, 'setting.x', 1)]));
    const { synced } = await (await t.open(t.token('read'), ['r'])).subscribe(spaceId);
    assert.deepEqual(synced.trees[tree], { pa: [[1, 10], [20, 24]], pb: [[7, 9]] });
    const spaceTree = synced.trees[spaceId];
    assert.deepEqual(spaceTree.pb, [[100, 100]]);
    assert.equal(Object.keys(spaceTree).length, 2, 'the server peer and pb');
    assert.deepEqual(Object.keys(synced.trees).sort(), [spaceId, tree].sort());
  });

  it('duplicates are acked but not stored or fanned out twice; partial duplicates store only what is new', async () => {
    const writer = t.token('write');
    const a = await t.open(writer, ['pa']);
    const b = await t.open(writer, ['pb']);
    await a.subscribe(spaceId);
    await b.subscribe(spaceId);
    const tree = newVertexId();
    const ops = appTreeOps(tree, 'pa', 1, 100);
    assert.equal((await a.ack(a.sendOps(spaceId, tree, ops))).seq, 2);
    await b.next('ops');

    const again = await a.ack(a.sendOps(spaceId, tree, ops));
    assert.equal(again.seq, 2, 'a duplicate is acked with the current seq');
    const half = [...ops.slice(50), ...makeOps(tree, 'pa', 101, 10)];
    assert.equal((await a.ack(a.sendOps(spaceId, tree, half))).seq, 3);
    const fanned = await b.next('ops');
    assert.equal(fanned.seq, 3, 'the duplicate batch was not fanned out');
    assert.deepEqual(keysOf([fanned]), keys(makeOps(tree, 'pa', 101, 10)));
    // The same ops repeated inside one batch, from another client too.
    assert.equal((await b.ack(b.sendOps(spaceId, tree, [...makeOps(tree, 'pb', 1, 5), ...makeOps(tree, 'pb', 1, 5)]))).seq, 4);
    await t.server.close();
    withStore(t.dir, (s) => {
      assert.equal(s.opCount(spaceId), createOps + 110 + 5, 'ops stored once each');
      assert.equal(s.lastSeq(spaceId), 4);
      assert.deepEqual(
        s.batchesAfter(spaceId, 0, 100).map((x) => x.nOps),
        [createOps, 100, 10, 5],
      );
    });
  });

  it('a client may write without subscribing; subscribers still get the batch', async () => {
    const sub = await t.open(t.token('read'), ['r']);
    await sub.subscribe(spaceId);
    const w = await t.open(t.token('write'), ['pw']);
    const tree = newVertexId();
    const ack = await w.ack(w.sendOps(spaceId, tree, appTreeOps(tree, 'pw', 1, 5)));
    assert.equal(ack.seq, 2);
    assert.equal((await sub.next('ops')).seq, 2);
    const dup = await w.ack(w.sendOps(spaceId, tree, appTreeOps(tree, 'pw', 1, 5)));
    assert.equal(dup.seq, 2);
  });

  it('acks keep their place in the stream while a subscriber is catching up', async () => {
    // A small outgoing buffer makes the catch-up wait for the socket after every frame, so B's
    // writes are stored while B is still catching up.
    await t.stop();
    t = await startTestServer({ connectionLimits: { outHighWater: 2048, outLowWater: 512 }, rateLimits: { messageBurst: 1000 } });
    spaceId = await t.createSpace('Ordered');
    const a = await t.open(t.token('write'), ['pa']);
    await a.subscribe(spaceId);
    const tree = newVertexId();
    a.sendOps(spaceId, tree, [rootOp(tree, 1, 'pa')]);
    let last = 0;
    for (let i = 0; i < 300; i++) last = a.sendOps(spaceId, tree, makeOps(tree, 'pa', 2 + i * 20, 20));
    await a.ack(last);
    // B subscribes from 0 and writes at once: new ops, a duplicate, new ops.
    const b = await t.open(t.token('write'), ['pb', 'pa']);
    b.send({ type: 'subscribe', spaceId, since: 0 });
    const refs = [b.sendOps(spaceId, tree, makeOps(tree, 'pb', 1, 3)), b.sendOps(spaceId, tree, makeOps(tree, 'pa', 2, 3)), b.sendOps(spaceId, tree, makeOps(tree, 'pb', 4, 3))];
    await b.next('synced');
    const kinds = b.received.map((m) => m.type);
    assert.ok(kinds.indexOf('ack') < kinds.indexOf('synced'), 'the acks were sent during the catch-up, in place');
    assert.ok(kinds.indexOf('ack') > kinds.indexOf('ops'), 'after the catch-up had started');
    let high = 0;
    for (const m of b.received) {
      if (m.type === 'ops' || m.type === 'ack' || m.type === 'synced') {
        assert.ok(m.seq >= high, `seq went back from ${high} to ${m.seq} (${m.type})`);
        high = m.seq;
      }
    }
    const acks = b.received.flatMap((m) => (m.type === 'ack' ? [[m.ref, m.seq]] : []));
    assert.deepEqual(
      acks,
      [
        [refs[0], 303],
        [refs[1], 303],
        [refs[2], 304],
      ],
      'acks in the order of the batches; the duplicate acked at its place',
    );
    assert.equal(high, 304);
    assert.ok(!b.received.some((m) => m.type === 'ops' && m.seq > 302), 'B got its own batches back');
  });

  it('secrets are merged (last writer wins), broadcast, sent after synced, and encrypted at rest', async () => {
    const writer = t.token('write');
    const a = await t.open(writer, ['pa']);
    const b = await t.open(writer, ['pb']);
    await a.subscribe(spaceId);
    await b.subscribe(spaceId);
    const value = 'sk-live-0123456789abcdef-very-secret';
    await a.ack(a.sendSecrets(spaceId, [secret('api-key', value, 2000, 'pa'), secret('old', 'x', 1000, 'pa')]));
    const got = await b.next('secrets');
    assert.deepEqual(
      got.records.map((r) => r.key).sort(),
      ['api-key', 'old'],
    );
    // An older record loses: acked, not broadcast, not stored.
    await b.ack(b.sendSecrets(spaceId, [secret('api-key', 'stale', 1500, 'pb')]));
    await b.ack(b.sendSecrets(spaceId, [secret('old', null, 3000, 'pb')]));
    const tomb = await a.next('secrets');
    assert.deepEqual(tomb.records, [secret('old', null, 3000, 'pb')]);
    assert.ok(!a.received.some((m) => m.type === 'secrets' && m.records.some((r) => r.value === 'stale')));

    const late = await t.open(t.token('read'), ['r']);
    const { synced } = await late.subscribe(spaceId);
    assert.equal(synced.seq, 1, 'secrets take no seq');
    const all = await late.next('secrets');
    assert.deepEqual(
      [...all.records].sort((x, y) => x.key.localeCompare(y.key)),
      [secret('api-key', value, 2000, 'pa'), secret('old', null, 3000, 'pb')],
    );
    await t.server.close();
    for (const f of fs.readdirSync(t.dir)) {
      assert.ok(!fs.readFileSync(path.join(t.dir, f)).includes(value), `${f} holds the secret in the clear`);
    }
  });

  it('the server builds the space tree only: app trees are stored and served from storage, a rename shows in GET /v1/spaces', async () => {
    const a = await t.open(t.token('write'), ['pa']);
    await a.subscribe(spaceId);
    const listing = (tree: string, c: number): Op[] => [moveOp(c, 'pa', tree, spaceId), setOp(c + 1, 'pa', tree, 'appId', 'notes'), setOp(c + 2, 'pa', tree, 'name', 'Plans')];
    const tree = newVertexId();
    const ops = appTreeOps(tree, 'pa', 20, 200);
    await a.ack(a.sendOps(spaceId, tree, ops));
    await a.ack(a.sendOps(spaceId, spaceId, listing(tree, 300)));
    // One merged tree: the space tree. The app tree the space lists is not built.
    assert.equal(t.server.builtTrees(), 1);
    // A joiner gets every op of it, from storage.
    const b = await t.open(t.token('read'), ['pb']);
    const { ops: frames } = await b.subscribe(spaceId);
    const got = frames.filter((f) => f.treeId === tree).flatMap((f) => decodeOps(f.ops, tree, 'test'));
    assert.deepEqual(new Set(got.map(opKey)), new Set(ops.map(opKey)));
    assert.equal(t.server.builtTrees(), 1);

    await a.ack(a.sendOps(spaceId, spaceId, [setOp(400, 'pa', spaceId, 'name', 'Renamed')]));
    const res = await fetch(`${t.server.url}/v1/spaces`, { headers: { Authorization: `Bearer ${t.admin}` } });
    const body = (await res.json()) as { spaces: Array<{ id: string; name: string }> };
    assert.deepEqual(body.spaces.find((s) => s.id === spaceId)?.name, 'Renamed');
  });

  it('an idle space is unloaded and loads again on the next subscribe', async () => {
    await t.stop();
    t = await startTestServer({ idleUnloadMs: 50 });
    spaceId = await t.createSpace('Idle');
    createOps = countCreateOps();
    const a = await t.open(t.token('write'), ['pa']);
    const loaded = new Promise<string>((resolve) => t.server.onDidLoadSpace(resolve));
    await a.subscribe(spaceId);
    assert.equal(await loaded, spaceId);
    const tree = newVertexId();
    await a.ack(a.sendOps(spaceId, tree, appTreeOps(tree, 'pa', 1, 30)));
    const unloaded = new Promise<string>((resolve) => t.server.onDidUnloadSpace(resolve));
    a.send({ type: 'unsubscribe', spaceId });
    assert.equal(await unloaded, spaceId);
    assert.equal(t.server.loadedSpaces(), 0);
    const { ops, synced } = await a.subscribe(spaceId);
    assert.equal(synced.seq, 2);
    assert.equal(keysOf(ops).length, createOps + 30);
    assert.deepEqual(synced.trees[tree], { pa: [[1, 30]] });
  });
});

describe('team server: a subscriber that stops reading', function () {
  this.timeout(60_000);

  it('is caught up from the store once it reads again: every batch, in order, nothing twice', async () => {
    const t = await startTestServer({ rateLimits: { opsPerSecond: 10_000_000, opsBurst: 10_000_000, bytesPerSecond: 1e9, bytesBurst: 1e9 } });
    try {
      const spaceId = await t.createSpace('Slow');
      const writer = await t.open(t.token('write'), ['pw']);
      const slow = await t.open(t.token('read'), ['ps']);
      await writer.subscribe(spaceId);
      await slow.subscribe(spaceId);
      slow.ws.pause(); // stops reading its socket: the server's sends pile up, then it falls behind
      const tree = newVertexId();
      const batches = 150;
      let last = writer.sendOps(spaceId, tree, [rootOp(tree, 1, 'pw')]);
      for (let i = 0; i < batches; i++) last = writer.sendOps(spaceId, tree, makeOps(tree, 'pw', 2 + i * 2000, 2000));
      const lastAck = await writer.ack(last);
      assert.ok(t.server.metrics.subscribersBehind >= 1, 'the slow subscriber never fell behind (test too small?)');
      slow.ws.resume();
      const seen = new Set<string>();
      let high = 0;
      while (high < lastAck.seq) {
        const m = await slow.next('ops');
        assert.ok(m.seq > high, `seq ${m.seq} after ${high}`);
        high = m.seq;
        for (const k of keysOf([m])) {
          assert.ok(!seen.has(k), `op ${k} sent twice`);
          seen.add(k);
        }
      }
      assert.equal(seen.size, 1 + batches * 2000);
    } finally {
      await t.stop();
    }
  });
});
