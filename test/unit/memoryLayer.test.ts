/** MemoryLayer's own features: fault injection, gates, the shared store, the hub. */
import * as assert from 'node:assert/strict';
import type { IncomingOps, LayerConnectionState, SecretRecord } from '../../src/persistence/contract';
import {
  Gate,
  InjectedFaultError,
  LayerClosedError,
  MemoryFaults,
  MemoryHub,
  MemoryLayer,
  MemoryStore,
  seededRandom,
} from '../helpers/memoryLayer';
import { InvalidOpError, opKey, type Op } from '../../src/spaces/ops';
import { assertSameOps, makeOps, moveOp, sampleTree, secret, setOp } from '../conformance/opFixtures';

const SPACE = 'space-1';
const PEER = 'a1';

/** Settles pending promise callbacks (no timers involved). */
async function ticks(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

/** Tracks whether a promise settled, without awaiting it. */
function track<T>(p: Promise<T>): { readonly settled: boolean; readonly rejected: unknown; readonly promise: Promise<T> } {
  const state = { settled: false, rejected: undefined as unknown, promise: p };
  p.then(
    () => (state.settled = true),
    (e: unknown) => {
      state.settled = true;
      state.rejected = e;
    },
  );
  return state;
}

function collect<T>(subscribe: (l: (v: T) => void) => unknown): T[] {
  const out: T[] = [];
  subscribe((v) => out.push(v));
  return out;
}

describe('MemoryLayer', function () {
  describe('identity and options', function () {
    it('defaults: one-way, id and label from the store, fresh store', function () {
      const layer = new MemoryLayer(SPACE);
      assert.equal(layer.kind, 'one-way');
      assert.equal(layer.spaceId, SPACE);
      assert.equal(layer.id, `memory:${layer.store.name}`);
      assert.ok(layer.label.includes(layer.store.name));
      assert.equal(layer.hub, undefined);
      assert.notEqual(new MemoryLayer(SPACE).store, layer.store);
    });

    it('with a hub: two-way over hub.store unless told otherwise', function () {
      const hub = new MemoryHub();
      const layer = new MemoryLayer(SPACE, { hub });
      assert.equal(layer.kind, 'two-way');
      assert.equal(layer.store, hub.store);
      const custom = new MemoryLayer(SPACE, { hub, kind: 'one-way', id: 'x', label: 'X', store: new MemoryStore('s') });
      assert.equal(custom.kind, 'one-way');
      assert.equal(custom.id, 'x');
      assert.equal(custom.label, 'X');
      assert.equal(custom.store.name, 's');
    });

    it('rejects an empty space id', function () {
      assert.throws(() => new MemoryLayer(''), TypeError);
    });
  });

  describe('shared store', function () {
    it('a layer over the same store sees what another stored (reopen = new layer)', async function () {
      const store = new MemoryStore();
      const a = new MemoryLayer(SPACE, { store });
      const b = new MemoryLayer(SPACE, { store });
      const ops = sampleTree(SPACE, PEER);
      await a.saveOps(SPACE, ops);
      assertSameOps(await b.loadTree(SPACE), ops, SPACE);
      await a.close();
      const reopened = await b.reopen();
      assert.equal(reopened.id, b.id);
      assert.equal(reopened.store, store);
      assertSameOps(await reopened.loadTree(SPACE), ops, SPACE);
    });

    it('keeps spaces apart within one store, and offers inspection helpers', async function () {
      const store = new MemoryStore('inspect');
      const a = new MemoryLayer('space-a', { store });
      const b = new MemoryLayer('space-b', { store });
      await a.saveOps('space-a', makeOps('space-a', PEER, 1, 10));
      await a.saveOps('app-1', makeOps('app-1', PEER, 1, 5));
      await b.saveSecrets([secret('k', 'v', 1, PEER)]);
      assert.deepEqual(store.spaceIds(), ['space-a', 'space-b']);
      assert.deepEqual(store.treeIds('space-a'), ['app-1', 'space-a']);
      assert.deepEqual(await b.listTrees(), []);
      assert.deepEqual(await b.loadTree('space-a'), []);
      assert.equal(store.opCount('space-a'), 15);
      assert.equal(store.opCount('space-a', 'app-1'), 5);
      assert.ok(store.hasOp('space-a', 'app-1', `3@${PEER}`));
      assert.equal(store.secretCount('space-b'), 1);
      assert.deepEqual(store.secret('space-b', 'k'), secret('k', 'v', 1, PEER));
      assert.deepEqual(await a.loadSecrets(), []);
      store.clear('space-a');
      assert.deepEqual(store.spaceIds(), ['space-b']);
      store.clear();
      assert.deepEqual(store.spaceIds(), []);
    });

    it('store methods validate and copy like the layer', function () {
      const store = new MemoryStore();
      const op = setOp(1, PEER, 'v', 'obj', { a: [1] });
      const added = store.addOps(SPACE, SPACE, [op, op]);
      assert.equal(added.length, 1);
      assert.equal(store.addOps(SPACE, SPACE, [op]).length, 0, 'stored twice');
      assert.throws(() => store.addOps(SPACE, SPACE, [setOp(0, PEER, 'v', 'k', 1)]), InvalidOpError);
      assert.throws(() => store.addSecrets(SPACE, [secret('', 'v', 1, PEER)]));
      (added[0] as unknown as { value: { a: number[] } }).value.a.push(2);
      (op as unknown as { value: { a: number[] } }).value.a.push(3);
      assert.deepEqual((store.ops(SPACE, SPACE)[0] as { value: unknown }).value, { a: [1] });
      const changed = store.addSecrets(SPACE, [secret('k', 'old', 1, PEER), secret('k', 'new', 2, PEER), secret('j', null, 1, PEER)]);
      assert.deepEqual(changed, [secret('k', 'new', 2, PEER), secret('j', null, 1, PEER)]);
      assert.deepEqual(store.addSecrets(SPACE, [secret('k', 'older', 0, PEER)]), []);
    });

    it('returns copies: changing loaded ops or secrets does not change the store', async function () {
      const layer = new MemoryLayer(SPACE);
      await layer.saveOps(SPACE, [setOp(1, PEER, 'v', 'obj', { deep: { x: 1 } })]);
      await layer.saveSecrets([secret('k', 'v', 1, PEER)]);
      const loaded = await layer.loadTree(SPACE);
      (loaded[0] as unknown as { value: { deep: { x: number } } }).value.deep.x = 99;
      (loaded[0] as { targetId: string }).targetId = 'other';
      (await layer.loadSecrets())[0] = secret('k', 'changed', 5, PEER);
      const secrets = await layer.loadSecrets();
      (secrets[0] as { value: string }).value = 'changed';
      assert.deepEqual(await layer.loadTree(SPACE), [setOp(1, PEER, 'v', 'obj', { deep: { x: 1 } })]);
      assert.deepEqual(await layer.loadSecrets(), [secret('k', 'v', 1, PEER)]);
    });

    it('drops fields an op does not have', async function () {
      const layer = new MemoryLayer(SPACE);
      const op = { ...moveOp(1, PEER, 'v', SPACE), extra: 'x' } as unknown as Op;
      await layer.saveOps(SPACE, [op]);
      assert.deepEqual(await layer.loadTree(SPACE), [moveOp(1, PEER, 'v', SPACE)]);
    });
  });

  describe('validation', function () {
    it('rejects invalid ops with InvalidOpError before any fault or delay', async function () {
      const gate = new Gate();
      const layer = new MemoryLayer(SPACE, { faults: { failSaves: 1, saveDelay: gate } });
      await assert.rejects(layer.saveOps(SPACE, [moveOp(1, PEER, SPACE, 'x')]), InvalidOpError);
      await assert.rejects(layer.saveOps('', []), TypeError);
      await assert.rejects(layer.saveSecrets([secret('k', 'v', -1, PEER)]), /invalid secret record/);
      assert.equal(gate.arrivals, 0, 'an invalid call reached the delay');
      assert.equal(layer.faults.failSaves, 1, 'an invalid call consumed a failure');
      assert.equal(layer.calls.saveOps, 0);
    });

    it('snapshots the batch at call time, so later changes by the caller do not count', async function () {
      const gate = new Gate();
      const layer = new MemoryLayer(SPACE, { faults: { saveDelay: gate } });
      const ops = makeOps(SPACE, PEER, 1, 10);
      const expected = makeOps(SPACE, PEER, 1, 10);
      const saving = layer.saveOps(SPACE, ops);
      ops.length = 2;
      (expected[0] as { targetId: string }).targetId = 'v0';
      (ops[0] as { targetId: string }).targetId = 'changed';
      gate.open();
      await saving;
      assertSameOps(await layer.loadTree(SPACE), expected, SPACE);
    });
  });

  describe('faults: delays', function () {
    it('a gate holds a call until opened, and tells how many arrived', async function () {
      const gate = new Gate();
      const layer = new MemoryLayer(SPACE, { faults: { delay: gate } });
      const save = track(layer.saveOps(SPACE, makeOps(SPACE, PEER, 1, 3)));
      const load = track(layer.loadTree(SPACE));
      await gate.arrived(2);
      await ticks();
      assert.equal(gate.waiting, 2);
      assert.equal(gate.arrivals, 2);
      assert.ok(!save.settled && !load.settled, 'a call passed a closed gate');
      assert.equal(layer.store.opCount(SPACE), 0);
      gate.open();
      assert.ok(gate.isOpen);
      assert.equal(gate.waiting, 0);
      await save.promise;
      // A held call does its work when it passes: the load, held after the save, sees it.
      assert.equal((await load.promise).length, 3);
      assert.equal((await layer.loadTree(SPACE)).length, 3);
      assert.equal(gate.arrivals, 3, 'an open gate still counts arrivals');
    });

    it('loadDelay and saveDelay hold only their kind of call, over the general delay', async function () {
      const loads = new Gate();
      const saves = new Gate();
      const general = new Gate();
      const layer = new MemoryLayer(SPACE, { faults: { loadDelay: loads, delay: general } });
      const held = track(layer.saveSecrets([secret('k', 'v', 1, PEER)]));
      await general.arrived(1);
      await ticks();
      assert.ok(!held.settled, 'the general delay did not apply to saves');
      assert.equal(general.waiting, 1);
      assert.equal(loads.arrivals, 0);
      general.open();
      await held.promise;
      layer.faults.set({ delay: undefined, saveDelay: saves });
      const list = track(layer.listTrees());
      const secrets = track(layer.loadSecrets());
      const save = track(layer.saveOps(SPACE, makeOps(SPACE, PEER, 1, 2)));
      await ticks();
      assert.equal(loads.waiting, 2);
      assert.equal(saves.waiting, 1);
      assert.ok(!list.settled && !secrets.settled && !save.settled);
      saves.open();
      await save.promise;
      assert.ok(!list.settled, 'opening the save gate released a load');
      loads.open();
      assert.deepEqual(await list.promise, [SPACE]);
      assert.equal((await secrets.promise).length, 1);
    });

    it('a delay in milliseconds holds the call at least that long', async function () {
      const layer = new MemoryLayer(SPACE, { faults: { delay: 30 } });
      const start = Date.now();
      await layer.saveOps(SPACE, makeOps(SPACE, PEER, 1, 1));
      assert.ok(Date.now() - start >= 25, `took ${Date.now() - start} ms`);
      layer.faults.delay = 0;
      assert.equal((await layer.loadTree(SPACE)).length, 1);
    });

    it('close() rejects calls held by a delay, and they store nothing', async function () {
      const gate = new Gate();
      const layer = new MemoryLayer(SPACE, { faults: { saveDelay: gate, loadDelay: 60_000 } });
      const save = layer.saveOps(SPACE, makeOps(SPACE, PEER, 1, 3));
      const load = layer.loadTree(SPACE);
      await gate.arrived();
      await layer.close();
      await assert.rejects(save, LayerClosedError);
      await assert.rejects(load, LayerClosedError);
      gate.open();
      await ticks();
      assert.equal(layer.store.opCount(SPACE), 0);
    });
  });

  describe('faults: failures', function () {
    it('failLoads N fails the next N reads, then recovers; saves are unaffected', async function () {
      const layer = new MemoryLayer(SPACE);
      await layer.saveOps(SPACE, makeOps(SPACE, PEER, 1, 4));
      layer.faults.failLoads = 3;
      await assert.rejects(layer.loadTree(SPACE), (e: unknown) => e instanceof InjectedFaultError && e.operation === 'loadTree');
      await assert.rejects(layer.listTrees(), InjectedFaultError);
      await layer.saveOps(SPACE, makeOps(SPACE, PEER, 5, 1));
      await assert.rejects(layer.loadSecrets(), /injected load failure/);
      assert.equal(layer.faults.failLoads, 0);
      assert.equal(layer.faults.injected, 3);
      assert.equal((await layer.loadTree(SPACE)).length, 5);
      assert.deepEqual(layer.calls, { listTrees: 1, loadTree: 2, saveOps: 2, loadSecrets: 1, saveSecrets: 0 });
    });

    it('failSaves N fails the next N writes and stores nothing of them', async function () {
      const layer = new MemoryLayer(SPACE);
      layer.faults.failSaves = 2;
      await assert.rejects(layer.saveOps(SPACE, makeOps(SPACE, PEER, 1, 4)), (e: unknown) => e instanceof InjectedFaultError && e.operation === 'saveOps');
      await assert.rejects(layer.saveSecrets([secret('k', 'v', 1, PEER)]), /injected save failure/);
      assert.deepEqual(await layer.loadTree(SPACE), []);
      assert.deepEqual(await layer.loadSecrets(), []);
      await layer.saveOps(SPACE, makeOps(SPACE, PEER, 1, 4));
      assert.equal((await layer.loadTree(SPACE)).length, 4);
    });

    it('Infinity fails every call of the kind: "a layer that fails on load"', async function () {
      const layer = new MemoryLayer(SPACE, { faults: { failLoads: Infinity } });
      for (let i = 0; i < 5; i++) await assert.rejects(layer.loadTree(SPACE), InjectedFaultError);
      await layer.saveOps(SPACE, makeOps(SPACE, PEER, 1, 2));
      assert.equal(layer.faults.failLoads, Infinity);
      layer.faults.failLoads = 0; // the degraded layer recovers
      assert.equal((await layer.loadTree(SPACE)).length, 2);
      assert.equal(layer.calls.loadTree, 6);
    });

    it('failAlways fails every call but close, and can be switched off', async function () {
      const layer = new MemoryLayer(SPACE, { faults: { failAlways: true } });
      await assert.rejects(layer.listTrees(), InjectedFaultError);
      await assert.rejects(layer.loadTree(SPACE), InjectedFaultError);
      await assert.rejects(layer.saveOps(SPACE, makeOps(SPACE, PEER, 1, 1)), InjectedFaultError);
      await assert.rejects(layer.loadSecrets(), InjectedFaultError);
      await assert.rejects(layer.saveSecrets([]), InjectedFaultError);
      layer.faults.failAlways = false;
      await layer.saveOps(SPACE, makeOps(SPACE, PEER, 1, 1));
      assert.equal((await layer.loadTree(SPACE)).length, 1);
      layer.faults.failAlways = true;
      await layer.close();
    });

    it('uses a custom error message or factory', async function () {
      class DiskFull extends Error {}
      const layer = new MemoryLayer(SPACE, { faults: { failSaves: 1, failLoads: 1, error: 'disk on fire' } });
      await assert.rejects(layer.loadTree(SPACE), /disk on fire/);
      layer.faults.error = (operation) => new DiskFull(`no space for ${operation}`);
      await assert.rejects(layer.saveOps(SPACE, []), (e: unknown) => e instanceof DiskFull && e.message === 'no space for saveOps');
    });

    it('dropSaves resolves writes but stores and delivers nothing', async function () {
      const hub = new MemoryHub();
      const layer = new MemoryLayer(SPACE, { hub, faults: { dropSaves: true } });
      const other = new MemoryLayer(SPACE, { hub });
      const got = collect<IncomingOps>(other.onIncoming);
      await layer.saveOps(SPACE, makeOps(SPACE, PEER, 1, 5));
      await layer.saveSecrets([secret('k', 'v', 1, PEER)]);
      await hub.flush();
      assert.deepEqual(await layer.loadTree(SPACE), []);
      assert.deepEqual(await layer.loadSecrets(), []);
      assert.equal(layer.faults.dropped, 2);
      assert.deepEqual(got, []);
      layer.faults.dropSaves = false;
      await layer.saveOps(SPACE, makeOps(SPACE, PEER, 1, 5));
      assert.equal((await other.loadTree(SPACE)).length, 5);
    });

    it('a MemoryFaults object can be shared, e.g. across a reopen', async function () {
      const faults = new MemoryFaults({ failLoads: 2 });
      const a = new MemoryLayer(SPACE, { faults });
      await assert.rejects(a.loadTree(SPACE));
      const b = await a.reopen({ faults });
      assert.equal(b.faults, faults);
      await assert.rejects(b.loadTree(SPACE));
      await b.loadTree(SPACE);
      const c = await b.reopen();
      assert.notEqual(c.faults, faults, 'reopen without overrides starts without faults');
      faults.set({ failAlways: true, delay: 5 });
      faults.reset();
      assert.equal(faults.failAlways, false);
      assert.equal(faults.delay, undefined);
      assert.equal(faults.injected, 2);
    });
  });

  describe('close', function () {
    it('is idempotent, and later calls reject with LayerClosedError', async function () {
      const layer = new MemoryLayer(SPACE);
      await Promise.all([layer.close(), layer.close()]);
      await layer.close();
      assert.ok(layer.closed);
      await assert.rejects(layer.listTrees(), LayerClosedError);
      await assert.rejects(layer.loadTree(SPACE), (e: unknown) => e instanceof LayerClosedError && /loadTree\(\) called on a closed layer/.test(e.message));
      await assert.rejects(layer.saveOps(SPACE, [setOp(0, PEER, 'x', 'k', 1)]), LayerClosedError, 'closed comes before validation');
      await assert.rejects(layer.loadSecrets(), LayerClosedError);
      await assert.rejects(layer.saveSecrets([]), LayerClosedError);
      assert.deepEqual(layer.calls, { listTrees: 0, loadTree: 0, saveOps: 0, loadSecrets: 0, saveSecrets: 0 });
    });

    it('setState reports through onStateChange until close', async function () {
      const layer = new MemoryLayer(SPACE, { hub: new MemoryHub() });
      const states = collect<LayerConnectionState>(layer.onStateChange);
      layer.setState({ status: 'syncing' });
      layer.setState({ status: 'offline', reason: 'test' });
      await layer.close();
      layer.setState({ status: 'connected' });
      assert.deepEqual(states, [{ status: 'syncing' }, { status: 'offline', reason: 'test' }]);
    });
  });
});

describe('MemoryHub', function () {
  it("delivers other layers' newly stored ops and secrets, not their own, not other spaces'", async function () {
    const hub = new MemoryHub();
    const a = new MemoryLayer(SPACE, { hub });
    const b = new MemoryLayer(SPACE, { hub });
    const elsewhere = new MemoryLayer('space-2', { hub });
    const gotA = collect<IncomingOps>(a.onIncoming);
    const gotB = collect<IncomingOps>(b.onIncoming);
    const gotElsewhere = collect<IncomingOps>(elsewhere.onIncoming);
    const secretsB = collect<readonly SecretRecord[]>(b.onIncomingSecrets);
    const ops = makeOps(SPACE, PEER, 1, 10);
    await a.saveOps(SPACE, ops);
    assert.equal(gotB.length, 0, 'delivered before the save resolved and a macrotask ran');
    await hub.flush();
    assert.equal(gotA.length, 0);
    assert.equal(gotElsewhere.length, 0);
    assert.equal(gotB.length, 1);
    assert.equal(gotB[0].treeId, SPACE);
    assertSameOps(gotB[0].ops, ops, SPACE);
    // Already stored: nothing new, nothing delivered.
    await b.saveOps(SPACE, ops);
    await a.saveOps(SPACE, [...ops, ...makeOps(SPACE, PEER, 11, 2)]);
    await a.saveSecrets([secret('k', 'v', 5, PEER), secret('k', 'older', 1, PEER)]);
    await a.saveSecrets([secret('k', 'older', 2, PEER)]);
    await hub.flush();
    assert.equal(gotA.length, 0);
    assert.deepEqual(gotB.slice(1).map((m) => m.ops.map(opKey)), [[`11@${PEER}`, `12@${PEER}`]]);
    assert.deepEqual(secretsB, [[secret('k', 'v', 5, PEER)]]);
    assert.equal(hub.peerCount, 3);
  });

  it('delivers automatically on a later macrotask', async function () {
    const hub = new MemoryHub();
    const a = new MemoryLayer(SPACE, { hub });
    const b = new MemoryLayer(SPACE, { hub });
    const got = collect<IncomingOps>(b.onIncoming);
    await a.saveOps(SPACE, makeOps(SPACE, PEER, 1, 3));
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(got.length, 1);
    assert.equal(hub.pending, 0);
  });

  it('manual mode queues until deliver(max) or flush()', async function () {
    const hub = new MemoryHub({ manual: true });
    const a = new MemoryLayer(SPACE, { hub });
    const b = new MemoryLayer(SPACE, { hub });
    const got = collect<IncomingOps>(b.onIncoming);
    for (let i = 0; i < 4; i++) await a.saveOps(SPACE, makeOps(SPACE, PEER, 1 + i, 1));
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(got.length, 0);
    assert.equal(hub.pending, 4);
    assert.equal(hub.deliver(1), 1);
    assert.deepEqual(got.map((m) => m.ops.map(opKey)), [[`1@${PEER}`]], 'not in save order');
    assert.equal(await hub.flush(), 3);
    assert.equal(got.length, 4);
    assert.equal(hub.delivered, 4);
  });

  it('drops deliveries to closed layers and disconnects them', async function () {
    const hub = new MemoryHub({ manual: true });
    const a = new MemoryLayer(SPACE, { hub });
    const b = new MemoryLayer(SPACE, { hub });
    const got = collect<IncomingOps>(b.onIncoming);
    await a.saveOps(SPACE, makeOps(SPACE, PEER, 1, 3));
    await b.close();
    assert.equal(hub.peerCount, 1);
    assert.equal(hub.deliver(), 0);
    assert.equal(hub.pending, 0);
    assert.deepEqual(got, []);
  });

  it('gives every delivery its own copies', async function () {
    const hub = new MemoryHub();
    const a = new MemoryLayer(SPACE, { hub });
    const b = new MemoryLayer(SPACE, { hub });
    const c = new MemoryLayer(SPACE, { hub });
    const gotB = collect<IncomingOps>(b.onIncoming);
    const gotC = collect<IncomingOps>(c.onIncoming);
    await a.saveOps(SPACE, [setOp(1, PEER, 'v', 'o', { x: 1 })]);
    await hub.flush();
    (gotB[0].ops[0] as unknown as { value: { x: number } }).value.x = 2;
    assert.deepEqual((gotC[0].ops[0] as { value: unknown }).value, { x: 1 });
    assert.deepEqual((await a.loadTree(SPACE))[0], setOp(1, PEER, 'v', 'o', { x: 1 }));
  });

  it('fuzz delivery: shuffled, split and duplicated, every op still arrives', async function () {
    const hub = new MemoryHub({ manual: true, shuffle: true, split: true, duplicate: 0.5, random: seededRandom(7) });
    const writers = [new MemoryLayer(SPACE, { hub }), new MemoryLayer(SPACE, { hub })];
    const reader = new MemoryLayer(SPACE, { hub });
    const got = collect<IncomingOps>(reader.onIncoming);
    const all: Op[] = [];
    for (let i = 0; i < 10; i++) {
      const ops = makeOps(SPACE, i % 2 ? 'b2' : PEER, 1 + i * 20, 20);
      all.push(...ops);
      await writers[i % 2].saveOps(SPACE, ops);
    }
    const pendingBefore = hub.pending;
    assert.ok(pendingBefore > 20, `batches were not split (${pendingBefore} messages)`);
    const delivered = await hub.flush();
    assert.ok(delivered > pendingBefore, 'nothing was duplicated');
    const received = got.flatMap((m) => m.ops);
    assert.ok(received.length > all.length, 'no duplicate ops arrived');
    const order = received.map(opKey);
    const sorted = [...order].sort((x, y) => all.findIndex((o) => opKey(o) === x) - all.findIndex((o) => opKey(o) === y));
    assert.notDeepEqual(order, sorted, 'arrived in save order');
    assertSameOps([...new Map(received.map((o) => [opKey(o), o])).values()], all, SPACE, 'received (deduplicated)');
  });

  it('the same seed gives the same delivery order', async function () {
    const run = async (): Promise<string[]> => {
      const hub = new MemoryHub({ manual: true, shuffle: true, split: true, duplicate: 0.3, random: seededRandom(11) });
      const a = new MemoryLayer(SPACE, { hub });
      const b = new MemoryLayer(SPACE, { hub });
      const got = collect<IncomingOps>(b.onIncoming);
      await a.saveOps(SPACE, makeOps(SPACE, PEER, 1, 50));
      await a.saveOps('app', makeOps('app', PEER, 1, 50));
      await hub.flush();
      return got.flatMap((m) => m.ops.map((o) => `${m.treeId}/${opKey(o)}`));
    };
    assert.deepEqual(await run(), await run());
    const r = seededRandom(1);
    const values = Array.from({ length: 100 }, r);
    assert.ok(values.every((v) => v >= 0 && v < 1));
    assert.deepEqual(values.slice(0, 3), Array.from({ length: 3 }, seededRandom(1)));
  });

  it('delivery options can change at runtime (manual → automatic)', async function () {
    const hub = new MemoryHub({ manual: true });
    const a = new MemoryLayer(SPACE, { hub });
    const b = new MemoryLayer(SPACE, { hub });
    const got = collect<IncomingOps>(b.onIncoming);
    await a.saveOps(SPACE, makeOps(SPACE, PEER, 1, 1));
    hub.delivery.manual = false;
    await a.saveOps(SPACE, makeOps(SPACE, PEER, 2, 1));
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(got.length, 2);
  });

  it('a layer on the hub loads what every other layer saved (the hub keeps every op)', async function () {
    const hub = new MemoryHub();
    const a = new MemoryLayer(SPACE, { hub });
    const b = new MemoryLayer(SPACE, { hub });
    await a.saveOps(SPACE, makeOps(SPACE, PEER, 1, 5));
    await b.saveOps(SPACE, makeOps(SPACE, 'b2', 1, 5));
    const late = new MemoryLayer(SPACE, { hub });
    assert.equal((await late.loadTree(SPACE)).length, 10);
    assert.equal(hub.store.opCount(SPACE), 10);
  });
});

describe('Gate', function () {
  it('arrived(n) resolves once n calls reached it; open() is idempotent', async function () {
    const gate = new Gate();
    let reached = false;
    void gate.arrived(2).then(() => (reached = true));
    void gate.pass();
    await ticks();
    assert.ok(!reached);
    const second = gate.pass();
    await ticks();
    assert.ok(reached);
    gate.open();
    gate.open();
    await second;
    await gate.arrived(1);
    await gate.pass();
  });
});
