/**
 * Replicas against counters and secret times near 2^53 (a hostile writer through an older server,
 * a hand-edited file): the bounded Lamport clock, inert far-future secret records, and the
 * server's admission bounds and op index (content of reused ids, peer bindings).
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { SecretRecord } from '../../src/persistence/contract';
import { MemoryLayer, MemoryStore } from '../helpers/memoryLayer';
import { Outbox } from '../../src/persistence/server/outbox';
import { checkCounters, checkSecretTimes, clockOfRanges } from '../../src/server/admission';
import { DB_FILE, SCHEMA_VERSION } from '../../src/server/store/database';
import { ServerStore } from '../../src/server/store/serverStore';
import { AppTree, TreeError } from '../../src/spaces/appTree';
import { OpRangeSet } from '../../src/spaces/opRanges';
import { validateOps, type Op } from '../../src/spaces/ops';
import { MAX_CLOCK_STEP, clockOfCounters, followCounter } from '../../src/crdt';
import { SECRET_LIMITS, secretWins } from '../../src/spaces/secrets';
import { Space } from '../../src/spaces/space';
import { SpaceManager } from '../../src/spaces/spaceManager';
import { rootOp, setOp } from '../conformance/opFixtures';
import { tempDir } from '../helpers/syncServer';
import { writeV2ServerDb } from '../helpers/v2ServerDb';

const TOP = Number.MAX_SAFE_INTEGER;
const TREE = 'a'.repeat(32);

/** The tree's ops made by `peerId`, in counter order (allOps lists moves, then properties). */
function ownOps(tree: AppTree, peerId: string): Op[] {
  return tree
    .allOps()
    .filter((o) => o.id.peerId === peerId)
    .sort((a, b) => a.id.counter - b.id.counter);
}

function newSpace(peerId = 'p1'): Space {
  const tree = Space.newSpaceTree(peerId, 'Team');
  return new Space(tree, peerId, () => Promise.reject(new Error('no loader in this test')));
}

