/**
 * ServerLayer and SyncConnection against a small fake server (test/helpers/fakeSyncServer.ts):
 * backoff, heartbeat, auth failures, the outbox, peer-id announcements, read-only tokens,
 * refusals, offline behaviour and close. Integration tests against the real server are in
 * test/integration/serverSync*.test.ts.
 */
import * as assert from 'node:assert/strict';
import type { LayerConnectionState } from '../../src/persistence/contract';
import { fullJitterDelay, serverBaseUrl, syncUrl } from '../../src/persistence/server/connection';
import { ServerLayer, ServerLoadError, type ServerLayerTimings } from '../../src/persistence/server/serverLayer';
import { MemorySyncStateStore, type SyncStateStore } from '../../src/persistence/server/syncState';
import { encodeOps } from '../../src/spaces/opCodec';
import { opKey, type Op } from '../../src/spaces/ops';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import { SpaceManager } from '../../src/spaces/spaceManager';
import { FakeSyncServer } from '../helpers/fakeSyncServer';
import { GatedSyncStateStore } from '../helpers/gatedSyncState';
import { writeV1SpaceFile } from '../helpers/v1SpaceFile';
import initSqlJs from 'sql.js';
import { TEST_KEY, TempDir, makeOps, newId, rootOp } from '../helpers/fileFixtures';

const FAST: Partial<ServerLayerTimings> = { backoffBaseMs: 20, backoffMaxMs: 200, loadTimeoutMs: 3_000, closeTimeoutMs: 1_000, resendPauseMs: 50 };

function keys(ops: readonly Op[]): string[] {
  return ops.map(opKey).sort();
}

/** A port nothing listens on (a fake started and stopped). */
async function deadPort(): Promise<number> {
  const f = await FakeSyncServer.start();
  const port = f.port;
  await f.close();
  return port;
}

function until(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (pred()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(check, 5);
    };
    check();
  });
}

describe('sync connection helpers', function () {
  it('full jitter: uniform in [0, min(max, base·2^attempt)], never a fixed interval', function () {
    for (const attempt of [0, 1, 3, 6, 12, 40]) {
      const cap = Math.min(30_000, 500 * 2 ** attempt);
      const samples = Array.from({ length: 400 }, () => fullJitterDelay(attempt, 500, 30_000));
      assert.ok(samples.every((d) => d >= 0 && d <= cap), `attempt ${attempt}: a delay outside [0, ${cap}]`);
      assert.ok(new Set(samples).size > 50, `attempt ${attempt}: delays repeat (${new Set(samples).size} distinct)`);
      const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
      assert.ok(mean > cap * 0.35 && mean < cap * 0.65, `attempt ${attempt}: mean ${mean} is not about ${cap / 2}`);
    }
  });

  it('server URLs: http(s) or ws(s), with or without the sync path, behind a base path', function () {
    assert.equal(syncUrl('http://127.0.0.1:8420'), 'ws://127.0.0.1:8420/v1/sync');
    assert.equal(syncUrl('https://spaces.example.com/'), 'wss://spaces.example.com/v1/sync');
    assert.equal(syncUrl('wss://spaces.example.com/v1/sync'), 'wss://spaces.example.com/v1/sync');
    assert.equal(syncUrl('https://example.com/team/'), 'wss://example.com/team/v1/sync');
    assert.equal(serverBaseUrl('wss://example.com/team/v1/sync'), 'https://example.com/team');
    assert.equal(serverBaseUrl('ws://127.0.0.1:9/v1/sync'), 'http://127.0.0.1:9');
    assert.throws(() => syncUrl('ftp://example.com'), /not a server URL/);
    const l = new ServerLayer({ url: 'ws://127.0.0.1:9/v1/sync', token: 't', peerId: 'me', spaceId: newId(), syncState: new MemorySyncStateStore(), timings: FAST });
    assert.equal(l.id, 'server:http://127.0.0.1:9');
    assert.equal(l.label, '127.0.0.1:9');
    assert.equal(l.kind, 'two-way');
    return l.close();
  });
});

