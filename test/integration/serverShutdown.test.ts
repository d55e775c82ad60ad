/** Graceful shutdown: queued writes finish, clients get 1001, the database closes, exit code 0. */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import { CloseCode } from '../../src/protocol/messages';
import { newVertexId } from '../../src/spaces/appTree';
import { opKey } from '../../src/spaces/ops';
import { makeOps, rootOp } from '../conformance/opFixtures';
import { TestClient, makeToken, spawnServer, startTestServer, tempDir, withStore } from '../helpers/syncServer';

describe('team server: graceful shutdown', function () {
  this.timeout(60_000);

  it('close(): clients get 1001, acknowledged writes are stored, close is idempotent, new connections are refused', async () => {
    const t = await startTestServer();
    try {
      const spaceId = await t.createSpace('Closing');
      const a = await t.open(t.token('write'), ['pa']);
      const b = await t.open(t.token('read'), ['pb']);
      await a.subscribe(spaceId);
      await b.subscribe(spaceId);
      const tree = newVertexId();
      a.sendOps(spaceId, tree, [rootOp(tree, 1, 'pa')]);
      const refs: number[] = [];
      for (let i = 0; i < 20; i++) refs.push(a.sendOps(spaceId, tree, makeOps(tree, 'pa', 2 + i * 10, 10)));
      await a.ack(refs[4]); // some acked; the rest may still be on their way in
      const closing = [t.server.close(), t.server.close()];
      const [ca, cb] = await Promise.all([a.whenClosed(), b.whenClosed()]);
      await Promise.all(closing);
      await t.server.close();
      assert.deepEqual([ca.code, ca.reason], [CloseCode.goingAway, 'server shutting down']);
      assert.deepEqual([cb.code, cb.reason], [CloseCode.goingAway, 'server shutting down']);
      await assert.rejects(TestClient.connect(t.server.syncUrl), /ECONNREFUSED/);
      await assert.rejects(fetch(`${t.server.url}/healthz`));

      // Every ack the client got before 1001 is in the database, which was closed cleanly.
      const acked = a.received.flatMap((m) => (m.type === 'ack' ? [m.ref] : []));
      assert.ok(acked.length >= 5);
      const stored = new Set(withStore(t.dir, (s) => s.loadTreeOps(spaceId, tree)).map(opKey));
      for (const ref of acked) {
        const i = ref - 2; // ref 1 was the root
        const ops = ref === 1 ? [rootOp(tree, 1, 'pa')] : makeOps(tree, 'pa', 2 + i * 10, 10);
        for (const op of ops) assert.ok(stored.has(opKey(op)), `acked batch ${ref} is missing ${opKey(op)}`);
      }
      assert.ok(!fs.existsSync(`${t.dir}/spaces.db-wal`) || fs.statSync(`${t.dir}/spaces.db-wal`).size === 0, 'the WAL was checkpointed on close');
    } finally {
      await t.stop();
    }
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal}: clients get 1001 and the process exits 0`, async () => {
      const dir = tempDir();
      try {
        const admin = makeToken(dir, 'admin').token;
        const server = await spawnServer(dir);
        const a = (await TestClient.open(server.syncUrl, admin, ['pa'])).client;
        const b = (await TestClient.open(server.syncUrl, admin, ['pb'])).client;
        server.child.kill(signal);
        const [ca, cb, exit] = await Promise.all([a.whenClosed(), b.whenClosed(), server.exited]);
        assert.equal(ca.code, CloseCode.goingAway);
        assert.equal(cb.code, CloseCode.goingAway);
        assert.deepEqual(exit, { code: 0, signal: null });
        const msgs = server.lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
        assert.ok(msgs.includes('shutting down') && msgs.indexOf('stopped') > msgs.indexOf('shutting down'), msgs.join(', '));
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
