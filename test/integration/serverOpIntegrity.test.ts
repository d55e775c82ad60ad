/**
 * A hostile writer against the team server and its clients: an op with counter 2^53-1, a secret
 * dated 2^53-1, an op under another user's peer id, an op id reused with other content. The
 * attacker is a raw protocol client; the victims and other writers are real SpaceManagers with a
 * FileLayer and a ServerLayer.
 */
import Database from 'better-sqlite3';
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { SecretRecord } from '../../src/persistence/contract';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import { ServerLayer } from '../../src/persistence/server/serverLayer';
import { encryptSecret } from '../../src/persistence/file/secretCrypto';
import type { ErrorMessage } from '../../src/protocol/messages';
import { DB_FILE } from '../../src/server/store/database';
import { loadOrCreateServerKey } from '../../src/server/store/serverKey';
import { decodeOps } from '../../src/spaces/opCodec';
import { isPropertyOp, opKey, type Op } from '../../src/spaces/ops';
import type { Space } from '../../src/spaces/space';
import { MAX_CLOCK_STEP } from '../../src/crdt';
import { SpaceManager } from '../../src/spaces/spaceManager';
import { newTreeId, rootOp, setOp } from '../conformance/opFixtures';
import { CLIENT_SECRET_KEY, CLIENT_TIMINGS, SyncClient, converge, waitForState } from '../helpers/syncClients';
import { TestClient, makeToken, spawnServer, startTestServer, tempDir, withStore, type TestServer } from '../helpers/syncServer';

const TOP = Number.MAX_SAFE_INTEGER;
/** Far below 2^53: a replica's own counters after the attack stay in the range of honest use. */
const SANE = 2 ** 40;

/** Resolves once `cond()` holds, checked on every change of the space; fails after `ms`. */
function until(space: Space, cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  if (cond()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (e?: Error): void => {
      clearTimeout(timer);
      d1.dispose();
      d2.dispose();
      if (e) reject(e);
      else resolve();
    };
    const check = (): void => {
      if (cond()) done();
    };
    const timer = setTimeout(() => done(new Error(`not within ${ms} ms: ${what}`)), ms);
    const d1 = space.onDidChange(check);
    const d2 = space.onDidChangeSecrets(check);
  });
}

/** Writes a secret row straight into the server's database, as an older server stored anything. */
function plantSecret(dataDir: string, spaceId: string, r: SecretRecord): void {
  const row = encryptSecret(loadOrCreateServerKey(dataDir).key, spaceId, r);
  const db = new Database(path.join(dataDir, DB_FILE));
  try {
    const sid = db.prepare('SELECT sid FROM spaces WHERE id = ?').pluck().get(spaceId);
    db.prepare('INSERT OR REPLACE INTO secrets (sid, key, time, peer, iv, data) VALUES (?, ?, ?, ?, ?, ?)').run(sid, r.key, r.time, r.peerId, row.iv, row.data);
  } finally {
    db.close();
  }
}

function storedSpaceOps(t: TestServer, spaceId: string): Op[] {
  return withStore(t.dir, (s) => s.loadTreeOps(spaceId, spaceId));
}

function assertRefused(r: { type: string }, code: string): void {
  assert.equal(r.type, 'error', `expected error ${code}, got ${JSON.stringify(r)}`);
  assert.equal((r as ErrorMessage).code, code, JSON.stringify(r));
}

