/**
 * A client that floods 10,000 batches as fast as it can is rate-limited and then closed with 4429,
 * while the server's heap stays bounded and other clients keep being served. The server runs as
 * a child process (dist/server.js, default limits); its heap is read from /metrics.
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import { CloseCode } from '../../src/protocol/messages';
import { DEFAULT_RATE_LIMITS } from '../../src/server/rateLimit';
import { newVertexId } from '../../src/spaces/appTree';
import { encodeOps } from '../../src/spaces/opCodec';
import { makeOps, rootOp } from '../conformance/opFixtures';
import { TestClient, makeToken, metric, spawnServer, tempDir, type ChildServer } from '../helpers/syncServer';

const FLOOD_BATCHES = 10_000;
const OPS_PER_BATCH = 100;
/** Heap growth allowed while 10k batches (about 40 MB of frames) are thrown at the server. */
const MAX_HEAP_GROWTH = 48 * 1024 * 1024;

describe('team server: a flooding client', function () {
  this.timeout(120_000);
  let dir: string;
  let server: ChildServer | undefined;
  const clients: TestClient[] = [];

  beforeEach(() => (dir = tempDir()));
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    if (server && server.child.exitCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    server = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is rate-limited, then closed with 4429; heap bounded; others served', async function () {
    const admin = makeToken(dir, 'admin').token;
    const s = await spawnServer(dir);
    server = s;
    const res = await fetch(`${s.url}/v1/spaces`, { method: 'POST', headers: { Authorization: `Bearer ${admin}` }, body: JSON.stringify({ name: 'Flood' }) });
    const spaceId = ((await res.json()) as { id: string }).id;

    const calm = (await TestClient.open(s.syncUrl, admin, ['calm'])).client;
    const flooder = (await TestClient.open(s.syncUrl, admin, ['flood'])).client;
    clients.push(calm, flooder);
    await calm.subscribe(spaceId);
    await flooder.subscribe(spaceId);
    const heapBefore = await metric(s.url, 'process_heap_used_bytes');

    // 10k distinct batches, all queued on the socket at once.
    const tree = newVertexId();
    const frames: string[] = [];
    for (let i = 0; i < FLOOD_BATCHES; i++) {
      const ops = i === 0 ? [rootOp(tree, 1, 'flood'), ...makeOps(tree, 'flood', 2, OPS_PER_BATCH - 1)] : makeOps(tree, 'flood', 1 + i * OPS_PER_BATCH, OPS_PER_BATCH);
      frames.push(JSON.stringify({ type: 'ops', spaceId, treeId: tree, ops: encodeOps(ops), ref: i + 1 }));
    }
    const bytes = frames.reduce((n, f) => n + f.length, 0);
    const t0 = Date.now();
    for (const f of frames) flooder.ws.send(f);

    // While it floods: the server's heap, sampled, and a calm client's writes still go through.
    let heapMax = heapBefore;
    let calmAcks = 0;
    const calmTree = newVertexId();
    let counter = 1;
    while (!flooder.isClosed) {
      heapMax = Math.max(heapMax, await metric(s.url, 'process_heap_used_bytes'));
      const ops = counter === 1 ? [rootOp(calmTree, counter++, 'calm')] : makeOps(calmTree, 'calm', counter++, 1);
      await calm.ack(calm.sendOps(spaceId, calmTree, ops));
      calmAcks++;
      // Pacing, not synchronisation: the calm client stays well under its own rate limit.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const closed = await flooder.whenClosed();
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(closed.code, CloseCode.rateLimited, `closed with ${closed.code} ${closed.reason}`);
    assert.match(closed.reason, /rate limit/);
    const limited = flooder.received.filter((m) => m.type === 'error' && m.code === 'rate-limited');
    assert.equal(limited.length, 1, 'told to slow down once');
    const acked = flooder.received.filter((m) => m.type === 'ack').length;
    // At most what the buckets allow over the flood's duration (the ops bucket binds here).
    const L = DEFAULT_RATE_LIMITS;
    const allowed = Math.min(L.messageBurst + L.messagesPerSecond * seconds, (L.opsBurst + L.opsPerSecond * seconds) / OPS_PER_BATCH);
    assert.ok(acked <= allowed * 1.1 && acked < FLOOD_BATCHES / 2, `${acked} of ${FLOOD_BATCHES} batches got through the limit (it allows ${Math.round(allowed)} in ${seconds.toFixed(1)} s)`);
    assert.ok(calmAcks > 0, 'the calm client was not served while the flood went on');

    heapMax = Math.max(heapMax, await metric(s.url, 'process_heap_used_bytes'));
    const growth = heapMax - heapBefore;
    assert.ok(growth < MAX_HEAP_GROWTH, `server heap grew by ${(growth / 1048576).toFixed(1)} MiB`);
    assert.ok((await metric(s.url, 'spaces_server_rate_limited_total')) >= 1);
    const health = await fetch(`${s.url}/healthz`);
    assert.equal(health.status, 200);
    if (this.test) this.test.title += ` [${acked} batches acked, flood ${(bytes / 1048576).toFixed(0)} MiB over ${seconds.toFixed(1)} s, heap +${(growth / 1048576).toFixed(1)} MiB, ${calmAcks} calm acks]`;
  });
});
