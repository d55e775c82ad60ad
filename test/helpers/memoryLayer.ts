/**
 * An in-memory PersistenceLayer for tests.
 *
 * - `MemoryStore` is the backing storage, shared by reference: a new MemoryLayer over the same
 *   store is a "reopened" layer, and two MemoryLayers over one store behave like two processes
 *   sharing one file. A store can hold several spaces.
 * - `MemoryHub` is a tiny in-process "server": every layer connected to it reports the ops and
 *   secret records that other layers of the same space saved, through `onIncoming` and
 *   `onIncomingSecrets`. Delivery can be manual, shuffled, duplicated and split for fuzz tests.
 * - `MemoryFaults` (a layer's `faults`, changeable at any time) injects delays (milliseconds or a
 *   `Gate` the test opens), failures of the next N loads or saves, failure of every call, and
 *   silently dropped saves.
 *
 * Inputs are validated like a real layer does (`validateOps`, `validateSecretRecords`), and the
 * store keeps copies: neither the caller's objects nor the objects it gets back are shared with
 * the store.
 */
import type { IncomingOps, LayerConnectionState, LayerKind, PersistenceLayer, SecretRecord } from '../../src/persistence/contract';
import { Emitter, type Disposable, type Event } from '../../src/spaces/events';
import { isPropertyOp, normalizeOp, opKey, validateOps, type Op } from '../../src/spaces/ops';
import { secretWins, validateSecretRecords } from '../../src/spaces/secrets';

/** The layer methods, as named in fault errors and the `calls` counters. */
export type LayerOperation = 'listTrees' | 'loadTree' | 'saveOps' | 'loadSecrets' | 'saveSecrets';

const READ_OPERATIONS: ReadonlySet<LayerOperation> = new Set<LayerOperation>(['listTrees', 'loadTree', 'loadSecrets']);

/** Thrown by every call made on a closed layer (and by calls still waiting on a delay at close). */
export class LayerClosedError extends Error {
  constructor(
    readonly layerId: string,
    readonly operation: LayerOperation,
  ) {
    super(`${layerId}: ${operation}() called on a closed layer`);
    this.name = 'LayerClosedError';
  }
}

/** The default error of an injected failure. */
export class InjectedFaultError extends Error {
  constructor(
    message: string,
    readonly operation: LayerOperation,
  ) {
    super(message);
    this.name = 'InjectedFaultError';
  }
}

/** A deep copy of an op with exactly the known fields. */
export function copyOp(op: Op): Op {
  const c = normalizeOp(op);
  if (isPropertyOp(c) && typeof c.value === 'object' && c.value !== null) c.value = structuredClone(c.value);
  return c;
}

function copySecret(r: SecretRecord): SecretRecord {
  return { key: r.key, value: r.value, time: r.time, peerId: r.peerId };
}

function checkId(what: string, id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0) throw new TypeError(`${what} must be a non-empty string (got ${JSON.stringify(id)})`);
}

// ---------------------------------------------------------------------------------------------
// Store

interface SpaceData {
  readonly trees: Map<string, Map<string, Op>>;
  readonly secrets: Map<string, SecretRecord>;
}

let storeCounter = 0;

/**
 * Backing storage shared by MemoryLayers: per space, the ops of each tree (keyed by op id) and
 * the winning secret record of each key. Every method validates its input and copies in and out.
 */
export class MemoryStore {
  /** Names the storage in layer ids (`memory:<name>`). */
  readonly name: string;
  private readonly spaces = new Map<string, SpaceData>();

  constructor(name?: string) {
    this.name = name ?? `store${++storeCounter}`;
  }

  /** Ids of the spaces that have at least one op or secret record. */
  spaceIds(): string[] {
    return [...this.spaces.keys()].filter((id) => this.treeIds(id).length > 0 || this.secretCount(id) > 0).sort();
  }

  /** Ids of the trees of a space that have at least one op, sorted. */
  treeIds(spaceId: string): string[] {
    const space = this.spaces.get(spaceId);
    if (!space) return [];
    return [...space.trees].filter(([, ops]) => ops.size > 0).map(([id]) => id).sort();
  }

  /** Copies of every op of a tree, in insertion order. */
  ops(spaceId: string, treeId: string): Op[] {
    const tree = this.spaces.get(spaceId)?.trees.get(treeId);
    return tree ? Array.from(tree.values(), copyOp) : [];
  }

