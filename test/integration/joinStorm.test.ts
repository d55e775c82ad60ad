/**
 * The join storm, with the real parts: the built server (dist/server.js, port 0, default
 * settings), a space stored the way a user makes one (a client creates and syncs it), and
 * STORM_JOINERS real clients — a SpaceManager over a new FileLayer (also the ServerLayer's sync
 * state) and a ServerLayer each, with the layer's default timings, as the extension builds them —
 * joining at once, in this one busy process. Every one must open the space with the whole app
 * tree, on its first connection, none dropped; each file must hold the tree afterwards.
 *
 * Figures (time, CPU, 200 clients) come from bench/joinStorm.ts, not from here: nothing below
 * depends on how fast the machine is (the mocha timeout only turns a hang into a failure).
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import { STORM_BUCKETS, joinStorm, seedSpace, type SeededSpace } from '../helpers/joinStorm';
import { CLIENT_SECRET_KEY } from '../helpers/syncClients';
import { makeToken, metric, spawnServer, tempDir, type ChildServer } from '../helpers/syncServer';

/** Clients in the storm (200 in bench/joinStorm.ts; this many keep the suite's run time sane on 2 cores). */
const STORM_JOINERS = 50;
const STORM_EDITS = 10_000;

describe('join storm: real clients join one stored space at once', function () {
  this.timeout(600_000);
  let dir: string;
  let server: ChildServer;
  let writer: string;
  let space: SeededSpace;

  before(async () => {
    dir = tempDir('spaces-join-storm-');
    const data = path.join(dir, 'server');
    fs.mkdirSync(data);
    const admin = makeToken(data, 'admin', '*', { user: 'admin' }).token;
    writer = makeToken(data, 'write', '*', { user: 'writer' }).token;
    server = await spawnServer(data);
    space = await seedSpace(server.url, admin, writer, path.join(dir, 'seed'), STORM_EDITS);
    assert.equal(space.items, STORM_BUCKETS + STORM_EDITS);
  });

  after(async () => {
    server?.child.kill('SIGTERM');
    await server?.exited;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it(`${STORM_JOINERS} clients all open the space with the whole tree, on their first connection, none dropped; each file holds it`, async () => {
    const connectsBefore = await metric(server.url, 'spaces_server_connections_total');
    const r = await joinStorm({ url: server.url, token: writer, space, joiners: STORM_JOINERS, dir: path.join(dir, 'joiners') });
    const failures = r.joiners.flatMap((j, i) => (j.error ? [`joiner ${i}: ${j.error}`] : []));
    assert.deepEqual(failures, [], `${failures.length} of ${STORM_JOINERS} failed`);
    assert.deepEqual(r.dropReasons, {}, 'connections dropped');
    assert.equal(r.connects, STORM_JOINERS, 'a client connected more than once');
    assert.equal((await metric(server.url, 'spaces_server_connections_total')) - connectsBefore, STORM_JOINERS);
    // The server encoded the catch-up once and sent the same frames to everyone.
    const hits = await metric(server.url, 'spaces_server_catchup_cache_hits_total');
    const misses = await metric(server.url, 'spaces_server_catchup_cache_misses_total');
    assert.ok(misses * STORM_JOINERS <= 2 * (hits + misses), `catch-up frames built ${misses} times for ${hits + misses} sent`);
    // Incoming ops are written once — and written: each joiner's file alone holds the whole tree.
    for (const i of [0, STORM_JOINERS - 1]) {
      const file = await FileLayer.open(path.join(dir, 'joiners', `joiner-${i}.space`), { secretKey: CLIENT_SECRET_KEY, watch: false });
      try {
        const ops = await file.loadTree(space.treeId);
        assert.equal(ops.length, space.ops, `joiner ${i}'s file`);
      } finally {
        await file.close();
      }
    }
  });
});
