/**
 * Joining a team space (docs/team.md), one JSON line per size: a teammate's space with one notes
 * tree of N items on a local server (in this process, port 0); then "Open in Workspace" as the
 * extension runs it — `cloneServerSpace` into a new file, then the file opened (FileLayer +
 * SpaceManager + the app tree loaded: the tree is ready to show) — timed from the start until the
 * tree holds every item. Beside it in the same run, the peer figure: a client that syncs straight
 * into a new file (FileLayer + ServerLayer + the tree loaded, no staging, no second open), as
 * `ratio`. Target: 10k items ≤ 1 s on a quiet machine; 100k with progress and no error.
 *
 *   node out/bench/teamJoin.js [--items 10000,100000]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { FileLayer } from '../src/persistence/file/fileLayer';
import { silentLogger } from '../src/server/log';
import { startServer } from '../src/server/server';
import { SpaceManager } from '../src/spaces/spaceManager';
import { cloneServerSpace } from '../src/views/team/cloneSpace';
import { CLIENT_SECRET_KEY, CLIENT_TIMINGS, SyncClient } from '../test/helpers/syncClients';
import { makeToken } from '../test/helpers/syncServer';
import { round } from './workloads';

const { values: opt } = parseArgs({ options: { items: { type: 'string', default: '10000,100000' } } });
const emit = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ ...o, load: os.loadavg()[0], node: process.version, at: new Date().toISOString() }) + '\n');

async function main(): Promise<void> {
  for (const items of String(opt.items).split(',').map(Number)) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-bench-join-'));
    const admin = makeToken(dir, 'admin', '*', { user: 'admin' }).token;
    const server = await startServer({ logger: silentLogger, dataDir: dir, port: 0 });
    try {
      const res = await fetch(`${server.url}/v1/spaces`, { method: 'POST', headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'Team' }) });
      const spaceId = ((await res.json()) as { id: string }).id;
      const mate = await SyncClient.open(dir, 'mate', server.url, admin, spaceId, { timings: CLIENT_TIMINGS });
      const treeId = mate.space.createAppTree('notes', 'Plan').id;
      const tree = await mate.space.openAppTree(treeId);
      tree.importNodes(tree.id, Array.from({ length: items }, (_, i) => ({ props: { text: `item ${i}`, done: false } })));
      await mate.settle();
      await mate.close();

      // The join as the extension runs it.
      const t0 = performance.now();
      let progressReports = 0;
      const file = path.join(dir, 'joined.space');
      await cloneServerSpace({ url: server.url, token: admin, spaceId, file, secretKey: CLIENT_SECRET_KEY, client: 'bench', onProgress: () => progressReports++ });
      const cloneMs = performance.now() - t0;
      const manager = new SpaceManager();
      const layer = await FileLayer.open(file, { secretKey: CLIENT_SECRET_KEY, watch: false });
      const space = await manager.open(spaceId, [layer]);
      const shown = (await space.openAppTree(treeId)).childIds().length;
      const joinMs = performance.now() - t0;
      await manager.dispose();
      if (shown !== items) throw new Error(`the joined tree has ${shown} items, not ${items}`);

      // The peer: syncing straight into a new file.
      const t1 = performance.now();
      const direct = await SyncClient.open(dir, 'direct', server.url, admin, spaceId, { timings: CLIENT_TIMINGS });
      const directShown = (await direct.space.openAppTree(treeId)).childIds().length;
      const directMs = performance.now() - t1;
      await direct.close();
      if (directShown !== items) throw new Error(`the direct client has ${directShown} items, not ${items}`);
      emit({ bench: 'team-join', items, joinMs: round(joinMs), cloneMs: round(cloneMs), progressReports, directMs: round(directMs), ratio: round(joinMs / directMs, 2), targetMs: items <= 10_000 ? 1000 : null });
    } finally {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

void main();
