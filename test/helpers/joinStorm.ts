/**
 * The join storm: many real clients (a SpaceManager over a FileLayer, which is also the
 * ServerLayer's SyncStateStore, and a ServerLayer — as the extension and `spaces sync` build
 * them) open one stored space at once against the built server in a child process.
 *
 * Used by test/integration/joinStorm.test.ts (the assertions) and bench/joinStorm.ts (figures).
 * The space is stored the way a user makes it: a client clones a space made with POST /v1/spaces,
 * adds a notes-like app tree (root → 256 buckets → one leaf per edit with one short string) and
 * syncs it; the server then holds it as it holds any space.
 */
import fs from 'node:fs';
import path from 'node:path';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import { ServerLayer, type ServerLayerTimings } from '../../src/persistence/server/serverLayer';
import { SpaceManager } from '../../src/spaces/spaceManager';
import { CLIENT_SECRET_KEY, SyncClient } from './syncClients';

/** Buckets under the app tree's root; each edit adds one leaf under one of them. */
export const STORM_BUCKETS = 256;
/** Edits per transaction while seeding (one change, one batch to the layers). */
const SEED_EDITS_PER_CHANGE = 500;

export interface SeededSpace {
  readonly spaceId: string;
  readonly treeId: string;
  /** Items of the app tree: the buckets and the leaves. */
  readonly items: number;
  /** Ops of the app tree. */
  readonly ops: number;
}

/** Creates a space on the server and fills it through a real client with `edits` leaves. */
export async function seedSpace(url: string, adminToken: string, writeToken: string, dir: string, edits: number): Promise<SeededSpace> {
  const res = await fetch(`${url}/v1/spaces`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'Storm' }),
  });
  if (res.status !== 201) throw new Error(`POST /v1/spaces: ${res.status} ${await res.text()}`);
  const spaceId = ((await res.json()) as { id: string }).id;
  fs.mkdirSync(dir, { recursive: true });
  const seeder = await SyncClient.open(dir, 'seeder', url, writeToken, spaceId);
  try {
    const tree = seeder.space.createAppTree('notes', 'Storm');
    const buckets: string[] = [];
    tree.transact(() => {
      for (let b = 0; b < STORM_BUCKETS; b++) buckets.push(tree.addItem(tree.id, {}, undefined, false));
    });
    for (let i = 0; i < edits; i += SEED_EDITS_PER_CHANGE) {
      tree.transact(() => {
        for (let k = i; k < Math.min(edits, i + SEED_EDITS_PER_CHANGE); k++) tree.addItem(buckets[k % STORM_BUCKETS], { t: `e${k}` }, undefined, false);
      });
    }
    await seeder.settle();
    return { spaceId, treeId: tree.id, items: tree.countItems(), ops: tree.allOps().length };
  } finally {
    await seeder.close();
  }
}

export interface JoinerResult {
  /** ms from the start of the storm until this client had the space open and the app tree whole; undefined when it failed. */
  readonly doneMs: number | undefined;
  readonly error: string | undefined;
  readonly items: number;
  /** WebSocket connection attempts of the client's ServerLayer. */
  readonly connects: number;
  /** Why its connection dropped (not a planned reconnect), in order. */
  readonly drops: readonly Drop[];
}

export interface Drop {
  readonly reason: string;
  /** ms from the start of the storm. */
  readonly atMs: number;
  /** This client had the whole tree already (it waited for the others). */
  readonly afterDone: boolean;
}

export interface StormResult {
  readonly joiners: readonly JoinerResult[];
  /** ms until the last client that succeeded had the whole tree. */
  readonly allMs: number;
  readonly failed: number;
  readonly connects: number;
  readonly drops: number;
  /** Drop reasons and how often each came. */
  readonly dropReasons: Record<string, number>;
}

export interface StormOptions {
  readonly url: string;
  readonly token: string;
  readonly space: SeededSpace;
  readonly joiners: number;
  /** Where the joiners' space files go (one new file each: a clone). */
  readonly dir: string;
  /** ServerLayer timings; default: the layer's defaults, as the extension uses them. */
  readonly timings?: Partial<ServerLayerTimings>;
}

/**
 * Starts `joiners` clients at once, each on a new space file, and waits until every one has
 * opened the space and its app tree or failed. The clients stay open until every one is done, so
 * the server serves all of them at once; then they are closed.
 */
export async function joinStorm(o: StormOptions): Promise<StormResult> {
  fs.mkdirSync(o.dir, { recursive: true });
  const t0 = performance.now();
  const closers: Array<() => Promise<void>> = [];
  const one = async (i: number): Promise<JoinerResult> => {
    const manager = new SpaceManager();
    closers.push(() => manager.dispose());
    const drops: Drop[] = [];
    let server: ServerLayer | undefined;
    let done = false;
    try {
      const file = await FileLayer.create(path.join(o.dir, `joiner-${i}.space`), o.space.spaceId, { secretKey: CLIENT_SECRET_KEY });
      server = new ServerLayer({ url: o.url, token: o.token, peerId: manager.peerId, spaceId: o.space.spaceId, syncState: file, timings: o.timings });
      server.onStateChange((s) => {
        if (s.status === 'offline' && s.reason !== 'connecting') drops.push({ reason: s.reason ?? 'offline', atMs: performance.now() - t0, afterDone: done });
      });
      const opened = await manager.open(o.space.spaceId, [file, server]);
      const tree = await opened.openAppTree(o.space.treeId);
      const items = tree.countItems();
      done = true;
      return { doneMs: items === o.space.items ? performance.now() - t0 : undefined, error: items === o.space.items ? undefined : `${items} of ${o.space.items} items`, items, connects: server.stats.connects, drops };
    } catch (e) {
      return { doneMs: undefined, error: e instanceof Error ? e.message : String(e), items: 0, connects: server?.stats.connects ?? 0, drops };
    }
  };
  const joiners = await Promise.all(Array.from({ length: o.joiners }, (_, i) => one(i)));
  await Promise.all(closers.map((c) => c()));
  const dropReasons: Record<string, number> = {};
  for (const j of joiners) {
    for (const d of j.drops) {
      const kind = `${d.reason.replace(/\d+/g, 'N')}${d.afterDone ? ' (after it had the space)' : ''}`;
      dropReasons[kind] = (dropReasons[kind] ?? 0) + 1;
    }
  }
  const done = joiners.flatMap((j) => (j.doneMs === undefined ? [] : [j.doneMs]));
  return {
    joiners,
    allMs: done.length ? done.reduce((a, b) => Math.max(a, b), 0) : NaN,
    failed: joiners.filter((j) => j.doneMs === undefined).length,
    connects: joiners.reduce((a, j) => a + j.connects, 0),
    drops: joiners.reduce((a, j) => a + j.drops.length, 0),
    dropReasons,
  };
}
