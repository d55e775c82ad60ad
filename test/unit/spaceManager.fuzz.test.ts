/**
 * Randomised convergence test of the SpaceManager: three managers share a MemoryHub (shuffled,
 * duplicated and split delivery) and each also has its own one-way store (like a local file).
 * Random edits (including moves that would make cycles and concurrent moves of the same items),
 * random layer faults and restarts; at the end, with faults cleared and everything delivered,
 * every manager must show the same trees and secrets, and every local store alone must too.
 *
 * Each seed runs twice: with the local stores loading every op, and with them handing over
 * snapshots plus the ops after them (test/helpers/snapshotLayer.ts, some of them damaged), as the
 * file layer does.
 *
 * Reproduce a failure with FUZZ_SEED=<seed> (printed in the failure message). Timing (retry
 * jitter) is not seeded, so a seed reproduces the same edits, not always the same interleaving.
 */
import * as assert from 'node:assert/strict';
import { MemoryHub, MemoryLayer, MemoryStore, seededRandom, type MemoryFaultSettings } from '../helpers/memoryLayer';
import { TreeError, type AppTree, type DumpNode } from '../../src/spaces/appTree';
import { Notes } from '../../src/spaces/apps/notes';
import type { PersistenceLayer, SecretRecord } from '../../src/persistence/contract';
import type { Space } from '../../src/spaces/space';
import { SpaceManager } from '../../src/spaces/spaceManager';
import type { SpaceErrorEvent } from '../../src/spaces/spaceSession';
import { SnapshotCache, SnapshottingLayer } from '../helpers/snapshotLayer';
import { FAST_RETRY, macrotask, recordIntervals, sleep, waitForLayerState } from './spaceManagerHelpers';

/** Snapshot mode of a run: a local store takes a snapshot when this many ops came after the last one, and damages this share of those it hands out. */
interface SnapshotMode {
  readonly every: number;
  readonly badShare: number;
}
const SNAPSHOTS: SnapshotMode = { every: 25, badShare: 0.2 };

const RUNS = Number(process.env.FUZZ_RUNS ?? 12);
const STEPS = Number(process.env.FUZZ_STEPS ?? 1000);

interface Peer {
  readonly name: string;
  /** The peer's own one-way storage (its "file"), kept across restarts. */
  readonly store: MemoryStore;
  manager: SpaceManager;
  server: MemoryLayer;
  local: MemoryLayer;
  space: Space;
  /** Faults switched on with `failAlways`, and the step at which they are switched off. */
  failAlwaysUntil: Map<MemoryLayer, number>;
}

