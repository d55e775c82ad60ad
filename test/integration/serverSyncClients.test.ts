/**
 * Team sync end to end: SpaceManagers with a FileLayer and a ServerLayer against the real server
 * (in process): live edits, offline edits, a client restarted while offline, concurrent offline
 * edits of the same items, secrets, read-only tokens.
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import { silentLogger } from '../../src/server/log';
import { startServer, type RunningServer } from '../../src/server/server';
import type { DumpNode } from '../../src/spaces/appTree';
import { makeToken, tempDir, withStore } from '../helpers/syncServer';
import { SyncClient, converge, freePort, waitForState } from '../helpers/syncClients';

async function createSpace(url: string, admin: string, name = 'Team'): Promise<string> {
  const res = await fetch(`${url}/v1/spaces`, { method: 'POST', headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ name }) });
  assert.equal(res.status, 201, await res.clone().text());
  return ((await res.json()) as { id: string }).id;
}

function countNodes(n: DumpNode): number {
  return 1 + (n.children ?? []).reduce((a, c) => a + countNodes(c), 0);
}

describe('team sync: clients with a file and the server', function () {
  this.timeout(60_000);
  let dir: string;
  let data: string;
  let port: number;
  let server: RunningServer | undefined;
  let url: string;
  let admin: string;
  let writer: string;
  let spaceId: string;
  let clients: SyncClient[];

  const start = async (): Promise<void> => {
    server = await startServer({ dataDir: data, port, logger: silentLogger, pingIntervalMs: 2_000 });
  };
  const stop = async (): Promise<void> => {
    await server?.close();
    server = undefined;
  };
  const client = async (name: string, token = writer): Promise<SyncClient> => {
    const c = await SyncClient.open(dir, name, url, token, spaceId);
    clients.push(c);
    return c;
  };

  beforeEach(async () => {
    dir = tempDir('spaces-sync-clients-');
    data = `${dir}/server`;
    port = await freePort();
    url = `http://127.0.0.1:${port}`;
    admin = makeToken(data, 'admin', '*', { user: 'admin' }).token;
    writer = makeToken(data, 'write', '*', { user: 'writer' }).token;
    await start();
    spaceId = await createSpace(url, admin);
    clients = [];
  });
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('live edits reach the other client, app trees included', async function () {
    const a = await client('a');
    const b = await client('b');
    assert.equal(b.space.name, 'Team');
    const notes = a.space.createAppTree('notes', 'Notes');
    const first = notes.addItem(notes.rootId, { text: 'first' });
    notes.addItem(first, { text: 'child' });
    a.space.rename('Team space');
    // B sees the app tree's ref and its items arrive without asking.
    await converge([a, b]);
    assert.equal(b.space.name, 'Team space');
    const bNotes = await b.space.openAppTree(notes.id);
    assert.deepEqual(bNotes.dump(), notes.dump());
    // And back, live: B edits an item A has open; A's tree changes by itself.
    const changed = new Promise<void>((resolve) => {
      const d = a.manager.onDidChangeSpace((c) => {
        if (c.treeId === notes.id && notes.getProp(first, 'text') === 'edited by b') {
          d.dispose();
          resolve();
        }
      });
    });
    bNotes.setProps(first, { text: 'edited by b' });
    await changed;
    await converge([a, b]);
    assert.deepEqual(await a.dump(), await b.dump());
  });

  it('offline edits reach the server after it comes back (same data dir and port)', async function () {
    const a = await client('a');
    const b = await client('b');
    const notes = a.space.createAppTree('notes', 'Notes');
    await converge([a, b]);
    await stop();
    await Promise.all([waitForState(a.server, 'offline'), waitForState(b.server, 'offline')]);
    for (let i = 0; i < 50; i++) notes.addItem(notes.rootId, { text: `offline ${i}` });
    await a.manager.flush(spaceId);
    assert.ok(a.server.outboxSize > 0, 'the offline edits are not in the outbox');
    await start();
    // Both reconnect by themselves.
    await converge([a, b]);
    assert.equal(a.server.outboxSize, 0);
    assert.equal(countNodes((await b.space.openAppTree(notes.id)).dump()), 51);
    const onServer = withStore(data, (s) => s.loadTreeOps(spaceId, notes.id).length);
    assert.equal(onServer, notes.opCount);
  });

  it('a client restarted while offline pushes the edits it could not send (outbox in the file)', async function () {
    const a = await client('a');
    const notes = a.space.createAppTree('notes', 'Notes');
    await a.settle();
    await stop();
    await waitForState(a.server, 'offline');
    for (let i = 0; i < 20; i++) notes.addItem(notes.rootId, { text: `unsent ${i}` });
    const expected = notes.dump();
    await a.close();
    clients = clients.filter((c) => c !== a);
    // Restarted, still offline: it opens from the file.
    const a2 = await client('a');
    assert.deepEqual((await a2.space.openAppTree(notes.id)).dump(), expected);
    assert.ok(a2.server.outboxSize >= 20, `outbox after restart: ${a2.server.outboxSize}`);
    await start();
    await a2.settle();
    assert.equal(a2.server.outboxSize, 0);
    const fresh = await client('fresh');
    await fresh.settle();
    assert.deepEqual((await fresh.space.openAppTree(notes.id)).dump(), expected);
  });

  it('two clients edit the same items offline (moves, deletes, property conflicts): identical everywhere after reconnect', async function () {
    const a = await client('a');
    const b = await client('b');
    const notes = a.space.createAppTree('notes', 'Notes');
    const ids = Array.from({ length: 12 }, (_, i) => notes.addItem(notes.rootId, { text: `item ${i}`, n: i }));
    const folder = notes.addItem(notes.rootId, { text: 'folder' });
    await converge([a, b]);
    const bNotes = await b.space.openAppTree(notes.id);
    await stop();
    await Promise.all([waitForState(a.server, 'offline'), waitForState(b.server, 'offline')]);
    // Conflicting edits made while both are offline.
    notes.setProps(ids[0], { text: 'a wins?' });
    bNotes.setProps(ids[0], { text: 'b wins?' });
    notes.move(ids[1], folder);
    bNotes.move(ids[1], ids[2]);
    notes.delete(ids[3]);
    bNotes.setProps(ids[3], { text: 'edited after a deleted it' });
    bNotes.delete(ids[4]);
    notes.move(ids[4], folder);
    notes.move(ids[5], ids[6]);
    bNotes.move(ids[6], ids[5]); // a cycle if both applied naively
    bNotes.setProps(ids[7], { n: 'b', extra: true });
    notes.setProps(ids[7], { n: 'a', text: undefined });
    for (let i = 0; i < 5; i++) {
      notes.addItem(folder, { text: `a-new ${i}` });
      bNotes.addItem(ids[8], { text: `b-new ${i}` });
    }
    a.space.rename('renamed by a');
    b.space.rename('renamed by b');
    await Promise.all([a.manager.flush(spaceId), b.manager.flush(spaceId)]);
    await start();
    await converge([a, b]);
    const da = await a.dump();
    const db = await b.dump();
    assert.deepEqual(da, db);
    const fresh = await client('fresh');
    await fresh.settle();
    assert.deepEqual(await fresh.dump(), da, 'a fresh clone from the server differs');
    assert.equal(await fresh.opCount(), await a.opCount());
  });

  it('secrets set on one client reach the other', async function () {
    const a = await client('a');
    const b = await client('b');
    a.space.setSecret('api.token', 's3cret');
    await converge([a, b]);
    assert.equal(b.space.getSecret('api.token'), 's3cret');
    b.space.deleteSecret('api.token');
    await converge([a, b]);
    assert.equal(a.space.getSecret('api.token'), undefined);
  });

  it('a read-only client gets everything and keeps its own edits for later', async function () {
    const a = await client('a');
    const notes = a.space.createAppTree('notes', 'Notes');
    notes.addItem(notes.rootId, { text: 'from a' });
    await a.settle();
    const reader = await client('r', makeToken(data, 'read', spaceId, { user: 'reader' }).token);
    await reader.server.refresh();
    const rNotes = await reader.space.openAppTree(notes.id);
    assert.deepEqual(rNotes.dump(), notes.dump());
    rNotes.addItem(rNotes.rootId, { text: 'from the reader' });
    await reader.manager.flush(spaceId);
    await waitForState(reader.server, 'error');
    assert.match((reader.server.state as { reason: string }).reason, /^read-only: \d+ ops not sent$/);
    assert.ok(reader.server.outboxSize > 0);
  });
});
