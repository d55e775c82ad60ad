/**
 * The conformance suite of the store contract (StoreLayer, src/persistence/contract.ts): every
 * store — durable, one-way — must pass it. Sync channels run channelConformance.ts.
 *
 * Usage, in a `*.test.ts` file:
 *
 *   describeStoreConformance('FileLayer', {
 *     create: async (spaceId) => ...,        // a fresh layer over new, empty storage
 *     reopen: async (layer) => ...,          // close `layer`, open a new instance over its storage
 *     second: async (layer) => ...,          // optional: another concurrent writer, same storage
 *     refresh: async (layer) => ...,         // optional: make `layer` re-read its storage
 *     injectFault: async (layer, fault) => ...,  // optional: see LayerFault
 *     cleanup: async () => ...,              // after each test: delete what create() made
 *   });
 *
 * Optional capabilities register their tests only when present (no skipped tests).
 * The suite closes every layer it used before calling `cleanup()`.
 */
import * as assert from 'node:assert/strict';
import { isSyncChannel, type PersistenceLayer, type SecretRecord } from '../../src/persistence/contract';
import type { Op } from '../../src/spaces/ops';
import {
  assertHasOps,
  assertSameOps,
  makeOps,
  moveOp,
  newTreeId,
  rootOp,
  sampleTree,
  secret,
  secretsByKey,
  setOp,
  shuffled,
} from './opFixtures';

/**
 * Faults the suite can ask a harness to inject. A harness with `injectFault` supports all:
 * - 'fail-next-load': the next read call on the layer (listTrees, loadTree or loadSecrets)
 *   rejects as if the storage could not be read; the storage itself stays intact.
 * - 'fail-next-save': the next write call on the layer (saveOps or saveSecrets) rejects as if
 *   the write failed (disk full, connection lost); what was stored before must stay intact.
 */
export type LayerFault = 'fail-next-load' | 'fail-next-save';

export interface LayerHarness {
  /** A new layer for `spaceId` over fresh, empty storage. */
  create(spaceId: string): Promise<PersistenceLayer>;
  /**
   * Closes `layer` (it may be closed already) and opens a new instance over the same storage,
   * like a restart of the process. Other instances over that storage may still be open.
   */
  reopen(layer: PersistenceLayer): Promise<PersistenceLayer>;
  /** A second, concurrently open writer over the storage of `layer` (another process). */
  second?(layer: PersistenceLayer): Promise<PersistenceLayer>;
  /**
   * Makes an open `layer` pick up what other writers stored (for layers that cache). Without it,
   * the suite checks visibility of the other writer's ops after `reopen` only.
   */
  refresh?(layer: PersistenceLayer): Promise<void>;
  /** Arranges for `fault` to hit the next matching call on `layer`. */
  injectFault?(layer: PersistenceLayer, fault: LayerFault): void | Promise<void>;
  /** Called after each test, after the suite closed its layers: frees whatever create() made. */
  cleanup(): Promise<void>;
}

const PEER_A = 'a1a1';
const PEER_B = 'b2b2';
const PEER_C = 'c3c3';
const LARGE_BATCH = 100_000;

async function assertRejects(promise: Promise<unknown>, what: string): Promise<void> {
  let settled = false;
  try {
    await promise;
    settled = true;
  } catch (e) {
    assert.ok(e instanceof Error, `${what}: rejected with a non-Error (${String(e)})`);
  }
  assert.ok(!settled, `${what}: resolved, expected a rejection`);
}

