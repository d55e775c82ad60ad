/**
 * The conformance suite of the sync channel contract (SyncChannel, src/persistence/contract.ts):
 * every channel — two-way, connecting a space with other peers — must pass it. Stores run
 * storeConformance.ts.
 *
 * Usage, in a `*.test.ts` file:
 *
 *   describeChannelConformance('ServerLayer', {
 *     create: async (spaceId) => ...,   // the first client of a new, empty space
 *     peer: async (channel) => ...,     // another client of the same space, with its own local storage
 *     restart: async (channel) => ...,  // close `channel` (it may be closed already), open it again over its local storage
 *     settle: async (channel) => ...,   // until everything `channel` was given has gone out (bounded)
 *     cleanup: async () => ...,         // after each test: close and delete what the harness made
 *   });
 *
 * What a channel promises: what one client saves reaches every other client (delivered through
 * `onIncoming` to those connected, loaded by those that come later), each op once however often
 * it is saved; invalid ops are refused and never reach anyone; what `saveOps` accepted is not lost
 * when the client closes or restarts before it went out; secrets travel too; after `close()`
 * every call rejects.
 */
import * as assert from 'node:assert/strict';
import { isSyncChannel, type IncomingOps, type SecretRecord, type SyncChannel } from '../../src/persistence/contract';
import { opKey, type Op } from '../../src/spaces/ops';
import { assertSameOps, makeOps, newTreeId, sampleTree, secret, setOp } from './opFixtures';

export interface ChannelHarness {
  /** The first client of a new space whose storage (the server) is empty. */
  create(spaceId: string): Promise<SyncChannel>;
  /** Another client of `channel`'s space, with its own local storage, connected now. */
  peer(channel: SyncChannel): Promise<SyncChannel>;
  /** Closes `channel` (it may be closed already) and opens it again over the same local storage (a restart). */
  restart(channel: SyncChannel): Promise<SyncChannel>;
  /** Resolves once everything `channel` was given has gone out to the other side (a later peer can load it). */
  settle(channel: SyncChannel): Promise<void>;
  /** Called after each test, after the suite closed its channels. */
  cleanup(): Promise<void>;
}

const PEER_A = 'a1a1';
const PEER_B = 'b2b2';
/** How long a delivery may take before the suite calls it lost (the mocha timeout bounds it too). */
const DELIVERY_MS = 20_000;
const BIG_BATCH = 20_000;

/** Collects what a channel delivers; `until` waits (bounded) for a set of op keys per tree. */
class Received {
  private readonly keys = new Map<string, Set<string>>();
  readonly ops: Array<{ treeId: string; op: Op }> = [];
  private readonly waiters = new Set<() => void>();
  private readonly sub: { dispose(): void };

  constructor(channel: SyncChannel) {
    this.sub = channel.onIncoming((b: IncomingOps) => {
      let set = this.keys.get(b.treeId);
      if (!set) this.keys.set(b.treeId, (set = new Set()));
      for (const op of b.ops) {
        set.add(opKey(op));
        this.ops.push({ treeId: b.treeId, op });
      }
      for (const w of [...this.waiters]) w();
    });
  }

  has(treeId: string, ops: readonly Op[]): boolean {
    const set = this.keys.get(treeId);
    return ops.every((op) => set?.has(opKey(op)));
  }