function sortedSecrets(records: readonly SecretRecord[]): SecretRecord[] {
  return [...records].map((r) => ({ key: r.key, value: r.value, time: r.time, peerId: r.peerId })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

function allIds(node: DumpNode, out: string[] = []): string[] {
  for (const c of node.children) {
    out.push(c.id);
    allIds(c, out);
  }
  return out;
}

interface FuzzStats {
  /** Snapshots the local stores handed over. */
  snapshots: number;
  steps: number;
  restarts: number;
  /** Ops of the notes and space trees at the end. */
  ops: number;
  /** Live notes at the end. */
  items: number;
  delivered: number;
  /** Faults injected into all layers. */
  injected: number;
  refusedEdits: number;
}

async function runFuzz(seed: number, log: string[], managers: SpaceManager[], snapshots?: SnapshotMode): Promise<FuzzStats> {
  const rnd = seededRandom(seed);
  const caches = new Map<string, SnapshotCache>();
  /** The local store as the manager sees it: itself, or with snapshots (the cache outlives restarts, as a file does). */
  const localView = (name: string, l: MemoryLayer): PersistenceLayer => {
    if (!snapshots) return l;
    let c = caches.get(name);
    if (!c) caches.set(name, (c = new SnapshotCache(snapshots.every, seededRandom(seed ^ name.charCodeAt(0)), snapshots.badShare)));
    return new SnapshottingLayer(l, c);
  };
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)];
  const hub = new MemoryHub({ manual: true, shuffle: true, duplicate: 0.25, split: true, random: seededRandom(seed ^ 0x5bd1e995) });
  const errors: SpaceErrorEvent[] = [];
  let restarts = 0;
  let injected = 0;

  const newManager = (): SpaceManager => {
    const m = new SpaceManager({ retry: FAST_RETRY });
    m.onDidError((e) => errors.push(e));
    managers.push(m);
    return m;
  };

  // ---- setup: peer a creates the space, b and c open it --------------------------------------
  const peers: Peer[] = [];
  const first = {
    name: 'a',
    store: new MemoryStore('fuzz-a'),
    manager: newManager(),
  };
  let server!: MemoryLayer;
  let local!: MemoryLayer;
  const space0 = await first.manager.create('Fuzz space', (id) => [
    (server = new MemoryLayer(id, { hub, label: 'server@a' })),
    localView('a', (local = new MemoryLayer(id, { store: first.store, label: 'local a' }))),
  ]);
  const spaceId = space0.id;
  const notesTree = space0.createAppTree('notes', 'Fuzz notes');
  const notesId = notesTree.id;
  const seedNotes = new Notes(notesTree);
  const top = seedNotes.add('seed 1');
  seedNotes.add('seed 2');
  seedNotes.add('seed 1.1', top);
  await first.manager.flush(spaceId);
  peers.push({ ...first, server, local, space: space0, failAlwaysUntil: new Map() });

  const openPeer = async (name: string, store: MemoryStore, faults: { server?: MemoryFaultSettings; local?: MemoryFaultSettings } = {}): Promise<Omit<Peer, 'name' | 'store' | 'failAlwaysUntil'>> => {
    for (let attempt = 0; ; attempt++) {
      const manager = newManager();
      const s = new MemoryLayer(spaceId, { hub, label: `server@${name}`, faults: attempt === 0 ? faults.server : undefined });
      const l = new MemoryLayer(spaceId, { store, label: `local ${name}`, faults: attempt === 0 ? faults.local : undefined });
      try {
        const space = await manager.open(spaceId, [s, localView(name, l)]);
        return { manager, server: s, local: l, space };
      } catch (e) {
        log.push(`  open ${name} failed (attempt ${attempt}): ${String(e)}`);
        await manager.dispose();
        if (attempt >= 2) throw e;
      }
    }
  };
  for (const name of ['b', 'c']) {
    const store = new MemoryStore(`fuzz-${name}`);
    peers.push({ name, store, failAlwaysUntil: new Map(), ...(await openPeer(name, store)) });
  }

  const notesOf = async (p: Peer): Promise<AppTree | undefined> => {
    try {
      return await p.space.openAppTree(notesId);
    } catch (e) {
      log.push(`  ${p.name}: openAppTree failed: ${String(e)}`);
      return undefined;
    }
  };

  /** Runs a local edit, ignoring the TreeErrors of edits made illegal by the current state. */
  const attempt = (what: string, fn: () => void): void => {
    try {
      fn();
      log.push(what);
    } catch (e) {
      if (!(e instanceof TreeError)) throw e;
      log.push(`${what} (refused: ${e.message})`);
    }
  };

  const editNotes = async (p: Peer, step: number): Promise<void> => {
    const tree = await notesOf(p);
    if (!tree) return;
    const notes = new Notes(tree);
    const ids = allIds(tree.dump());
    const any = (): string => (ids.length ? pick(ids) : tree.rootId);
    const kind = int(12);
    if (kind <= 3 || ids.length < 3) {
      const parent = rnd() < 0.3 ? tree.rootId : any();
      const siblings = tree.childIds(parent);
      const after = siblings.length && rnd() < 0.4 ? pick(siblings) : undefined;
      attempt(`${p.name}: add under ${parent.slice(0, 6)}`, () => notes.add(`${p.name}${step}`, parent, after));
    } else if (kind <= 5) {
      const x = any();
      const target = rnd() < 0.2 ? tree.rootId : any(); // often a descendant of x or x itself: refused locally
      const siblings = tree.childIds(target).filter((id) => id !== x);
      const position = siblings.length && rnd() < 0.3 ? { before: pick(siblings) } : undefined;
      attempt(`${p.name}: move ${x.slice(0, 6)} under ${target.slice(0, 6)}`, () => tree.move(x, target, position));
    } else if (kind === 6) {
      const x = any();
      attempt(`${p.name}: delete ${x.slice(0, 6)}`, () => notes.delete(x));
    } else if (kind === 7) {
      const x = any();
      attempt(`${p.name}: text ${x.slice(0, 6)}`, () => notes.setText(x, `${p.name} edit ${step}`));
    } else if (kind === 8) {
      const x = any();
      attempt(`${p.name}: done ${x.slice(0, 6)}`, () => notes.setDone(x, rnd() < 0.5));
    } else {
      const x = any();
      const op = pick(['indent', 'outdent', 'moveUp', 'moveDown'] as const);
      attempt(`${p.name}: ${op} ${x.slice(0, 6)}`, () => void notes[op](x));
    }
  };

  /** Two peers move items against each other before any delivery: cycles across replicas, same item to two places. */
  const concurrentMoves = async (): Promise<void> => {
    const [p, q] = [pick(peers), pick(peers)];
    if (p === q) return;
    const tp = await notesOf(p);
    const tq = await notesOf(q);
    if (!tp || !tq) return;
    const common = allIds(tp.dump()).filter((id) => tq.has(id));
    if (common.length < 2) return;
    const x = pick(common);
    const y = pick(common.filter((id) => id !== x));
    if (rnd() < 0.5) {
      attempt(`${p.name}: cycle move ${x.slice(0, 6)} under ${y.slice(0, 6)}`, () => tp.move(x, y));
      attempt(`${q.name}: cycle move ${y.slice(0, 6)} under ${x.slice(0, 6)}`, () => tq.move(y, x));
    } else {
      const z = pick(common);
      attempt(`${p.name}: same-item move ${x.slice(0, 6)} under ${y.slice(0, 6)}`, () => tp.move(x, y));
      attempt(`${q.name}: same-item move ${x.slice(0, 6)} under ${z.slice(0, 6)}`, () => tq.move(x, rnd() < 0.3 ? tq.rootId : z));
    }
  };

  const restart = async (p: Peer, step: number): Promise<void> => {
    restarts++;
    injected += p.server.faults.injected + p.local.faults.injected;
    await p.manager.dispose();
    const faults: { server?: MemoryFaultSettings; local?: MemoryFaultSettings } = {};
    const r = rnd();
    if (r < 0.2) faults.server = { failLoads: 1 + int(2) };
    else if (r < 0.4) faults.local = { failLoads: 1 + int(2) };
    else if (r < 0.45) faults.server = faults.local = { failLoads: Infinity }; // open fails; the retry opens with healthy layers
    log.push(`${p.name}: restart at ${step} (faults ${JSON.stringify(faults)})`);
    p.failAlwaysUntil.clear();
    Object.assign(p, await openPeer(p.name, p.store, faults));
  };

  // ---- random steps -------------------------------------------------------------------------
  let step = 0;
  for (; step < STEPS; step++) {
    for (const p of peers) {
      for (const [layer, until] of p.failAlwaysUntil) {
        if (until <= step) {
          layer.faults.failAlways = false;
          p.failAlwaysUntil.delete(layer);
        }
      }
    }
    const r = rnd();
    const p = pick(peers);
    if (r < 0.42) await editNotes(p, step);
    else if (r < 0.5) await concurrentMoves();
    else if (r < 0.53) attempt(`${p.name}: rename space`, () => p.space.rename(`Fuzz ${p.name}${step}`));
    else if (r < 0.56) attempt(`${p.name}: setting`, () => p.space.setSetting(pick(['x', 'y']), rnd() < 0.2 ? undefined : step));
    else if (r < 0.6) {
      const key = pick(['k1', 'k2', 'k3']);
      if (rnd() < 0.25) attempt(`${p.name}: delete secret ${key}`, () => void p.space.deleteSecret(key));
      else attempt(`${p.name}: secret ${key}`, () => p.space.setSecret(key, `${p.name}${step}`));
    } else if (r < 0.76) {
      const n = hub.deliver(1 + int(8));
      log.push(`deliver ${n}`);
      await macrotask();
    } else if (r < 0.84) {
      const layer = rnd() < 0.5 ? p.server : p.local;
      const f = int(5);
      if (f < 2) layer.faults.failSaves += 1 + int(3);
      else if (f < 4) layer.faults.failLoads += 1 + int(2);
      else {
        layer.faults.failAlways = true;
        p.failAlwaysUntil.set(layer, step + 3 + int(10));
      }
      log.push(`${p.name}: fault on ${layer.label}: ${JSON.stringify({ failSaves: layer.faults.failSaves, failLoads: layer.faults.failLoads, failAlways: layer.faults.failAlways })}`);
    } else if (r < 0.86) {
      const layer = rnd() < 0.5 ? p.server : p.local;
      layer.faults.saveDelay = rnd() < 0.5 ? undefined : 1 + int(3);
      log.push(`${p.name}: save delay on ${layer.label}: ${String(layer.faults.saveDelay)}`);
    } else if (r < 0.9) await restart(p, step);
    else if (r < 0.95) await sleep(int(8));
    else await macrotask();
  }

  // ---- quiesce: clear faults, recover every layer, deliver and flush until nothing moves -----
  log.push('--- quiesce');
  for (const p of peers) {
    injected += p.server.faults.injected + p.local.faults.injected;
    p.server.faults.reset();
    p.local.faults.reset();
    p.failAlwaysUntil.clear();
  }
  for (const p of peers) {
    p.manager.retryLayers(spaceId);
    for (const l of [p.server, p.local]) await waitForLayerState(p.manager, spaceId, l.id, 'ready', 10_000);
  }
  const trees = new Map<Peer, AppTree>();
  for (const p of peers) {
    const t = await notesOf(p);
    assert.ok(t, `${p.name} cannot open the notes tree after the faults were cleared`);
    trees.set(p, t);
  }
  for (let round = 0; ; round++) {
    assert.ok(round < 100, `the managers do not quiesce (layers: ${JSON.stringify(peers.map((p) => p.manager.layerStates(spaceId)))})`);
    await hub.flush();
    const reports = await Promise.all(peers.map((p) => p.manager.flush(spaceId)));
    await macrotask();
    if (hub.pending === 0 && reports.every((r) => r.length === 0)) break;
    // A layer that reported unsaved ops is being retried with backoff: wait for it to be ready
    // again, so that rounds count retries, not how fast an empty round spins.
    await Promise.all(peers.flatMap((p, i) => reports[i].map((r) => waitForLayerState(p.manager, spaceId, r.layerId, 'ready', 10_000))));
  }

  // ---- every manager shows the same trees and secrets -----------------------------------------
  const [ref, ...others] = peers;
  const refNotes = (trees.get(ref) as AppTree).dump();
  const refSpace = ref.space.tree.dump();
  const refSecrets = sortedSecrets(ref.space.secretRecords());
  for (const p of others) {
    assert.deepEqual((trees.get(p) as AppTree).dump(), refNotes, `notes tree of ${p.name} differs from ${ref.name}`);
    assert.deepEqual(p.space.tree.dump(), refSpace, `space tree of ${p.name} differs from ${ref.name}`);
    assert.deepEqual(sortedSecrets(p.space.secretRecords()), refSecrets, `secrets of ${p.name} differ from ${ref.name}`);
  }
  assert.deepEqual(errors, [], 'no manager reported an error');

  // ---- every local store alone (and the server store alone) gives the same ------------------
  const stores: Array<[string, MemoryStore]> = [...peers.map((p): [string, MemoryStore] => [`local store of ${p.name}`, p.store]), ['server store', hub.store]];
  const opCount = (trees.get(ref) as AppTree).opCount + ref.space.tree.opCount;
  for (const p of peers) await p.manager.dispose();
  for (const [what, store] of stores) {
    const m = new SpaceManager({ retry: FAST_RETRY });
    try {
      const space = await m.open(spaceId, [new MemoryLayer(spaceId, { store })]);
      assert.deepEqual(space.tree.dump(), refSpace, `space tree from the ${what} alone`);
      assert.deepEqual((await space.openAppTree(notesId)).dump(), refNotes, `notes tree from the ${what} alone`);
      assert.deepEqual(sortedSecrets(space.secretRecords()), refSecrets, `secrets from the ${what} alone`);
    } finally {
      await m.dispose();
    }
  }
  if (snapshots) assert.ok([...caches.values()].some((c) => c.counts.offered > 0), 'the local stores handed over snapshots');
  return {
    snapshots: [...caches.values()].reduce((n, c) => n + c.counts.offered, 0),
    steps: step,
    restarts,
    ops: opCount,
    items: allIds(refNotes).length,
    delivered: hub.delivered,
    injected,
    refusedEdits: log.filter((l) => l.includes('(refused')).length,
  };
}