  /** Number of ops of one tree, or of every tree of the space when `treeId` is omitted. */
  opCount(spaceId: string, treeId?: string): number {
    const space = this.spaces.get(spaceId);
    if (!space) return 0;
    if (treeId !== undefined) return space.trees.get(treeId)?.size ?? 0;
    let n = 0;
    for (const tree of space.trees.values()) n += tree.size;
    return n;
  }

  /** True when the tree holds an op with this id (`counter@peerId`, see `opKey`). */
  hasOp(spaceId: string, treeId: string, key: string): boolean {
    return this.spaces.get(spaceId)?.trees.get(treeId)?.has(key) ?? false;
  }

  /**
   * Validates and stores copies of the ops not stored yet (same tree and op id = same op; the
   * first stored copy is kept). Returns copies of the newly stored ops. Rejects the whole batch
   * when one op is invalid.
   */
  addOps(spaceId: string, treeId: string, ops: readonly Op[]): Op[] {
    checkId('space id', spaceId);
    checkId('tree id', treeId);
    validateOps(ops, treeId, `memory store ${this.name}`);
    if (ops.length === 0) return [];
    const space = this.space(spaceId);
    let tree = space.trees.get(treeId);
    if (!tree) space.trees.set(treeId, (tree = new Map()));
    const added: Op[] = [];
    for (const op of ops) {
      const key = opKey(op);
      if (tree.has(key)) continue;
      const stored = copyOp(op);
      tree.set(key, stored);
      added.push(copyOp(stored));
    }
    return added;
  }

  /** Copies of the stored secret records (tombstones included), sorted by key. */
  secrets(spaceId: string): SecretRecord[] {
    const space = this.spaces.get(spaceId);
    if (!space) return [];
    return [...space.secrets.values()].map(copySecret).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** The stored record of one key, if any. */
  secret(spaceId: string, key: string): SecretRecord | undefined {
    const r = this.spaces.get(spaceId)?.secrets.get(key);
    return r ? copySecret(r) : undefined;
  }

  secretCount(spaceId: string): number {
    return this.spaces.get(spaceId)?.secrets.size ?? 0;
  }

  /**
   * Validates the records and stores each one that wins the merge (`secretWins`) over the stored
   * record of its key. Returns the records that replaced a stored one (one per key). Rejects the
   * whole batch when one record is invalid.
   */
  addSecrets(spaceId: string, records: readonly SecretRecord[]): SecretRecord[] {
    checkId('space id', spaceId);
    validateSecretRecords(records, `memory store ${this.name}`);
    if (records.length === 0) return [];
    const space = this.space(spaceId);
    const changed = new Map<string, SecretRecord>();
    for (const r of records) {
      if (!secretWins(r, space.secrets.get(r.key))) continue;
      const stored = copySecret(r);
      space.secrets.set(r.key, stored);
      changed.set(r.key, stored);
    }
    return [...changed.values()].map(copySecret);
  }

  /** Forgets one space, or everything. */
  clear(spaceId?: string): void {
    if (spaceId === undefined) this.spaces.clear();
    else this.spaces.delete(spaceId);
  }

  private space(spaceId: string): SpaceData {
    let space = this.spaces.get(spaceId);
    if (!space) this.spaces.set(spaceId, (space = { trees: new Map(), secrets: new Map() }));
    return space;
  }
}

// ---------------------------------------------------------------------------------------------
// Gates and faults

/**
 * A barrier for delays without timers: calls that reach a closed gate wait until `open()`.
 * Once opened it stays open; use a new Gate to hold calls again.
 */
export class Gate {
  private isOpened = false;
  private release!: () => void;
  private readonly opened = new Promise<void>((resolve) => (this.release = resolve));
  private arrivalCount = 0;
  private heldCount = 0;
  private arrivalWaiters: Array<{ readonly n: number; readonly resolve: () => void }> = [];

  get isOpen(): boolean {
    return this.isOpened;
  }

  /** Calls held right now (reset to 0 by `open()`). */
  get waiting(): number {
    return this.heldCount;
  }

  /** Calls that ever reached this gate, whether it was open or not. */
  get arrivals(): number {
    return this.arrivalCount;
  }

