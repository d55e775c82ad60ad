/**
 * Token changes reach open sockets within a second: `spaces-server token revoke` (another process)
 * closes a writing client with 4401; `token set-role … read` makes its writes `forbidden` and
 * stores none of them while it keeps reading; an expiry closes the socket at its time; a token
 * that no longer covers a subscribed space ends that subscription with `forbidden`.
 */
import Database from 'better-sqlite3';
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CloseCode, type AckMessage, type ErrorMessage } from '../../src/protocol/messages';
import { DB_FILE } from '../../src/server/store/database';
import { newVertexId } from '../../src/spaces/appTree';
import { decodeOps } from '../../src/spaces/opCodec';
import { opKey, type Op } from '../../src/spaces/ops';
import { makeOps, rootOp } from '../conformance/opFixtures';
import { runScript } from '../helpers/cli';
import { SERVER_JS, TestClient, makeToken, spawnServer, startTestServer, tempDir, withStore, type ChildServer, type TestServer } from '../helpers/syncServer';

/**
 * The bound on "within 1 s": the server polls every 250 ms, so a change is seen after at most one
 * interval plus a commit and a socket round trip — well under this on a loaded 2-core machine.
 */
const EFFECT_BOUND_MS = 1_000;
const OPS_PER_BATCH = 20;
const DAY_MS = 86_400_000;

async function serverCli(args: string[]): Promise<number> {
  const r = await runScript(SERVER_JS, args);
  assert.equal(r.code, 0, `spaces-server ${args.join(' ')}: ${r.stderr}`);
  return performance.now(); // the command has exited: its commit is durable
}

async function createSpace(url: string, admin: string): Promise<string> {
  const res = await fetch(`${url}/v1/spaces`, { method: 'POST', headers: { Authorization: `Bearer ${admin}` }, body: JSON.stringify({ name: 'Tokens' }) });
  assert.equal(res.status, 201);
  return ((await res.json()) as { id: string }).id;
}

/** Writes one batch after another (each after the previous answer) under one peer id. */
class Writer {
  private counter = 1;
  readonly tree = newVertexId();
  readonly acked: Op[][] = [];
  readonly refused: Op[][] = [];

  constructor(
    readonly client: TestClient,
    readonly spaceId: string,
    readonly peer: string,
  ) {}

  /** Sends one batch and waits for its answer. */
  async write(): Promise<AckMessage | ErrorMessage> {
    const ops = this.counter === 1 ? [rootOp(this.tree, 1, this.peer), ...makeOps(this.tree, this.peer, 2, OPS_PER_BATCH - 1)] : makeOps(this.tree, this.peer, this.counter, OPS_PER_BATCH);
    this.counter += OPS_PER_BATCH;
    const r = await this.client.result(this.client.sendOps(this.spaceId, this.tree, ops));
    (r.type === 'ack' ? this.acked : this.refused).push(ops);
    return r;
  }
}