describe('SpaceManager fuzz', function () {
  this.timeout(60_000);
  const base = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : Date.now() % 1_000_000_007;
  const seeds = process.env.FUZZ_SEED !== undefined ? [base] : Array.from({ length: RUNS }, (_, i) => (base + i * 7919) >>> 0);

  for (const [i, seed] of seeds.entries()) {
    // Half the seeds (all of a FUZZ_SEED) with snapshots too.
    for (const snapshots of process.env.FUZZ_SEED !== undefined || i % 2 === 1 ? [undefined, SNAPSHOTS] : [undefined]) {
      it(`three managers on a faulty hub converge, and every store holds everything (seed ${seed}${snapshots ? ', local stores with snapshots' : ''})`, async function () {
        const log: string[] = [];
        const managers: SpaceManager[] = [];
        // A RepTree never disposed keeps its 33 ms interval running: mocha would hang after the run.
        // Every interval is recorded; leaked ones fail the run and are cleared.
        const intervals = recordIntervals();
        try {
          const stats = await runFuzz(seed, log, managers, snapshots);
          if (process.env.FUZZ_VERBOSE) console.log(`    seed ${seed}: ${JSON.stringify(stats)}`);
          assert.ok(stats.ops > 0 && stats.delivered > 0);
          await Promise.all(managers.map((m) => m.dispose()));
          const leaked = intervals.live.size;
          const failedLoads = log.filter((l) => l.includes('openAppTree failed'));
          assert.equal(
            leaked,
            0,
            `${leaked} RepTree interval(s) leaked (trees never disposed), started at:\n${[...intervals.live.values()].join('\n  --\n')}\n  app tree loads that failed:\n    ${failedLoads.join('\n    ')}`,
          );
        } catch (e) {
          const tail = log.slice(-40).join('\n    ');
          if (e instanceof Error) {
            e.message = `FUZZ_SEED=${seed}: ${e.message}\n  last actions:\n    ${tail}`;
            throw e;
          }
          throw new Error(`FUZZ_SEED=${seed}: ${String(e)}\n  last actions:\n    ${tail}`);
        } finally {
          await Promise.all(managers.map((m) => m.dispose()));
          intervals.dispose();
        }
      });
    }
  }
});