  /** Lets every held and future call through. */
  open(): void {
    if (this.isOpened) return;
    this.isOpened = true;
    this.heldCount = 0;
    this.release();
  }

  /** Resolves when the gate is open (immediately when it already is). Used by MemoryLayer. */
  pass(): Promise<void> {
    this.arrivalCount++;
    if (!this.isOpened) this.heldCount++;
    const ready = this.arrivalWaiters.filter((w) => w.n <= this.arrivalCount);
    this.arrivalWaiters = this.arrivalWaiters.filter((w) => w.n > this.arrivalCount);
    for (const w of ready) w.resolve();
    return this.opened;
  }

  /** Resolves once at least `n` calls (in total) have reached the gate. */
  arrived(n = 1): Promise<void> {
    if (this.arrivalCount >= n) return Promise.resolve();
    return new Promise((resolve) => this.arrivalWaiters.push({ n, resolve }));
  }
}

/** A delay: milliseconds, or a Gate that holds the call until it is opened. */
export type Delay = number | Gate;

export interface MemoryFaultSettings {
  /**
   * Delay of every call (unless `loadDelay` / `saveDelay` applies). A held call does its work
   * when the delay ends: a held load reads what is stored then.
   */
  delay?: Delay;
  /** Delay of listTrees, loadTree and loadSecrets (instead of `delay`). */
  loadDelay?: Delay;
  /** Delay of saveOps and saveSecrets (instead of `delay`). */
  saveDelay?: Delay;
  /** The next N reads (listTrees, loadTree, loadSecrets) reject; `Infinity` = every read. */
  failLoads?: number;
  /** The next N writes (saveOps, saveSecrets) reject and store nothing; `Infinity` = every write. */
  failSaves?: number;
  /** Every call (but close) rejects while true. */
  failAlways?: boolean;
  /** Writes resolve but store nothing (and deliver nothing) while true. */
  dropSaves?: boolean;
  /** The error of injected failures: a message, or a factory. Default: InjectedFaultError. */
  error?: string | ((operation: LayerOperation) => Error);
}

/**
 * The fault settings of a layer. Change the fields at any time; they apply to the next call.
 * Counters (`failLoads`, `failSaves`) decrease as failures are injected. Order within a call:
 * closed check, input validation, delay, failure, then the operation itself. An invalid batch
 * therefore rejects without consuming a failure.
 */
export class MemoryFaults implements MemoryFaultSettings {
  delay: Delay | undefined;
  loadDelay: Delay | undefined;
  saveDelay: Delay | undefined;
  failLoads = 0;
  failSaves = 0;
  failAlways = false;
  dropSaves = false;
  error: string | ((operation: LayerOperation) => Error) | undefined;
  /** Failures injected so far. */
  injected = 0;
  /** Writes dropped by `dropSaves` so far. */
  dropped = 0;

  constructor(settings: MemoryFaultSettings = {}) {
    this.set(settings);
  }

  /** Applies several settings at once. */
  set(settings: MemoryFaultSettings): this {
    if ('delay' in settings) this.delay = settings.delay;
    if ('loadDelay' in settings) this.loadDelay = settings.loadDelay;
    if ('saveDelay' in settings) this.saveDelay = settings.saveDelay;
    if (settings.failLoads !== undefined) this.failLoads = settings.failLoads;
    if (settings.failSaves !== undefined) this.failSaves = settings.failSaves;
    if (settings.failAlways !== undefined) this.failAlways = settings.failAlways;
    if (settings.dropSaves !== undefined) this.dropSaves = settings.dropSaves;
    if ('error' in settings) this.error = settings.error;
    return this;
  }

  /** Back to no faults (the counters `injected` and `dropped` are kept). */
  reset(): void {
    this.delay = this.loadDelay = this.saveDelay = undefined;
    this.failLoads = this.failSaves = 0;
    this.failAlways = this.dropSaves = false;
    this.error = undefined;
  }

  delayFor(operation: LayerOperation): Delay | undefined {
    const specific = READ_OPERATIONS.has(operation) ? this.loadDelay : this.saveDelay;
    return specific ?? this.delay;
  }