describe('op integrity: a replica survives counters and times near 2^53', () => {
  const disposables: Array<{ dispose(): void }> = [];
  afterEach(() => disposables.splice(0).forEach((d) => d.dispose()));

  it('a merged op with counter 2^53-1 does not move the clock: local ops stay valid, unique and increasing', () => {
    const tree = AppTree.createNew('me', TREE);
    disposables.push(tree);
    const made: number[] = [];
    tree.onDidChange((c) => {
      if (c.origin === 'local') for (const op of c.ops) made.push(op.id.counter);
    });
    const item = tree.addItem(TREE, { n: 0 });
    tree.applyRemote([setOp(TOP, 'evil', item, 'n', 666)]);
    tree.setProps(item, { n: 1 });
    tree.setProps(item, { n: 2 });
    const mine = ownOps(tree, 'me');
    validateOps(mine, TREE, 'own ops');
    const counters = mine.map((o) => o.id.counter);
    assert.deepEqual(made, [...made].sort((a, b) => a - b), 'made in increasing order');
    assert.equal(new Set(counters).size, counters.length);
    assert.ok(counters[counters.length - 1] < 100, `own counters stay small: ${counters.join(',')}`);
    // The poisoned op keeps its place by id: it still wins last-writer-wins on its property.
    assert.equal(tree.getProp(item, 'n'), 666);
  });

  it('a tree loaded with such an op (a hand-edited file) starts its clock above its own ops and the sane ones', () => {
    const ops = [rootOp(TREE, 1, 'me'), setOp(2, 'me', TREE, 'k', 'a'), setOp(3, 'other', TREE, 'k', 'b'), setOp(TOP, 'evil', TREE, 'x', 1)];
    const tree = AppTree.fromOps('me', TREE, ops);
    disposables.push(tree);
    tree.setProps(TREE, { k: 'c' });
    const next = ownOps(tree, 'me').map((o) => o.id.counter);
    assert.deepEqual(next, [1, 2, 4]);
    assert.equal(tree.getProp(TREE, 'k'), 'c', 'the new op wins over every sane one');
  });

  it('the clock still follows counters within the step, so a later local op wins over what it has seen', () => {
    const tree = AppTree.createNew('me', TREE);
    disposables.push(tree);
    tree.applyRemote([setOp(500_000, 'other', TREE, 'k', 'theirs')]);
    tree.setProps(TREE, { k: 'mine' });
    assert.equal(tree.getProp(TREE, 'k'), 'mine');
    assert.equal(ownOps(tree, 'me').at(-1)?.id.counter, 500_001);
  });

  it('followCounter and clockOfCounters: a jump larger than the step is not followed, a walk in steps is', () => {
    assert.equal(followCounter(10, 11), 11);
    assert.equal(followCounter(10, 5), 10);
    assert.equal(followCounter(10, 10 + MAX_CLOCK_STEP), 10 + MAX_CLOCK_STEP);
    assert.equal(followCounter(10, 11 + MAX_CLOCK_STEP), 10);
    assert.equal(clockOfCounters([TOP, 3, 1, 2]), 3);
    assert.equal(clockOfCounters([1, 1 + MAX_CLOCK_STEP, 1 + 2 * MAX_CLOCK_STEP]), 1 + 2 * MAX_CLOCK_STEP);
  });

  it('a secret record dated 2^53-1 never wins; the owner sets and deletes the secret as before', () => {
    const space = newSpace('me');
    disposables.push(space);
    space.setSecret('api', 'v1');
    assert.deepEqual(space.applySecrets([{ key: 'api', value: 'pwned', time: TOP, peerId: 'evil' }]), []);
    assert.equal(space.getSecret('api'), 'v1');
    space.setSecret('api', 'v2');
    assert.equal(space.getSecret('api'), 'v2');
    assert.ok(space.deleteSecret('api'));
    assert.equal(space.getSecret('api'), undefined);
    for (const r of space.secretRecords()) assert.ok(Number.isSafeInteger(r.time) && r.time <= SECRET_LIMITS.maxTime);
  });

  it('a record far ahead but within the bound is beaten by the next write (its time plus one)', () => {
    const space = newSpace('me');
    disposables.push(space);
    const ahead = Date.now() + 10 * 365 * 86_400_000;
    space.applySecrets([{ key: 'api', value: 'future', time: ahead, peerId: 'zzz' }]);
    space.setSecret('api', 'now');
    assert.equal(space.getSecret('api'), 'now');
    assert.equal(space.secretRecords()[0].time, ahead + 1);
    // A record right at the bound leaves no room: the write says so instead of losing silently.
    space.applySecrets([{ key: 'edge', value: 'x', time: SECRET_LIMITS.maxTime, peerId: 'zzz' }]);
    assert.throws(() => space.setSecret('edge', 'y'), TreeError);
  });

  it('secretWins: an inert record loses to anything, even a tombstone, and beats nothing', () => {
    const inert: SecretRecord = { key: 'k', value: 'x', time: SECRET_LIMITS.maxTime + 1, peerId: 'a' };
    const old: SecretRecord = { key: 'k', value: null, time: 1, peerId: 'a' };
    assert.equal(secretWins(inert, undefined), false);
    assert.equal(secretWins(inert, old), false);
    assert.equal(secretWins(old, inert), true);
    assert.equal(secretWins({ ...old, time: SECRET_LIMITS.maxTime }, old), true);
  });

  it('a SpaceManager over a memory layer handed a poisoned op and secret directly keeps writing valid ops and overrides the secret', async () => {
    const store = new MemoryStore();
    const m1 = new SpaceManager();
    const s1 = await m1.create('Team', (id) => [new MemoryLayer(id, { store })]);
    const spaceId = s1.id;
    s1.setSecret('api', 'v1');
    await m1.dispose();
    store.addOps(spaceId, spaceId, [setOp(TOP, 'evil', spaceId, 'setting.poison', 'x')]);
    store.addSecrets(spaceId, [{ key: 'api', value: 'pwned', time: TOP, peerId: 'evil' }]);

    const m2 = new SpaceManager();
    const s2 = await m2.open(spaceId, [new MemoryLayer(spaceId, { store })]);
    assert.equal(s2.getSecret('api'), 'v1');
    s2.setSetting('after', 1);
    s2.setSecret('api', 'v2');
    await m2.flush(spaceId);
    await m2.dispose();
    const mine = store.ops(spaceId, spaceId).filter((o) => o.id.peerId === m2.peerId);
    assert.ok(mine.length > 0 && mine.every((o) => o.id.counter < 100), JSON.stringify(mine.map((o) => o.id)));
    assert.equal(store.secret(spaceId, 'api')?.value, 'v2');

    const m3 = new SpaceManager();
    const s3 = await m3.open(spaceId, [new MemoryLayer(spaceId, { store })]);
    assert.equal(s3.getSetting('after'), 1);
    assert.equal(s3.getSecret('api'), 'v2');
    await m3.dispose();
  });
});