describe('ServerLayer (fake server)', function () {
  this.timeout(20_000);
  let fake: FakeSyncServer | undefined;
  const layers: ServerLayer[] = [];
  let spaceId: string;

  const layer = (opts: { url?: string; store?: SyncStateStore; peerId?: string; timings?: Partial<ServerLayerTimings> } = {}): ServerLayer => {
    const l = new ServerLayer({
      url: opts.url ?? (fake as FakeSyncServer).url,
      token: 'tok',
      peerId: opts.peerId ?? 'me',
      spaceId,
      syncState: opts.store ?? new MemorySyncStateStore(),
      timings: { ...FAST, ...opts.timings },
    });
    layers.push(l);
    return l;
  };
  const states = (l: ServerLayer): LayerConnectionState[] => {
    const out: LayerConnectionState[] = [];
    l.onStateChange((s) => out.push(s));
    return out;
  };

  beforeEach(() => {
    spaceId = newId();
  });
  afterEach(async () => {
    await Promise.all(layers.splice(0).map((l) => l.close()));
    await fake?.close();
    fake = undefined;
  });

  it('says hello with its peer id, subscribes since the stored seq, reports each batch at once and says `received` once it is stored', async function () {
    fake = await FakeSyncServer.start();
    const first = [rootOp(spaceId, 'srv'), ...makeOps(spaceId, 'srv', 2, 9)];
    const second = makeOps(spaceId, 'srv', 11, 10);
    fake.inject(spaceId, spaceId, encodeOps(first));
    fake.inject(spaceId, spaceId, encodeOps(second));
    const store = new MemorySyncStateStore();
    const probe = new ServerLayer({ url: fake.url, token: 't', peerId: 'x', spaceId, syncState: store });
    const layerId = probe.id;
    await probe.close();
    await store.saveIncoming(layerId, spaceId, first, 1); // this client had batch 1 already
    const l = layer({ store });
    const seen: Array<{ ops: string[]; storedThen: string[]; seqThen: number }> = [];
    const reported: string[][] = [];
    l.onIncoming((b) => reported.push(keys(b.ops)));
    l.onSyncEvent((e) => {
      if (e.type !== 'received') return;
      // `received` comes after the store write (ops + watermark): check what it holds then.
      void Promise.all([store.loadOps(layerId, e.treeId), store.loadSyncState(layerId)]).then(([ops, s]) => seen.push({ ops: reported[seen.length] ?? [], storedThen: keys(ops), seqThen: s.seq }));
    });
    assert.deepEqual(keys(await l.loadTree(spaceId)), keys([...first, ...second]));
    await until(() => seen.length === 1, 'the incoming batch');
    const conn = fake.connections[0];
    assert.deepEqual(conn.hello?.peerIds, ['me']);
    assert.deepEqual(conn.messages[1], { type: 'subscribe', spaceId, since: 1 });
    assert.deepEqual(seen[0].ops, keys(second), 'only batch 2 was sent');
    assert.ok(second.every((op) => seen[0].storedThen.includes(opKey(op))), '`received` before the batch was stored');
    assert.equal(seen[0].seqThen, 2);
    assert.equal(l.seq, 2);
  });

  it('a catch-up goes to the store in a few writes (per tree and turn, not per batch), and the watermark never lands before the ops it covers', async function () {
    fake = await FakeSyncServer.start();
    const batches = 40;
    const cum = [0];
    fake.inject(spaceId, spaceId, encodeOps([rootOp(spaceId, 'srv')]));
    cum.push(1);
    for (let b = 1; b < batches; b++) {
      fake.inject(spaceId, spaceId, encodeOps(makeOps(spaceId, 'srv', 2 + (b - 1) * 5, 5)));
      cum.push(cum[b] + 5);
    }
    const gated = new GatedSyncStateStore();
    await gated.release(); // writes land as they are made
    const l = layer({ store: gated });
    assert.equal((await l.loadTree(spaceId)).length, cum[batches]);
    await l.whenIdle();
    const writes = gated.landed.filter((w) => w.call === 'saveIncoming');
    assert.ok(writes.length <= batches / 2, `${writes.length} store writes for ${batches} batches that arrived together`);
    for (const w of writes) assert.ok(w.ops >= cum[w.seq], `the watermark ${w.seq} landed with ${w.ops} ops stored, not ${cum[w.seq]}`);
    assert.equal(writes[writes.length - 1].seq, batches);
    assert.equal(writes[writes.length - 1].ops, cum[batches]);
  });

  it('saveOps: sent before its outbox write lands; the watermark never covers it before it is durable; after a crash the server sends it back', async function () {
    fake = await FakeSyncServer.start();
    const gated = new GatedSyncStateStore(); // a busy disk: nothing lands until released
    const l = layer({ store: gated });
    await l.whenReady();
    const ops = [rootOp(spaceId, 'me'), ...makeOps(spaceId, 'me', 2, 30)];
    const saved = l.saveOps(spaceId, ops);
    await until(() => l.stats.opsAcked === ops.length, 'the ack of ops whose outbox write is still held');
    assert.deepEqual([...fake.stored(spaceId)].sort(), keys(ops));
    assert.equal(gated.durable.outboxSize(l.id), 0, 'the outbox write landed before the ack (the gate is closed)');
    // Killed now: nothing of the edit is on disk and the watermark is before its ack, so the
    // next run subscribes from there and gets the ops back from the server.
    const disk = await gated.afterCrash();
    assert.equal((await disk.loadSyncState(l.id)).seq, 0, 'the watermark moved past an op that is not durable');
    const next = layer({ store: disk, peerId: 'me2' });
    assert.deepEqual(keys(await next.loadTree(spaceId)), keys(ops), 'the acknowledged ops did not come back after the crash');
    // The writes land in call order: the outbox (with the ops) before the watermark over their ack.
    await gated.release();
    await saved;
    await l.whenIdle();
    const covering = gated.landed.findIndex((w) => w.seq >= 1);
    const stored = gated.landed.findIndex((w) => w.call === 'addToOutbox');
    assert.ok(stored >= 0 && covering > stored, `the watermark over the ack landed before the ops: ${JSON.stringify(gated.landed)}`);
    assert.equal(gated.durable.outboxSize(l.id), 0, 'the ack did not take the ops out of the outbox');
    assert.equal(l.outboxSize, 0);
    assert.equal((await gated.durable.loadSyncState(l.id)).seq, 1, 'the ack advanced the watermark');
  });

  it('saveOps: an outbox write that fails rejects, and the retry writes the ops again', async function () {
    fake = await FakeSyncServer.start();
    const store = new MemorySyncStateStore();
    const l = layer({ store });
    await l.whenReady();
    fake.opts.onOps = () => 'ignore'; // no ack: the ops stay in the outbox
    const ops = makeOps(spaceId, 'me', 1, 5);
    const real = store.addToOutbox.bind(store);
    store.addToOutbox = () => Promise.reject(new Error('disk full'));
    await assert.rejects(l.saveOps(spaceId, ops), /disk full/);
    assert.match(l.storeError ?? '', /addToOutbox: disk full/);
    store.addToOutbox = real;
    await l.saveOps(spaceId, ops); // what LayerSlot does after a failed save
    assert.equal(store.outboxSize(l.id), ops.length, 'the retry did not write the ops that were sent but not stored');
    assert.equal(l.storeError, undefined);
  });

  it('a space file of the previous schema (1) keeps every unsent op: the layer over it sends them all', async function () {
    fake = await FakeSyncServer.start();
    const probe = new ServerLayer({ url: fake.url, token: 't', peerId: 'x', spaceId, syncState: new MemorySyncStateStore() });
    const layerId = probe.id;
    await probe.close();
    const appId = newId();
    const spaceOps = [rootOp(spaceId, 'p1'), ...makeOps(spaceId, 'p1', 2, 40)];
    const appOps = [rootOp(appId, 'p2'), ...makeOps(appId, 'p2', 2, 20)];
    const unsent = appOps.filter((op) => op.id.counter <= 11);
    const tmp = new TempDir();
    try {
      const file = tmp.file('old.space');
      writeV1SpaceFile(await initSqlJs(), file, {
        spaceId,
        trees: [
          { treeId: spaceId, ops: spaceOps },
          { treeId: appId, ops: appOps },
        ],
        outbox: unsent.map((op) => [layerId, appId, op.id.counter, op.id.peerId] as const),
      });
      const fileLayer = await FileLayer.open(file, { secretKey: TEST_KEY, watch: false });
      try {
        const l = layer({ store: fileLayer });
        await l.loadTree(spaceId);
        await l.whenIdle();
        assert.deepEqual([...fake.stored(appId)].sort(), keys(unsent), 'the unsent ops of the old file were not all sent');
        assert.equal(l.outboxSize, 0);
        assert.equal((await fileLayer.loadSyncState(layerId)).outbox.size, 0, 'the acks did not empty the outbox in the file');
        await l.close();
      } finally {
        await fileLayer.close();
      }
    } finally {
      tmp.cleanup();
    }
  });

  it('offline: loads answer at once with what the layer has; saves wait in the outbox and go out when the server comes', async function () {
    const port = await deadPort();
    const store = new MemorySyncStateStore();
    const l = layer({ url: `http://127.0.0.1:${port}`, store });
    const st = states(l);
    const t0 = Date.now();
    assert.deepEqual(await l.loadTree(spaceId), []);
    assert.deepEqual(await l.listTrees(), []);
    assert.deepEqual(await l.loadSecrets(), []);
    assert.ok(Date.now() - t0 < 2_000, `loads waited ${Date.now() - t0} ms for a server that is not there`);
    assert.equal(st[0]?.status, 'offline');
    const ops = makeOps(spaceId, 'me', 1, 12);
    await l.saveOps(spaceId, ops);
    await l.saveSecrets([{ key: 'k', value: 'v', time: 5, peerId: 'me' }]);
    assert.equal(store.outboxSize(l.id), 12);
    fake = await FakeSyncServer.start({ port });
    await l.whenIdle();
    assert.deepEqual([...fake.stored(spaceId)].sort(), keys(ops));
    const secretsMsg = fake.connections.flatMap((c) => c.messages).find((m) => m.type === 'secrets' && m.records.length > 0);
    assert.ok(secretsMsg, 'the secret saved offline was not sent');
    assert.equal(l.state.status, 'connected');
  });

  describe('a slow first sync is waited for, never answered as empty', function () {
    /** A space of `n` batches on the fake: the root and 10 ops per batch. */
    const seed = (f: FakeSyncServer, n: number): Op[] => {
      const all: Op[] = [rootOp(spaceId, 'srv')];
      f.inject(spaceId, spaceId, encodeOps(all));
      for (let i = 0; i < n - 1; i++) {
        const ops = makeOps(spaceId, 'srv', 2 + i * 10, 10);
        f.inject(spaceId, spaceId, encodeOps(ops));
        for (const op of ops) all.push(op);
      }
      return all;
    };

    it('a catch-up that takes many times loadTimeoutMs while frames keep coming: waited for, with progress', async function () {
      fake = await FakeSyncServer.start({ pacedCatchUp: { everyMs: 60 } });
      const all = seed(fake, 20); // 20 frames at 60 ms: about 1.2 s against a 300 ms timeout
      const l = layer({ timings: { loadTimeoutMs: 300 } });
      const progress: string[] = [];
      l.onLoadProgress((p) => progress.push(p.message));
      const t0 = Date.now();
      assert.deepEqual(keys(await l.loadTree(spaceId)), keys(all));
      assert.ok(Date.now() - t0 > 300, 'the catch-up was not slower than the timeout: the test proves nothing');
      assert.ok(progress.some((m) => /catching up/.test(m)), `no "catching up" progress: ${progress.join(' | ')}`);
      assert.ok(progress.some((m) => /receiving from .*: \d+ ops/.test(m)), `no "receiving" progress: ${progress.join(' | ')}`);
      assert.equal(l.firstSyncPending, false);
    });

    it('a connection dropped in the middle of the catch-up is ridden out: the load completes on the next one', async function () {
      fake = await FakeSyncServer.start({ pacedCatchUp: { everyMs: 5, dropFirstAfter: 3 } });
      const all = seed(fake, 10);
      const l = layer();
      const st = states(l);
      assert.deepEqual(keys(await l.loadTree(spaceId)), keys(all));
      assert.equal(l.stats.connects, 2);
      assert.ok(st.some((s) => s.status === 'offline'), 'the drop was not seen');
    });

    it('a server that welcomes and then sends nothing: the load fails with a stall error after loadTimeoutMs, not with an empty answer', async function () {
      fake = await FakeSyncServer.start({ pacedCatchUp: { everyMs: 5, stall: true } });
      seed(fake, 3);
      const l = layer({ timings: { loadTimeoutMs: 300 } });
      await assert.rejects(l.loadTree(spaceId), (e: unknown) => e instanceof ServerLoadError && e.code === 'STALLED' && /no progress for 300 ms/.test(e.message));
    });
  });

  it('incoming ops are written once: the file that is the layer\'s store gets them from the layer, not again from the manager', async function () {
    fake = await FakeSyncServer.start();
    const first = [rootOp(spaceId, 'srv'), ...makeOps(spaceId, 'srv', 2, 20)];
    fake.inject(spaceId, spaceId, encodeOps(first));
    const dir = new TempDir();
    const manager = new SpaceManager();
    try {
      const file = await FileLayer.create(dir.file(), spaceId, { secretKey: TEST_KEY, watch: false });
      const saved: Op[] = [];
      const saveOps = file.saveOps.bind(file);
      // A spy on the real layer: what the manager writes into the file.
      file.saveOps = (treeId, ops) => {
        for (const op of ops) saved.push(op);
        return saveOps(treeId, ops);
      };
      const server = new ServerLayer({ url: fake.url, token: 'tok', peerId: manager.peerId, spaceId, syncState: file, timings: FAST });
      const space = await manager.open(spaceId, [file, server]);
      const live = makeOps(spaceId, 'srv', 100, 30);
      fake.inject(spaceId, spaceId, encodeOps(live));
      await until(() => live.every((op) => space.tree.allOps().some((o) => opKey(o) === opKey(op))), 'the live batch in the tree');
      await manager.flush(spaceId);
      const fromServer = new Set([...first, ...live].map(opKey));
      assert.deepEqual(saved.filter((op) => fromServer.has(opKey(op))).map(opKey), [], 'the manager wrote ops into the file that the server layer had stored there');
      const inFile = new Set((await file.loadTree(spaceId)).map(opKey));
      assert.ok([...fromServer].every((k) => inFile.has(k)), 'the file lacks ops the server sent');
    } finally {
      await manager.dispose();
      dir.cleanup();
    }
  });

  it('a client restarted with unsent ops sends them (the outbox is in the store)', async function () {
    const port = await deadPort();
    const store = new MemorySyncStateStore();
    const a = layer({ url: `http://127.0.0.1:${port}`, store });
    const ops = makeOps(spaceId, 'me', 1, 25);
    await a.saveOps(spaceId, ops);
    await a.close();
    fake = await FakeSyncServer.start({ port });
    const b = layer({ url: `http://127.0.0.1:${port}`, store, peerId: 'me2' });
    await b.whenIdle();
    assert.deepEqual([...fake.stored(spaceId)].sort(), keys(ops));
    const hello = fake.connections[fake.connections.length - 1].hello;
    assert.ok(hello?.peerIds.includes('me'), "the restarted client did not announce the old run's peer id");
  });

  it('after a reconnect only what the server lacks is sent: an unacknowledged batch the server stored is not resent', async function () {
    fake = await FakeSyncServer.start();
    const l = layer();
    const a = makeOps(spaceId, 'me', 1, 10);
    const b = makeOps(spaceId, 'me', 11, 10);
    await l.saveOps(spaceId, a);
    await l.whenIdle();
    const f = fake;
    f.opts.onOps = () => 'store-no-ack'; // stored, but the ack is lost with the connection
    await l.saveOps(spaceId, b);
    await f.until(() => f.stored(spaceId).size === 20);
    f.opts.onOps = undefined;
    f.killConnections();
    await l.whenIdle();
    assert.equal(f.connections.length, 2);
    assert.ok(!f.connections[1].messages.some((m) => m.type === 'ops'), 'the second connection sent ops the server had');
    assert.equal(l.outboxSize, 0);
  });

  it('ops of other peers: reconnects announcing their peer ids, then sends them', async function () {
    fake = await FakeSyncServer.start();
    const l = layer();
    await l.loadTree(spaceId);
    const mine = makeOps(spaceId, 'me', 1, 5);
    const theirs = makeOps(spaceId, 'other', 1, 5);
    await l.saveOps(spaceId, [...mine, ...theirs]);
    await l.whenIdle();
    assert.deepEqual(fake.connections[0].hello?.peerIds, ['me']);
    assert.deepEqual(fake.connections[1].hello?.peerIds, ['me', 'other']);
    assert.equal(fake.stored(spaceId).size, 10);
    assert.ok(fake.connections.every((c) => c.closed === undefined || c.closed.code !== 4400), 'an op under an unannounced peer id was sent');
  });

  it('auth failure (4401): state error, no retries until retry()', async function () {
    fake = await FakeSyncServer.start({ refuseHello: 4401 });
    const l = layer();
    const st = states(l);
    assert.deepEqual(await l.loadTree(spaceId), [], 'loads do not reject');
    await until(() => st.some((s) => s.status === 'error'), 'the error state');
    await new Promise((r) => setTimeout(r, 300)); // backoff is 20 ms: a retrying client would have come back
    assert.equal(fake.connections.length, 1);
    assert.equal(l.stopped, true);
    assert.equal(l.stopCode, 4401);
    fake.opts.refuseHello = undefined;
    l.retry();
    await l.whenIdle();
    assert.equal(fake.connections.length, 2);
    assert.equal(l.state.status, 'connected');
    assert.equal(l.stopCode, undefined);
  });

  it('a refused subscription (space not found) is an error and is not retried', async function () {
    fake = await FakeSyncServer.start({ refuseSubscribe: 'not-found' });
    const l = layer();
    const st = states(l);
    await until(() => st.some((s) => s.status === 'error'), 'the error state');
    assert.match((st.find((s) => s.status === 'error') as { reason: string }).reason, /not-found|fake/);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(fake.connections.length, 1);
    assert.equal(l.stopCode, 4404);
  });

  it('drops: reconnects by itself with growing, jittered delays', async function () {
    fake = await FakeSyncServer.start({ refuseHello: 4500 });
    const l = layer({ timings: { backoffBaseMs: 10, backoffMaxMs: 160 } });
    const f = fake;
    await f.until(() => f.connections.length >= 9);
    await l.close();
    const gaps = f.connections.slice(1, 9).map((c, i) => c.at - f.connections[i].at);
    assert.ok(new Set(gaps).size > 3, `gaps look fixed: ${gaps.join(', ')}`);
    assert.ok(gaps.every((g) => g <= 160 + 100), `a gap over the cap: ${gaps.join(', ')}`);
  });

  it('heartbeat: a server that stops answering pings is dropped and reconnected', async function () {
    fake = await FakeSyncServer.start({ noPong: true });
    const l = layer({ timings: { heartbeatMs: 50, deadAfterMs: 200 } });
    const st = states(l);
    await l.loadTree(spaceId);
    const f = fake;
    await f.until(() => f.connections.length >= 2 && f.connections[0].closed !== undefined);
    assert.ok(
      st.some((s) => s.status === 'offline' && /no sign of life/.test(s.reason ?? '')),
      `states: ${JSON.stringify(st)}`,
    );
    assert.equal(f.connections[0].closed?.code, 4408);
  });

  it('read-only: ops stay in the outbox and the state says how many are not sent', async function () {
    fake = await FakeSyncServer.start({ role: 'read' });
    const store = new MemorySyncStateStore();
    const l = layer({ store });
    await l.loadTree(spaceId);
    await l.saveOps(spaceId, makeOps(spaceId, 'me', 1, 7));
    await until(() => l.state.status === 'error', 'the error state');
    assert.deepEqual(l.state, { status: 'error', reason: 'read-only: 7 ops not sent' });
    assert.equal(store.outboxSize(l.id), 7);
    assert.ok(!fake.connections.some((c) => c.messages.some((m) => m.type === 'ops')), 'ops were sent with a read-only token');
  });

  it('a batch refused as forbidden (write access taken away) stays in the outbox', async function () {
    fake = await FakeSyncServer.start({ onOps: () => 'forbidden' });
    const store = new MemorySyncStateStore();
    const l = layer({ store });
    await l.saveOps(spaceId, makeOps(spaceId, 'me', 1, 4));
    await until(() => l.state.status === 'error', 'the error state');
    assert.deepEqual(l.state, { status: 'error', reason: 'read-only: 4 ops not sent' });
    assert.equal(store.outboxSize(l.id), 4);
  });

  it('rate-limited and internal refusals: the batch is sent again after a pause', async function () {
    const verdicts: Array<'rate-limited' | 'internal' | undefined> = ['rate-limited', 'internal', undefined];
    fake = await FakeSyncServer.start({ onOps: () => verdicts.shift() });
    const l = layer();
    await l.saveOps(spaceId, makeOps(spaceId, 'me', 1, 6));
    await l.whenIdle();
    assert.equal(fake.stored(spaceId).size, 6);
    assert.equal(fake.connections.length, 1, 'a refusal made the client reconnect');
  });

  it('invalid ops from the server are not stored and the watermark does not pass them', async function () {
    fake = await FakeSyncServer.start();
    const store = new MemorySyncStateStore();
    const l = layer({ store });
    await l.loadTree(spaceId);
    const f = fake;
    f.broadcastRaw(JSON.stringify({ type: 'ops', spaceId, treeId: spaceId, ops: [[1, 0, 'srv', 'x', 'k', 1]], seq: 7 }));
    await f.until(() => f.connections.length >= 2);
    await l.whenIdle();
    assert.equal((await store.loadSyncState(l.id)).seq, 0);
    assert.deepEqual(await store.loadOps(l.id, spaceId), []);
  });

  it('a store write that fails is storeError and the error state until a later write succeeds', async function () {
    fake = await FakeSyncServer.start();
    fake.inject(spaceId, spaceId, encodeOps([rootOp(spaceId, 'srv'), ...makeOps(spaceId, 'srv', 2, 9)]));
    // Failure injection: the store refuses writes as a full disk would.
    const store = new MemorySyncStateStore();
    let full = true;
    const saveIncoming = store.saveIncoming.bind(store);
    store.saveIncoming = (layerId, treeId, ops, seq) => (full ? Promise.reject(new Error('ENOSPC: no space left on device')) : saveIncoming(layerId, treeId, ops, seq));
    const l = layer({ store });
    const seen = states(l);
    await until(() => l.storeError !== undefined, 'a store error');
    assert.match(l.storeError ?? '', /saveIncoming: ENOSPC/);
    await until(() => l.state.status === 'error', 'the error state');
    assert.match((l.state as { reason?: string }).reason ?? '', /cannot store what the server sent: saveIncoming: ENOSPC/);
    assert.equal((await store.loadSyncState(l.id)).seq, 0);

    full = false;
    fake.inject(spaceId, spaceId, encodeOps(makeOps(spaceId, 'srv', 11, 5)));
    await until(() => l.storeError === undefined && l.state.status === 'connected', 'a store write that succeeds');
    assert.ok(seen.some((s) => s.status === 'error'));
  });

  it('missingOps waits for the server state vector, leaves out what the server has and what is queued', async function () {
    const port = await deadPort();
    const l = layer({ url: `http://127.0.0.1:${port}` });
    const serverHas = makeOps(spaceId, 'srv', 1, 5);
    const queued = makeOps(spaceId, 'me', 1, 3);
    const lacking = makeOps(spaceId, 'me', 4, 4);
    await l.saveOps(spaceId, queued);
    let answered: Op[] | undefined;
    const p = l.missingOps(spaceId, [...serverHas, ...queued, ...lacking]).then((m) => (answered = m));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(answered, undefined, 'answered before knowing what the server has');
    fake = await FakeSyncServer.start({ port, onOps: () => 'ignore' });
    fake.inject(spaceId, spaceId, encodeOps(serverHas));
    await p;
    assert.deepEqual(keys(answered ?? []), keys(lacking));
  });

  it('secrets: incoming records are reported; saved ones go out and are acknowledged', async function () {
    fake = await FakeSyncServer.start();
    const l = layer();
    const got: string[] = [];
    l.onIncomingSecrets((rs) => got.push(...rs.map((r) => r.key)));
    await l.loadTree(spaceId);
    fake.broadcastRaw(JSON.stringify({ type: 'secrets', spaceId, records: [{ key: 'api', value: 'x', time: 10, peerId: 'srv' }] }));
    await until(() => got.length === 1, 'the incoming secret');
    await l.saveSecrets([{ key: 'mine', value: 'y', time: 11, peerId: 'me' }]);
    const sent = fake.connections[0].messages.filter((m) => m.type === 'secrets' && m.records.some((r) => r.key === 'mine'));
    assert.equal(sent.length, 1);
    assert.deepEqual((await l.loadSecrets()).map((r) => r.key).sort(), ['api', 'mine']);
  });

  it('close(): idempotent, closes with 1000, and nothing reconnects afterwards', async function () {
    fake = await FakeSyncServer.start();
    const l = layer();
    await l.loadTree(spaceId);
    await Promise.all([l.close(), l.close()]);
    await l.close();
    const f = fake;
    await f.until(() => f.connections[0].closed !== undefined);
    assert.equal(f.connections[0].closed?.code, 1000);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(f.connections.length, 1);
    await assert.rejects(l.loadTree(spaceId), /closed layer/);
    await assert.rejects(l.saveOps(spaceId, makeOps(spaceId, 'me', 1, 1)), /closed layer/);
  });

  it('close() during a first connect that fails returns when it fails', async function () {
    const port = await deadPort();
    const l = layer({ url: `http://127.0.0.1:${port}`, timings: { closeTimeoutMs: 10_000 } });
    await l.saveOps(spaceId, makeOps(spaceId, 'me', 1, 3));
    const t0 = Date.now();
    await l.close();
    assert.ok(Date.now() - t0 < 1_000, `close waited ${Date.now() - t0} ms`);
  });

  it('close() while the server is unreachable returns at once and stops retrying', async function () {
    const port = await deadPort();
    const l = layer({ url: `http://127.0.0.1:${port}`, timings: { closeTimeoutMs: 10_000 } });
    const st = states(l);
    await l.saveOps(spaceId, makeOps(spaceId, 'me', 1, 3));
    await until(() => st.some((s) => s.status === 'offline'), 'offline');
    const t0 = Date.now();
    await l.close();
    assert.ok(Date.now() - t0 < 1_000, `close waited ${Date.now() - t0} ms`);
  });
});