describe('team server: token changes on open sockets', function () {
  this.timeout(120_000);
  let dir: string;
  let server: ChildServer | undefined;
  const clients: TestClient[] = [];

  beforeEach(() => (dir = tempDir()));
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    server = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('token revoke (CLI, another process) closes a writing socket with 4401 within 1 s', async () => {
    const admin = makeToken(dir, 'admin').token;
    server = await spawnServer(dir);
    const spaceId = await createSpace(server.url, admin);
    const latencies: number[] = [];
    for (let round = 0; round < 5; round++) {
      const writer = makeToken(dir, 'write', '*', { user: `writer-${round}` });
      const { client } = await TestClient.open(server.syncUrl, writer.token, [`w${round}`]);
      clients.push(client);
      const closedAt = client.closed.then((e) => ({ ...e, at: performance.now() }));
      await client.subscribe(spaceId);
      const w = new Writer(client, spaceId, `w${round}`);
      // Keep writing until the socket closes; the revoke runs once a few batches went through.
      let startRevoke = (): void => undefined;
      const writingWell = new Promise<void>((resolve) => (startRevoke = resolve));
      const writing = (async () => {
        while (!client.isClosed) {
          try {
            await w.write();
          } catch {
            return; // closed while waiting for the answer
          }
          if (w.acked.length === 3) startRevoke();
        }
      })();
      void writing.then(startRevoke); // closed early: the assertions below say why
      await writingWell;
      const revokedAt = await serverCli(['token', 'revoke', '--data', dir, writer.id]);
      await client.whenClosed(10 * EFFECT_BOUND_MS); // a readable failure instead of a hang
      const closed = await closedAt;
      await writing;
      assert.equal(closed.code, CloseCode.unauthorized);
      assert.match(closed.reason, /token revoked/);
      latencies.push(Math.round(closed.at - revokedAt));
      assert.equal(w.refused.length, 0, 'no write was refused before the close: it was cut off, not answered');
      const http = await fetch(`${server.url}/v1/spaces`, { headers: { Authorization: `Bearer ${writer.token}` } });
      assert.equal(http.status, 401, 'HTTP checks the token on every request');
    }
    console.log(JSON.stringify({ bench: 'token-revoke-close', pollMs: 250, latencyMs: latencies }));
    for (const ms of latencies) assert.ok(ms < EFFECT_BOUND_MS, `the close came ${ms} ms after the revoke command exited`);
  });

  it('token set-role read (CLI): writes get forbidden within 1 s and store nothing; the socket keeps reading', async () => {
    const admin = makeToken(dir, 'admin').token;
    const writer = makeToken(dir, 'write', '*', { user: 'demoted' });
    server = await spawnServer(dir);
    const spaceId = await createSpace(server.url, admin);
    const { client } = await TestClient.open(server.syncUrl, writer.token, ['w1']);
    clients.push(client);
    await client.subscribe(spaceId);
    const w = new Writer(client, spaceId, 'w1');
    assert.equal((await w.write()).type, 'ack');

    const changedAt = await serverCli(['token', 'set-role', '--data', dir, '--role', 'read', writer.id]);
    let first: ErrorMessage | undefined;
    while (!first) {
      const r = await w.write();
      if (r.type === 'error') first = r;
      else assert.ok(performance.now() - changedAt < EFFECT_BOUND_MS, `a write was still acknowledged ${Math.round(performance.now() - changedAt)} ms after set-role exited`);
    }
    const latency = Math.round(performance.now() - changedAt);
    console.log(JSON.stringify({ bench: 'token-set-role-forbidden', pollMs: 250, latencyMs: latency, ackedAfterChange: w.acked.length - 1 }));
    assert.equal(first.code, 'forbidden');
    assert.match(first.message, /may only read/);
    // From then on every write is refused, and the socket stays open.
    for (let i = 0; i < 3; i++) assert.equal((await w.write()).type, 'error');
    assert.ok(!client.isClosed);

    // It still reads: an admin's live batch reaches it.
    const { client: adminClient } = await TestClient.open(server.syncUrl, admin, ['a1']);
    clients.push(adminClient);
    await adminClient.subscribe(spaceId);
    const other = new Writer(adminClient, spaceId, 'a1');
    assert.equal((await other.write()).type, 'ack');
    const live = await client.until((m) => m.type === 'ops' && m.treeId === other.tree, 'the admin batch, live');
    assert.equal(live.type, 'ops');

    // Nothing refused was stored; everything acknowledged was.
    const { client: reader } = await TestClient.open(server.syncUrl, admin, ['r1']);
    clients.push(reader);
    const { ops } = await reader.subscribe(spaceId);
    const stored = new Set(ops.flatMap((m) => decodeOps(m.ops, m.treeId, 'test').map(opKey)));
    for (const b of w.refused) for (const op of b) assert.ok(!stored.has(opKey(op)), `refused op ${opKey(op)} was stored`);
    for (const b of w.acked) for (const op of b) assert.ok(stored.has(opKey(op)), `acknowledged op ${opKey(op)} is missing`);
  });

  it('token set-role prints the updated token; an unknown id exits 1, a bad role or a missing id 2', async () => {
    const t = makeToken(dir, 'write', '*', { user: 'carol' });
    const r = await runScript(SERVER_JS, ['token', 'set-role', '--data', dir, '--role', 'admin', t.id]);
    assert.equal(r.code, 0, r.stderr);
    const printed = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(printed.id, t.id);
    assert.equal(printed.role, 'admin');
    assert.equal(printed.token, undefined, 'never the token itself');
    assert.equal(withStore(dir, (s) => s.tokens.get(t.id)?.role), 'admin');
    const unknown = await runScript(SERVER_JS, ['token', 'set-role', '--data', dir, '--role', 'read', 'nope']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no token with id "nope"/);
    for (const args of [['--role', 'root', t.id], ['--role', 'read'], ['--role', 'read', t.id, 'extra']]) {
      const bad = await runScript(SERVER_JS, ['token', 'set-role', '--data', dir, ...args]);
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
    }
    assert.equal(withStore(dir, (s) => s.tokens.get(t.id)?.role), 'admin', 'refused commands changed nothing');
  });
});

describe('team server: token expiry and scope on open sockets (in process)', function () {
  this.timeout(60_000);
  let t: TestServer;
  beforeEach(async () => (t = await startTestServer()));
  afterEach(() => t.stop());

  it('a token that expires while connected is closed with 4401 at its expiry, not at the next ping', async () => {
    const spaceId = await t.createSpace();
    const expiresInMs = 1_500;
    const token = withStore(t.dir, (s) => s.tokens.create({ user: 'brief', space: '*', role: 'write', expiresDays: 1 }, Date.now() - DAY_MS + expiresInMs).token);
    const client = await t.open(token);
    await client.subscribe(spaceId);
    const closed = await client.whenClosed(expiresInMs + 10_000);
    assert.equal(closed.code, CloseCode.unauthorized);
    assert.match(closed.reason, /token expired/);
  });

  it('a token that no longer covers a subscribed space ends that subscription with forbidden; the socket stays', async () => {
    const a = await t.createSpace('A');
    const b = await t.createSpace('B');
    const reader = makeToken(t.dir, 'read', a, { user: 'scoped' });
    const client = await t.open(reader.token);
    await client.subscribe(a);
    // Re-scope the token through a second connection to the database, as another tool would.
    const db = new Database(path.join(t.dir, DB_FILE));
    try {
      db.prepare('UPDATE tokens SET space = ? WHERE id = ?').run(b, reader.id);
    } finally {
      db.close();
    }
    const ended = await client.next('error');
    assert.equal(ended.code, 'forbidden');
    assert.equal(ended.spaceId, a);
    assert.match(ended.message, /no longer gives access/);
    // The socket is open and the new scope works.
    await client.subscribe(b);
    assert.ok(!client.isClosed);
    // Later batches of A do not reach it.
    const { client: adminClient } = await TestClient.open(t.server.syncUrl, t.admin, ['a1']);
    t.clients.push(adminClient);
    await adminClient.subscribe(a);
    const tree = newVertexId();
    await adminClient.ack(adminClient.sendOps(a, tree, [rootOp(tree, 1, 'a1')]));
    await client.subscribe(b); // a round trip of its own, after the batch of A was fanned out
    assert.ok(!client.received.some((m) => m.type === 'ops' && m.spaceId === a && m.treeId === tree), 'a batch of A reached the socket after its subscription ended');
  });
});
