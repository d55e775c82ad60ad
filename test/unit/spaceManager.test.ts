/** SpaceManager behaviour over MemoryLayers: open/create/close, several layers, degraded layers, two-way sync. */
import * as assert from 'node:assert/strict';
import type { IncomingOps, SecretRecord } from '../../src/persistence/contract';
import { Gate, MemoryHub, MemoryLayer, MemoryStore, type HubPeer } from '../helpers/memoryLayer';
import { Chat } from '../../src/spaces/apps/chat';
import { Notes } from '../../src/spaces/apps/notes';
import { Emitter } from '../../src/spaces/events';
import { DEFAULT_RETRY } from '../../src/spaces/layerSlot';
import type { Op } from '../../src/spaces/ops';
import type { Space } from '../../src/spaces/space';
import { SpaceManager, type SpaceChange, type SpaceManagerOptions } from '../../src/spaces/spaceManager';
import { SpaceOpenError, type LayerStateChange, type SpaceErrorEvent } from '../../src/spaces/spaceSession';
import { moveOp, rootOp, secret, setOp } from '../conformance/opFixtures';
import {
  FAST_RETRY,
  activeTimers,
  captureUncaught,
  keysOf,
  layerState,
  macrotask,
  nextEvent,
  recordIntervals,
  settle,
  storedKeys,
  ticks,
  until,
  waitForLayerState,
} from './spaceManagerHelpers';

/** A MemoryLayer whose `onIncoming` / `onIncomingSecrets` the test drives directly. */
class ScriptedLayer extends MemoryLayer {
  private readonly scriptedOps = new Emitter<IncomingOps>();
  private readonly scriptedSecrets = new Emitter<readonly SecretRecord[]>();
  override readonly onIncoming = this.scriptedOps.event;
  override readonly onIncomingSecrets = this.scriptedSecrets.event;

  fireOps(batch: IncomingOps): void {
    this.scriptedOps.fire(batch);
  }

  fireSecrets(records: readonly SecretRecord[]): void {
    this.scriptedSecrets.fire(records);
  }
}

/** A MemoryLayer whose loadTree reads the store, then waits on `hold` (if set) before returning: a snapshot taken early. */
class SnapshotLayer extends MemoryLayer {
  hold: Gate | undefined;

  override async loadTree(treeId: string): Promise<Op[]> {
    const ops = await super.loadTree(treeId);
    const hold = this.hold;
    if (hold) await hold.pass();
    return ops;
  }
}

/** A hub peer that is not a layer: publishes what a misbehaving server would send. */
function rogueServer(spaceId: string): HubPeer {
  return { spaceId, isOpen: true, receiveOps() {}, receiveSecrets() {} };
}

interface Fixture {
  manager(opts?: SpaceManagerOptions): SpaceManager;
  gate(): Gate;
}

/** Managers and gates made by a test are disposed / opened after it, so that nothing is left waiting. */
function useFixture(): Fixture {
  const managers: SpaceManager[] = [];
  const gates: Gate[] = [];
  afterEach(async function () {
    for (const g of gates.splice(0)) g.open();
    await Promise.all(managers.splice(0).map((m) => m.dispose()));
  });
  return {
    manager(opts: SpaceManagerOptions = {}) {
      const m = new SpaceManager({ retry: FAST_RETRY, ...opts });
      managers.push(m);
      return m;
    },
    gate() {
      const g = new Gate();
      gates.push(g);
      return g;
    },
  };
}

function collect<T>(event: (l: (v: T) => void) => unknown): T[] {
  const out: T[] = [];
  event((v) => out.push(v));
  return out;
}

