/**
 * Runs the sync channel conformance suite against ServerLayer over a real team server (port 0,
 * temp data directory, a write token), each space created with POST /v1/spaces. A client's local
 * storage is its MemorySyncStateStore: `restart` is a new ServerLayer over the same store, `peer`
 * a ServerLayer with its own store (another client), `settle` its `whenIdle`.
 *
 * A space the server creates already holds its space tree's creation ops (made by the server).
 * The suite expects an empty space, so the harness hides exactly those ops — read straight from
 * the server with a raw client when the space is created — from what the layer returns.
 */
import type { IncomingOps, LayerConnectionState, SecretRecord, SyncChannel } from '../../src/persistence/contract';
import type { Event } from '../../src/spaces/events';
import { ServerLayer } from '../../src/persistence/server/serverLayer';
import { MemorySyncStateStore } from '../../src/persistence/server/syncState';
import { decodeOps } from '../../src/spaces/opCodec';
import { opKey, type Op } from '../../src/spaces/ops';
import { TestClient, startTestServer, type TestServer } from '../helpers/syncServer';
import { describeChannelConformance, type ChannelHarness } from './channelConformance';

const TIMINGS = { loadTimeoutMs: 10_000, closeTimeoutMs: 20_000, backoffBaseMs: 50, backoffMaxMs: 1_000 };

/** A ServerLayer seen without the server's creation ops of its space tree. */
class WithoutCreationOps implements SyncChannel {
  readonly id: string;
  readonly label: string;
  readonly kind = 'two-way';
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

const SETTLE_MS = 20_000;

function serverHarness(): ChannelHarness & { stop(): Promise<void> } {
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

  const asServer = (l: SyncChannel): WithoutCreationOps => {
    if (!(l instanceof WithoutCreationOps)) throw new TypeError(`not a server layer: ${l.id}`);
    return l;
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
    async peer(l) {
      return layer(asServer(l).spaceId, new MemorySyncStateStore());
    },
    async restart(l) {
      const old = asServer(l);
      await old.close();
      return layer(old.spaceId, old.store);
    },
    async settle(l) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        asServer(l).inner.whenIdle(),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${l.id}: not idle after ${SETTLE_MS} ms`)), SETTLE_MS))),
      ]).finally(() => clearTimeout(timer));
    },
    async cleanup() {
      const layers = open;
      open = [];
      await Promise.all(layers.map((l) => l.close()));
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
  describeChannelConformance('ServerLayer (team server + MemorySyncStateStore)', harness);
});
