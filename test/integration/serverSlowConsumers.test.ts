/**
 * Clients that stop reading at the TCP level (StalledReader: a raw handshake, then
 * `socket.pause()`) subscribe to a space of 12 MB. The server queues at most its high-water mark
 * plus one frame for each of them, encodes each catch-up frame once for all of them, closes them
 * with 4001 once nothing moved for `slowConsumerMs`, and meanwhile serves other clients: a reader
 * of the same space, and two editors (SpaceManager + ServerLayer) on another space.
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import { CloseCode } from '../../src/protocol/messages';
import { DEFAULT_CONNECTION_LIMITS } from '../../src/server/connection';
import { newVertexId } from '../../src/spaces/appTree';
import { rootOp, setOp } from '../conformance/opFixtures';
import { StalledReader } from '../helpers/stalledReader';
import { SyncClient, converge } from '../helpers/syncClients';
import { TestClient, makeToken, metric, spawnServer, startTestServer, tempDir, type TestServer } from '../helpers/syncServer';

const HIGH_WATER = 512 * 1024;
/** DEFAULT_CONNECTION_LIMITS.outLowWater: a stalled socket backs up past it. */
const DEFAULT_LOW_WATER = DEFAULT_CONNECTION_LIMITS.outLowWater;
const LOW_WATER = 128 * 1024;
/** The big space: batches of 16 ops of 16 KB values (each batch over the coalescing budget: a frame alone). */
const BATCHES = 48;
const OPS_PER_BATCH = 16;
const VALUE_BYTES = 16 * 1024;
/** One frame: the ops' JSON (values and ids) plus the frame's own fields. */
const MAX_FRAME_BYTES = OPS_PER_BATCH * (VALUE_BYTES + 200) + 200;
const WAIT_MS = 30_000;

/** A metric's value; 0 while the server has not reported it yet. */
async function metricOr0(url: string, name: string): Promise<number> {
  return metric(url, name).catch(() => 0);
}

