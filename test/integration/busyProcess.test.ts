/**
 * A busy process is not a dead peer. The client (SpaceManager + FileLayer + ServerLayer) and the
 * real server run in this one process with short heartbeats; the process is then kept busy
 * (a synchronous loop, as building a big tree or storing a catch-up keeps it) for many heartbeat
 * and liveness periods. Neither side may drop the other for it: the client's silence and the
 * server's missing pongs were the process's own stall, not the peer's.
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import { silentLogger } from '../../src/server/log';
import { startServer, type RunningServer } from '../../src/server/server';
import { makeToken, tempDir } from '../helpers/syncServer';
import { SyncClient, freePort } from '../helpers/syncClients';

const PING_MS = 100;
const CLIENT = { heartbeatMs: 50, deadAfterMs: 200, connectTimeoutMs: 300 };
/** How long the process is kept busy: many times every liveness period above. */
const BUSY_MS = 2_000;

/** Keeps this process's event loop busy, as a long synchronous build does (failure injection). */
function keepBusy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy
  }
}

describe('liveness: a busy process is not a dead peer', function () {
  this.timeout(60_000);
  let dir: string;
  let server: RunningServer;
  let client: SyncClient | undefined;

  beforeEach(async () => {
    dir = tempDir('spaces-busy-');
    const data = `${dir}/server`;
    const admin = makeToken(data, 'admin', '*', { user: 'admin' }).token;
    server = await startServer({ dataDir: data, port: await freePort(), logger: silentLogger, pingIntervalMs: PING_MS });
    const res = await fetch(`${server.url}/v1/spaces`, { method: 'POST', headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'Busy' }) });
    const spaceId = ((await res.json()) as { id: string }).id;
    client = await SyncClient.open(dir, 'c', server.url, makeToken(data, 'write').token, spaceId, { timings: CLIENT });
  });

  afterEach(async () => {
    await client?.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a client and the server in a process busy for many liveness periods keep their connection', async function () {
    const c = client as SyncClient;
    await c.server.whenReady();
    const drops: string[] = [];
    c.server.onStateChange((s) => {
      if (s.status === 'offline' || s.status === 'error') drops.push(s.reason ?? s.status);
    });
    const connects = c.server.stats.connects;
    for (let round = 0; round < 3; round++) {
      keepBusy(BUSY_MS);
      // After the stall: timers that came late run, then the socket is read; a round trip proves it still works.
      await c.server.refresh();
      const notes = c.space.createAppTree('notes', `after stall ${round}`);
      notes.addItem(notes.rootId, { text: 'still here' });
      await c.settle();
    }
    assert.deepEqual(drops, []);
    assert.equal(c.server.stats.connects, connects);
    assert.equal((server.metrics.closes.get('4408') ?? 0), 0, 'the server closed a socket for a missing pong');
  });
});