describe('team server: counters, secret times and peer ids from a hostile writer', function () {
  this.timeout(90_000);
  let t: TestServer;
  let spaceId: string;
  let dir: string;
  let clients: SyncClient[];

  beforeEach(async () => {
    t = await startTestServer();
    spaceId = await t.createSpace('Team');
    dir = tempDir('spaces-integrity-');
    clients = [];
  });
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await t.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const writeToken = (user: string): string => t.token('write', spaceId, { user });
  const client = async (name: string, user: string, peerId?: string): Promise<SyncClient> => {
    const c = await SyncClient.open(dir, name, t.server.url, writeToken(user), spaceId, { peerId });
    clients.push(c);
    return c;
  };
  const closeClient = async (c: SyncClient): Promise<void> => {
    clients.splice(clients.indexOf(c), 1);
    await c.close();
  };

  it('an op with counter 2^53-1 is refused (out-of-range), nothing of it is stored, and every writer keeps writing', async () => {
    const a = await client('a', 'alice');
    const b = await client('b', 'bob');
    await converge([a, b]);
    const attacker = await t.open(writeToken('mallory'), ['evil']);
    await attacker.subscribe(spaceId);
    const seqBefore = withStore(t.dir, (s) => s.lastSeq(spaceId));
    const answer = await attacker.result(attacker.sendOps(spaceId, spaceId, [setOp(TOP, 'evil', spaceId, 'setting.poison', 'x')]));

    // Both writers still write, and each sees the other's edit.
    a.space.setSetting('from-a', 1);
    await until(b.space, () => b.space.getSetting('from-a') === 1, 'B sees the edit A made after the attack');
    b.space.setSetting('from-b', 2);
    await until(a.space, () => a.space.getSetting('from-b') === 2, 'A sees the edit B made after the attack');
    await converge([a, b]);
    const stored = storedSpaceOps(t, spaceId);
    for (const key of ['setting.from-a', 'setting.from-b']) {
      const op = stored.find((o) => isPropertyOp(o) && o.key === key);
      assert.ok(op && op.id.counter < SANE, `${key} is stored with a sane counter: ${JSON.stringify(op?.id)}`);
    }

    assertRefused(answer, 'out-of-range');
    assert.match((answer as ErrorMessage).message, /counter/);
    assert.ok(!stored.some((o) => o.id.peerId === 'evil'), 'nothing of the attack is stored');
    assert.equal(withStore(t.dir, (s) => s.lastSeq(spaceId)) - seqBefore, 2, 'only the two honest edits got a seq');
    assert.equal(a.server.state.status, 'connected');
  });

  it('a secret dated 2^53-1 is refused (out-of-range), and its owner can still set and delete it', async () => {
    const a = await client('a', 'alice');
    const b = await client('b', 'bob');
    a.space.setSecret('api', 'v1');
    await converge([a, b]);
    assert.equal(b.space.getSecret('api'), 'v1');
    const attacker = await t.open(writeToken('mallory'), ['evil']);
    await attacker.subscribe(spaceId);
    const poison: SecretRecord = { key: 'api', value: 'pwned', time: TOP, peerId: 'evil' };
    const answer = await attacker.result(attacker.sendSecrets(spaceId, [poison]));

    a.space.setSecret('api', 'v2');
    await until(b.space, () => b.space.getSecret('api') === 'v2', 'B gets the value A set after the attack');
    assert.equal(withStore(t.dir, (s) => s.loadSecrets(spaceId)).find((r) => r.key === 'api')?.value, 'v2');
    assert.ok(a.space.deleteSecret('api'));
    await until(b.space, () => b.space.getSecret('api') === undefined, 'B sees the delete');
    await converge([a, b]);
    const record = withStore(t.dir, (s) => s.loadSecrets(spaceId)).find((r) => r.key === 'api');
    assert.equal(record?.value, null, 'the server holds the tombstone');

    assertRefused(answer, 'out-of-range');
    assert.ok(record && record.time < 2 ** 52);
  });

  it('a client with a secret time beyond the skew window gets an error state, not endless resends', async () => {
    // A record dated two days ahead in the client's file, as a wrong clock or a hand edit makes it.
    const seeded = await FileLayer.create(path.join(dir, 'a.space'), spaceId, { secretKey: CLIENT_SECRET_KEY });
    await seeded.saveSecrets([{ key: 'late', value: 'x', time: Date.now() + 2 * 86_400_000, peerId: 'skewed' }]);
    await seeded.close();
    const a = await client('a', 'alice');
    assert.equal(a.space.getSecret('late'), 'x');
    await waitForState(a.server, 'error');
    assert.match('reason' in a.server.state ? (a.server.state.reason ?? '') : '', /refused 1 secrets \(out-of-range\)/);
    assert.equal(withStore(t.dir, (s) => s.loadSecrets(spaceId)).length, 0);
  });

  it('a client whose file holds an op that jumps too far gets an error state naming out-of-range, sent once, not stored; its own edit is stored', async () => {
    // An op from elsewhere (a hand-edited or foreign file) 2,000,000 above the space tree's clock.
    const seeded = await FileLayer.create(path.join(dir, 'a.space'), spaceId, { secretKey: CLIENT_SECRET_KEY });
    await seeded.saveOps(spaceId, [setOp(2_000_000, 'far', spaceId, 'setting.far', 1)]);
    await seeded.close();
    const a = await client('a', 'alice');
    const refused: string[] = [];
    let ackedOwn: () => void = () => undefined;
    const ownAcked = new Promise<void>((resolve) => (ackedOwn = resolve));
    a.server.onSyncEvent((e) => {
      if (e.type === 'refused') refused.push(e.code);
      if (e.type === 'acked') ackedOwn();
    });
    a.space.setSetting('mine', 1);
    await waitForState(a.server, 'error');
    // Sent in its own batch (one peer per batch), the client's edit is stored all the same.
    await ownAcked;
    assert.ok(storedSpaceOps(t, spaceId).some((o) => isPropertyOp(o) && o.key === 'setting.mine' && o.id.peerId === a.manager.peerId));
    assert.match('reason' in a.server.state ? (a.server.state.reason ?? '') : '', /refused 1 ops \(out-of-range\)/);
    assert.deepEqual(refused, ['out-of-range'], 'refused once, not resent on this connection');
    const stored = storedSpaceOps(t, spaceId);
    assert.ok(!stored.some((o) => o.id.peerId === 'far'));
  });

  it('a server whose store already holds a poisoned op and secret (an older server) keeps every client writing', async () => {
    // One op at the top, one that jumped 5,000,000: no replica's clock follows either, nor the server's.
    const poison = [setOp(TOP, 'oldevil', spaceId, 'setting.poison', 'x'), setOp(5_000_000, 'oldevil', spaceId, 'setting.jump', 'y')];
    withStore(t.dir, (s) => s.appendBatches(spaceId, [{ treeId: spaceId, ops: poison }]));
    plantSecret(t.dir, spaceId, { key: 'api', value: 'pwned', time: TOP, peerId: 'oldevil' });
    assert.equal(withStore(t.dir, (s) => s.loadSecrets(spaceId))[0].time, TOP);
    const a = await client('a', 'alice');
    const b = await client('b', 'bob');
    await converge([a, b]);
    assert.equal(a.space.getSetting('poison'), 'x', 'the old op is there');
    assert.equal(a.space.getSecret('api'), undefined, 'the far-future record never wins');
    a.space.setSetting('after', 'a');
    a.space.setSecret('api', 'mine');
    await until(b.space, () => b.space.getSetting('after') === 'a' && b.space.getSecret('api') === 'mine', 'B gets A’s edit and secret');
    b.space.setSetting('after', 'b');
    await until(a.space, () => a.space.getSetting('after') === 'b', 'A gets B’s edit');
    await converge([a, b]);
    const after = storedSpaceOps(t, spaceId).filter((o) => isPropertyOp(o) && o.key === 'setting.after');
    assert.equal(after.length, 2);
    for (const op of after) assert.ok(op.id.counter < SANE, JSON.stringify(op.id));
    assert.equal(withStore(t.dir, (s) => s.loadSecrets(spaceId)).find((r) => r.key === 'api')?.value, 'mine');
  });

  it('an op under a live client’s peer id from another user is refused (peer-forbidden); the victim’s real op is stored and acked as new', async () => {
    const v = await client('v', 'victim');
    const b = await client('b', 'bob');
    v.space.setSetting('k', 'v0');
    await converge([v, b]);
    const victimPeer = v.manager.peerId;
    await closeClient(v);

    // The victim edits offline under the same peer id; the op waits in its file for the server.
    const manager = new SpaceManager({ peerId: victimPeer });
    const file = await FileLayer.open(path.join(dir, 'v.space'), { secretKey: CLIENT_SECRET_KEY });
    const offline = await manager.open(spaceId, [file]);
    offline.setSetting('k', 'real');
    const real = offline.tree.allOps().find((o) => isPropertyOp(o) && o.key === 'setting.k' && o.value === 'real') as Op;
    await manager.dispose();

    // The attacker announces the victim's peer id and takes the victim's next counter.
    const attacker = await t.open(writeToken('mallory'), [victimPeer]);
    await attacker.subscribe(spaceId);
    const forged = setOp(real.id.counter, victimPeer, spaceId, 'setting.k', 'forged');
    const answer = await attacker.result(attacker.sendOps(spaceId, spaceId, [forged]));

    // The victim comes back (a new process: its old peer id's ops are relayed) and syncs.
    const back = await client('v', 'victim');
    const acked: number[] = [];
    back.server.onSyncEvent((e) => {
      if (e.type === 'acked') acked.push(e.ops);
    });
    await converge([back, b]);
    await until(b.space, () => b.space.getSetting('k') === 'real', 'B sees the victim’s real edit');
    const stored = storedSpaceOps(t, spaceId).find((o) => opKey(o) === opKey(real));
    assert.ok(stored && isPropertyOp(stored) && stored.value === 'real', `the store holds the victim's op: ${JSON.stringify(stored)}`);
    assert.ok(acked.length > 0, 'the victim’s op was acknowledged as stored');
    assert.equal(back.server.state.status, 'connected');

    assertRefused(answer, 'peer-forbidden');
  });

  it('the same user may write under its peer id from a second connection (a reconnect while the old socket is half-open)', async () => {
    const tree = newTreeId('halfopen');
    const first = await t.open(writeToken('carol'), ['c1']);
    await first.subscribe(spaceId);
    await first.ack(first.sendOps(spaceId, tree, [rootOp(tree, 1, 'c1'), setOp(2, 'c1', tree, 'k', 'one')]));
    // The first socket stays open (its peer never learns it is gone); a new token of the same user.
    const second = await t.open(writeToken('carol'), ['c1']);
    await second.subscribe(spaceId);
    await second.ack(second.sendOps(spaceId, tree, [setOp(3, 'c1', tree, 'k', 'two')]));
    const other = await t.open(writeToken('dave'), ['d1', 'c1', 'unclaimed']);
    await other.subscribe(spaceId);
    assertRefused(await other.result(other.sendOps(spaceId, tree, [setOp(4, 'c1', tree, 'k', 'three')])), 'peer-forbidden');
    // Dave's own peer id and ops of a peer nobody claimed yet (made offline elsewhere) are fine.
    await other.ack(other.sendOps(spaceId, tree, [setOp(5, 'd1', tree, 'k', 'four'), setOp(6, 'unclaimed', tree, 'k', 'five')]));
    const counters = withStore(t.dir, (s) => s.loadTreeOps(spaceId, tree)).map((o) => opKey(o)).sort();
    assert.deepEqual(counters, ['1@c1', '2@c1', '3@c1', '5@d1', '6@unclaimed']);
  });

  it('an op id stored with other content is refused (conflict), never acked; the identical resend is acked as a duplicate', async () => {
    const tree = newTreeId('conflict');
    const c = await t.open(writeToken('carol'), ['c1']);
    await c.subscribe(spaceId);
    await c.ack(c.sendOps(spaceId, tree, [rootOp(tree, 1, 'c1'), setOp(2, 'c1', tree, 'k', { a: 1, b: [1, 2] })]));
    const seq = withStore(t.dir, (s) => s.lastSeq(spaceId));
    const conflict = await c.result(c.sendOps(spaceId, tree, [setOp(3, 'c1', tree, 'k', 'new'), setOp(2, 'c1', tree, 'k', 'other')]));
    assertRefused(conflict, 'conflict');
    assert.match((conflict as ErrorMessage).message, /2@c1/);
    // The same op again, keys of its value in another order: a duplicate, acked, nothing stored.
    const dup = await c.ack(c.sendOps(spaceId, tree, [setOp(2, 'c1', tree, 'k', { b: [1, 2], a: 1 })]));
    assert.equal(dup.seq, seq);
    assert.equal(withStore(t.dir, (s) => s.lastSeq(spaceId)), seq, 'nothing of the refused batch was stored');
    const ops = withStore(t.dir, (s) => s.loadTreeOps(spaceId, tree));
    assert.deepEqual(
      ops.map((o) => opKey(o)),
      ['1@c1', '2@c1'],
    );
    assert.deepEqual((ops[1] as { value: unknown }).value, { a: 1, b: [1, 2] });
  });

  it('a space made offline uploads as before: by the process that made it (Connect) and by a later one (spaces sync)', async () => {
    for (const later of [false, true]) {
      const maker = new SpaceManager();
      const file = path.join(dir, `offline-${later}.space`);
      let fileLayer = undefined as unknown as FileLayer;
      const space = await maker.create(`Offline ${later}`, async (id) => [(fileLayer = await FileLayer.create(file, id, { secretKey: CLIENT_SECRET_KEY }))]);
      const notes = space.createAppTree('notes', 'Notes');
      notes.addItem(notes.rootId, { text: `made offline (${later})` });
      space.setSecret('token', 'offline');
      const res = await fetch(`${t.server.url}/v1/spaces`, { method: 'POST', headers: { Authorization: `Bearer ${t.admin}` }, body: JSON.stringify({ name: space.name, id: space.id }) });
      assert.equal(res.status, 201, await res.text());
      const token = t.token('write', space.id, { user: 'maker' });
      let uploader: SpaceManager = maker;
      try {
        if (later) {
          await maker.dispose();
          uploader = new SpaceManager();
          fileLayer = await FileLayer.open(file, { secretKey: CLIENT_SECRET_KEY });
          const reopened = await uploader.open(space.id, [fileLayer]);
          await reopened.openAppTree(notes.id); // as `spaces sync` opens every app tree
        }
        const layer = new ServerLayer({ url: t.server.url, token, peerId: uploader.peerId, spaceId: space.id, syncState: fileLayer, timings: CLIENT_TIMINGS });
        await uploader.addLayer(space.id, layer);
        await uploader.flush(space.id);
        await layer.whenIdle();
        assert.equal(layer.state.status, 'connected');
      } finally {
        await uploader.dispose();
      }
      const reader = await SyncClient.open(dir, `reader-${later}`, t.server.url, t.token('write', space.id, { user: 'reader' }), space.id);
      clients.push(reader);
      const copy = await reader.space.openAppTree(notes.id);
      assert.deepEqual(copy.dump().children.map((c) => c.props.text), [`made offline (${later})`]);
      assert.equal(reader.space.getSecret('token'), 'offline');
    }
  });

  it("no client writes under the server's own peer id", async () => {
    const c = await t.open(writeToken('carol'), ['c1']);
    const { ops } = await c.subscribe(spaceId);
    const serverPeer = decodeOps(ops[0].ops, spaceId, 'catch-up')[0].id.peerId;
    const impostor = await t.open(writeToken('mallory'), [serverPeer]);
    await impostor.subscribe(spaceId);
    assertRefused(await impostor.result(impostor.sendOps(spaceId, spaceId, [setOp(100, serverPeer, spaceId, 'name', 'Taken')])), 'peer-forbidden');
    assert.equal(withStore(t.dir, (s) => s.getSpace(spaceId))?.name, 'Team');
  });
});

