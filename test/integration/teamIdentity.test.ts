/**
 * Identity: the server maps each connection's peer id to its token's user and tells the space's
 * clients (`peers` messages); the client keeps the map in its space file. Real server, real
 * clients over real files; a raw socket for what a hostile client tries.
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import { ServerLayer } from '../../src/persistence/server/serverLayer';
import type { ServerPeersMessage } from '../../src/protocol/messages';
import { PROTOCOL_LIMITS } from '../../src/protocol/messages';
import { peersFrames } from '../../src/server/identity';
import { CLIENT_SECRET_KEY, CLIENT_TIMINGS, SyncClient } from '../helpers/syncClients';
import { startTestServer, tempDir, type TestServer } from '../helpers/syncServer';

const WAIT_MS = 20_000;

/** Resolves once `pred()` holds, checked on every change of the layer's identities. */
function whenIdentities(layer: ServerLayer, pred: () => boolean, what: string): Promise<void> {
  if (pred()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.dispose();
      reject(new Error(`${what}: not within ${WAIT_MS} ms`));
    }, WAIT_MS);
    const sub = layer.identities.onDidChange(() => {
      if (!pred()) return;
      clearTimeout(timer);
      sub.dispose();
      resolve();
    });
  });
}

describe('team: who wrote an op (peer id → user)', function () {
  this.timeout(60_000);
  let t: TestServer;
  let dir: string;
  let spaceId: string;
  const clients: SyncClient[] = [];

  beforeEach(async () => {
    t = await startTestServer();
    dir = tempDir('spaces-team-identity-');
    spaceId = await t.createSpace('Team');
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await t.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const open = async (name: string, user: string, role: 'read' | 'write' = 'write'): Promise<SyncClient> => {
    const c = await SyncClient.open(dir, name, t.server.url, t.token(role, '*', { user }), spaceId, { timings: CLIENT_TIMINGS });
    clients.push(c);
    return c;
  };

  it('every client learns who writes under each peer id: at subscribe, and live when someone joins', async () => {
    const alice = await open('alice', 'alice');
    const tree = alice.space.createAppTree('notes', 'Plan');
    (await alice.space.openAppTree(tree.id)).addItem(tree.id, { text: 'by alice' });
    await alice.settle();
    assert.equal(alice.server.identities.self, 'alice');

    const bob = await open('bob', 'bob');
    await bob.settle();
    // Bob got the space's bindings after synced; alice got bob's live.
    await whenIdentities(bob.server, () => bob.server.identities.user(alice.manager.peerId) === 'alice', 'alice known to bob');
    await whenIdentities(alice.server, () => alice.server.identities.user(bob.manager.peerId) === 'bob', 'bob known to alice');
    assert.equal(bob.server.identities.user(bob.manager.peerId), 'bob');
    // The server's own peer id (its ops in the space tree) is bound to no user.
    assert.equal(bob.server.identities.size, 2);
  });

  it('the space file keeps the map: a restart offline still names the authors', async () => {
    const alice = await open('alice', 'alice');
    await alice.settle();
    const bob = await open('bob', 'bob', 'read');
    await whenIdentities(bob.server, () => bob.server.identities.user(alice.manager.peerId) === 'alice', 'alice known to bob');
    await bob.file.flush();
    const layerId = bob.server.id;
    await bob.close();
    clients.splice(clients.indexOf(bob), 1);
    await t.server.close();

    const file = await FileLayer.open(path.join(dir, 'bob.space'), { secretKey: CLIENT_SECRET_KEY });
    try {
      const state = await file.loadSyncState(layerId);
      assert.deepEqual(new Map(state.peers), new Map([[alice.manager.peerId, 'alice']]));
      // A server layer over the file, with the server gone, has the map before any connection.
      const offline = new ServerLayer({ url: t.server.url, token: 'spt_offline', peerId: 'offlinepeer', spaceId, syncState: file, timings: CLIENT_TIMINGS });
      try {
        await whenIdentities(offline, () => offline.identities.user(alice.manager.peerId) === 'alice', 'the stored map loaded');
      } finally {
        await offline.close();
      }
    } finally {
      await file.close();
    }
  });

  it('a client that claims another user\'s peer id is not announced as its owner', async () => {
    const alice = await open('alice', 'alice');
    await alice.settle();
    const watcher = await t.open(t.token('read', '*', { user: 'watcher' }), ['watcherpeer']);
    await watcher.subscribe(spaceId);
    const bound = (await watcher.until((m) => m.type === 'peers', 'the space\'s peers')) as ServerPeersMessage;
    assert.equal(bound.peers[alice.manager.peerId], 'alice');
    // Mallory says hello with alice's peer id as her own and subscribes with a write token.
    const mallory = await t.open(t.token('write', '*', { user: 'mallory' }), [alice.manager.peerId]);
    await mallory.subscribe(spaceId);
    const hers = (await mallory.until((m) => m.type === 'peers', 'the space\'s peers')) as ServerPeersMessage;
    assert.equal(hers.peers[alice.manager.peerId], 'alice', 'the server still says alice');
    // A new writer's binding reaches the watcher live; mallory's claim never does.
    const carol = await t.open(t.token('write', '*', { user: 'carol' }), ['carolpeer']);
    await carol.subscribe(spaceId);
    const live = (await watcher.until((m) => m.type === 'peers', 'a live peers message')) as ServerPeersMessage;
    assert.deepEqual({ ...live.peers }, { carolpeer: 'carol' });
    assert.equal(alice.server.identities.user(alice.manager.peerId), 'alice');
  });

  it('peers frames are bounded per message', () => {
    const entries: Array<[string, string]> = [];
    for (let i = 0; i < PROTOCOL_LIMITS.maxPeersPerMessage * 2 + 1; i++) entries.push([`p${i}`, `u${i}`]);
    const frames = peersFrames(spaceId, entries);
    assert.equal(frames.length, 3);
    for (const f of frames) assert.ok(Object.keys((JSON.parse(f) as ServerPeersMessage).peers).length <= PROTOCOL_LIMITS.maxPeersPerMessage);
    assert.deepEqual(peersFrames(spaceId, []), []);
  });
});