/** Polls `probe` until it returns a value `done` accepts; fails with `what` after WAIT_MS. */
async function until<T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const v = await probe();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS} ms (last ${JSON.stringify(v)})`);
    // Polling interval of a metrics probe, not a synchronisation.
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Writes the big space through a writer socket: BATCHES batches on one tree, each acknowledged. */
async function writeBigSpace(t: { syncUrl: string; admin: string }, spaceId: string): Promise<void> {
  const { client: w } = await TestClient.open(t.syncUrl, t.admin, ['big']);
  await w.subscribe(spaceId);
  const tree = newVertexId();
  const value = 'x'.repeat(VALUE_BYTES);
  let c = 1;
  for (let b = 0; b < BATCHES; b++) {
    const ops = b === 0 ? [rootOp(tree, c++, 'big')] : [];
    while (ops.length < OPS_PER_BATCH) ops.push(setOp(c, 'big', tree, `k${c++}`, value));
    await w.ack(w.sendOps(spaceId, tree, ops));
  }
  await w.close();
}

/** The resident set of a process, from /proc (Linux). */
function rssBytes(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) * 1024;
}

/** RSS the server may gain for STALLED_SOCKETS stalled readers (before the bound: about 5.5 MB each). */
const STALLED_SOCKETS = 100;
const MAX_RSS_GROWTH = 128 * 1024 * 1024;

describe('team server: clients that stop reading', function () {
  this.timeout(120_000);
  let t: TestServer | undefined;
  let dir: string;
  const readers: StalledReader[] = [];
  const syncClients: SyncClient[] = [];

  beforeEach(() => (dir = tempDir('spaces-slow-')));
  afterEach(async () => {
    for (const r of readers.splice(0)) r.destroy();
    await Promise.all(syncClients.splice(0).map((c) => c.close()));
    await t?.stop();
    t = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('hold at most the high-water mark plus one frame each, share the catch-up bytes, and others keep syncing', async function () {
    const N = 20;
    t = await startTestServer({ connectionLimits: { outHighWater: HIGH_WATER, outLowWater: LOW_WATER, slowConsumerMs: 10 * 60_000 } });
    const server = t;
    const big = await server.createSpace('Big');
    await writeBigSpace({ syncUrl: server.server.syncUrl, admin: server.admin }, big);
    const reader = server.token('read');
    for (let i = 0; i < N; i++) readers.push(await StalledReader.subscribeAndStall(server.server.url, reader, big, 0, `stalled${i}`));
    assert.ok(readers.every((r) => r.accepted));

    // Every stalled socket fills the kernel's buffers, then backs up in the server.
    let maxQueued = 0;
    const url = server.server.url;
    await until('the stalled sockets back up', () => metricOr0(url, 'spaces_server_bytes_queued'), (q) => q >= N * LOW_WATER);
    const sample = async (): Promise<void> => {
      maxQueued = Math.max(maxQueued, await metric(url, 'spaces_server_socket_bytes_queued_max'));
    };
    await sample();

    // Meanwhile: a reader of the same space gets all of it, and two editors sync live.
    const fresh = await server.open(reader, ['fresh']);
    const { ops, synced } = await fresh.subscribe(big);
    assert.equal(synced.seq, BATCHES + 1);
    assert.ok(ops.reduce((n, m) => n + m.ops.length, 0) >= BATCHES * OPS_PER_BATCH);
    await sample();
    // Shared bytes: each of the space's BATCHES + 1 frames was read and encoded once; every
    // other socket was sent the same Buffer. Without sharing: a miss per frame per socket.
    const misses = await metric(url, 'spaces_server_catchup_cache_misses_total');
    const hits = await metric(url, 'spaces_server_catchup_cache_hits_total');
    assert.ok(misses <= BATCHES + 1, `${misses} catch-up frames encoded for a space of ${BATCHES + 1} batches`);
    assert.ok(hits >= N - 1, `only ${hits} catch-up frames came from the cache`);
    const small = await server.createSpace('Small');
    const writer = server.token('write');
    const a = await SyncClient.open(dir, 'a', url, writer, small);
    const b = await SyncClient.open(dir, 'b', url, writer, small);
    syncClients.push(a, b);
    const notes = a.space.createAppTree('notes', 'Notes');
    await converge([a, b]);
    for (let i = 0; i < 3; i++) {
      const item = notes.addItem(notes.rootId, { text: `while stalled ${i}` });
      await converge([a, b]);
      assert.equal((await b.space.openAppTree(notes.id)).getProp(item, 'text'), `while stalled ${i}`);
      await sample();
    }

    assert.ok(maxQueued > LOW_WATER, `the stalled sockets did not back up (max ${maxQueued})`);
    assert.ok(maxQueued <= HIGH_WATER + MAX_FRAME_BYTES, `a stalled socket has ${maxQueued} bytes queued (bound ${HIGH_WATER} + one frame of at most ${MAX_FRAME_BYTES})`);
    assert.equal(await metric(url, 'spaces_server_slow_consumers_closed_total'), 0);
    assert.ok((await metric(url, 'spaces_server_connections')) >= N, 'a stalled socket was closed before its time');
    if (this.test) this.test.title += ` [${N} stalled: at most ${(maxQueued / 1024).toFixed(0)} KiB queued for one, ${misses} frames encoded, ${hits} sent from the cache]`;
  });

  it('are closed with 4001 once nothing moved for slowConsumerMs; a reading client of the same space is not', async function () {
    const slowConsumerMs = 1_000;
    t = await startTestServer({ connectionLimits: { outHighWater: HIGH_WATER, outLowWater: LOW_WATER, slowConsumerMs, closeGraceMs: 500 } });
    const server = t;
    const big = await server.createSpace('Big');
    await writeBigSpace({ syncUrl: server.server.syncUrl, admin: server.admin }, big);
    const reader = server.token('read');
    const url = server.server.url;
    const stalled = await StalledReader.subscribeAndStall(url, reader, big, 0, 'stalled');
    readers.push(stalled);
    const stalledAt = Date.now();
    const fresh = await server.open(reader, ['fresh']);
    await fresh.subscribe(big);

    await until('the slow consumer is closed', () => metricOr0(url, `spaces_server_closes_total{code="${CloseCode.slowConsumer}"}`), (n) => n >= 1);
    const closedAfter = Date.now() - stalledAt;
    assert.ok(closedAfter >= slowConsumerMs, `closed after ${closedAfter} ms, before its ${slowConsumerMs} ms`);
    assert.equal(await metric(url, 'spaces_server_slow_consumers_closed_total'), 1);
    // The server lets go of it: the connection is gone from its count at once, and the TCP
    // connection ends after the close grace (seen once the client reads again: what the kernel
    // held, then the end; the close frame too unless it was still queued in the server).
    await until('the server forgets the socket', () => metric(url, 'spaces_server_connections'), (n) => n === 1);
    stalled.resume();
    await until('the TCP connection ends', () => Promise.resolve(stalled.isEnded), (e) => e);
    if (stalled.closeCode !== undefined) assert.equal(stalled.closeCode, CloseCode.slowConsumer);
    assert.equal(fresh.isClosed, false);
  });

  it(`${STALLED_SOCKETS} stalled readers of one token add little to the RSS of the server process (default limits)`, async function () {
    const admin = makeToken(dir, 'admin').token;
    const reader = makeToken(dir, 'read').token;
    const s = await spawnServer(dir);
    try {
      const res = await fetch(`${s.url}/v1/spaces`, { method: 'POST', headers: { Authorization: `Bearer ${admin}` }, body: JSON.stringify({ name: 'Big' }) });
      const big = ((await res.json()) as { id: string }).id;
      await writeBigSpace({ syncUrl: s.syncUrl, admin }, big);
      const pid = s.child.pid as number;
      const before = rssBytes(pid);
      let peak = before;
      for (let i = 0; i < STALLED_SOCKETS; i += 10) {
        const batch = await Promise.all(Array.from({ length: 10 }, (_, j) => StalledReader.subscribeAndStall(s.url, reader, big, 0, `s${i + j}`)));
        readers.push(...batch);
        peak = Math.max(peak, rssBytes(pid));
      }
      const grown = (): string => `the server's RSS grew by ${((peak - before) / 1048576).toFixed(0)} MiB for ${STALLED_SOCKETS} stalled sockets`;
      assert.ok(peak - before < MAX_RSS_GROWTH, grown());
      // And once every socket has backed up (its catch-up waits for a drain that does not come).
      await until('the stalled sockets back up', () => metricOr0(s.url, 'spaces_server_bytes_queued'), (q) => q >= STALLED_SOCKETS * DEFAULT_LOW_WATER);
      peak = Math.max(peak, rssBytes(pid));
      const growth = peak - before;
      assert.ok(growth < MAX_RSS_GROWTH, grown());
      const health = await fetch(`${s.url}/healthz`);
      assert.equal(health.status, 200);
      if (this.test) this.test.title += ` [RSS +${(growth / 1048576).toFixed(0)} MiB]`;
    } finally {
      for (const r of readers.splice(0)) r.destroy();
      s.child.kill('SIGTERM');
      await s.exited;
    }
  });
});
