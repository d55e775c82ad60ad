/**
 * Several built servers (dist/server.js) over one real PostgreSQL (a private one, test/helpers/
 * postgres.ts): batches accepted by one process reach the subscribers of the others live, in seq
 * order and once; two processes writing one space at the same instant leave no duplicate or
 * missing seq; tokens and revocations take effect on every process; a client whose process is
 * SIGKILLed reconnects to another through a round-robin proxy and loses nothing acknowledged;
 * and a PostgreSQL restart under load makes the processes unhealthy, refuse writes with 4503,
 * and recover on their own.
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import { CloseCode, type ServerOpsMessage } from '../../src/protocol/messages';
import { recording } from '../helpers/recordingSyncState';
import type { AppTree } from '../../src/spaces/appTree';
import { opKey } from '../../src/spaces/ops';
import { makeOps, newTreeId } from '../conformance/opFixtures';
import { TestPostgres } from '../helpers/postgres';
import { RoundRobinProxy, startCluster, type Cluster } from '../helpers/postgresCluster';
import { SyncClient, converge } from '../helpers/syncClients';
import { TestClient, tempDir } from '../helpers/syncServer';

/** Batches each writer sends in the live fan-out case. */
const BATCHES = 30;
const OPS_PER_BATCH = 3;
/** SIGKILL rounds. */
const KILLS = 10;
/** Acknowledged ops to wait for between kills. */
const ACKED_PER_ROUND = 60;
const WAIT_MS = 30_000;

/** Resolves when `cond` holds (checked every few ms); rejects after `timeoutMs`. */
async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function health(url: string): Promise<{ status: number; body: { ok: boolean; store: { ok: boolean }; fanout: { ok: boolean } } }> {
  const r = await fetch(`${url}/healthz`);
  return { status: r.status, body: (await r.json()) as { ok: boolean; store: { ok: boolean }; fanout: { ok: boolean } } };
}

/** Every op of `tree` that `confirmed` lists is stored in PostgreSQL. */
async function assertStored(cluster: Cluster, spaceId: string, confirmed: Map<string, Set<string>>, what: string): Promise<void> {
  for (const [treeId, keys] of confirmed) {
    const stored = new Set((await cluster.store.loadTreeOps(spaceId, treeId)).map(opKey));
    const lost = [...keys].filter((k) => !stored.has(k));
    assert.deepEqual(lost.slice(0, 5), [], `${what}: ${lost.length} confirmed ops of tree ${treeId} are not in PostgreSQL`);
  }
}