function sortedSecrets(records: readonly SecretRecord[]): SecretRecord[] {
  return [...records].map((r) => ({ key: r.key, value: r.value, time: r.time, peerId: r.peerId })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

function texts(notes: Notes): string[] {
  const out: string[] = [];
  const walk = (items: ReturnType<Notes['items']>): void => {
    for (const it of items) {
      out.push(it.text);
      walk(it.children);
    }
  };
  walk(notes.items());
  return out.sort();
}

/**
 * Creates a space in `stores` (one layer per store) with a notes tree holding `notes`, and a
 * secret; closes it. Returns the ids.
 */
async function seedSpace(stores: MemoryStore[], notes: string[] = ['base'], name = 'Team'): Promise<{ spaceId: string; notesId: string }> {
  const m = new SpaceManager({ retry: FAST_RETRY });
  try {
    const space = await m.create(name, (id) => stores.map((store) => new MemoryLayer(id, { store })));
    const tree = space.createAppTree('notes', 'Plans');
    const n = new Notes(tree);
    for (const t of notes) n.add(t);
    space.setSecret('base.key', 'base-value');
    assert.deepEqual(await m.close(space.id), []);
    return { spaceId: space.id, notesId: tree.id };
  } finally {
    await m.dispose();
  }
}

/** Opens `spaceId` from `stores` alone on a fresh manager, runs `edit`, closes. */
async function editAlone(spaceId: string, stores: MemoryStore[], edit: (space: Space) => Promise<void> | void): Promise<void> {
  const m = new SpaceManager({ retry: FAST_RETRY });
  try {
    const space = await m.open(
      spaceId,
      stores.map((store) => new MemoryLayer(spaceId, { store })),
    );
    await edit(space);
    assert.deepEqual(await m.close(spaceId), []);
  } finally {
    await m.dispose();
  }
}

describe('SpaceManager', function () {
  this.timeout(20_000);
  const fx = useFixture();

  // A RepTree left undisposed keeps a 33 ms interval running and mocha (without --exit) would
  // hang; record every interval so that a leak fails here instead, and is cleared.
  let intervals: ReturnType<typeof recordIntervals>;
  before(() => (intervals = recordIntervals()));
  after(function () {
    const leaked = intervals.live.size;
    intervals.dispose();
    assert.equal(leaked, 0, `${leaked} interval(s) (RepTree trees) were never disposed by the tests above`);
  });

  describe('create, open, close', function () {
    it('create → close → open over the same store gives the same name, settings, app trees, items and secrets', async function () {
      const store = new MemoryStore('roundtrip');
      const m1 = fx.manager();
      const space = await m1.create('Team space', (id) => [new MemoryLayer(id, { store })]);
      const spaceId = space.id;
      space.setSetting('theme', 'dark');
      const notesTree = space.createAppTree('notes', 'Plans');
      const chatTree = space.createAppTree('chat', 'General');
      const notes = new Notes(notesTree);
      const a = notes.add('first');
      const b = notes.add('second');
      notes.add('child of first', a);
      notes.setDone(b, true);
      notes.moveUp(b);
      new Chat(chatTree).post('alice', 'hello', 1_700_000_000_000);
      space.setSecret('openai.key', 'sk-123');
      space.setSecret('gone', 'x');
      space.deleteSecret('gone');

      const before = {
        name: space.name,
        settings: space.settings(),
        refs: space.appTreeRefs(),
        spaceDump: space.tree.dump(),
        notes: notesTree.dump(),
        items: notes.items(),
        chat: chatTree.dump(),
        secrets: sortedSecrets(space.secretRecords()),
      };
      assert.deepEqual(await m1.close(spaceId), []);
      assert.equal(m1.get(spaceId), undefined);
      assert.deepEqual(store.spaceIds(), [spaceId]);
      assert.deepEqual(store.treeIds(spaceId), [spaceId, notesTree.id, chatTree.id].sort());

      const m2 = fx.manager();
      const reopened = await m2.open(spaceId, [new MemoryLayer(spaceId, { store })]);
      assert.notEqual(reopened, space);
      assert.equal(reopened.name, 'Team space');
      assert.deepEqual(reopened.settings(), before.settings);
      assert.deepEqual(reopened.appTreeRefs(), before.refs);
      assert.deepEqual(reopened.tree.dump(), before.spaceDump);
      const notesAgain = await reopened.openAppTree(notesTree.id);
      assert.deepEqual(notesAgain.dump(), before.notes);
      assert.deepEqual(new Notes(notesAgain).items(), before.items);
      assert.deepEqual((await reopened.openAppTree(chatTree.id)).dump(), before.chat);
      assert.deepEqual(sortedSecrets(reopened.secretRecords()), before.secrets);
      assert.equal(reopened.getSecret('openai.key'), 'sk-123');
      assert.equal(reopened.getSecret('gone'), undefined);
      assert.deepEqual(reopened.secretNames(), ['openai.key']);
    });

    it('fires open and close events and lists open spaces', async function () {
      const m = fx.manager();
      const opened = collect(m.onDidOpenSpace);
      const closed = collect(m.onDidCloseSpace);
      const s1 = await m.create('One', (id) => [new MemoryLayer(id)]);
      const s2 = await m.create('Two', (id) => [new MemoryLayer(id)]);
      assert.deepEqual(opened, [s1, s2]);
      assert.deepEqual(m.list().map((s) => s.name).sort(), ['One', 'Two']);
      assert.equal(m.get(s1.id), s1);
      await m.close(s1.id);
      assert.deepEqual(closed, [s1.id]);
      assert.deepEqual(m.list(), [s2]);
      assert.throws(() => m.layerStates(s1.id), SpaceOpenError);
      await assert.rejects(m.flush(s1.id), SpaceOpenError);
    });

    it('open is idempotent: concurrent and repeated opens give the same instance; duplicate layers are closed', async function () {
      const store = new MemoryStore('idem');
      const { spaceId } = await seedSpace([store]);
      const m = fx.manager();
      const l1 = new MemoryLayer(spaceId, { store });
      const l2 = new MemoryLayer(spaceId, { store }); // same id as l1 (same store)
      const [a, b] = await Promise.all([m.open(spaceId, [l1]), m.open(spaceId, [l2])]);
      assert.equal(a, b);
      assert.equal(l1.closed, false);
      assert.equal(l2.closed, true, 'the duplicate layer instance passed to a concurrent open is closed');

      const l3 = new MemoryLayer(spaceId, { store });
      assert.equal(await m.open(spaceId, [l3]), a);
      assert.equal(l3.closed, true);
      assert.equal(l1.closed, false);
      assert.deepEqual(m.layerStates(spaceId).map((s) => s.layerId), [l1.id]);
      assert.equal(l1.calls.loadTree, 1, 'the space was loaded once');

      // A layer with a new id is attached and reconciled.
      const extra = new MemoryStore('extra');
      const l4 = new MemoryLayer(spaceId, { store: extra });
      assert.equal(await m.open(spaceId, [l4, new MemoryLayer(spaceId, { store })]), a);
      assert.deepEqual(m.layerStates(spaceId).map((s) => [s.layerId, s.state.status]), [
        [l1.id, 'ready'],
        [l4.id, 'ready'],
      ]);
      await settle(m, spaceId);
      assert.deepEqual(storedKeys(extra, spaceId, spaceId), storedKeys(store, spaceId, spaceId));
      assert.equal(extra.secret(spaceId, 'base.key')?.value, 'base-value');
    });

    it('open rejects clearly when no layer holds the space', async function () {
      const m = fx.manager();
      const layer = new MemoryLayer('0123456789abcdef0123456789abcdef', { store: new MemoryStore('empty') });
      await assert.rejects(m.open(layer.spaceId, [layer]), (e: Error) => {
        assert.ok(e instanceof SpaceOpenError, String(e));
        assert.match(e.message, /no layer holds space 0123456789abcdef0123456789abcdef/);
        return true;
      });
      assert.equal(layer.closed, true, 'the layers of a failed open are closed');
      assert.equal(m.get(layer.spaceId), undefined);
      assert.deepEqual(m.list(), []);
    });

    it('open rejects naming every layer error when every layer fails; a later open works', async function () {
      const sa = new MemoryStore('fa');
      const sb = new MemoryStore('fb');
      const { spaceId } = await seedSpace([sa, sb]);
      const m = fx.manager();
      const la = new MemoryLayer(spaceId, { store: sa, label: 'Alpha', faults: { failLoads: Infinity } });
      const lb = new MemoryLayer(spaceId, { store: sb, label: 'Beta', faults: { failAlways: true, error: 'disk on fire' } });
      await assert.rejects(m.open(spaceId, [la, lb]), (e: Error) => {
        assert.ok(e instanceof SpaceOpenError, String(e));
        assert.match(e.message, new RegExp(`cannot open space ${spaceId}`));
        assert.match(e.message, /Alpha: .*injected load failure/);
        assert.match(e.message, /Beta: .*disk on fire/);
        return true;
      });
      assert.equal(la.closed, true);
      assert.equal(lb.closed, true);
      assert.equal(m.get(spaceId), undefined);
      const space = await m.open(spaceId, [new MemoryLayer(spaceId, { store: sa })]);
      assert.equal(space.name, 'Team');
    });

    it('open rejecting because the only layer holding the space failed names that failure', async function () {
      // Layer A holds the space but cannot be read; layer B (a fresh server) is empty.
      const sa = new MemoryStore('holder');
      const { spaceId } = await seedSpace([sa]);
      const m = fx.manager();
      const la = new MemoryLayer(spaceId, { store: sa, label: 'Workspace file', faults: { failLoads: Infinity, error: 'file is locked' } });
      const lb = new MemoryLayer(spaceId, { store: new MemoryStore('fresh'), label: 'Server' });
      await assert.rejects(m.open(spaceId, [la, lb]), (e: Error) => {
        assert.ok(e instanceof SpaceOpenError, String(e));
        assert.match(e.message, /file is locked/, `the error hides why the layer holding the space failed: ${e.message}`);
        return true;
      });
    });

    it('layers passed to an open that fails are closed (concurrent open of a space that cannot load)', async function () {
      const sa = new MemoryStore('cc');
      const { spaceId } = await seedSpace([sa]);
      const m = fx.manager();
      const failing = new MemoryLayer(spaceId, { store: sa, faults: { failLoads: Infinity } });
      const second = new MemoryLayer(spaceId, { store: new MemoryStore('cc2') });
      const r = await Promise.allSettled([m.open(spaceId, [failing]), m.open(spaceId, [second])]);
      assert.deepEqual(
        r.map((x) => x.status),
        ['rejected', 'rejected'],
      );
      assert.equal(failing.closed, true);
      assert.equal(second.closed, true, 'the layer given to the second (concurrent) open is left open: it leaks (a file layer would keep its lock)');
    });

    it('a layer of another space is refused, and the layers of that open are closed', async function () {
      const sa = new MemoryStore('mm');
      const { spaceId } = await seedSpace([sa]);
      const m = fx.manager();
      const good = new MemoryLayer(spaceId, { store: sa });
      const wrong = new MemoryLayer('ffffffffffffffffffffffffffffffff', { store: new MemoryStore('other') });
      await assert.rejects(m.open(spaceId, [good, wrong]), /holds space ffffffffffffffffffffffffffffffff/);
      assert.equal(m.get(spaceId), undefined);
      assert.equal(good.closed, true, 'the valid layer passed to the refused open is left open');
    });

    it('create with a layer of another space rejects without leaking the new tree (its RepTree interval)', async function () {
      const m = fx.manager();
      const intervals = recordIntervals();
      try {
        await assert.rejects(
          m.create('Leaky', () => [new MemoryLayer('ffffffffffffffffffffffffffffffff')]),
          /holds space ffffffffffffffffffffffffffffffff/,
        );
        assert.deepEqual(m.list(), []);
        assert.equal(intervals.live.size, 0, `${intervals.live.size} RepTree interval(s) left running: the process would never exit`);
      } finally {
        intervals.dispose();
      }
    });
  });

  describe('several layers', function () {
    it('merges ops and secrets from all layers, and each layer receives what it lacked', async function () {
      const sa = new MemoryStore('ma');
      const sb = new MemoryStore('mb');
      const { spaceId, notesId } = await seedSpace([sa, sb]);
      await editAlone(spaceId, [sa], async (space) => {
        new Notes(await space.openAppTree(notesId)).add('only in A');
        space.setSetting('from', 'A');
        space.setSecret('a.key', 'A');
      });
      await editAlone(spaceId, [sb], async (space) => {
        new Notes(await space.openAppTree(notesId)).add('only in B');
        space.createAppTree('chat', 'B chat');
        space.setSecret('b.key', 'B');
      });
      assert.notDeepEqual(storedKeys(sa, spaceId, spaceId), storedKeys(sb, spaceId, spaceId));

      const m = fx.manager();
      const la = new MemoryLayer(spaceId, { store: sa });
      const lb = new MemoryLayer(spaceId, { store: sb });
      const space = await m.open(spaceId, [la, lb]);
      assert.equal(space.getSetting('from'), 'A');
      assert.deepEqual(space.appTreeRefs().map((r) => r.name).sort(), ['B chat', 'Plans']);
      assert.equal(space.getSecret('a.key'), 'A');
      assert.equal(space.getSecret('b.key'), 'B');
      assert.equal(space.getSecret('base.key'), 'base-value');
      const notes = new Notes(await space.openAppTree(notesId));
      assert.deepEqual(texts(notes), ['base', 'only in A', 'only in B']);

      await settle(m, spaceId);
      const spaceKeys = keysOf(space.tree.allOps());
      const notesKeys = keysOf(notes.tree.allOps());
      for (const [name, store] of [
        ['A', sa],
        ['B', sb],
      ] as const) {
        assert.deepEqual(storedKeys(store, spaceId, spaceId), spaceKeys, `space tree ops in store ${name}`);
        assert.deepEqual(storedKeys(store, spaceId, notesId), notesKeys, `notes ops in store ${name}`);
        assert.deepEqual(sortedSecrets(store.secrets(spaceId)), sortedSecrets(space.secretRecords()), `secrets in store ${name}`);
      }
    });

    it('saves to every layer in parallel: a layer held by a gate does not delay the other', async function () {
      const sa = new MemoryStore('pa');
      const sb = new MemoryStore('pb');
      const m = fx.manager();
      let lb!: MemoryLayer;
      const space = await m.create('Parallel', (id) => [new MemoryLayer(id, { store: sa }), (lb = new MemoryLayer(id, { store: sb }))]);
      const notes = new Notes(space.createAppTree('notes', 'N'));
      await settle(m, space.id);
      const countB = sb.opCount(space.id);

      const gate = fx.gate();
      lb.faults.saveDelay = gate;
      const id = notes.add('held for B');
      space.setSecret('k', 'v');
      await gate.arrived(1);
      await until(() => sa.opCount(space.id, notes.tree.id) === notes.tree.opCount && sa.secretCount(space.id) === 1, 'store A has every notes op and the secret');
      assert.equal(sb.opCount(space.id), countB, 'B stored nothing while its gate is closed');
      assert.equal(layerState(m, space.id, lb.id)?.pendingOps, 0, 'the batch is in flight, not queued');

      // More edits queue up behind the held save; A keeps saving.
      notes.setText(id, 'edited');
      await until(() => sa.opCount(space.id, notes.tree.id) === notes.tree.opCount, 'store A has the edit');
      assert.equal(sb.opCount(space.id), countB);
      const flushing = m.flush(space.id);
      let flushed = false;
      void flushing.then(() => (flushed = true));
      await macrotask();
      assert.equal(flushed, false, 'flush waits for the held layer');

      gate.open();
      assert.deepEqual(await flushing, []);
      assert.deepEqual(storedKeys(sb, space.id, notes.tree.id), keysOf(notes.tree.allOps()));
      assert.deepEqual(storedKeys(sb, space.id, space.id), keysOf(space.tree.allOps()));
      assert.equal(sb.secret(space.id, 'k')?.value, 'v');
    });
  });

  describe('degraded layers', function () {
    it('a layer failing on load is degraded, never written, and reconciled when it recovers', async function () {
      const sa = new MemoryStore('da');
      const sb = new MemoryStore('db');
      const { spaceId, notesId } = await seedSpace([sa, sb], ['one', 'two']);
      // B is behind A: A got an extra item while B was away.
      await editAlone(spaceId, [sa], async (space) => {
        new Notes(await space.openAppTree(notesId)).add('A only');
      });
      const m = fx.manager();
      const la = new MemoryLayer(spaceId, { store: sa, label: 'Alpha' });
      const lb = new MemoryLayer(spaceId, { store: sb, label: 'Beta', faults: { failLoads: Infinity, error: 'cannot read beta' } });
      const space = await m.open(spaceId, [la, lb]);
      assert.equal(space.name, 'Team');
      assert.equal(layerState(m, spaceId, la.id)?.status, 'ready');
      const bState = layerState(m, spaceId, lb.id);
      assert.equal(bState?.status, 'degraded');
      assert.match(bState?.error ?? '', /cannot read beta/);

      const bOps = sb.opCount(spaceId);
      const bSecrets = sb.secrets(spaceId);
      // Edits while B is degraded: they reach A, never B.
      const notes = new Notes(await space.openAppTree(notesId));
      assert.deepEqual(texts(notes), ['A only', 'one', 'two']);
      notes.add('while degraded');
      space.rename('Renamed while degraded');
      space.setSecret('new.key', 'new');
      await until(() => lb.faults.injected >= 4, 'B was retried a few times');
      assert.equal(layerState(m, spaceId, lb.id)?.status, 'degraded');
      const report = await m.flush(spaceId);
      assert.equal(report.length, 1, JSON.stringify(report));
      assert.equal(report[0].layerId, lb.id);
      assert.equal(report[0].label, 'Beta');
      assert.ok(report[0].pendingOps > 0, 'the edits wait in its queue');
      assert.match(report[0].error ?? '', /cannot read beta/);
      assert.equal(sb.opCount(spaceId), bOps, 'a degraded layer is never written');
      assert.deepEqual(sb.secrets(spaceId), bSecrets);
      assert.equal(lb.calls.saveOps, 0);
      assert.equal(lb.calls.saveSecrets, 0);
      assert.equal(sa.opCount(spaceId, notesId), notes.tree.opCount);

      // The fault clears: the retry brings it back and it receives everything it lacked.
      const ready = waitForLayerState(m, spaceId, lb.id, 'ready');
      lb.faults.reset();
      await ready;
      await settle(m, spaceId);
      assert.deepEqual(storedKeys(sb, spaceId, spaceId), keysOf(space.tree.allOps()));
      assert.deepEqual(storedKeys(sb, spaceId, notesId), keysOf(notes.tree.allOps()), 'B got the notes ops it lacked (A only, while degraded)');
      assert.deepEqual(sortedSecrets(sb.secrets(spaceId)), sortedSecrets(space.secretRecords()));
      assert.equal(layerState(m, spaceId, lb.id)?.error, undefined);
    });

    it('a layer that loads but cannot save (a read-only file) backs off: a retried load that works does not reset the backoff', async function () {
      const store = new MemoryStore('ro');
      const { spaceId, notesId } = await seedSpace([store]);
      const baseMs = 20;
      const m = fx.manager({ retry: { baseMs, maxMs: 60_000 } });
      const layer = new MemoryLayer(spaceId, { store, faults: { failSaves: Infinity, error: 'read-only' } });
      const space = await m.open(spaceId, [layer]);
      const degradedAt: number[] = [];
      const sixth = new Promise<void>((resolve) =>
        m.onDidChangeLayerState((e) => {
          if (e.layerId !== layer.id || e.state.status !== 'degraded') return;
          degradedAt.push(performance.now());
          if (degradedAt.length === 6) resolve();
        }),
      );
      new Notes(await space.openAppTree(notesId)).add('never saved');
      await sixth;
      // Retry k waits at least baseMs·2^k / 2 (10, 20, 40, 80, 160 ms): ≥ 310 ms from the first
      // failure to the sixth. A backoff reset by each working load retries every 10–20 ms.
      const elapsed = degradedAt[5] - degradedAt[0];
      const floor = [0, 1, 2, 3, 4].reduce((sum, k) => sum + (baseMs * 2 ** k) / 2, 0);
      assert.ok(elapsed >= floor, `six failed saves within ${elapsed.toFixed(0)} ms: the backoff was reset (expected ≥ ${floor} ms)`);
      assert.ok(layer.faults.injected >= 6, `${layer.faults.injected} saves failed`);
    });

    it('onDidChangeLayerState reports a layer degraded by a failed load at open, with the reason', async function () {
      const sa = new MemoryStore('ea');
      const sb = new MemoryStore('eb');
      const { spaceId } = await seedSpace([sa, sb]);
      const m = fx.manager({ retry: { baseMs: 60_000, maxMs: 60_000 } }); // no retry during the test: only the open's own events
      const states = collect<LayerStateChange>(m.onDidChangeLayerState);
      const lb = new MemoryLayer(spaceId, { store: sb, label: 'Beta', faults: { failLoads: Infinity, error: 'cannot read beta' } });
      await m.open(spaceId, [new MemoryLayer(spaceId, { store: sa }), lb]);
      assert.equal(layerState(m, spaceId, lb.id)?.status, 'degraded');
      const degraded = states.find((e) => e.layerId === lb.id && e.state.status === 'degraded');
      assert.ok(
        degraded,
        `no 'degraded' event for Beta (events: ${JSON.stringify(states)}): SpaceSession.open degrades the slot before SpaceManager.adopt subscribes to the session's layerStateEmitter, so the event is lost`,
      );
      assert.equal(degraded.spaceId, spaceId);
      assert.equal(degraded.label, 'Beta');
      assert.match(degraded.state.error ?? '', /cannot read beta/);
    });

    it('a recovering layer contributes the ops only it had', async function () {
      const sa = new MemoryStore('ra');
      const sb = new MemoryStore('rb');
      const { spaceId, notesId } = await seedSpace([sa, sb]);
      await editAlone(spaceId, [sb], async (space) => {
        new Notes(await space.openAppTree(notesId)).add('B only');
        space.setSetting('b', true);
        space.setSecret('b.key', 'from B');
      });
      const m = fx.manager();
      const lb = new MemoryLayer(spaceId, { store: sb, faults: { failLoads: 3 } });
      const space = await m.open(spaceId, [new MemoryLayer(spaceId, { store: sa }), lb]);
      const notes = new Notes(await space.openAppTree(notesId));
      assert.deepEqual(texts(notes), ['base']);
      assert.equal(space.getSetting('b'), undefined);
      const remote = nextEvent(m.onDidChangeSpace, (c) => c.treeId === notesId && c.origin === 'remote', 'the notes ops of B');
      await waitForLayerState(m, spaceId, lb.id, 'ready');
      await remote;
      assert.deepEqual(texts(notes), ['B only', 'base']);
      assert.equal(space.getSetting('b'), true);
      assert.equal(space.getSecret('b.key'), 'from B');
      await settle(m, spaceId);
      assert.deepEqual(storedKeys(sa, spaceId, notesId), keysOf(notes.tree.allOps()));
      assert.equal(sa.secret(spaceId, 'b.key')?.value, 'from B');
    });

    it('a layer whose load times out is degraded, then recovers', async function () {
      const sa = new MemoryStore('ta');
      const sb = new MemoryStore('tb');
      const { spaceId } = await seedSpace([sa, sb]);
      const m = fx.manager({ loadTimeoutMs: 30 });
      const gate = fx.gate();
      const lb = new MemoryLayer(spaceId, { store: sb, faults: { loadDelay: gate } });
      const space = await m.open(spaceId, [new MemoryLayer(spaceId, { store: sa }), lb]);
      assert.match(layerState(m, spaceId, lb.id)?.error ?? '', /timed out after 30 ms/);
      space.setSetting('during', 'timeout');
      gate.open();
      await waitForLayerState(m, spaceId, lb.id, 'ready');
      await settle(m, spaceId);
      assert.deepEqual(storedKeys(sb, spaceId, spaceId), keysOf(space.tree.allOps()));
    });

    it('retryLayers retries at once instead of waiting for the backoff', async function () {
      const sa = new MemoryStore('xa');
      const sb = new MemoryStore('xb');
      const { spaceId } = await seedSpace([sa, sb]);
      const m = fx.manager({ retry: { baseMs: 60_000, maxMs: 60_000 } });
      const lb = new MemoryLayer(spaceId, { store: sb, faults: { failLoads: 1 } });
      await m.open(spaceId, [new MemoryLayer(spaceId, { store: sa }), lb]);
      assert.equal(layerState(m, spaceId, lb.id)?.status, 'degraded');
      m.retryLayers(spaceId);
      await waitForLayerState(m, spaceId, lb.id, 'ready', 1000);
    });

    it('a layer recovering while an app tree loads receives that tree’s ops too', async function () {
      const sa = new MemoryStore('race-a');
      const sb = new MemoryStore('race-b');
      const { spaceId } = await seedSpace([sa, sb], ['x']);
      // A second notes tree, written to A only: B lacks all of its ops.
      let notesId = '';
      await editAlone(spaceId, [sa], (space) => {
        const t = space.createAppTree('notes', 'Later');
        notesId = t.id;
        new Notes(t).add('only A has this tree');
      });
      assert.equal(sb.opCount(spaceId, notesId), 0);
      const m = fx.manager();
      const gate = fx.gate();
      const la = new MemoryLayer(spaceId, { store: sa });
      const lb = new MemoryLayer(spaceId, { store: sb, faults: { failLoads: Infinity } });
      const space = await m.open(spaceId, [la, lb]);
      assert.equal(layerState(m, spaceId, lb.id)?.status, 'degraded');
      la.faults.loadDelay = gate;
      const loading = space.openAppTree(notesId);
      await gate.arrived(1);
      lb.faults.reset();
      m.retryLayers(spaceId);
      await waitForLayerState(m, spaceId, lb.id, 'ready');
      gate.open();
      const tree = await loading;
      await settle(m, spaceId);
      assert.deepEqual(
        storedKeys(sb, spaceId, notesId),
        keysOf(tree.allOps()),
        'B recovered while the notes tree was loading (from A only) and never received the notes ops',
      );
    });
  });

  describe('save failures', function () {
    it('failed saves are retried until everything is stored', async function () {
      const sa = new MemoryStore('sa');
      const sb = new MemoryStore('sb');
      const m = fx.manager();
      let lb!: MemoryLayer;
      const space = await m.create('Retry', (id) => [new MemoryLayer(id, { store: sa }), (lb = new MemoryLayer(id, { store: sb }))]);
      const notes = new Notes(space.createAppTree('notes', 'N'));
      await settle(m, space.id);
      lb.faults.set({ failSaves: 3 });
      const states = collect<LayerStateChange>(m.onDidChangeLayerState);
      for (let i = 0; i < 5; i++) notes.add(`item ${i}`);
      space.setSecret('s', '1');
      await settle(m, space.id);
      assert.equal(lb.faults.failSaves, 0);
      assert.ok(states.some((e) => e.layerId === lb.id && e.state.status === 'degraded' && /save failed/.test(e.state.error ?? '')), JSON.stringify(states));
      assert.equal(layerState(m, space.id, lb.id)?.status, 'ready');
      assert.deepEqual(storedKeys(sb, space.id, notes.tree.id), keysOf(notes.tree.allOps()));
      assert.deepEqual(storedKeys(sb, space.id, space.id), keysOf(space.tree.allOps()));
      assert.equal(sb.secret(space.id, 's')?.value, '1');
    });

    it('flush reports a layer that keeps failing, and the other layer has everything', async function () {
      const sa = new MemoryStore('fa1');
      const sb = new MemoryStore('fb1');
      const m = fx.manager();
      let lb!: MemoryLayer;
      const space = await m.create('Failing', (id) => [new MemoryLayer(id, { store: sa }), (lb = new MemoryLayer(id, { store: sb, label: 'Flaky' }))]);
      const notes = new Notes(space.createAppTree('notes', 'N'));
      await settle(m, space.id);
      lb.faults.failAlways = true;
      notes.add('unsaved on B');
      const report = await m.flush(space.id);
      assert.equal(report.length, 1, JSON.stringify(report));
      assert.equal(report[0].layerId, lb.id);
      assert.equal(report[0].label, 'Flaky');
      assert.ok(report[0].pendingOps > 0, JSON.stringify(report));
      assert.match(report[0].error ?? '', /save failed/);
      assert.deepEqual(storedKeys(sa, space.id, notes.tree.id), keysOf(notes.tree.allOps()));
      await until(() => lb.faults.injected >= 3, 'a few retries');
      assert.equal((await m.flush(space.id)).length, 1);

      lb.faults.failAlways = false;
      await waitForLayerState(m, space.id, lb.id, 'ready');
      await settle(m, space.id);
      assert.deepEqual(storedKeys(sb, space.id, notes.tree.id), keysOf(notes.tree.allOps()));
    });

    it('close reports what a failing layer could not save', async function () {
      const m = fx.manager();
      let lb!: MemoryLayer;
      const space = await m.create('Closing', (id) => [new MemoryLayer(id), (lb = new MemoryLayer(id, { label: 'Broken' }))]);
      await settle(m, space.id);
      lb.faults.failAlways = true;
      space.rename('lost on B');
      const report = await m.close(space.id);
      assert.equal(report.length, 1, JSON.stringify(report));
      assert.equal(report[0].layerId, lb.id);
      assert.ok(report[0].pendingOps > 0);
      assert.equal(lb.closed, true);
    });
  });

  describe('two-way layers', function () {
    async function twoPeers(): Promise<{
      hub: MemoryHub;
      mA: SpaceManager;
      mB: SpaceManager;
      a: Space;
      b: Space;
      localA: MemoryStore;
      localB: MemoryStore;
      notesId: string;
      hubB: MemoryLayer;
    }> {
      const hub = new MemoryHub();
      const localA = new MemoryStore('localA');
      const localB = new MemoryStore('localB');
      const mA = fx.manager({ peerId: 'aaaa' });
      const mB = fx.manager({ peerId: 'bbbb' });
      const a = await mA.create('Shared', (id) => [new MemoryLayer(id, { hub, label: 'server' }), new MemoryLayer(id, { store: localA })]);
      const notesTree = a.createAppTree('notes', 'Plans');
      new Notes(notesTree).add('first');
      await settle(mA, a.id);
      const hubB = new MemoryLayer(a.id, { hub, label: 'server' });
      const b = await mB.open(a.id, [hubB, new MemoryLayer(a.id, { store: localB })]);
      return { hub, mA, mB, a, b, localA, localB, notesId: notesTree.id, hubB };
    }

    it('edits on one manager appear on the other and are persisted in its local store', async function () {
      const { hub, mA, mB, a, b, localB, localA, notesId } = await twoPeers();
      assert.equal(b.name, 'Shared');
      const notesA = new Notes(await a.openAppTree(notesId));
      const notesB = new Notes(await b.openAppTree(notesId));
      assert.deepEqual(texts(notesB), ['first']);

      const remoteB = nextEvent<SpaceChange>(mB.onDidChangeSpace, (c) => c.origin === 'remote' && c.treeId === notesId, 'remote notes change on B');
      const second = notesA.add('second');
      const change = await remoteB;
      assert.equal(change.spaceId, a.id);
      assert.deepEqual(texts(notesB), ['first', 'second']);

      const remoteA = nextEvent<SpaceChange>(mA.onDidChangeSpace, (c) => c.origin === 'remote' && c.treeId === notesId, 'remote notes change on A');
      notesB.setDone(second, true);
      await remoteA;
      assert.equal(notesA.item(second).done, true);

      const renamed = nextEvent<SpaceChange>(mB.onDidChangeSpace, (c) => c.origin === 'remote' && c.treeId === a.id, 'remote space change on B');
      a.rename('Shared and renamed');
      await renamed;
      assert.equal(b.name, 'Shared and renamed');

      await hub.flush();
      await settle(mA, a.id);
      await settle(mB, a.id);
      assert.deepEqual(storedKeys(localB, a.id, notesId), keysOf(notesB.tree.allOps()), "B's local store has A's notes edits");
      assert.deepEqual(storedKeys(localB, a.id, a.id), keysOf(b.tree.allOps()), "B's local store has A's rename");
      assert.deepEqual(storedKeys(localA, a.id, notesId), keysOf(notesA.tree.allOps()), "A's local store has B's edit");
      assert.deepEqual(notesA.tree.dump(), notesB.tree.dump());
    });

    it('concurrent edits on both managers converge', async function () {
      const { hub, mA, mB, a, b, notesId } = await twoPeers();
      const ta = await a.openAppTree(notesId);
      const tb = await b.openAppTree(notesId);
      const first = new Notes(ta).items()[0].id;
      hub.delivery.manual = true;
      const x = new Notes(ta).add('A child', first);
      const y = new Notes(tb).add('B top');
      new Notes(ta).setText(first, 'A says');
      new Notes(tb).setText(first, 'B says');
      tb.move(first, y); // concurrent with A adding under `first`
      a.setSetting('k', 1);
      b.setSetting('k', 2);
      await settle(mA, a.id);
      await settle(mB, a.id);
      await hub.flush();
      await settle(mA, a.id);
      await settle(mB, a.id);
      assert.deepEqual(ta.dump(), tb.dump());
      assert.deepEqual(a.tree.dump(), b.tree.dump());
      assert.ok(ta.has(x) && tb.has(x));
    });

    it('secrets set on one manager arrive at the other and its local store', async function () {
      const { mA, mB, a, b, localB, hub } = await twoPeers();
      const arrived = nextEvent(b.onDidChangeSecrets, (c) => c.origin === 'remote' && c.records.some((r) => r.key === 'api.token'), 'the secret on B');
      a.setSecret('api.token', 't-1');
      await arrived;
      assert.equal(b.getSecret('api.token'), 't-1');
      const deleted = nextEvent(b.onDidChangeSecrets, (c) => c.origin === 'remote' && c.records.some((r) => r.key === 'api.token' && r.value === null), 'the delete on B');
      a.deleteSecret('api.token');
      await deleted;
      assert.equal(b.getSecret('api.token'), undefined);
      await hub.flush();
      await settle(mA, a.id);
      await settle(mB, a.id);
      assert.deepEqual(localB.secret(a.id, 'api.token'), a.secretRecords().find((r) => r.key === 'api.token'));
    });

    it('openAppTree from a layer holding only part of the tree (no root op) fails cleanly, without leaking a RepTree', async function () {
      const hub = new MemoryHub();
      const mA = fx.manager({ peerId: 'aaaa' });
      const mB = fx.manager({ peerId: 'bbbb' });
      const a = await mA.create('Partial', (id) => [new MemoryLayer(id, { hub })]);
      const notesA = new Notes(a.createAppTree('notes', 'N')); // created before B connects: B never gets its root op
      await settle(mA, a.id);
      const hubB = new MemoryLayer(a.id, { hub });
      const localB = new MemoryStore('partial-local');
      const b = await mB.open(a.id, [hubB, new MemoryLayer(a.id, { store: localB })]);
      notesA.add('delivered to B, forwarded to its local store');
      await settle(mA, a.id);
      await hub.flush();
      await settle(mB, a.id);
      assert.ok(localB.opCount(a.id, notesA.tree.id) > 0, "sanity: B's local store holds some notes ops");
      assert.ok(!localB.ops(a.id, notesA.tree.id).some((op) => 'parentId' in op && op.targetId === notesA.tree.id), 'sanity: but not the root op');

      hubB.faults.failLoads = Infinity; // only the local store can be read
      const rec = recordIntervals();
      let leaked = 0;
      let error: unknown;
      try {
        await b.openAppTree(notesA.tree.id).then(
          () => undefined,
          (e: unknown) => (error = e),
        );
        leaked = rec.live.size;
      } finally {
        rec.dispose();
      }
      assert.ok(error, 'the load cannot succeed from a tree without its root');
      assert.equal(leaked, 0, `failed load left ${leaked} RepTree interval(s) running (AppTree.fromOps: new RepTree(peerId, ops) throws "There has to be a root vertex" after starting its TreeState interval); error was: ${String(error)}`);
      assert.ok(error instanceof SpaceOpenError || (error instanceof Error && /root/.test(error.message)), String(error));
    });

    it('ops of an app tree the other manager has not opened are stored in its local store without loading it', async function () {
      const { hub, mA, mB, a, localB, notesId, hubB } = await twoPeers();
      const loads = hubB.calls.loadTree;
      const notes = new Notes(await a.openAppTree(notesId));
      const known = new Set(keysOf(notes.tree.allOps()));
      notes.add('B never opened this tree');
      const fresh = keysOf(notes.tree.allOps()).filter((k) => !known.has(k));
      assert.ok(fresh.length > 0);
      await settle(mA, a.id);
      await hub.flush();
      await settle(mB, a.id);
      assert.equal(hubB.calls.loadTree, loads, 'B did not load the notes tree');
      assert.equal(mB.get(a.id)?.loadedAppTree(notesId), undefined);
      for (const k of fresh) {
        assert.ok(localB.hasOp(a.id, notesId, k), `local store of B lacks ${k}`);
      }
    });

    it('ops arriving while a space is being opened do not break the open', async function () {
      const hub = new MemoryHub();
      const mA = fx.manager({ peerId: 'aaaa' });
      const mB = fx.manager({ peerId: 'bbbb' });
      const a = await mA.create('Busy', (id) => [new MemoryLayer(id, { hub })]);
      await settle(mA, a.id);
      const gate = fx.gate();
      const hubB = new MemoryLayer(a.id, { hub, faults: { loadDelay: gate } });
      const caught = captureUncaught();
      let b: Space;
      try {
        const opening = mB.open(a.id, [hubB, new MemoryLayer(a.id, { store: new MemoryStore('localB2') })]);
        await gate.arrived(1);
        a.rename('Renamed while B opens');
        a.setSecret('during.open', 'yes');
        await settle(mA, a.id);
        await hub.flush(); // delivered to B's hub layer while its load is held
        await ticks();
        gate.open();
        b = await opening;
        await macrotask();
      } finally {
        caught.restore();
      }
      assert.deepEqual(
        caught.errors.map(String),
        [],
        'incoming ops/secrets during open must be buffered until the space exists (SpaceSession.onIncoming reads this.space)',
      );
      assert.equal(b.name, 'Renamed while B opens');
      assert.equal(b.getSecret('during.open'), 'yes');
    });

    it('ops arriving while an app tree is loading are not lost', async function () {
      const hub = new MemoryHub();
      const mA = fx.manager({ peerId: 'aaaa' });
      const mB = fx.manager({ peerId: 'bbbb' });
      const a = await mA.create('Snap', (id) => [new MemoryLayer(id, { hub })]);
      const notesA = new Notes(a.createAppTree('notes', 'N'));
      notesA.add('X');
      await settle(mA, a.id);
      const hubB = new SnapshotLayer(a.id, { hub });
      const localB = new MemoryStore('snapLocal');
      const b = await mB.open(a.id, [hubB, new MemoryLayer(a.id, { store: localB })]);
      const gate = fx.gate();
      hubB.hold = gate;
      const loading = b.openAppTree(notesA.tree.id);
      await gate.arrived(1); // B's server snapshot of the notes tree is taken (without Y)
      notesA.add('Y');
      await settle(mA, a.id);
      await hub.flush(); // Y reaches B's server layer while the notes tree is still loading
      await settle(mB, a.id);
      gate.open();
      const tb = await loading;
      await hub.flush();
      await settle(mB, a.id);
      assert.ok(
        localB.opCount(a.id, notesA.tree.id) > 0 && texts(new Notes(tb)).length > 0,
        'sanity: B loaded the notes tree',
      );
      assert.deepEqual(
        texts(new Notes(tb)),
        ['X', 'Y'],
        "B's notes tree misses Y: it arrived while the tree was loading, was only forwarded to B's local store, and was not in the load snapshot",
      );
    });
  });

  describe('invalid incoming ops', function () {
    it('a bad op from the hub is rejected with an error event; nothing changes, nothing is stored', async function () {
      const hub = new MemoryHub();
      const local = new MemoryStore('inv-local');
      const m = fx.manager();
      let serverLayer!: MemoryLayer;
      const space = await m.create('Guarded', (id) => [(serverLayer = new MemoryLayer(id, { hub })), new MemoryLayer(id, { store: local })]);
      const notes = new Notes(space.createAppTree('notes', 'N'));
      const item = notes.add('safe');
      await settle(m, space.id);
      const errors = collect<SpaceErrorEvent>(m.onDidError);
      const changes = collect<SpaceChange>(m.onDidChangeSpace);
      const before = { space: space.tree.dump(), notes: notes.tree.dump(), local: local.opCount(space.id), hubStore: hub.store.opCount(space.id) };

      const rogue = rogueServer(space.id);
      // A valid op followed by a move of the root: the whole batch is rejected.
      hub.publishOps(rogue, notes.tree.id, [setOp(1000, 'eeee', item, 'text', 'hijacked'), moveOp(1001, 'eeee', notes.tree.id, item)]);
      hub.publishOps(rogue, space.id, [rootOp('somewhere', 5, 'eeee')]);
      hub.publishOps(rogue, space.id, [setOp(0, 'eeee', space.id, 'name', 'zero counter')]);
      hub.publishSecrets(rogue, [{ key: 'bad key!', value: 'x', time: 1, peerId: 'eeee' }]);
      await hub.flush();
      await settle(m, space.id);

      assert.equal(errors.length, 4, JSON.stringify(errors));
      for (const e of errors) {
        assert.equal(e.spaceId, space.id);
        assert.equal(e.layerId, serverLayer.id);
      }
      assert.match(errors[0].message, /rejected incoming ops: .*invalid op #1/);
      assert.match(errors[1].message, /rejected incoming ops: .*only the root may have no parent/);
      assert.match(errors[2].message, /rejected incoming ops: .*counter/);
      assert.match(errors[3].message, /rejected incoming secrets: .*bad secret name/);
      assert.deepEqual(changes, []);
      assert.deepEqual(space.tree.dump(), before.space);
      assert.deepEqual(notes.tree.dump(), before.notes);
      assert.equal(notes.item(item).text, 'safe');
      assert.equal(local.opCount(space.id), before.local);
      assert.equal(hub.store.opCount(space.id), before.hubStore);
      assert.equal(space.getSecret('bad key!'), undefined);
      assert.equal(local.secretCount(space.id), 0);
    });

    it('a layer firing bad batches (also for unopened app trees) is rejected; good batches still apply', async function () {
      const local = new MemoryStore('scripted-local');
      const m = fx.manager();
      let scripted!: ScriptedLayer;
      const space = await m.create('Scripted', (id) => [(scripted = new ScriptedLayer(id)), new MemoryLayer(id, { store: local })]);
      const notesId = space.createAppTree('notes', 'N').id;
      await settle(m, space.id);
      const errors = collect<SpaceErrorEvent>(m.onDidError);
      const stored = local.opCount(space.id);
      const otherTree = '1234567890abcdef1234567890abcdef';

      scripted.fireOps({ treeId: space.id, ops: [setOp(50, 'ffff', space.id, 'name', NaN)] });
      scripted.fireOps({ treeId: otherTree, ops: [{ id: { counter: 3, peerId: 'NOT-VALID' }, targetId: 'a', parentId: otherTree } as Op] });
      scripted.fireOps({ treeId: notesId, ops: 'not an array' as unknown as Op[] });
      scripted.fireSecrets([secret('ok', 'v', -1, 'ffff')]);
      await settle(m, space.id);
      assert.equal(errors.length, 4, JSON.stringify(errors));
      assert.ok(errors.every((e) => e.layerId === scripted.id && e.spaceId === space.id));
      assert.equal(local.opCount(space.id), stored, 'nothing stored');
      assert.equal(space.name, 'Scripted');
      assert.deepEqual(space.secretRecords(), []);

      // A good batch from the same layer applies and is forwarded (here to an app tree nobody opened).
      scripted.fireOps({ treeId: notesId, ops: [moveOp(90, 'ffff', 'abc', notesId), setOp(91, 'ffff', 'abc', 'text', 'from outside')] });
      scripted.fireSecrets([secret('ok', 'v', 5, 'ffff')]);
      await settle(m, space.id);
      assert.equal(errors.length, 4);
      assert.ok(local.hasOp(space.id, notesId, '91@ffff'));
      assert.equal(local.secret(space.id, 'ok')?.value, 'v');
      assert.equal(space.getSecret('ok'), 'v');
      const notes = new Notes(await space.openAppTree(notesId));
      assert.deepEqual(texts(notes), ['from outside']);
    });
  });

  describe('lazy app trees', function () {
    it('opening a space loads no app tree; openAppTree loads once, even when called concurrently', async function () {
      const sa = new MemoryStore('lazy-a');
      const sb = new MemoryStore('lazy-b');
      const { spaceId, notesId } = await seedSpace([sa, sb], ['a', 'b']);
      const m = fx.manager();
      const la = new MemoryLayer(spaceId, { store: sa });
      const lb = new MemoryLayer(spaceId, { store: sb });
      const space = await m.open(spaceId, [la, lb]);
      assert.equal(la.calls.loadTree, 1, 'only the space tree is loaded');
      assert.equal(lb.calls.loadTree, 1);
      assert.equal(space.loadedAppTree(notesId), undefined);
      assert.deepEqual(space.loadedAppTreeIds(), []);

      const gate = fx.gate();
      la.faults.loadDelay = gate;
      const loads = [space.openAppTree(notesId), space.openAppTree(notesId), space.openAppTree(notesId)];
      await gate.arrived(1);
      loads.push(space.openAppTree(notesId));
      gate.open();
      const trees = await Promise.all(loads);
      assert.ok(trees.every((t) => t === trees[0]));
      assert.equal(la.calls.loadTree, 2);
      assert.equal(lb.calls.loadTree, 2);
      assert.equal(await space.openAppTree(notesId), trees[0]);
      assert.equal(la.calls.loadTree, 2);
      assert.deepEqual(texts(new Notes(trees[0])), ['a', 'b']);
      await assert.rejects(space.openAppTree('0000000000000000000000000000beef'), /no app tree/);
    });

    it('openAppTree fails clearly when no ready layer holds the tree', async function () {
      const sa = new MemoryStore('lz');
      const { spaceId, notesId } = await seedSpace([sa]);
      const m = fx.manager();
      const la = new MemoryLayer(spaceId, { store: sa });
      const space = await m.open(spaceId, [la]);
      sa.clear(spaceId); // the notes ops are gone from storage
      await assert.rejects(space.openAppTree(notesId), (e: Error) => e instanceof SpaceOpenError && /no layer holds its ops/.test(e.message));
      la.faults.failLoads = 1;
      await assert.rejects(space.openAppTree(notesId), /injected load failure/);
    });
  });

  describe('removeLayer', function () {
    it('saves what was queued for the layer, closes it, and later edits go to the other layers only', async function () {
      const sa = new MemoryStore('ra');
      const sb = new MemoryStore('rb');
      const m = fx.manager();
      let lb!: MemoryLayer;
      const space = await m.create('Removing', (id) => [new MemoryLayer(id, { store: sa }), (lb = new MemoryLayer(id, { store: sb, label: 'Leaving' }))]);
      const notes = new Notes(space.createAppTree('notes', 'N'));
      await settle(m, space.id);
      const states = collect<LayerStateChange>(m.onDidChangeLayerState);
      const gate = fx.gate();
      lb.faults.saveDelay = gate;
      notes.add('queued before the removal');
      await gate.arrived(1);
      let removed = false;
      const removing = m.removeLayer(space.id, lb.id).then((r) => ((removed = true), r));
      await macrotask();
      assert.equal(removed, false, 'removeLayer waits for the save in flight');
      gate.open();
      assert.equal(await removing, undefined, 'nothing left unsaved');
      assert.equal(lb.closed, true);
      assert.deepEqual(storedKeys(sb, space.id, notes.tree.id), keysOf(notes.tree.allOps()), 'the queued edit reached the leaving layer');
      assert.deepEqual(
        m.layerStates(space.id).map((l) => l.layerId),
        [`memory:ra`],
      );
      assert.ok(states.some((e) => e.layerId === lb.id && e.state.status === 'closed'), JSON.stringify(states));

      const countB = sb.opCount(space.id);
      notes.add('after the removal');
      await settle(m, space.id);
      assert.equal(sb.opCount(space.id), countB, 'the removed layer gets no more writes');
      assert.deepEqual(storedKeys(sa, space.id, notes.tree.id), keysOf(notes.tree.allOps()));
      assert.equal(m.get(space.id), space, 'the space stays open');
    });

    it('stops listening to the removed layer, and the same layer id can be added again', async function () {
      const store = new MemoryStore('rs');
      const m = fx.manager();
      const space = await m.create('Listen', (id) => [new MemoryLayer(id)]);
      const notes = new Notes(space.createAppTree('notes', 'N'));
      await settle(m, space.id);
      const scripted = new ScriptedLayer(space.id, { store, kind: 'two-way' });
      await m.addLayer(space.id, scripted);
      await settle(m, space.id);
      assert.deepEqual(storedKeys(store, space.id, notes.tree.id), keysOf(notes.tree.allOps()));
      assert.equal(await m.removeLayer(space.id, scripted.id), undefined);

      // What the removed layer reports now is not merged.
      const other = fx.manager();
      const elsewhere = await other.open(space.id, [new MemoryLayer(space.id, { store })]);
      const theirNotes = new Notes(await elsewhere.openAppTree(notes.tree.id));
      theirNotes.add('made elsewhere');
      await settle(other, space.id);
      const fresh = store.ops(space.id, notes.tree.id).filter((op) => !notes.tree.allOps().some((o) => o.id.peerId === op.id.peerId && o.id.counter === op.id.counter));
      assert.ok(fresh.length > 0);
      scripted.fireOps({ treeId: notes.tree.id, ops: fresh });
      await macrotask();
      assert.deepEqual(texts(notes), [], 'ops of a removed layer are ignored');

      // Added again over the same store: reconciled both ways.
      notes.add('made here meanwhile');
      const again = new MemoryLayer(space.id, { store, id: scripted.id });
      await m.addLayer(space.id, again);
      await settle(m, space.id);
      assert.deepEqual(texts(notes), ['made elsewhere', 'made here meanwhile']);
      assert.deepEqual(storedKeys(store, space.id, notes.tree.id), keysOf(notes.tree.allOps()));
    });

    it('reports what a failing layer could not save; unknown layers and closed spaces are handled', async function () {
      const m = fx.manager();
      let lb!: MemoryLayer;
      const space = await m.create('Failing removal', (id) => [new MemoryLayer(id), (lb = new MemoryLayer(id, { label: 'Broken' }))]);
      await settle(m, space.id);
      lb.faults.failAlways = true;
      space.rename('lost on B');
      await waitForLayerState(m, space.id, lb.id, 'degraded');
      const report = await m.removeLayer(space.id, lb.id);
      assert.equal(report?.layerId, lb.id);
      assert.equal(report?.label, 'Broken');
      assert.ok((report?.pendingOps ?? 0) > 0, JSON.stringify(report));
      assert.match(report?.error ?? '', /save failed/);
      assert.equal(lb.closed, true);
      assert.equal(await m.removeLayer(space.id, lb.id), undefined, 'already removed');
      assert.equal(await m.removeLayer(space.id, 'memory:nope'), undefined);
      await m.close(space.id);
      await assert.rejects(m.removeLayer(space.id, 'memory:nope'), SpaceOpenError);
    });
  });

  describe('lifecycle', function () {
    it('close flushes pending saves before resolving, and closes the layers', async function () {
      const store = new MemoryStore('cf');
      const m = fx.manager();
      let layer!: MemoryLayer;
      const space = await m.create('Flush on close', (id) => [(layer = new MemoryLayer(id, { store, faults: { saveDelay: 5 } }))]);
      const notes = new Notes(space.createAppTree('notes', 'N'));
      for (let i = 0; i < 10; i++) notes.add(`n${i}`);
      const notesId = notes.tree.id;
      const expected = keysOf(notes.tree.allOps());
      assert.ok(store.opCount(space.id, notesId) < expected.length, 'saves are still delayed');
      assert.deepEqual(await m.close(space.id), []);
      assert.deepEqual(storedKeys(store, space.id, notesId), expected);
      assert.equal(layer.closed, true);
    });

    it('close waits for a held save', async function () {
      const store = new MemoryStore('cg');
      const m = fx.manager();
      let layer!: MemoryLayer;
      const space = await m.create('Held', (id) => [(layer = new MemoryLayer(id, { store }))]);
      await settle(m, space.id);
      const gate = fx.gate();
      layer.faults.saveDelay = gate;
      space.rename('held');
      const expected = keysOf(space.tree.allOps());
      await gate.arrived(1);
      let closed = false;
      const closing = m.close(space.id).then((r) => ((closed = true), r));
      await macrotask();
      assert.equal(closed, false);
      gate.open();
      assert.deepEqual(await closing, []);
      assert.deepEqual(storedKeys(store, space.id, space.id), expected);
      assert.equal(layer.closed, true);
    });

    it('close and dispose are idempotent', async function () {
      const m = fx.manager();
      const closedEvents = collect(m.onDidCloseSpace);
      const s = await m.create('Twice', (id) => [new MemoryLayer(id)]);
      const [r1, r2] = await Promise.all([m.close(s.id), m.close(s.id)]);
      assert.deepEqual(r1, []);
      assert.deepEqual(r2, []);
      assert.deepEqual(await m.close(s.id), []);
      assert.deepEqual(await m.close('not-open'), []);
      assert.deepEqual(closedEvents, [s.id]);
      await m.dispose();
      await m.dispose();
      assert.deepEqual(m.list(), []);
    });

    it('dispose waits for a close already in progress', async function () {
      const m = fx.manager();
      let layer!: MemoryLayer;
      const s = await m.create('Closing', (id) => [(layer = new MemoryLayer(id))]);
      await settle(m, s.id);
      const gate = fx.gate();
      layer.faults.saveDelay = gate;
      s.rename('in flight');
      await gate.arrived(1);
      const closing = m.close(s.id);
      let disposed = false;
      const disposing = m.dispose().then(() => (disposed = true));
      await macrotask();
      const early = disposed;
      gate.open();
      await Promise.all([closing, disposing]);
      assert.equal(layer.closed, true);
      assert.equal(early, false, 'dispose() resolved while a close was still flushing the space (a second close returns [] at once)');
    });

    it('after dispose no timers are left: degraded layers, hub layers and loaded trees included', async function () {
      await macrotask(); // mocha starts its own timeout timer once the test function returns
      const before = activeTimers();
      const hub = new MemoryHub();
      // The default retry policy: a leaked retry timer would hold the process for seconds.
      const m = fx.manager({ retry: DEFAULT_RETRY });
      const space = await m.create('Timers', (id) => [new MemoryLayer(id, { hub }), new MemoryLayer(id, { store: new MemoryStore('t-local') })]);
      new Notes(space.createAppTree('notes', 'N')).add('x');
      space.createAppTree('chat', 'C');
      await settle(m, space.id);
      const m2 = fx.manager({ retry: DEFAULT_RETRY });
      const failing = new MemoryLayer(space.id, { store: new MemoryStore('t-failing'), faults: { failLoads: Infinity } });
      const other = await m2.open(space.id, [new MemoryLayer(space.id, { hub }), failing]);
      await other.openAppTree(space.appTreeRefs()[0].id);
      assert.equal(layerState(m2, space.id, failing.id)?.status, 'degraded');
      assert.ok(activeTimers() > before, 'sanity: trees and the retry timer hold timers');
      await m.dispose();
      await m2.dispose();
      await hub.flush();
      assert.equal(activeTimers(), before, `timers left after dispose: ${process.getActiveResourcesInfo().join(', ')}`);
      assert.equal(failing.closed, true);
    });
  });
});