describe('op integrity: the client outbox', () => {
  it('sends one peer id per batch, so a batch refused for a relayed peer holds back no other ops', () => {
    const box = new Outbox();
    box.add(TREE, [setOp(1, 'mine', TREE, 'k', 1), setOp(2, 'theirs', TREE, 'k', 2), setOp(3, 'mine', TREE, 'k', 3)]);
    const peers = new Set(['mine', 'theirs']);
    const first = box.take(1, 100, 1 << 20, peers);
    const second = box.take(2, 100, 1 << 20, peers);
    assert.deepEqual(first?.ops.map((o) => `${o.id.counter}@${o.id.peerId}`), ['1@mine', '3@mine']);
    assert.deepEqual(second?.ops.map((o) => `${o.id.counter}@${o.id.peerId}`), ['2@theirs']);
    assert.equal(box.take(3, 100, 1 << 20, peers), undefined);
  });
});

describe('op integrity: server admission bounds', () => {
  const gap = 1000;

  it('checkCounters: each new counter at most `gap` above the highest so far, in counter order', () => {
    const ops = (counters: number[]): Op[] => counters.map((c) => setOp(c, 'p', TREE, 'k', c));
    assert.deepEqual(checkCounters(10, ops([11, 12]), gap), { ok: true, clock: 12 });
    assert.deepEqual(checkCounters(10, ops([1010]), gap), { ok: true, clock: 1010 });
    // Out of order within the batch is fine: it is walked in counter order.
    assert.deepEqual(checkCounters(0, ops([1900, 1000, 2800]), gap), { ok: true, clock: 2800 });
    assert.deepEqual(checkCounters(0, ops([5, 3]), gap), { ok: true, clock: 5 });
    const far = checkCounters(10, ops([11, 1012]), gap);
    assert.equal(far.ok, false);
    assert.match(!far.ok ? far.message : '', /1012@p.*1001 above the tree's highest counter 11/);
    assert.equal(checkCounters(10, ops([TOP]), gap).ok, false);
  });

  it('clockOfRanges: a stored counter far beyond the others (an older server) is not followed', () => {
    const set = new OpRangeSet();
    set.addRange('a', 1, 50);
    set.addRange('b', 40, 900);
    set.add('c', 1800);
    set.add('evil', TOP);
    set.add('far', 1800 + MAX_CLOCK_STEP + 1);
    assert.equal(clockOfRanges(set), 1800);
    set.add('near', 1800 + MAX_CLOCK_STEP);
    assert.equal(clockOfRanges(set), 1800 + MAX_CLOCK_STEP + 1, 'followed in steps, like a replica');
    assert.equal(clockOfRanges(undefined), 0);
  });

  it('checkSecretTimes: at most the skew window ahead of the server clock; the past is fine', () => {
    const now = 1_700_000_000_000;
    const rec = (time: number): SecretRecord => ({ key: 'k', value: 'v', time, peerId: 'p' });
    assert.equal(checkSecretTimes([rec(0), rec(now), rec(now + 60_000)], now, 60_000), undefined);
    assert.match(checkSecretTimes([rec(now), rec(now + 60_001)], now, 60_000) ?? '', /secret k: .* ahead of the server's clock/);
    assert.ok(checkSecretTimes([rec(TOP)], now, 60_000));
  });
});

describe('op integrity: the server store', () => {
  let dir: string;
  let store: ServerStore | undefined;
  const spaceId = 'b'.repeat(32);
  beforeEach(() => {
    dir = tempDir('spaces-store-integrity-');
  });
  afterEach(() => {
    store?.close();
    store = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const open = (): ServerStore => (store = ServerStore.open(dir, { secretKey: Buffer.alloc(32, 1) }));

  it('refuses an op id stored with other content (whole batch, others in the call stay) and dedupes identical ones', () => {
    const s = open();
    s.createSpace(spaceId, 'S', [rootOp(spaceId, 1, 'srv')]);
    const [a, b] = s.appendBatches(spaceId, [
      { treeId: spaceId, ops: [setOp(2, 'p', spaceId, 'k', 'x')] },
      { treeId: spaceId, ops: [setOp(3, 'p', spaceId, 'k', 'y'), setOp(2, 'p', spaceId, 'k', 'other')] },
    ]);
    assert.equal(a.seq, 2);
    assert.equal(b.refused?.code, 'conflict');
    const [c] = s.appendBatches(spaceId, [{ treeId: spaceId, ops: [setOp(2, 'p', spaceId, 'k', 'x'), setOp(3, 'p', spaceId, 'k', 'y')] }]);
    assert.deepEqual(c.fresh.map((o) => o.id.counter), [3], 'the refused batch left nothing: 3 is new now');
  });

  it('binds a writer’s own peer id to its user; refuses another user; relays of unbound peers stay unbound', () => {
    const s = open();
    s.createSpace(spaceId, 'S', [rootOp(spaceId, 1, 'srv')]);
    const alice = { user: 'alice', ownPeer: 'pa', reservedPeers: new Set(['srv']) };
    const bob = { user: 'bob', ownPeer: 'pb', reservedPeers: new Set(['srv']) };
    const r1 = s.appendBatches(spaceId, [{ treeId: spaceId, ops: [setOp(2, 'pa', spaceId, 'k', 1), setOp(3, 'offline', spaceId, 'k', 2)], writer: alice }]);
    assert.equal(r1[0].fresh.length, 2);
    assert.equal(s.peerOwner(spaceId, 'pa'), 'alice');
    assert.equal(s.peerOwner(spaceId, 'offline'), undefined);
    const [r2] = s.appendBatches(spaceId, [{ treeId: spaceId, ops: [setOp(4, 'pb', spaceId, 'k', 3), setOp(5, 'pa', spaceId, 'k', 4)], writer: bob }]);
    assert.equal(r2.refused?.code, 'peer-forbidden');
    assert.equal(s.peerOwner(spaceId, 'pb'), undefined, 'the refused batch bound nothing');
    const [r3] = s.appendBatches(spaceId, [{ treeId: spaceId, ops: [setOp(6, 'srv', spaceId, 'k', 5)], writer: bob }]);
    assert.equal(r3.refused?.code, 'peer-forbidden');
    // A duplicate of another user's op is no write under its peer id: acked as before.
    const [r4] = s.appendBatches(spaceId, [{ treeId: spaceId, ops: [setOp(2, 'pa', spaceId, 'k', 1)], writer: bob }]);
    assert.equal(r4.refused, undefined);
    assert.equal(s.bindPeer(spaceId, 'pa', 'bob'), 'alice');
    assert.equal(s.bindPeer(spaceId, 'pc', 'carol'), 'carol');
  });

  it('a schema-2 database (JSON batches, per-op index) migrates to chunks: its ops stay, duplicates are acked, conflicts refused', () => {
    store = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
    writeV2ServerDb(dir, [{ id: spaceId, batches: [{ treeId: spaceId, ops: [rootOp(spaceId, 1, 'srv'), setOp(2, 'srv', spaceId, 'k', { a: 1 })] }] }]);
    const again = open();
    const version = new Database(path.join(dir, DB_FILE), { readonly: true });
    assert.equal(version.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    version.close();
    assert.equal(again.loadTreeOps(spaceId, spaceId).length, 2);
    const [dup, conflict] = again.appendBatches(spaceId, [
      { treeId: spaceId, ops: [setOp(2, 'srv', spaceId, 'k', { a: 1 })] },
      { treeId: spaceId, ops: [setOp(2, 'srv', spaceId, 'k', { a: 2 })] },
    ]);
    assert.equal(dup.refused, undefined);
    assert.equal(dup.seq, undefined);
    assert.equal(conflict.refused?.code, 'conflict');
  });
});
