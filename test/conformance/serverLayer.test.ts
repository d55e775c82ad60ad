/**
 * Runs the layer conformance suite against ServerLayer over a real team server (port 0, temp data
 * directory, a write token), each space created with POST /v1/spaces. A layer's "storage" is the
 * server plus its MemorySyncStateStore: `reopen` is a new ServerLayer over the same store (a
 * restart of the client), `second` a ServerLayer with its own store (another client).
 *
 * Two things the suite assumes of storage need saying for a server:
 * - A space the server creates already holds its space tree's creation ops (made by the server).
 *   The suite expects empty storage, so the harness hides exactly those ops — read straight from
 *   the server with a raw client when the space is created — from what the layer returns.
 * - Another client's saves reach the server asynchronously. `reopen` and `refresh` therefore first
 *   wait until the other open layers have nothing left to send (`whenIdle`), like a restart that
 *   happens after the other process synced; `refresh` then takes a round trip behind the stream.
 */
import type { IncomingOps, LayerConnectionState, LayerKind, PersistenceLayer, SecretRecord } from '../../src/persistence/contract';
import type { Event } from '../../src/spaces/events';
import { ServerLayer } from '../../src/persistence/server/serverLayer';
import { MemorySyncStateStore } from '../../src/persistence/server/syncState';
import { decodeOps } from '../../src/spaces/opCodec';
import { opKey, type Op } from '../../src/spaces/ops';
import { TestClient, startTestServer, type TestServer } from '../helpers/syncServer';
import { describeLayerConformance, type LayerHarness } from './layerConformance';

const TIMINGS = { loadTimeoutMs: 10_000, closeTimeoutMs: 20_000, backoffBaseMs: 50, backoffMaxMs: 1_000 };

/** A ServerLayer seen without the server's creation ops of its space tree. */
class WithoutCreationOps implements PersistenceLayer {
  readonly id: string;
  readonly label: string;
  readonly kind: LayerKind;
  readonly spaceId: string;
  readonly onIncoming: Event<IncomingOps>;
  readonly onIncomingSecrets: Event<readonly SecretRecord[]>;
  readonly onStateChange: Event<LayerConnectionState>;

  constructor(
    readonly inner: ServerLayer,
    readonly store: MemorySyncStateStore,
    private readonly hidden: ReadonlySet<string>,
  ) {
    this.id = inner.id;
    this.label = inner.label;
    this.kind = inner.kind;
    this.spaceId = inner.spaceId;
    this.onIncoming = inner.onIncoming;
    this.onIncomingSecrets = inner.onIncomingSecrets;
    this.onStateChange = inner.onStateChange;
  }

  private visible(treeId: string, ops: Op[]): Op[] {
    return treeId === this.spaceId ? ops.filter((op) => !this.hidden.has(opKey(op))) : ops;
  }

  async listTrees(): Promise<string[]> {
    const trees = await this.inner.listTrees();
    if (!trees.includes(this.spaceId)) return trees;
    const own = this.visible(this.spaceId, await this.inner.loadTree(this.spaceId));
    return own.length ? trees : trees.filter((t) => t !== this.spaceId);
  }

  async loadTree(treeId: string): Promise<Op[]> {
    return this.visible(treeId, await this.inner.loadTree(treeId));
  }

  saveOps(treeId: string, ops: readonly Op[]): Promise<void> {
    return this.inner.saveOps(treeId, ops);
  }

  loadSecrets(): Promise<SecretRecord[]> {
    return this.inner.loadSecrets();
  }

  saveSecrets(records: readonly SecretRecord[]): Promise<void> {
    return this.inner.saveSecrets(records);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

function serverHarness(): LayerHarness & { stop(): Promise<void> } {
  let t: TestServer | undefined;
  let writer = '';
  let peer = 0;
  let open: WithoutCreationOps[] = [];
  const creationOps = new Map<string, Set<string>>();

  const server = async (): Promise<TestServer> => {
    if (!t) {
      t = await startTestServer();
      writer = t.token('write');
    }
    return t;
  };

  const layer = async (spaceId: string, store: MemorySyncStateStore): Promise<WithoutCreationOps> => {
    const s = await server();
    const inner = new ServerLayer({ url: s.server.url, token: writer, peerId: `conf${++peer}`, spaceId, syncState: store, timings: TIMINGS });
    const l = new WithoutCreationOps(inner, store, creationOps.get(spaceId) ?? new Set());
    open.push(l);
    return l;
  };

  const asServer = (l: PersistenceLayer): WithoutCreationOps => {
    if (!(l instanceof WithoutCreationOps)) throw new TypeError(`not a server layer: ${l.id}`);
    return l;
  };

  /** Other open layers have sent everything (bounded: a layer that cannot must not hang the suite). */
  const othersIdle = async (except: WithoutCreationOps): Promise<void> => {
    const others = open.filter((l) => l !== except && !closed.has(l));
    await Promise.all(others.map((l) => Promise.race([l.inner.whenIdle().catch(() => undefined), new Promise((r) => setTimeout(r, 20_000))])));
  };
  const closed = new WeakSet<WithoutCreationOps>();
  const close = async (l: WithoutCreationOps): Promise<void> => {
    closed.add(l);
    await l.close();
  };

  return {
    async create(spaceId) {
      const s = await server();
      const res = await fetch(`${s.server.url}/v1/spaces`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${s.admin}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'conformance', id: spaceId }),
      });
      if (res.status !== 201) throw new Error(`POST /v1/spaces: ${res.status} ${await res.text()}`);
      const raw = await TestClient.open(s.server.syncUrl, s.admin, ['raw']);
      try {
        const { ops } = await raw.client.subscribe(spaceId);
        creationOps.set(spaceId, new Set(ops.flatMap((m) => decodeOps(m.ops, m.treeId, 'server').map(opKey))));
      } finally {
        await raw.client.close();
      }
      return layer(spaceId, new MemorySyncStateStore());
    },
    async reopen(l) {
      const old = asServer(l);
      await othersIdle(old);
      await close(old);
      return layer(old.spaceId, old.store);
    },
    async second(l) {
      return layer(asServer(l).spaceId, new MemorySyncStateStore());
    },
    async refresh(l) {
      const s = asServer(l);
      await othersIdle(s);
      await s.inner.refresh();
    },
    async cleanup() {
      const layers = open;
      open = [];
      await Promise.all(layers.map((l) => close(l)));
    },
    async stop() {
      await t?.stop();
      t = undefined;
    },
  };
}

const harness = serverHarness();
describe('ServerLayer over a real server', function () {
  after(() => harness.stop());
  describeLayerConformance('ServerLayer (team server + MemorySyncStateStore)', harness);
});