describe('team server: several processes on one PostgreSQL', function () {
  this.timeout(300_000);
  let pg: TestPostgres;
  let cluster: Cluster | undefined;
  const sockets: TestClient[] = [];
  const clients: SyncClient[] = [];
  let proxy: RoundRobinProxy | undefined;
  let dir: string | undefined;

  before(async () => {
    pg = await TestPostgres.start();
  });
  after(async () => {
    await pg.stop();
  });
  afterEach(async () => {
    await Promise.all(sockets.splice(0).map((s) => s.close()));
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await proxy?.close();
    proxy = undefined;
    await cluster?.stop();
    cluster = undefined;
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  async function socket(url: string, token: string, peer: string): Promise<TestClient> {
    const { client } = await TestClient.open(url, token, [peer]);
    sockets.push(client);
    return client;
  }

  it('three processes: batches written on two of them reach subscribers on all three live, in seq order, each once, with gap-free seqs', async () => {
    cluster = await startCluster(pg, 3);
    const [a, b, c] = cluster.procs;
    const spaceId = await cluster.createSpace(0);
    const { token } = await cluster.token('write', 'writer');
    const readers = [await socket(a.syncUrl, token, 'ra'), await socket(b.syncUrl, token, 'rb'), await socket(c.syncUrl, token, 'rc')];
    for (const r of readers) assert.equal((await r.subscribe(spaceId)).synced.seq, 1);
    const wa = await socket(a.syncUrl, token, 'wa');
    const wb = await socket(b.syncUrl, token, 'wb');
    const tree = newTreeId('notes');
    // Both writers send all their batches at once: the two processes append to one space together.
    const refs = [wa, wb].map((w, i) => Array.from({ length: BATCHES }, (_, k) => w.sendOps(spaceId, tree, makeOps(tree, i === 0 ? 'wa' : 'wb', k * OPS_PER_BATCH + 1, OPS_PER_BATCH))));
    const acked: number[] = [];
    for (const [i, w] of [wa, wb].entries()) for (const ref of refs[i]) acked.push((await w.ack(ref)).seq);
    acked.sort((x, y) => x - y);
    const total = 2 * BATCHES;
    assert.deepEqual(
      acked,
      Array.from({ length: total }, (_, k) => k + 2),
      'every batch got its own seq, none skipped',
    );
    for (const [i, r] of readers.entries()) {
      const seen = new Map<string, number>();
      let last = 1;
      while (last < total + 1) {
        const m = (await r.next('ops')) as ServerOpsMessage;
        assert.ok(m.seq > last, `reader ${i}: seq ${m.seq} after ${last}`);
        last = m.seq;
        for (const op of m.ops) {
          const k = `${op[1]}@${op[2]}`;
          seen.set(k, (seen.get(k) ?? 0) + 1);
        }
      }
      assert.equal(seen.size, total * OPS_PER_BATCH, `reader ${i} got every op`);
      assert.ok([...seen.values()].every((n) => n === 1), `reader ${i} got an op twice`);
    }
    const stored = await cluster.store.batchesAfter(spaceId, 0, 10_000);
    assert.deepEqual(
      stored.map((x) => x.seq),
      Array.from({ length: total + 1 }, (_, k) => k + 1),
    );
    // Per-process metrics: the readers of b and c were served batches committed elsewhere.
    const remote = await (await fetch(`${c.url}/metrics`)).text();
    assert.match(remote, /^spaces_server_remote_batches_total ([1-9]\d*)$/m);
    assert.match(remote, /^spaces_server_fanout_up\{kind="postgres"\} 1$/m);
    assert.match(remote, /^spaces_server_fanout_lag_seconds_count [1-9]/m);
    const h = await health(b.url);
    assert.equal(h.status, 200);
    assert.equal(h.body.ok && h.body.store.ok && h.body.fanout.ok, true);
  });

  it('a token revoked through one process closes its sockets on every process', async () => {
    cluster = await startCluster(pg, 2);
    const spaceId = await cluster.createSpace(0);
    const { token, id } = await cluster.token('write', 'leaver');
    const onA = await socket(cluster.procs[0].syncUrl, token, 'pa');
    const onB = await socket(cluster.procs[1].syncUrl, token, 'pb');
    await onA.subscribe(spaceId);
    await onB.subscribe(spaceId);
    assert.equal(await cluster.store.tokens.revoke(id), true);
    assert.equal((await onA.whenClosed()).code, CloseCode.unauthorized);
    assert.equal((await onB.whenClosed()).code, CloseCode.unauthorized);
  });

  it(`SIGKILL of one process while clients write through all of them, ×${KILLS}: every acknowledged op is in PostgreSQL and on every client`, async () => {
    cluster = await startCluster(pg, 3);
    const running = cluster;
    proxy = await RoundRobinProxy.start(running.procs.map((p) => p.port));
    dir = tempDir('spaces-cluster-clients-');
    const spaceId = await running.createSpace(0, 'Kill');
    const { token } = await running.token('write', 'writer');
    const confirmed = new Map<string, Set<string>>();
    const front = proxy.url;
    const open = async (name: string): Promise<SyncClient> => {
      const c = await SyncClient.open(dir as string, name, front, token, spaceId, { wrapStore: (f) => recording(f, confirmed) });
      clients.push(c);
      return c;
    };
    const writers = [await open('a'), await open('b'), await open('c')];
    const notes = writers[0].space.createAppTree('notes', 'Notes');
    await converge(writers);
    const trees: AppTree[] = [notes, await writers[1].space.openAppTree(notes.id), await writers[2].space.openAppTree(notes.id)];
    let editing = true;
    const editor = async (tree: AppTree, who: string): Promise<number> => {
      let n = 0;
      while (editing) {
        tree.addItem(n % 5 === 0 ? tree.rootId : (tree.childIds(tree.rootId).at(-1) ?? tree.rootId), { text: `${who} ${n++}` });
        await new Promise((r) => setTimeout(r, 3));
      }
      return n;
    };
    const edits = Promise.all(trees.map((t, i) => editor(t, `w${i}`)));
    const ackedNow = (): number => writers.reduce((n, w) => n + w.server.stats.opsAcked, 0);
    try {
      for (let round = 0; round < KILLS; round++) {
        const before = ackedNow();
        await until(() => ackedNow() >= before + ACKED_PER_ROUND, `round ${round}: ${ACKED_PER_ROUND} more acknowledged ops`);
        const victim = round % running.procs.length;
        await running.kill(victim);
        await assertStored(running, spaceId, confirmed, `round ${round}`);
        await running.restart(victim);
      }
    } finally {
      editing = false;
    }
    const counts = await edits;
    assert.ok(
      counts.every((n) => n > 20),
      `too few edits: ${counts.join(', ')}`,
    );
    await converge(writers);
    const dump = await writers[0].dump();
    for (const w of writers.slice(1)) assert.deepEqual(await w.dump(), dump);
    await assertStored(running, spaceId, confirmed, 'at the end');
    const onServer = new Set((await running.store.loadTreeOps(spaceId, notes.id)).map(opKey));
    for (const t of trees) assert.equal(t.allOps().filter((op) => !onServer.has(opKey(op))).length, 0, 'every op of every client is in PostgreSQL');
  });

  it('PostgreSQL restarted under load: processes report unhealthy, refuse writes with 4503, and recover on their own', async () => {
    cluster = await startCluster(pg, 2);
    const running = cluster;
    const spaceId = await running.createSpace(0, 'Restart');
    const { token } = await running.token('write', 'writer');
    dir = tempDir('spaces-cluster-clients-');
    const confirmed = new Map<string, Set<string>>();
    const a = await SyncClient.open(dir, 'a', running.procs[0].url, token, spaceId, { wrapStore: (f) => recording(f, confirmed) });
    const b = await SyncClient.open(dir, 'b', running.procs[1].url, token, spaceId, { wrapStore: (f) => recording(f, confirmed) });
    clients.push(a, b);
    const notes = a.space.createAppTree('notes', 'Notes');
    await converge([a, b]);
    const bNotes = await b.space.openAppTree(notes.id);
    let editing = true;
    const editor = async (tree: AppTree, who: string): Promise<void> => {
      for (let n = 0; editing; n++) {
        tree.addItem(tree.rootId, { text: `${who} ${n}` });
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const edits = Promise.all([editor(notes, 'a'), editor(bNotes, 'b')]);
    const raw = await socket(running.procs[0].syncUrl, token, 'raw');
    await raw.subscribe(spaceId);
    const rawTree = newTreeId('raw');
    try {
      await until(() => a.server.stats.opsAcked + b.server.stats.opsAcked > 50, 'acknowledged ops before the restart');
      await pg.shutdown();
      // Down: every process says so, and a write is refused with the named close code.
      for (const p of running.procs) await until(async () => (await health(p.url)).status === 503, `process ${p.port} unhealthy`);
      const h = await health(running.procs[1].url);
      assert.equal(h.body.ok, false);
      assert.equal(h.body.store.ok, false);
      raw.sendOps(spaceId, rawTree, makeOps(rawTree, 'raw', 1, 3));
      assert.equal((await raw.whenClosed()).code, CloseCode.storeUnavailable);
      await pg.startAgain();
      // Back: healthy on their own, and the clients' writes go through again.
      for (const p of running.procs) await until(async () => (await health(p.url)).status === 200, `process ${p.port} healthy again`);
      const after = a.server.stats.opsAcked + b.server.stats.opsAcked;
      await until(() => a.server.stats.opsAcked + b.server.stats.opsAcked > after + 50, 'acknowledged ops after the restart');
    } finally {
      editing = false;
      await edits;
    }
    await converge([a, b]);
    assert.deepEqual(await b.dump(), await a.dump());
    await assertStored(running, spaceId, confirmed, 'after the restart');
    const onServer = new Set((await running.store.loadTreeOps(spaceId, notes.id)).map(opKey));
    assert.equal(notes.allOps().filter((op) => !onServer.has(opKey(op))).length, 0);
  });
});