/** Registers the conformance tests for one implementation. */
export function describeStoreConformance(name: string, harness: LayerHarness): void {
  describe(`Store conformance: ${name}`, function () {
    let opened: PersistenceLayer[] = [];
    let spaceCounter = 0;

    const track = (layer: PersistenceLayer): PersistenceLayer => {
      opened.push(layer);
      return layer;
    };
    const newSpaceId = (): string => newTreeId(`space${++spaceCounter}`);
    /** A fresh layer; its space id is also the space tree's id. */
    const create = async (): Promise<PersistenceLayer> => track(await harness.create(newSpaceId()));
    const reopen = async (layer: PersistenceLayer): Promise<PersistenceLayer> => track(await harness.reopen(layer));
    /** Reopens and checks the layer still belongs to the same space. */
    const restart = async (layer: PersistenceLayer): Promise<PersistenceLayer> => {
      const again = await reopen(layer);
      assert.equal(again.spaceId, layer.spaceId, 'reopen() must give a layer of the same space');
      return again;
    };

    afterEach(async function () {
      const layers = opened;
      opened = [];
      await Promise.allSettled(layers.map((l) => l.close()));
      await harness.cleanup();
    });

    describe('basics', function () {
      it('a new layer is empty and describes itself', async function () {
        const layer = await create();
        assert.equal(typeof layer.id, 'string');
        assert.ok(layer.id.length > 0, 'id is empty');
        assert.equal(typeof layer.label, 'string');
        // A store may report what other writers stored (onIncoming), but it is no sync channel.
        assert.ok(!isSyncChannel(layer), `${layer.id} is a sync channel (kind ${String(layer.kind)}, a connection state): it runs the channel suite`);
        assert.deepEqual(await layer.listTrees(), []);
        assert.deepEqual(await layer.loadTree(layer.spaceId), []);
        assert.deepEqual(await layer.loadTree(newTreeId()), []);
        assert.deepEqual(await layer.loadSecrets(), []);
      });

      it('saves and loads ops of every shape (root, moves, deletion, every JSON value, removal)', async function () {
        const layer = await create();
        const ops = sampleTree(layer.spaceId, PEER_A);
        await layer.saveOps(layer.spaceId, ops);
        assertSameOps(await layer.loadTree(layer.spaceId), ops, layer.spaceId);
      });

      it('reload after close returns exactly the saved ops', async function () {
        const layer = await create();
        const tree = layer.spaceId;
        const first = sampleTree(tree, PEER_A);
        const second = makeOps(tree, PEER_B, 1, 500);
        const third = makeOps(tree, PEER_A, 1000, 300);
        await layer.saveOps(tree, first);
        await layer.saveOps(tree, second);
        await layer.saveOps(tree, third);
        const again = await restart(layer);
        assertSameOps(await again.loadTree(tree), [...first, ...second, ...third], tree);
        const third2 = await restart(again);
        assertSameOps(await third2.loadTree(tree), [...first, ...second, ...third], tree, 'after a second reopen');
      });

      it('accepts an empty batch', async function () {
        const layer = await create();
        const ops = sampleTree(layer.spaceId, PEER_A);
        await layer.saveOps(layer.spaceId, ops);
        await layer.saveOps(layer.spaceId, []);
        await layer.saveOps(newTreeId(), []);
        assertSameOps(await layer.loadTree(layer.spaceId), ops, layer.spaceId);
        assertSameOps(await (await restart(layer)).loadTree(layer.spaceId), ops, layer.spaceId, 'after reopen');
      });

      it('ops saved without awaiting before close() are durable', async function () {
        const layer = await create();
        const tree = layer.spaceId;
        const a = makeOps(tree, PEER_A, 1, 200);
        const b = makeOps(tree, PEER_B, 1, 200);
        const saves = [layer.saveOps(tree, a), layer.saveOps(tree, b)];
        const closing = layer.close();
        await Promise.all(saves);
        await closing;
        assertSameOps(await (await restart(layer)).loadTree(tree), [...a, ...b], tree);
      });

      it('what the caller does with its op objects after saving does not change what is stored', async function () {
        const layer = await create();
        const tree = layer.spaceId;
        const ops = sampleTree(tree, PEER_A);
        const expected = sampleTree(tree, PEER_A);
        await layer.saveOps(tree, ops);
        for (const op of ops) {
          const o = op as unknown as Record<string, unknown>;
          o.targetId = 'mutated';
          if ('value' in o && typeof o.value === 'object' && o.value !== null) (o.value as Record<string, unknown>).mutated = true;
        }
        ops.length = 0;
        assertSameOps(await layer.loadTree(tree), expected, tree);
        assertSameOps(await (await restart(layer)).loadTree(tree), expected, tree, 'after reopen');
      });
    });

    describe('idempotence', function () {
      it('the same op saved twice is stored once', async function () {
        const layer = await create();
        const tree = layer.spaceId;
        const op = setOp(7, PEER_A, tree, 'name', 'x');
        await layer.saveOps(tree, [op]);
        await layer.saveOps(tree, [{ ...op, id: { ...op.id } }]);
        assertSameOps(await layer.loadTree(tree), [op], tree);
        assertSameOps(await (await restart(layer)).loadTree(tree), [op], tree, 'after reopen');
      });

      it('a whole batch saved twice is stored once, also across a reopen', async function () {
        const layer = await create();
        const tree = layer.spaceId;
        const ops = [...sampleTree(tree, PEER_A), ...makeOps(tree, PEER_B, 1, 1000)];
        await layer.saveOps(tree, ops);
        await layer.saveOps(tree, ops);
        assertSameOps(await layer.loadTree(tree), ops, tree);
        const again = await restart(layer);
        await again.saveOps(tree, shuffled(ops, 3));
        assertSameOps(await again.loadTree(tree), ops, tree, 'after saving again after reopen');
        assertSameOps(await (await restart(again)).loadTree(tree), ops, tree, 'after a second reopen');
      });

      it('an op repeated within one batch is stored once', async function () {
        const layer = await create();
        const tree = layer.spaceId;
        const ops = makeOps(tree, PEER_A, 1, 50);
        await layer.saveOps(tree, [...ops, ...ops.slice(10, 20), ops[0]]);
        assertSameOps(await layer.loadTree(tree), ops, tree);
        assertSameOps(await (await restart(layer)).loadTree(tree), ops, tree, 'after reopen');
      });
    });

    describe('order', function () {
      it('stores ops that arrive out of order and duplicated across batches', async function () {
        const layer = await create();
        const tree = layer.spaceId;
        const all = [...sampleTree(tree, PEER_A), ...makeOps(tree, PEER_B, 1, 700), ...makeOps(tree, PEER_C, 50, 300)];
        const mixed = shuffled(all, 42);
        // Overlapping windows: every op lands in one or two batches, in random order.
        for (let i = 0; i < mixed.length; i += 97) {
          await layer.saveOps(tree, shuffled(mixed.slice(Math.max(0, i - 31), i + 97), i + 1));
        }
        await layer.saveOps(tree, shuffled(mixed, 7).slice(0, 200));
        assertSameOps(await layer.loadTree(tree), all, tree);
        assertSameOps(await (await restart(layer)).loadTree(tree), all, tree, 'after reopen');
      });

      it('parallel saves on one instance all land', async function () {
        const layer = await create();
        const tree = layer.spaceId;
        const other = newTreeId();
        const batches = Array.from({ length: 20 }, (_, i) => makeOps(tree, PEER_A, 1 + i * 50, 60)); // overlapping
        const otherOps = makeOps(other, PEER_B, 1, 100);
        await Promise.all([...batches.map((b) => layer.saveOps(tree, b)), layer.saveOps(other, otherOps), layer.saveOps(tree, batches[3])]);
        const expected = makeOps(tree, PEER_A, 1, 19 * 50 + 60);
        assertSameOps(await layer.loadTree(tree), expected, tree);
        const again = await restart(layer);
        assertSameOps(await again.loadTree(tree), expected, tree, 'after reopen');
        assertSameOps(await again.loadTree(other), otherOps, other, 'other tree after reopen');
      });
    });

    describe('trees', function () {
      it('keeps several trees apart, even ops with equal ids', async function () {
        const layer = await create();
        const space = layer.spaceId;
        const app1 = newTreeId('app');
        const app2 = newTreeId('app');
        const spaceOps = sampleTree(space, PEER_A);
        const app1Ops = sampleTree(app1, PEER_A); // same op ids as spaceOps, other content
        const app2Ops = makeOps(app2, PEER_B, 1, 400);
        await layer.saveOps(space, spaceOps);
        await layer.saveOps(app1, app1Ops);
        await layer.saveOps(app2, app2Ops);
        const check = async (l: PersistenceLayer, what: string): Promise<void> => {
          assertSameOps(await l.loadTree(space), spaceOps, space, `space tree ${what}`);
          assertSameOps(await l.loadTree(app1), app1Ops, app1, `app tree 1 ${what}`);
          assertSameOps(await l.loadTree(app2), app2Ops, app2, `app tree 2 ${what}`);
        };
        await check(layer, 'before reopen');
        await check(await restart(layer), 'after reopen');
      });

      it('listTrees lists every tree with ops', async function () {
        const layer = await create();
        const trees = [layer.spaceId, newTreeId('app'), newTreeId('app'), newTreeId('app')];
        for (const [i, tree] of trees.entries()) await layer.saveOps(tree, [rootOp(tree, 1, PEER_A), ...makeOps(tree, PEER_A, 2, i + 1)]);
        assert.deepEqual([...(await layer.listTrees())].sort(), [...trees].sort());
        const again = await restart(layer);
        assert.deepEqual([...(await again.listTrees())].sort(), [...trees].sort(), 'after reopen');
        const more = newTreeId('app');
        await again.saveOps(more, [rootOp(more, 1, PEER_B)]);
        assert.deepEqual([...(await again.listTrees())].sort(), [...trees, more].sort(), 'after adding a tree');
      });
    });

    describe('validation', function () {
      it('rejects a batch with an invalid op and stores none of it', async function () {
        const layer = await create();
        const tree = layer.spaceId;
        const base = sampleTree(tree, PEER_A);
        await layer.saveOps(tree, base);
        const good = (c: number): Op => setOp(c, PEER_B, 'child-a', 'k', c);
        const bad: Array<[string, unknown]> = [
          ['counter 0', setOp(0, PEER_B, 'x', 'k', 1)],
          ['fractional counter', setOp(1.5, PEER_B, 'x', 'k', 1)],
          ['counter past 2^53', setOp(2 ** 53, PEER_B, 'x', 'k', 1)],
          ['upper-case peer id', setOp(5, 'PEER', 'x', 'k', 1)],
          ['empty target id', setOp(5, PEER_B, '', 'k', 1)],
          ['moving the root', moveOp(5, PEER_B, tree, 'child-a')],
          ['a null parent for a non-root vertex', { id: { counter: 5, peerId: PEER_B }, targetId: 'x', parentId: null }],
          ['a transient property', { ...setOp(5, PEER_B, 'x', 'k', 1), transient: true }],
          ['a NaN value', setOp(5, PEER_B, 'x', 'k', NaN)],
          ['a missing id', { targetId: 'x', parentId: tree }],
          ['neither move nor property', { id: { counter: 5, peerId: PEER_B }, targetId: 'x' }],
          ['not an object', 42],
        ];
        let counter = 1000;
        for (const [what, op] of bad) {
          const batch = [good(counter++), op, good(counter++)] as Op[];
          await assertRejects(layer.saveOps(tree, batch), `a batch with ${what}`);
        }
        assertSameOps(await layer.loadTree(tree), base, tree, 'after the rejected batches');
        assertSameOps(await (await restart(layer)).loadTree(tree), base, tree, 'after reopen');
      });

      it('rejects invalid secret records and stores none of the batch', async function () {
        const layer = await create();
        const base = [secret('api.token', 'v1', 1000, PEER_A)];
        await layer.saveSecrets(base);
        const bad: Array<[string, unknown]> = [
          ['an empty key', secret('', 'x', 1, PEER_A)],
          ['a numeric value', { key: 'k', value: 5, time: 1, peerId: PEER_A }],
          ['a negative time', secret('k', 'x', -1, PEER_A)],
          ['a bad peer id', secret('k', 'x', 1, 'Not A Peer')],
        ];
        for (const [what, record] of bad) {
          const batch = [secret('other', 'x', 2000, PEER_A), record, secret('api.token', 'v2', 3000, PEER_A)] as SecretRecord[];
          await assertRejects(layer.saveSecrets(batch), `a batch with ${what}`);
        }
        assert.deepEqual(secretsByKey(await layer.loadSecrets()), secretsByKey(base));
        assert.deepEqual(secretsByKey(await (await restart(layer)).loadSecrets()), secretsByKey(base), 'after reopen');
      });
    });

    describe('secrets', function () {
      it('saves and loads secrets, tombstones included', async function () {
        const layer = await create();
        const records = [secret('a', 'alpha', 1000, PEER_A), secret('b/c@d:e', 'ünïcødé', 1001, PEER_B), secret('gone', null, 1002, PEER_A)];
        await layer.saveSecrets(records);
        assert.deepEqual(secretsByKey(await layer.loadSecrets()), secretsByKey(records));
      });

      it('the newer record wins whatever the save order', async function () {
        const layer = await create();
        const older = secret('k1', 'old', 1000, PEER_A);
        const newer = secret('k1', 'new', 2000, PEER_A);
        await layer.saveSecrets([newer]);
        await layer.saveSecrets([older]);
        const olderB = secret('k2', 'old', 1000, PEER_B);
        const newerB = secret('k2', 'new', 2000, PEER_A);
        await layer.saveSecrets([olderB]);
        await layer.saveSecrets([newerB]);
        const inOneBatch = [secret('k3', 'new', 5000, PEER_A), secret('k3', 'old', 4000, PEER_B)];
        await layer.saveSecrets(inOneBatch);
        const want = secretsByKey([newer, newerB, inOneBatch[0]]);
        assert.deepEqual(secretsByKey(await layer.loadSecrets()), want);
        assert.deepEqual(secretsByKey(await (await restart(layer)).loadSecrets()), want, 'after reopen');
      });

      it('a tombstone wins over an older value, and an older value does not resurrect it', async function () {
        const layer = await create();
        await layer.saveSecrets([secret('k', 'v', 1000, PEER_A)]);
        const tomb = secret('k', null, 2000, PEER_B);
        await layer.saveSecrets([tomb]);
        assert.deepEqual(secretsByKey(await layer.loadSecrets()), secretsByKey([tomb]));
        await layer.saveSecrets([secret('k', 'zombie', 1500, PEER_C)]);
        await layer.saveSecrets([secret('k', 'zombie', 1999, PEER_A)]);
        assert.deepEqual(secretsByKey(await layer.loadSecrets()), secretsByKey([tomb]), 'older value resurrected the secret');
        const again = await restart(layer);
        await again.saveSecrets([secret('k', 'zombie', 1000, PEER_A)]);
        assert.deepEqual(secretsByKey(await again.loadSecrets()), secretsByKey([tomb]), 'after reopen');
        const revived = secret('k', 'back', 3000, PEER_A);
        await again.saveSecrets([revived]);
        assert.deepEqual(secretsByKey(await again.loadSecrets()), secretsByKey([revived]), 'a newer value must replace the tombstone');
      });

      it('equal times are decided by peer id, then tombstone, the same on every replica', async function () {
        const layer = await create();
        const low = secret('k', 'from-a', 1000, PEER_A);
        const high = secret('k', 'from-b', 1000, PEER_B);
        await layer.saveSecrets([high]);
        await layer.saveSecrets([low]);
        const tombHigh = secret('t', null, 1000, PEER_A);
        await layer.saveSecrets([secret('t', 'v', 1000, PEER_A), tombHigh]);
        await layer.saveSecrets([secret('t', 'v', 1000, PEER_A)]);
        const want = secretsByKey([high, tombHigh]);
        assert.deepEqual(secretsByKey(await layer.loadSecrets()), want);
        assert.deepEqual(secretsByKey(await (await restart(layer)).loadSecrets()), want, 'after reopen');
      });

      it('secrets survive reopen and do not show up as trees', async function () {
        const layer = await create();
        const records = [secret('x', 'one', 10, PEER_A), secret('y', null, 20, PEER_B)];
        await layer.saveSecrets(records);
        await layer.saveSecrets([]);
        const again = await restart(layer);
        assert.deepEqual(secretsByKey(await again.loadSecrets()), secretsByKey(records));
        assert.deepEqual(await again.listTrees(), []);
      });
    });

    describe('close', function () {
      it('close() is idempotent', async function () {
        const layer = await create();
        await layer.saveOps(layer.spaceId, sampleTree(layer.spaceId, PEER_A));
        await Promise.all([layer.close(), layer.close()]);
        await layer.close();
      });

      it('rejects every call after close()', async function () {
        const layer = await create();
        const tree = layer.spaceId;
        await layer.saveOps(tree, sampleTree(tree, PEER_A));
        await layer.close();
        await assertRejects(layer.listTrees(), 'listTrees after close');
        await assertRejects(layer.loadTree(tree), 'loadTree after close');
        await assertRejects(layer.saveOps(tree, makeOps(tree, PEER_B, 1, 3)), 'saveOps after close');
        await assertRejects(layer.loadSecrets(), 'loadSecrets after close');
        await assertRejects(layer.saveSecrets([secret('k', 'v', 1, PEER_A)]), 'saveSecrets after close');
        assertSameOps(await (await restart(layer)).loadTree(tree), sampleTree(tree, PEER_A), tree, 'after reopen');
      });
    });

    describe('large batches', function () {
      it(`saves ${LARGE_BATCH} ops in one batch and reloads them`, async function () {
        this.timeout(120_000);
        const layer = await create();
        const tree = layer.spaceId;
        const ops = makeOps(tree, PEER_A, 1, LARGE_BATCH);
        await layer.saveOps(tree, ops);
        assertSameOps(await layer.loadTree(tree), ops, tree);
        const again = await restart(layer);
        assertSameOps(await again.loadTree(tree), ops, tree, 'after reopen');
        await again.saveOps(tree, ops.slice(0, 1000));
        assert.equal((await again.loadTree(tree)).length, LARGE_BATCH, 'saving part of it again added ops');
      });
    });

    const second = harness.second?.bind(harness);
    if (second) {
      describe('two concurrent writers', function () {
        const pair = async (): Promise<[PersistenceLayer, PersistenceLayer]> => {
          const a = await create();
          const b = track(await second(a));
          assert.equal(b.spaceId, a.spaceId, 'second() must give a layer of the same space');
          return [a, b];
        };

        it('interleaved saves from both all land, each once', async function () {
          const [a, b] = await pair();
          const tree = a.spaceId;
          const app = newTreeId('app');
          const aOps = [...sampleTree(tree, PEER_A), ...makeOps(tree, PEER_A, 100, 600)];
          const bOps = makeOps(tree, PEER_B, 1, 600);
          const appOps = [...makeOps(app, PEER_A, 1, 100), ...makeOps(app, PEER_B, 1, 100)];
          // Sequential interleaving, then concurrent saves, then the same ops from both writers.
          for (let i = 0; i < 300; i += 50) {
            await a.saveOps(tree, aOps.slice(i, i + 50));
            await b.saveOps(tree, bOps.slice(i, i + 50));
          }
          const rest: Array<Promise<void>> = [];
          for (let i = 300; i < 600; i += 30) {
            rest.push(a.saveOps(tree, aOps.slice(i, i + 30)), b.saveOps(tree, bOps.slice(i, i + 30)));
          }
          rest.push(a.saveOps(tree, aOps.slice(600)), a.saveOps(app, appOps.slice(0, 150)), b.saveOps(app, appOps.slice(50)));
          rest.push(a.saveOps(tree, bOps.slice(0, 100)), b.saveOps(tree, aOps.slice(0, 100)));
          await Promise.all(rest);
          await Promise.all([a.close(), b.close()]);
          const again = await restart(a);
          assertSameOps(await again.loadTree(tree), [...aOps, ...bOps], tree);
          assertSameOps(await again.loadTree(app), appOps, app, 'app tree');
          assert.deepEqual([...(await again.listTrees())].sort(), [tree, app].sort());
        });

        it("each writer sees the other's ops after reopen (and refresh, when supported)", async function () {
          const [a, b] = await pair();
          const tree = a.spaceId;
          const aOps = [...sampleTree(tree, PEER_A), ...makeOps(tree, PEER_A, 100, 200)];
          const bOps = makeOps(tree, PEER_B, 1, 200);
          await a.saveOps(tree, aOps);
          await b.saveOps(tree, bOps);
          await a.saveOps(tree, makeOps(tree, PEER_A, 300, 10));
          const all = [...aOps, ...bOps, ...makeOps(tree, PEER_A, 300, 10)];
          if (harness.refresh) {
            await harness.refresh(a);
            await harness.refresh(b);
            assertSameOps(await a.loadTree(tree), all, tree, 'writer A after refresh');
            assertSameOps(await b.loadTree(tree), all, tree, 'writer B after refresh');
          }
          // Reopen A while B stays open, then B.
          const a2 = await restart(a);
          assertSameOps(await a2.loadTree(tree), all, tree, 'writer A after reopen');
          const b2 = await restart(b);
          assertSameOps(await b2.loadTree(tree), all, tree, 'writer B after reopen');
          // Both reopened instances keep writing next to each other.
          const late = [...makeOps(tree, PEER_C, 1, 50)];
          await Promise.all([a2.saveOps(tree, late.slice(0, 30)), b2.saveOps(tree, late.slice(20))]);
          await Promise.all([a2.close(), b2.close()]);
          assertSameOps(await (await restart(a2)).loadTree(tree), [...all, ...late], tree, 'after both reopened and wrote');
        });

        it('secrets from both writers merge per key', async function () {
          const [a, b] = await pair();
          await a.saveSecrets([secret('shared', 'a-old', 1000, PEER_A), secret('only-a', 'a', 1000, PEER_A)]);
          await b.saveSecrets([secret('shared', 'b-new', 2000, PEER_B), secret('only-b', 'b', 1000, PEER_B)]);
          await a.saveSecrets([secret('shared', 'a-older', 1500, PEER_A), secret('only-b', null, 3000, PEER_A)]);
          await Promise.all([a.close(), b.close()]);
          const want = secretsByKey([secret('shared', 'b-new', 2000, PEER_B), secret('only-a', 'a', 1000, PEER_A), secret('only-b', null, 3000, PEER_A)]);
          assert.deepEqual(secretsByKey(await (await restart(a)).loadSecrets()), want);
        });
      });
    }

    const injectFault = harness.injectFault?.bind(harness);
    if (injectFault) {
      describe('failures', function () {
        it('a failed save rejects, keeps what was stored, and a retry stores the batch once', async function () {
          const layer = await create();
          const tree = layer.spaceId;
          const base = sampleTree(tree, PEER_A);
          await layer.saveOps(tree, base);
          const batch = makeOps(tree, PEER_B, 1, 500);
          await injectFault(layer, 'fail-next-save');
          await assertRejects(layer.saveOps(tree, batch), 'saveOps with an injected failure');
          const after = await layer.loadTree(tree);
          assertHasOps(after, base, 'after the failed save');
          assertHasOps([...base, ...batch], after, 'after the failed save (only known ops)');
          await layer.saveOps(tree, batch);
          assertSameOps(await layer.loadTree(tree), [...base, ...batch], tree, 'after the retry');
          assertSameOps(await (await restart(layer)).loadTree(tree), [...base, ...batch], tree, 'after reopen');
        });

        it('a failed load rejects and the data is intact afterwards', async function () {
          const layer = await create();
          const tree = layer.spaceId;
          const ops = sampleTree(tree, PEER_A);
          await layer.saveOps(tree, ops);
          await layer.saveSecrets([secret('k', 'v', 1, PEER_A)]);
          await injectFault(layer, 'fail-next-load');
          await assertRejects(layer.loadTree(tree), 'loadTree with an injected failure');
          assertSameOps(await layer.loadTree(tree), ops, tree, 'on the same instance');
          const again = await restart(layer);
          await injectFault(again, 'fail-next-load');
          await assertRejects(again.loadSecrets(), 'loadSecrets with an injected failure');
          assert.deepEqual(secretsByKey(await again.loadSecrets()), secretsByKey([secret('k', 'v', 1, PEER_A)]));
          assertSameOps(await again.loadTree(tree), ops, tree, 'after reopen');
        });

        it('saving after a failed load never overwrites the storage with less', async function () {
          const layer = await create();
          const tree = layer.spaceId;
          const app = newTreeId('app');
          const base = [...sampleTree(tree, PEER_A), ...makeOps(tree, PEER_A, 100, 300)];
          const appBase = makeOps(app, PEER_A, 1, 50);
          await layer.saveOps(tree, base);
          await layer.saveOps(app, appBase);
          await layer.saveSecrets([secret('k', 'v', 1, PEER_A)]);
          const again = await restart(layer);
          await injectFault(again, 'fail-next-load');
          await assertRejects(again.loadTree(tree), 'loadTree with an injected failure');
          const more = makeOps(tree, PEER_B, 1, 20);
          const saved = await again.saveOps(tree, more).then(
            () => true,
            () => false,
          );
          await again.saveSecrets([secret('k2', 'v2', 2, PEER_B)]).catch(() => undefined);
          const last = await restart(again);
          const loaded = await last.loadTree(tree);
          assertHasOps(loaded, base, 'earlier ops after a save that followed a failed load');
          if (saved) assertSameOps(loaded, [...base, ...more], tree, 'after the save that resolved');
          assertSameOps(await last.loadTree(app), appBase, app, 'the other tree');
          assert.deepEqual(secretsByKey(await last.loadSecrets()).get('k'), secret('k', 'v', 1, PEER_A));
        });

        it('a failed secrets save rejects and keeps the stored records', async function () {
          const layer = await create();
          const base = secret('k', 'v1', 1000, PEER_A);
          await layer.saveSecrets([base]);
          await injectFault(layer, 'fail-next-save');
          await assertRejects(layer.saveSecrets([secret('k', 'v2', 2000, PEER_A)]), 'saveSecrets with an injected failure');
          const after = secretsByKey(await layer.loadSecrets()).get('k');
          assert.ok(after !== undefined, 'the stored record was lost');
          assert.ok(after.value === 'v1' || after.value === 'v2', `unexpected value ${String(after.value)}`);
          await layer.saveSecrets([secret('k', 'v2', 2000, PEER_A)]);
          assert.deepEqual(secretsByKey(await (await restart(layer)).loadSecrets()).get('k'), secret('k', 'v2', 2000, PEER_A));
        });
      });
    }
  });
}
