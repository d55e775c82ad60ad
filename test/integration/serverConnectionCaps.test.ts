/**
 * Connection caps: the (N+1)th connection in total is answered 503, per address 429 (both with
 * Retry-After and a JSON reason, before the handshake), per token it is closed with 4002 after
 * hello. Each is counted in /metrics. The real client (SyncConnection, ServerLayer) takes them as
 * "later": it waits at least what Retry-After asks (within its backoff cap), stays offline
 * (never stopped), and syncs once a place is free.
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import { SyncConnection, type ConnectionDown } from '../../src/persistence/server/connection';
import { CloseCode } from '../../src/protocol/messages';
import { RETRY_AFTER_ADDRESS_S, RETRY_AFTER_FULL_S } from '../../src/server/connectionCaps';
import { StalledReader } from '../helpers/stalledReader';
import { SyncClient, waitForState } from '../helpers/syncClients';
import { TestClient, makeToken, metric, spawnServer, startTestServer, tempDir, type TestServer } from '../helpers/syncServer';

/** The refused upgrade's answer, read over a raw socket. */
async function refused(url: string): Promise<{ status: number; retryAfter: string | undefined; body: { error: string; reason: string } }> {
  const r = await StalledReader.connect(url);
  assert.notEqual(r.answer.status, 101, 'the upgrade was accepted');
  await r.whenEnded();
  return { status: r.answer.status, retryAfter: r.answer.headers['retry-after'], body: JSON.parse(r.answer.body) as { error: string; reason: string } };
}

describe('team server: connection caps', function () {
  this.timeout(60_000);
  let t: TestServer | undefined;
  let dir: string;
  const disposables: Array<{ close(): unknown }> = [];

  beforeEach(() => (dir = tempDir('spaces-caps-')));
  afterEach(async () => {
    for (const d of disposables.splice(0).reverse()) await d.close();
    await t?.stop();
    t = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses the connection over the total with 503, Retry-After and a JSON reason; admits again once one closed', async function () {
    t = await startTestServer({ connectionCaps: { total: 2 } });
    const a = await t.open(t.admin, ['a']);
    await t.open(t.admin, ['b']);
    const r = await refused(t.server.url);
    assert.equal(r.status, 503);
    assert.equal(r.retryAfter, String(RETRY_AFTER_FULL_S));
    assert.equal(r.body.reason, 'total');
    assert.match(r.body.error, /maximum of 2 connections/);
    assert.equal(await metric(t.server.url, 'spaces_server_connections_refused_total{reason="total"}'), 1);
    await a.close();
    await t.open(t.admin, ['c']);
  });

  it('refuses the connection over the per-address cap with 429', async function () {
    t = await startTestServer({ connectionCaps: { perAddress: 2 } });
    await t.open(t.admin, ['a']);
    await t.open(t.admin, ['b']);
    const r = await refused(t.server.url);
    assert.equal(r.status, 429);
    assert.equal(r.retryAfter, String(RETRY_AFTER_ADDRESS_S));
    assert.equal(r.body.reason, 'address');
    assert.equal(await metric(t.server.url, 'spaces_server_connections_refused_total{reason="address"}'), 1);
  });

  it('closes the connection over the per-token cap with 4002 after hello; other tokens still get in', async function () {
    t = await startTestServer({ connectionCaps: { perToken: 2 } });
    const reader = t.token('read');
    const first = await t.open(reader, ['a']);
    await t.open(reader, ['b']);
    const third = await t.open(t.admin, ['c']);
    assert.equal(third.isClosed, false);
    const over = await StalledReader.connect(t.server.url);
    assert.equal(over.answer.status, 101);
    over.send({ type: 'hello', protocol: 1, token: reader, peerIds: ['d'] });
    await within(10_000, over.whenEnded(), 'the server to close the connection over the cap');
    assert.equal(over.closeCode, CloseCode.tooManyConnections);
    assert.equal(await metric(t.server.url, 'spaces_server_connections_refused_total{reason="token"}'), 1);
    // A place frees up when one of the token's connections closes.
    await first.close();
    await t.open(reader, ['e']);
  });

  it('the client waits what Retry-After asks (up to its backoff cap) after a 429', async function () {
    t = await startTestServer({ connectionCaps: { perAddress: 1 } });
    await t.open(t.admin, ['holder']);
    const timings = { backoffBaseMs: 10, backoffMaxMs: 5_000, connectTimeoutMs: 5_000, heartbeatMs: 1_000, deadAfterMs: 5_000 };
    const conn = new SyncConnection({ url: t.server.url, token: t.admin, peerIds: () => ['late'], timings });
    disposables.push(conn);
    const down = new Promise<ConnectionDown>((resolve) => conn.onDown(resolve));
    conn.start();
    const d = await within(10_000, down, 'the refused connection to be reported');
    assert.equal(d.code, 429);
    assert.equal(d.fatal, false);
    // Full jitter alone would be at most backoffBaseMs (10 ms) on a first attempt.
    assert.equal(d.retryInMs, Math.min(RETRY_AFTER_ADDRESS_S * 1000, timings.backoffMaxMs));
  });

  it('a ServerLayer over the per-token cap is offline, not stopped, and syncs once a place is free', async function () {
    t = await startTestServer({ connectionCaps: { perToken: 1 } });
    const server = t;
    const space = await server.createSpace('Capped');
    const writer = server.token('write');
    // B has a clone of the space (a file), made before A came.
    const clone = await SyncClient.open(dir, 'b', server.server.url, writer, space);
    await clone.settle();
    await clone.close();
    const a = await SyncClient.open(dir, 'a', server.server.url, writer, space);
    disposables.push(a);
    const notes = a.space.createAppTree('notes', 'Notes');
    const item = notes.addItem(notes.rootId, { text: 'from a' });
    await a.settle();
    // B opens its clone with the same token: closed with 4002 after hello, again after each backoff.
    const b = await SyncClient.open(dir, 'b', server.server.url, writer, space, { timings: { loadTimeoutMs: 500 } });
    disposables.push(b);
    await waitForUntil(async () => (await metric(server.server.url, 'spaces_server_connections_refused_total{reason="token"}')) >= 2);
    assert.equal(b.server.state.status, 'offline');
    assert.equal(b.server.stopped, false);
    // A goes: B gets in by itself and gets A's notes.
    disposables.splice(disposables.indexOf(a), 1);
    await a.close();
    await waitForState(b.server, 'connected');
    await b.settle();
    assert.equal((await b.space.openAppTree(notes.id)).getProp(item, 'text'), 'from a');
  });
});

