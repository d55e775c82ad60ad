/**
 * The built server (dist/server.js) killed with SIGKILL while two clients keep editing, then
 * restarted on the same data directory and port, three times: every op the server confirmed
 * (acknowledged, or listed in its state vector) is still there, the clients reconnect by
 * themselves, and they, the server and a fresh clone end up identical.
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import { recording } from '../helpers/recordingSyncState';
import type { AppTree } from '../../src/spaces/appTree';
import { opKey, type Op } from '../../src/spaces/ops';
import { makeToken, tempDir, withStore } from '../helpers/syncServer';
import { SyncClient, converge, freePort, spawnServerOn, waitForState, type ServerProcess } from '../helpers/syncClients';

describe('team sync: the server killed with SIGKILL mid-sync', function () {
  this.timeout(120_000);
  let dir: string;
  let srv: ServerProcess | undefined;
  const clients: SyncClient[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    if (srv && srv.child.exitCode === null && srv.child.signalCode === null) {
      srv.child.kill('SIGTERM');
      await srv.exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('loses no confirmed op; clients reconnect by themselves and converge', async function () {
    dir = tempDir('spaces-sync-crash-');
    const data = `${dir}/server`;
    const port = await freePort();
    const admin = makeToken(data, 'admin', '*', { user: 'admin' }).token;
    const writer = makeToken(data, 'write', '*', { user: 'writer' }).token;
    srv = await spawnServerOn(data, port);
    const res = await fetch(`${srv.url}/v1/spaces`, { method: 'POST', headers: { Authorization: `Bearer ${admin}` }, body: JSON.stringify({ name: 'Crash' }) });
    const spaceId = ((await res.json()) as { id: string }).id;
    const confirmed = new Map<string, Set<string>>();
    const open = async (name: string): Promise<SyncClient> => {
      const c = await SyncClient.open(dir, name, srv?.url ?? '', writer, spaceId, { wrapStore: (f) => recording(f, confirmed) });
      clients.push(c);
      return c;
    };
    const a = await open('a');
    const b = await open('b');
    const notes = a.space.createAppTree('notes', 'Notes');
    await converge([a, b]);
    const bNotes = await b.space.openAppTree(notes.id);

    let editing = true;
    const editor = async (tree: AppTree, who: string): Promise<number> => {
      let n = 0;
      while (editing) {
        const parent = n % 7 === 0 ? tree.rootId : (tree.childIds(tree.rootId).at(-1) ?? tree.rootId);
        tree.addItem(parent, { text: `${who} ${n++}` });
        await new Promise((r) => setTimeout(r, 2));
      }
      return n;
    };
    const edits = Promise.all([editor(notes, 'a'), editor(bNotes, 'b')]);
    let killedWithUnacked = 0;

    for (let round = 0; round < 3; round++) {
      // Let the clients get some batches acknowledged, then kill the server in the middle of it.
      const acked = a.server.stats.opsAcked + b.server.stats.opsAcked;
      while (a.server.stats.opsAcked + b.server.stats.opsAcked < acked + 200) await new Promise((r) => setTimeout(r, 10));
      const proc = srv;
      proc.child.kill('SIGKILL');
      await proc.exited;
      killedWithUnacked += a.server.outboxSize + b.server.outboxSize;
      await Promise.all([waitForState(a.server, 'offline'), waitForState(b.server, 'offline')]);
      await new Promise((r) => setTimeout(r, 100)); // edits pile up while the server is down

      // Every op the server confirmed before it died is in its database.
      const stored = withStore(data, (s) => new Map([...confirmed.keys()].map((t) => [t, new Set(s.loadTreeOps(spaceId, t).map(opKey))])));
      for (const [treeId, keys] of confirmed) {
        const lost = [...keys].filter((k) => !stored.get(treeId)?.has(k));
        assert.deepEqual(lost.slice(0, 5), [], `round ${round}: ${lost.length} confirmed ops of tree ${treeId} are not on the server`);
      }
      srv = await spawnServerOn(data, port);
    }
    editing = false;
    const [na, nb] = await edits;
    assert.ok(na > 50 && nb > 50, `too few edits: ${na}, ${nb}`);
    assert.ok(killedWithUnacked > 0, 'the kills never landed while ops were in flight');

    await converge([a, b]);
    const da = await a.dump();
    assert.deepEqual(await b.dump(), da);
    const fresh = await open('fresh');
    await fresh.settle();
    assert.deepEqual(await fresh.dump(), da);
    const all = (t: AppTree): Op[] => t.allOps();
    const onServer = withStore(data, (s) => new Set(s.loadTreeOps(spaceId, notes.id).map(opKey)));
    const missing = all(notes).filter((op) => !onServer.has(opKey(op)));
    assert.equal(missing.length, 0, `${missing.length} ops of a are not on the server`);
    assert.equal(onServer.size, notes.opCount);
  });
});
