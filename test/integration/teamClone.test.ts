/**
 * "Open in Workspace" under the Team Server view: cloneServerSpace against a real server, with a
 * teammate's real client. A clone holds everything and resumes from the server's watermark; a
 * cancelled or refused clone leaves nothing at the target (no file, no staging file).
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import { ServerLayer } from '../../src/persistence/server/serverLayer';
import { SpaceManager } from '../../src/spaces/spaceManager';
import { CloneCancelledError, cloneServerSpace } from '../../src/views/team/cloneSpace';
import { CLIENT_SECRET_KEY, CLIENT_TIMINGS, SyncClient } from '../helpers/syncClients';
import { startTestServer, tempDir, type TestServer } from '../helpers/syncServer';

const CLIENT = 'test-join';

describe('team: cloning a server space into a new file', function () {
  this.timeout(5 * 60_000);
  let t: TestServer;
  let dir: string;
  let teammate: SyncClient;
  let spaceId: string;
  let treeId: string;

  beforeEach(async () => {
    t = await startTestServer();
    dir = tempDir('spaces-team-clone-');
    spaceId = await t.createSpace('Team');
    teammate = await SyncClient.open(dir, 'teammate', t.server.url, t.token('write', '*', { user: 'alice' }), spaceId, { timings: CLIENT_TIMINGS });
    treeId = teammate.space.createAppTree('notes', 'Plan').id;
    const tree = await teammate.space.openAppTree(treeId);
    tree.addItem(tree.id, { text: 'Call Bob', done: false });
    tree.addItem(tree.id, { text: 'Ship it', done: true });
    await teammate.settle();
  });

  afterEach(async () => {
    await teammate.close();
    await t.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const leftovers = (file: string): string[] => fs.readdirSync(path.dirname(file)).filter((n) => n.startsWith(path.basename(file)));

  it('clones every tree, and a connection over the clone resumes instead of downloading again', async () => {
    const file = path.join(dir, 'joined.space');
    const progress: number[] = [];
    const r = await cloneServerSpace({ url: t.server.url, token: t.token('read', spaceId, { user: 'bob' }), spaceId, file, secretKey: CLIENT_SECRET_KEY, client: CLIENT, onProgress: (p) => progress.push(p.ops) });
    assert.equal(r.spaceId, spaceId);
    assert.ok(r.received > 0 && r.seq > 0);
    assert.deepEqual(leftovers(file), ['joined.space']);

    const layer = await FileLayer.open(file, { secretKey: CLIENT_SECRET_KEY });
    const manager = new SpaceManager();
    const server = new ServerLayer({ url: t.server.url, token: t.token('write', spaceId, { user: 'bob' }), peerId: manager.peerId, spaceId, syncState: layer, timings: CLIENT_TIMINGS });
    try {
      const space = await manager.open(spaceId, [layer, server]);
      assert.equal(space.name, 'Team');
      const tree = await space.openAppTree(treeId);
      assert.deepEqual(tree.childIds().map((id) => tree.getProp(id, 'text')), ['Call Bob', 'Ship it']);
      await server.whenIdle();
      assert.equal(server.stats.opsReceived, 0, 'the clone holds the watermark: nothing is downloaded twice');
      // An edit made over the clone reaches the teammate.
      tree.addItem(tree.id, { text: 'From the clone', done: false });
      await manager.flush(spaceId);
      await server.whenIdle();
      await teammate.settle();
      const theirs = await teammate.space.openAppTree(treeId);
      assert.ok(theirs.childIds().some((id) => theirs.getProp(id, 'text') === 'From the clone'));
    } finally {
      await manager.dispose();
      await server.close();
      await layer.close();
    }
  });

  it('cancelled while receiving a big space, leaves nothing at the target', async () => {
    const tree = await teammate.space.openAppTree(treeId);
    for (let i = 0; i < 20_000; i++) tree.addItem(tree.id, { text: `item ${i}`, done: false });
    await teammate.settle();
    const file = path.join(dir, 'big.space');
    const abort = new AbortController();
    let progressed = 0;
    await assert.rejects(
      cloneServerSpace({
        url: t.server.url,
        token: t.token('read', spaceId),
        spaceId,
        file,
        secretKey: CLIENT_SECRET_KEY,
        client: CLIENT,
        signal: abort.signal,
        onProgress: () => {
          progressed++;
          abort.abort();
        },
      }),
      CloneCancelledError,
    );
    assert.ok(progressed > 0, 'progress was reported before the cancel');
    assert.deepEqual(leftovers(file), []);
    // The same target clones afterwards.
    await cloneServerSpace({ url: t.server.url, token: t.token('read', spaceId), spaceId, file, secretKey: CLIENT_SECRET_KEY, client: CLIENT });
    assert.deepEqual(leftovers(file), ['big.space']);
  });

  it('a token without access, or a file already there, fails and writes nothing', async () => {
    const other = await t.createSpace('Other');
    const file = path.join(dir, 'refused.space');
    await assert.rejects(cloneServerSpace({ url: t.server.url, token: t.token('read', other), spaceId, file, secretKey: CLIENT_SECRET_KEY, client: CLIENT }), /forbidden|access/);
    assert.deepEqual(leftovers(file), []);
    fs.writeFileSync(file, 'mine');
    await assert.rejects(cloneServerSpace({ url: t.server.url, token: t.admin, spaceId, file, secretKey: CLIENT_SECRET_KEY, client: CLIENT }), /exists already/);
    assert.equal(fs.readFileSync(file, 'utf8'), 'mine');
  });
});
