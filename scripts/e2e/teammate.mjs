#!/usr/bin/env node
// A teammate for benchmarks and UI tests: a small client built on the project's own SpaceManager
// and ServerLayer (compiled by `npm run compile` to out/), with its sync state in memory, that
// edits a notes tree through a team server at a steady rate until SIGTERM/SIGINT.
//
//   node scripts/e2e/teammate.mjs --server URL --token T --space ID --tree ID [--rate 10] [--skip ID]
//
// Edit n sets the text of one item to "teammate edit n", going round the tree's items (every
// 37th, so the edits land all over the outline; --skip leaves one item alone). JSON lines on
// stdout: {"event":"ready","items":N} once synced, then {"event":"edit","n","id","at"} per edit
// (at: Date.now()), and {"event":"stopped","edits","acked"} after the last ops were acknowledged.
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { root } from './fixture.mjs';

const require = createRequire(import.meta.url);
const out = (m) => require(path.join(root, 'out/src', m));
const { SpaceManager } = out('spaces/spaceManager.js');
const { ServerLayer } = out('persistence/server/serverLayer.js');
const { MemorySyncStateStore } = out('persistence/server/syncState.js');
const { Notes } = out('spaces/apps/notes.js');

const { values: opt } = parseArgs({ options: { server: { type: 'string' }, token: { type: 'string' }, space: { type: 'string' }, tree: { type: 'string' }, rate: { type: 'string', default: '10' }, skip: { type: 'string' } } });
const rate = Number(opt.rate);
if (!opt.server || !opt.token || !opt.space || !opt.tree || !(rate > 0 && rate <= 1000)) {
  console.error('usage: teammate.mjs --server URL --token T --space ID --tree ID [--rate EDITS_PER_S] [--skip ITEM_ID]');
  process.exit(2);
}
const emit = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

const manager = new SpaceManager();
const server = new ServerLayer({ url: opt.server, token: opt.token, peerId: manager.peerId, spaceId: opt.space, syncState: new MemorySyncStateStore(), client: 'spaces-teammate/0.1.0' });
await server.whenReady();
const space = await manager.open(opt.space, [server]);
const tree = await space.openAppTree(opt.tree);
const notes = new Notes(tree);
const ids = [];
const walk = (items) => {
  for (const item of items) {
    if (item.id !== opt.skip) ids.push(item.id);
    walk(item.children);
  }
};
walk(notes.items());
if (!ids.length) throw new Error(`tree ${opt.tree} has no items to edit`);
emit({ event: 'ready', items: ids.length });

let n = 0;
const timer = setInterval(() => {
  n++;
  const id = ids[(n * 37) % ids.length];
  notes.setText(id, `teammate edit ${n}`);
  emit({ event: 'edit', n, id, at: Date.now() });
}, 1000 / rate);

const stop = async () => {
  clearInterval(timer);
  await manager.flush(opt.space);
  await server.whenIdle();
  const acked = server.stats.opsAcked;
  await manager.dispose();
  await server.close();
  emit({ event: 'stopped', edits: n, acked });
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
