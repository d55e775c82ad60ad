/**
 * Durability: the built server (dist/server.js) is SIGKILLed right after it acknowledged some
 * batches while more are in flight, then restarted on the same directory. Every acknowledged op
 * is there, every batch is all-or-nothing, and seqs have no gaps.
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import { parseServerMessage } from '../../src/protocol/messages';
import { newVertexId } from '../../src/spaces/appTree';
import { decodeOps } from '../../src/spaces/opCodec';
import { opKey, type Op } from '../../src/spaces/ops';
import { makeOps, rootOp } from '../conformance/opFixtures';
import { TestClient, makeToken, spawnServer, tempDir, type ChildServer } from '../helpers/syncServer';

const BATCHES = 150;
const OPS_PER_BATCH = 100;

describe('team server: SIGKILL after acks', function () {
  this.timeout(120_000);
  let dir: string;
  let running: ChildServer | undefined;
  const clients: TestClient[] = [];

  beforeEach(() => (dir = tempDir()));
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    if (running && running.child.exitCode === null && running.child.signalCode === null) {
      running.child.kill('SIGKILL');
      await running.exited;
    }
    running = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('every acknowledged op survives, over three kills', async () => {
    const admin = makeToken(dir, 'admin').token;
    running = await spawnServer(dir);
    const res = await fetch(`${running.url}/v1/spaces`, { method: 'POST', headers: { Authorization: `Bearer ${admin}` }, body: JSON.stringify({ name: 'Crash' }) });
    assert.equal(res.status, 201);
    const spaceId = ((await res.json()) as { id: string }).id;

    const acked = new Map<number, Op[]>(); // ref → ops
    const sentAll = new Map<number, Op[]>();
    let tree = '';
    for (let round = 0; round < 3; round++) {
      const server: ChildServer = running ?? (await spawnServer(dir));
      running = server;
      const { client } = await TestClient.open(server.syncUrl, admin, [`k${round}`]);
      clients.push(client);
      await client.subscribe(spaceId);
      tree = newVertexId();
      const peer = `k${round}`;
      const batches: Op[][] = [];
      for (let i = 0; i < BATCHES; i++) batches.push(i === 0 ? [rootOp(tree, 1, peer), ...makeOps(tree, peer, 2, OPS_PER_BATCH - 1)] : makeOps(tree, peer, 1 + i * OPS_PER_BATCH, OPS_PER_BATCH));
      const killAt = 40 + round * 30;
      let acks = 0;
      const killed = new Promise<void>((resolve) => {
        client.ws.on('message', (data: Buffer) => {
          const m = parseServerMessage(data);
          if (m.type !== 'ack' || m.spaceId !== spaceId) return;
          const refOps = sentAll.get(m.ref);
          if (refOps) acked.set(m.ref, refOps);
          if (++acks === killAt) {
            server.child.kill('SIGKILL');
            resolve();
          }
        });
      });
      for (const b of batches) sentAll.set(client.sendOps(spaceId, tree, b, sentAll.size + 1), b);
      await killed;
      const exit = await server.exited;
      assert.equal(exit.signal, 'SIGKILL');
      running = undefined;
      await client.whenClosed();
    }

    // Restart once more and read everything back through the protocol.
    running = await spawnServer(dir);
    const { client } = await TestClient.open(running.syncUrl, admin, ['reader']);
    clients.push(client);
    const { ops, synced } = await client.subscribe(spaceId);
    // Each round writes under its own peer id, so op keys are unique across the rounds' trees.
    const keys = new Set(ops.flatMap((m) => decodeOps(m.ops, m.treeId, 'test').map(opKey)));
    let missing = 0;
    for (const batch of acked.values()) for (const op of batch) if (!keys.has(opKey(op))) missing++;
    assert.equal(missing, 0, `${missing} acknowledged ops are missing`);
    assert.ok(acked.size >= 40 + 70 + 100, `only ${acked.size} batches were acknowledged`);
    // All-or-nothing per batch, and seqs 1..N without gaps.
    for (const [ref, batch] of sentAll) {
      const present = batch.filter((op) => keys.has(opKey(op))).length;
      assert.ok(present === 0 || present === batch.length, `batch ${ref} is partly stored (${present}/${batch.length})`);
    }
    const seqs = ops.map((m) => m.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    const stored = [...sentAll.values()].filter((b) => keys.has(opKey(b[0]))).length;
    assert.equal(synced.seq, stored + 1, 'one seq per stored batch, plus the space tree');
  });
});