describe('spaces-server serve: connection cap flags', function () {
  this.timeout(60_000);

  it('--max-connections and --max-connections-per-token set the caps (with --slow-consumer-seconds given too)', async function () {
    const dir = tempDir('spaces-caps-cli-');
    const admin = makeToken(dir, 'admin').token;
    const s = await spawnServer(dir, ['--max-connections', '3', '--max-connections-per-token', '1', '--slow-consumer-seconds', '5']);
    const clients: TestClient[] = [];
    try {
      clients.push((await TestClient.open(s.syncUrl, admin, ['a'])).client);
      const second = await TestClient.connect(s.syncUrl);
      clients.push(second);
      second.send({ type: 'hello', protocol: 1, token: admin, peerIds: ['b'] });
      assert.equal((await second.whenClosed()).code, CloseCode.tooManyConnections);
      clients.push(await TestClient.connect(s.syncUrl), await TestClient.connect(s.syncUrl));
      assert.equal((await refused(s.url)).status, 503);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      s.child.kill('SIGTERM');
      await s.exited;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a cap that is not a positive integer (usage error, exit 2)', async function () {
    const dir = tempDir('spaces-caps-cli-');
    try {
      await assert.rejects(spawnServer(dir, ['--max-connections-per-address', '0']), /must be an integer from 1/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** `p`, or a readable failure naming `what` after `ms` (a hang is a failure, not a timeout). */
async function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`waited ${ms} ms for ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `cond` until true (bounded); the interval paces a metrics probe, it does not synchronise. */
async function waitForUntil(cond: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