  /** Returns the error to throw for this call, consuming a failure, or undefined. */
  takeFailure(operation: LayerOperation, layerId: string): Error | undefined {
    const read = READ_OPERATIONS.has(operation);
    let fail = this.failAlways;
    if (!fail && read && this.failLoads > 0) {
      this.failLoads--;
      fail = true;
    } else if (!fail && !read && this.failSaves > 0) {
      this.failSaves--;
      fail = true;
    }
    if (!fail) return undefined;
    this.injected++;
    if (typeof this.error === 'function') return this.error(operation);
    const message = this.error ?? `injected ${read ? 'load' : 'save'} failure`;
    return new InjectedFaultError(`${layerId}: ${operation}: ${message}`, operation);
  }
}

// ---------------------------------------------------------------------------------------------
// Hub

/** How a hub delivers; every field can be changed at any time. */
export interface HubDeliveryOptions {
  /** Queue deliveries until `deliver()` / `flush()` is called. Default: deliver on the next macrotask. */
  manual?: boolean;
  /** Deliver queued messages in random order, and shuffle the ops within each batch. */
  shuffle?: boolean;
  /** Probability (0..1) that a message is delivered a second time, later. */
  duplicate?: number;
  /** Split each batch of ops into random smaller batches. */
  split?: boolean;
  /** Random source for shuffle, duplicate and split (see `seededRandom`). Default Math.random. */
  random?: () => number;
}

/** A deterministic random source in [0, 1) (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A hub's view of one connected layer. */
export interface HubPeer {
  readonly spaceId: string;
  readonly isOpen: boolean;
  receiveOps(incoming: IncomingOps): void;
  receiveSecrets(records: readonly SecretRecord[]): void;
}

type HubMessage =
  | { readonly to: HubPeer; readonly type: 'ops'; readonly treeId: string; readonly ops: readonly Op[]; readonly copy: boolean }
  | { readonly to: HubPeer; readonly type: 'secrets'; readonly records: readonly SecretRecord[]; readonly copy: boolean };

/**
 * An in-process "server": layers connected to a hub (option `hub`) receive, through
 * `onIncoming` / `onIncomingSecrets`, what other connected layers of the same space newly
 * stored. Layers on a hub use `hub.store` unless given another store; with the default, the
 * hub models a server that keeps every op, so a layer's `loadTree` also returns the others' ops.
 * Routing is by space id only. Without a hub, layers over one store see each other's ops on
 * their next load but report nothing; to model a file watcher, put one-way layers over one
 * store on a hub too (`{ store, hub, kind: 'one-way' }`).
 */
export class MemoryHub {
  readonly store: MemoryStore;
  readonly delivery: HubDeliveryOptions;
  private readonly peers = new Set<HubPeer>();
  private queue: HubMessage[] = [];
  private scheduled = false;
  private deliveredCount = 0;

  constructor(options: HubDeliveryOptions & { store?: MemoryStore } = {}) {
    const { store, ...delivery } = options;
    this.store = store ?? new MemoryStore('hub');
    this.delivery = delivery;
  }

  /** Messages waiting for delivery. */
  get pending(): number {
    return this.queue.length;
  }

  /** Messages delivered so far (duplicates included). */
  get delivered(): number {
    return this.deliveredCount;
  }

  /** Layers connected right now. */
  get peerCount(): number {
    return this.peers.size;
  }

  /** Connects a layer (MemoryLayer does this itself); dispose to disconnect. */
  connect(peer: HubPeer): Disposable {
    this.peers.add(peer);
    return { dispose: () => this.peers.delete(peer) };
  }

  /** Queues newly stored ops of `from` for every other connected layer of its space. */
  publishOps(from: HubPeer, treeId: string, ops: readonly Op[]): void {
    if (ops.length === 0) return;
    for (const to of this.targets(from)) {
      for (const chunk of this.chunks(ops)) this.queue.push({ to, type: 'ops', treeId, ops: chunk, copy: false });
    }
    this.schedule();
  }

  /** Queues changed secret records of `from` for every other connected layer of its space. */
  publishSecrets(from: HubPeer, records: readonly SecretRecord[]): void {
    if (records.length === 0) return;
    for (const to of this.targets(from)) this.queue.push({ to, type: 'secrets', records, copy: false });
    this.schedule();
  }