describe('spaces-server serve: admission flags', function () {
  this.timeout(60_000);

  it('--max-counter-gap and --max-secret-skew-seconds set the bounds; a gap above the clock step is a usage error', async () => {
    const dir = tempDir('spaces-admission-cli-');
    const admin = makeToken(dir, 'admin').token;
    const s = await spawnServer(dir, ['--max-counter-gap', '10', '--max-secret-skew-seconds', '60']);
    const clients: TestClient[] = [];
    try {
      const res = await fetch(`${s.url}/v1/spaces`, { method: 'POST', headers: { Authorization: `Bearer ${admin}` }, body: JSON.stringify({ name: 'Flags' }) });
      const spaceId = ((await res.json()) as { id: string }).id;
      const c = (await TestClient.open(s.syncUrl, admin, ['w'])).client;
      clients.push(c);
      await c.subscribe(spaceId);
      const tree = newTreeId();
      // Counters 1..10 are within a gap of 10 from an empty tree's clock; 100 is not.
      assert.equal((await c.result(c.sendOps(spaceId, tree, [rootOp(tree, 1, 'w'), setOp(10, 'w', tree, 'a', 1)]))).type, 'ack');
      assertRefused(await c.result(c.sendOps(spaceId, tree, [setOp(100, 'w', tree, 'b', 2)])), 'out-of-range');
      const now = Date.now();
      assert.equal((await c.result(c.sendSecrets(spaceId, [{ key: 'near', value: null, time: now + 30_000, peerId: 'w' }]))).type, 'ack');
      assertRefused(await c.result(c.sendSecrets(spaceId, [{ key: 'far', value: null, time: now + 600_000, peerId: 'w' }])), 'out-of-range');
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      s.child.kill('SIGTERM');
      await s.exited;
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const bad = tempDir('spaces-admission-cli-');
    try {
      await assert.rejects(spawnServer(bad, ['--max-counter-gap', String(MAX_CLOCK_STEP + 1)]), /max-counter-gap must be an integer from 1/);
    } finally {
      fs.rmSync(bad, { recursive: true, force: true });
    }
  });
});