  until(treeId: string, ops: readonly Op[], what: string): Promise<void> {
    if (this.has(treeId, ops)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${what}: not delivered within ${DELIVERY_MS} ms`));
      }, DELIVERY_MS);
      const check = (): void => {
        if (!this.has(treeId, ops)) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
    });
  }

  dispose(): void {
    this.sub.dispose();
  }
}

async function assertRejects(promise: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(promise, (e: unknown) => e instanceof Error, `${what}: resolved, expected a rejection`);
}

/** Loads `treeId` from fresh peers until one holds `ops` (a peer that comes later loads what was saved before). */
async function loadedBy(channel: SyncChannel, treeId: string, ops: readonly Op[]): Promise<Op[]> {
  const loaded = await channel.loadTree(treeId);
  const keys = new Set(loaded.map(opKey));
  assert.ok(
    ops.every((op) => keys.has(opKey(op))),
    `a later peer lacks ${ops.filter((op) => !keys.has(opKey(op))).length} of ${ops.length} ops`,
  );
  return loaded;
}

/** Registers the channel conformance tests for one implementation. */
export function describeChannelConformance(name: string, harness: ChannelHarness): void {
  describe(`Sync channel conformance: ${name}`, function () {
    this.timeout(60_000);
    let opened: SyncChannel[] = [];
    let watching: Received[] = [];
    let spaceCounter = 0;

    const track = (c: SyncChannel): SyncChannel => {
      opened.push(c);
      return c;
    };
    const create = async (): Promise<SyncChannel> => track(await harness.create(newTreeId(`chan${++spaceCounter}`)));
    const peer = async (c: SyncChannel): Promise<SyncChannel> => {
      const p = track(await harness.peer(c));
      assert.equal(p.spaceId, c.spaceId, 'peer() must give a channel of the same space');
      return p;
    };
    const watch = (c: SyncChannel): Received => {
      const r = new Received(c);
      watching.push(r);
      return r;
    };

    afterEach(async function () {
      for (const r of watching) r.dispose();
      watching = [];
      const channels = opened;
      opened = [];
      await Promise.allSettled(channels.map((c) => c.close()));
      await harness.cleanup();
    });

    it('is a sync channel: two-way, with deliveries and a connection state', async function () {
      const c = await create();
      assert.ok(isSyncChannel(c), `kind ${String(c.kind)}`);
      assert.equal(typeof c.id, 'string');
      assert.ok(c.id.length > 0);
      assert.deepEqual(await c.loadTree(newTreeId()), []);
    });

    it('what one client saves reaches a connected peer through onIncoming, at least once and unchanged', async function () {
      const a = await create();
      const b = await peer(a);
      await b.loadTree(b.spaceId); // connected and caught up
      const got = watch(b);
      const tree = a.spaceId;
      const ops = sampleTree(tree, PEER_A);
      await a.saveOps(tree, ops);
      await got.until(tree, ops, 'the saved ops');
      // At least once (a channel may deliver an op again: merging is idempotent), and unchanged.
      const delivered = new Map<string, Op>();
      for (const d of got.ops) if (d.treeId === tree) delivered.set(opKey(d.op), d.op);
      assertSameOps([...delivered.values()], ops, tree, 'delivered ops');
    });

    it('what the caller does with its op objects after saveOps does not change what peers get', async function () {
      const a = await create();
      const b = await peer(a);
      await b.loadTree(b.spaceId);
      const got = watch(b);
      const tree = a.spaceId;
      const ops = sampleTree(tree, PEER_A);
      const expected = sampleTree(tree, PEER_A);
      const saving = a.saveOps(tree, ops);
      for (const op of ops) {
        const o = op as unknown as Record<string, unknown>;
        o.targetId = 'mutated';
        if ('value' in o && typeof o.value === 'object' && o.value !== null) (o.value as Record<string, unknown>).mutated = true;
      }
      ops.length = 0;
      await saving;
      await got.until(tree, expected, 'the saved ops');
      const delivered = new Map<string, Op>();
      for (const d of got.ops) if (d.treeId === tree) delivered.set(opKey(d.op), d.op);
      assertSameOps([...delivered.values()], expected, tree, 'delivered ops');
    });

    it('a peer that comes later loads everything saved before, every tree', async function () {
      const a = await create();
      const tree = a.spaceId;
      const app = newTreeId('app');
      const treeOps = sampleTree(tree, PEER_A);
      const appOps = makeOps(app, PEER_A, 1, 300);
      await a.saveOps(tree, treeOps);
      await a.saveOps(app, appOps);
      await harness.settle(a);
      const b = await peer(a);
      await loadedBy(b, tree, treeOps);
      await loadedBy(b, app, appOps);
      assert.ok((await b.listTrees()).includes(app), 'listTrees lacks the app tree');
    });

    it('an op saved twice, or by two clients, reaches others once', async function () {
      const a = await create();
      const b = await peer(a);
      await b.loadTree(b.spaceId);
      const c = await peer(a);
      await c.loadTree(c.spaceId);
      const got = watch(c);
      const tree = a.spaceId;
      const ops = makeOps(tree, PEER_A, 1, 200);
      await a.saveOps(tree, ops);
      await a.saveOps(tree, ops.slice(0, 50));
      await b.saveOps(tree, ops.slice(100));
      await got.until(tree, ops, 'the ops');
      await Promise.all([harness.settle(a), harness.settle(b)]);
      const later = await peer(a);
      const loaded = await loadedBy(later, tree, ops);
      const mine = loaded.filter((op) => op.id.peerId === PEER_A);
      assert.equal(new Set(mine.map(opKey)).size, mine.length, 'an op is held twice');
      assert.equal(mine.length, ops.length);
    });

    it('a batch with an invalid op is refused whole and reaches nobody', async function () {
      const a = await create();
      const b = await peer(a);
      await b.loadTree(b.spaceId);
      const got = watch(b);
      const tree = a.spaceId;
      const good = makeOps(tree, PEER_A, 1, 5);
      const bad = [...good, { ...setOp(9, PEER_A, 'n1', 'k', 1), transient: true }] as Op[];
      await assertRejects(a.saveOps(tree, bad), 'saveOps with an invalid op');
      // A valid save after it arrives, and nothing of the refused batch before it.
      const after = makeOps(tree, PEER_B, 1, 3);
      await a.saveOps(tree, after);
      await got.until(tree, after, 'the valid batch after the refused one');
      assert.ok(!got.has(tree, good.slice(0, 1)), 'ops of the refused batch were delivered');
    });

    it('ops saved without waiting, then close(): nothing is lost, a later peer gets them (after a restart at the latest)', async function () {
      const a = await create();
      const tree = a.spaceId;
      const ops = makeOps(tree, PEER_A, 1, 500);
      const saving = [a.saveOps(tree, ops.slice(0, 250)), a.saveOps(tree, ops.slice(250))];
      await a.close();
      await Promise.allSettled(saving);
      const again = track(await harness.restart(a));
      await again.loadTree(tree);
      await harness.settle(again);
      await loadedBy(await peer(again), tree, ops);
    });

    it(`a batch of ${BIG_BATCH} ops reaches a peer whole`, async function () {
      const a = await create();
      const b = await peer(a);
      await b.loadTree(b.spaceId);
      const got = watch(b);
      const tree = a.spaceId;
      const ops = makeOps(tree, PEER_A, 1, BIG_BATCH);
      await a.saveOps(tree, ops);
      await got.until(tree, ops, `${BIG_BATCH} ops`);
    });

    it('secrets saved by one client reach a connected peer and a later one', async function () {
      const a = await create();
      const b = await peer(a);
      await b.loadTree(b.spaceId);
      const records: SecretRecord[] = [];
      const arrived = new Promise<void>((resolve) => {
        const sub = b.onIncomingSecrets?.((r) => {
          for (const x of r) records.push(x);
          if (records.some((x) => x.key === 'token' && x.value === 's3cret')) {
            sub?.dispose();
            resolve();
          }
        });
      });
      await a.saveSecrets([secret('token', 's3cret', 10, PEER_A)]);
      await harness.settle(a);
      const later = await peer(a);
      const loaded = await later.loadSecrets();
      assert.ok(loaded.some((r) => r.key === 'token' && r.value === 's3cret'), 'a later peer lacks the secret');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([arrived, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('the secret never reached the connected peer')), DELIVERY_MS)))]);
      clearTimeout(timer);
    });

    it('close() is idempotent and every call after it rejects', async function () {
      const a = await create();
      const tree = a.spaceId;
      await Promise.all([a.close(), a.close()]);
      await a.close();
      await assertRejects(a.loadTree(tree), 'loadTree after close');
      await assertRejects(a.listTrees(), 'listTrees after close');
      await assertRejects(a.saveOps(tree, makeOps(tree, PEER_A, 1, 2)), 'saveOps after close');
      await assertRejects(a.loadSecrets(), 'loadSecrets after close');
    });
  });
}