  /**
   * Delivers up to `max` queued messages now (random ones when shuffling); messages to closed
   * layers are dropped without counting. Returns the number delivered.
   */
  deliver(max = Infinity): number {
    const random = this.delivery.random ?? Math.random;
    let n = 0;
    while (n < max && this.queue.length > 0) {
      const i = this.delivery.shuffle ? Math.floor(random() * this.queue.length) : 0;
      const msg = this.queue.splice(i, 1)[0];
      if (!msg.to.isOpen) continue;
      const p = this.delivery.duplicate ?? 0;
      if (!msg.copy && p > 0 && random() < p) {
        const at = Math.floor(random() * (this.queue.length + 1));
        this.queue.splice(at, 0, { ...msg, copy: true });
      }
      n++;
      this.deliveredCount++;
      if (msg.type === 'ops') msg.to.receiveOps({ treeId: msg.treeId, ops: msg.ops.map(copyOp) });
      else msg.to.receiveSecrets(msg.records.map(copySecret));
    }
    return n;
  }

  /**
   * Delivers everything (also what listeners publish meanwhile, after letting them run a
   * macrotask) until the queue stays empty. Works in manual mode too. Returns the number delivered.
   */
  async flush(): Promise<number> {
    let total = 0;
    for (let round = 0; ; round++) {
      if (round > 10_000) throw new Error('MemoryHub.flush: deliveries do not settle');
      total += this.deliver();
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.queue.length === 0) return total;
    }
  }

  private targets(from: HubPeer): HubPeer[] {
    return [...this.peers].filter((p) => p !== from && p.isOpen && p.spaceId === from.spaceId);
  }

  private chunks(ops: readonly Op[]): Op[][] {
    const random = this.delivery.random ?? Math.random;
    const list = [...ops];
    if (this.delivery.shuffle) {
      for (let i = list.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [list[i], list[j]] = [list[j], list[i]];
      }
    }
    if (!this.delivery.split || list.length < 2) return [list];
    const out: Op[][] = [];
    for (let i = 0; i < list.length; ) {
      const size = 1 + Math.floor(random() * Math.min(list.length - i, Math.max(1, Math.ceil(list.length / 2))));
      out.push(list.slice(i, i + size));
      i += size;
    }
    return out;
  }

  private schedule(): void {
    if (this.scheduled || this.delivery.manual) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.delivery.manual) return;
      // Only what is queued now; what listeners publish meanwhile goes in a later round.
      this.deliver(this.queue.length);
      if (this.queue.length > 0) this.schedule();
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Layer

export interface MemoryLayerOptions {
  /** Backing storage; default `hub.store` with a hub, else a new store. */
  store?: MemoryStore;
  /** Connects the layer to a hub (it then reports other layers' saves). */
  hub?: MemoryHub;
  /** Default 'two-way' with a hub, else 'one-way'. */
  kind?: LayerKind;
  /** Default `memory:<store name>` (the same for every layer over one store, like a file path). */
  id?: string;
  label?: string;
  /** A MemoryFaults to share between layers, or initial settings. Default: no faults. */
  faults?: MemoryFaults | MemoryFaultSettings;
}

/** In-memory PersistenceLayer for one space; see the module comment. */
export class MemoryLayer implements PersistenceLayer {
  readonly id: string;
  readonly label: string;
  readonly kind: LayerKind;
  readonly spaceId: string;
  readonly store: MemoryStore;
  readonly hub: MemoryHub | undefined;
  /** Fault injection; change it at any time. */
  readonly faults: MemoryFaults;
  /** How often each method was called (rejected calls included, calls after close not). */
  readonly calls: Record<LayerOperation, number> = { listTrees: 0, loadTree: 0, saveOps: 0, loadSecrets: 0, saveSecrets: 0 };

  private readonly incoming = new Emitter<IncomingOps>();
  private readonly incomingSecrets = new Emitter<readonly SecretRecord[]>();
  private readonly stateChange = new Emitter<LayerConnectionState>();
  readonly onIncoming: Event<IncomingOps> = this.incoming.event;
  readonly onIncomingSecrets: Event<readonly SecretRecord[]> = this.incomingSecrets.event;
  readonly onStateChange: Event<LayerConnectionState> = this.stateChange.event;

  private isClosed = false;
  private signalClosed!: () => void;
  private readonly closedSignal = new Promise<void>((resolve) => (this.signalClosed = resolve));
  private readonly peer: HubPeer;
  private readonly hubConnection: Disposable | undefined;

  constructor(spaceId: string, options: MemoryLayerOptions = {}) {
    checkId('space id', spaceId);
    this.spaceId = spaceId;
    this.hub = options.hub;
    this.store = options.store ?? options.hub?.store ?? new MemoryStore();
    this.kind = options.kind ?? (options.hub ? 'two-way' : 'one-way');
    this.id = options.id ?? `memory:${this.store.name}`;
    this.label = options.label ?? `Memory (${this.store.name})`;
    this.faults = options.faults instanceof MemoryFaults ? options.faults : new MemoryFaults(options.faults);
    const isOpen = (): boolean => !this.isClosed;
    this.peer = {
      spaceId,
      get isOpen() {
        return isOpen();
      },
      receiveOps: (incoming) => this.incoming.fire(incoming),
      receiveSecrets: (records) => this.incomingSecrets.fire(records),
    };
    this.hubConnection = this.hub?.connect(this.peer);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * A new layer over the same store and hub, with the same space, kind, id and label, after
   * closing this one. Faults are not carried over unless given in `overrides`.
   */
  async reopen(overrides: MemoryLayerOptions = {}): Promise<MemoryLayer> {
    await this.close();
    return new MemoryLayer(this.spaceId, { store: this.store, hub: this.hub, kind: this.kind, id: this.id, label: this.label, ...overrides });
  }

  /** Reports a connection state through `onStateChange` (ignored after close). */
  setState(state: LayerConnectionState): void {
    if (!this.isClosed) this.stateChange.fire(state);
  }

  async listTrees(): Promise<string[]> {
    await this.begin('listTrees');
    return this.store.treeIds(this.spaceId);
  }

  async loadTree(treeId: string): Promise<Op[]> {
    this.checkOpen('loadTree');
    checkId('tree id', treeId);
    await this.begin('loadTree');
    return this.store.ops(this.spaceId, treeId);
  }

  async saveOps(treeId: string, ops: readonly Op[]): Promise<void> {
    this.checkOpen('saveOps');
    checkId('tree id', treeId);
    validateOps(ops, treeId, this.id);
    const snapshot = ops.map(copyOp);
    await this.begin('saveOps');
    if (this.faults.dropSaves) {
      this.faults.dropped++;
      return;
    }
    const added = this.store.addOps(this.spaceId, treeId, snapshot);
    this.hub?.publishOps(this.peer, treeId, added);
  }

  async loadSecrets(): Promise<SecretRecord[]> {
    await this.begin('loadSecrets');
    return this.store.secrets(this.spaceId);
  }

  async saveSecrets(records: readonly SecretRecord[]): Promise<void> {
    this.checkOpen('saveSecrets');
    validateSecretRecords(records, this.id);
    const snapshot = records.map(copySecret);
    await this.begin('saveSecrets');
    if (this.faults.dropSaves) {
      this.faults.dropped++;
      return;
    }
    const changed = this.store.addSecrets(this.spaceId, snapshot);
    this.hub?.publishSecrets(this.peer, changed);
  }

  /**
   * Idempotent. Memory writes are synchronous, so there is nothing to flush; calls still held by
   * a delay reject with LayerClosedError and store nothing.
   */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.signalClosed();
    this.hubConnection?.dispose();
    this.incoming.dispose();
    this.incomingSecrets.dispose();
    this.stateChange.dispose();
  }

  private checkOpen(operation: LayerOperation): void {
    if (this.isClosed) throw new LayerClosedError(this.id, operation);
  }

  /** Closed check, call counter, delay, injected failure. */
  private async begin(operation: LayerOperation): Promise<void> {
    this.checkOpen(operation);
    this.calls[operation]++;
    const delay = this.faults.delayFor(operation);
    if (delay !== undefined) {
      await this.wait(delay);
      this.checkOpen(operation);
    }
    const failure = this.faults.takeFailure(operation, this.id);
    if (failure) throw failure;
  }

  private wait(delay: Delay): Promise<void> {
    if (delay instanceof Gate) return Promise.race([delay.pass(), this.closedSignal]);
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, delay);
      void this.closedSignal.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
