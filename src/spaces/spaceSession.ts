/**
 * SpaceSession: one open space with its layers — loading, merging, reconciling, saving, and
 * applying what layers deliver. The SpaceManager keeps one per open space.
 */
import { rangesHave, type StateVectorRanges } from '../crdt';
import { isSyncChannel, type IncomingOps, type LoadProgress, type PersistenceLayer, type SecretRecord, type TreeLoad } from '../persistence/contract';
import { LayerError, layerErrorCode, type LayerErrorCode } from '../persistence/layerError';
import { AppTree, type TreeChange } from './appTree';
import { DisposableStore, Emitter } from './events';
import { FreeTimeDeadline } from './freeTimeDeadline';
import { LayerSlot, errorMessage, type RetryPolicy, type SlotState } from './layerSlot';
import { OpRangeSet } from './opRanges';
import { InvalidOpError, validateOps, type Op } from './ops';
import { mergeSecrets, secretWins, validateSecretRecords } from './secrets';
import { Space } from './space';

export interface SessionOptions {
  readonly peerId: string;
  readonly retry: RetryPolicy;
  /**
   * A layer whose load takes longer is treated as failed (and retried later); for a layer that
   * reports load progress, counted from its last report.
   */
  readonly loadTimeoutMs: number;
  /** Load progress of any layer (while opening too). */
  readonly onLoadProgress?: (e: LoadProgressEvent) => void;
}

export interface LoadProgressEvent extends LoadProgress {
  readonly spaceId: string;
  readonly layerId: string;
  readonly label: string;
}

export interface LayerStateChange {
  readonly spaceId: string;
  readonly layerId: string;
  readonly label: string;
  readonly state: SlotState;
}

export interface SpaceErrorEvent {
  readonly spaceId: string;
  readonly layerId?: string;
  readonly message: string;
}

export interface UnsavedReport {
  readonly layerId: string;
  readonly label: string;
  readonly pendingOps: number;
  readonly error?: string;
}

/** Why a space or an app tree could not be opened: a LayerError whose code says whether anything failed. */
export class SpaceOpenError extends LayerError {
  constructor(
    message: string,
    /** NOT_FOUND: every layer answered and none holds it; otherwise the failing layer's code (STALLED, LOCKED, …) or UNUSABLE. */
    code: LayerErrorCode,
  ) {
    super(message, code);
    this.name = 'SpaceOpenError';
  }

  /** Every layer answered and none holds an op of the tree yet (nothing failed). */
  get noOps(): boolean {
    return this.code === 'NOT_FOUND';
  }
}

type LoadResult<T> = { ok: true; value: T } | { ok: false; error: string; code?: LayerErrorCode };

/** The code an open that failed on these layers gets: the first failure that has one, else UNUSABLE. */
function failureCode(failed: ReadonlyArray<{ code?: LayerErrorCode }>): LayerErrorCode {
  return failed.find((f) => f.code !== undefined)?.code ?? 'UNUSABLE';
}

/** The store a channel writes what it delivers into itself (SyncChannel.positionStore), if any. */
function positionStoreOf(layer: PersistenceLayer): string | undefined {
  return isSyncChannel(layer) ? layer.positionStore : undefined;
}

/** A tree loaded from one layer: its ops and, when it came as a snapshot, that (treeLoad.ts) and then what the layer holds. */
interface LayerLoad {
  readonly slot: LayerSlot;
  ops: Op[];
  snapshot?: TreeLoad['snapshot'];
  have?: StateVectorRanges;
}

/** What the other loaded layers store into `slot`'s layer themselves (SyncChannel.positionStore). */
function heldFor(ok: ReadonlyArray<LayerLoad>, slot: LayerSlot): Op[][] {
  return ok.filter((o) => o.slot !== slot && positionStoreOf(o.slot.layer) === slot.layer.id).map((o) => o.ops);
}

/** Every layer's ops in one array (concat: flatMap is several times slower for big arrays, and spread arguments overflow). */
function allOf(ok: ReadonlyArray<{ ops: Op[] }>): Op[] {
  let all: Op[] = [];
  for (const r of ok) all = all.concat(r.ops);
  return all;
}

/**
 * Lets the event loop poll I/O before a long synchronous step (building a tree). Loads finish in
 * bursts (a worker answers many at once), and without this the builds run back to back while
 * sockets go unread: with many spaces opening at once, their connections would look dead.
 */
function yieldToIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class SpaceSession {
  readonly slots = new Map<string, LayerSlot>();
  private readonly disposables = new DisposableStore();
  /** The listeners of each slot (its state, its layer's incoming events), disposed when it is removed. */
  private readonly slotSubscriptions = new Map<LayerSlot, DisposableStore>();
  readonly layerStateEmitter = new Emitter<LayerStateChange>();
  readonly errorEmitter = new Emitter<SpaceErrorEvent>();
  private closed = false;
  space!: Space;
  /** Deliveries that arrived while the space was still loading; replayed once it exists. */
  private early: Array<() => void> | undefined = [];
  /** Errors reported while nobody listened yet (during open); replayed by `takeEarlyErrors`. */
  private earlyErrors: SpaceErrorEvent[] = [];
  /** Ops that arrived for app trees being loaded; merged into each tree once built. */
  private readonly loadingTrees = new Map<string, Op[][]>();

  private constructor(
    readonly spaceId: string,
    private readonly opts: SessionOptions,
  ) {}

  /** Opens a space from its layers: loads the space tree from all in parallel and merges. */
  static async open(spaceId: string, layers: readonly PersistenceLayer[], opts: SessionOptions): Promise<SpaceSession> {
    const s = new SpaceSession(spaceId, opts);
    try {
      for (const l of layers) s.addSlot(l);
    } catch (e) {
      await Promise.allSettled(layers.map((l) => l.close()));
      s.dispose();
      throw e;
    }
    const slots = [...s.slots.values()];
    const { ok, failed } = await s.loadTreeFrom(slots, spaceId, true);
    const failures = failed.map((f) => `${f.slot.layer.label}: ${f.error}`);
    if (ok.length === 0 || !ok.some((r) => r.ops.length > 0 || r.snapshot)) {
      await Promise.allSettled(slots.map((sl) => sl.close()));
      s.dispose();
      const why = failures.length ? `${failures.join('; ')}${ok.length ? ' (no other layer holds it)' : ''}` : `no layer holds space ${spaceId}`;
      throw new SpaceOpenError(`cannot open space ${spaceId}: ${why}`, failed.length ? failureCode(failed) : 'NOT_FOUND');
    }
    let tree: AppTree;
    await yieldToIo();
    try {
      tree = await s.buildTree(spaceId, ok);
    } catch (e) {
      await Promise.allSettled(slots.map((sl) => sl.close()));
      s.dispose();
      throw new SpaceOpenError(`cannot open space ${spaceId}: ${errorMessage(e)}`, 'UNUSABLE');
    }
    s.attachSpace(new Space(tree, opts.peerId, (treeId) => s.loadAppTree(treeId)));
    const secretResults = await Promise.all(ok.map(({ slot }) => s.loadSecretsFrom(slot)));
    s.space.applySecrets([...mergeSecrets(secretResults.flatMap((r) => (r.ok ? r.value : []))).values()], 'local');
    ok.forEach(({ slot, ops, have }, i) => {
      slot.setStatus('ready');
      s.pushMissing(slot, tree, ops, ok.length === 1, heldFor(ok, slot), have);
      s.takeSecrets(slot, secretResults[i], false);
    });
    for (const f of failed) f.slot.degrade(f.error);
    return s;
  }

  /** Starts a brand-new space: the tree's creation ops go to every layer. */
  static async create(tree: AppTree, layers: readonly PersistenceLayer[], opts: SessionOptions): Promise<SpaceSession> {
    const s = new SpaceSession(tree.id, opts);
    try {
      for (const l of layers) s.addSlot(l).setStatus('ready');
    } catch (e) {
      await Promise.allSettled(layers.map((l) => l.close()));
      s.dispose();
      tree.dispose();
      throw e;
    }
    s.attachSpace(new Space(tree, opts.peerId, (treeId) => s.loadAppTree(treeId)));
    tree.transact(() => undefined); // emits the creation ops, now that saving is wired
    return s;
  }

  private attachSpace(space: Space): void {
    this.space = space;
    const early = this.early ?? [];
    this.early = undefined;
    queueMicrotask(() => early.forEach((deliver) => deliver()));
    this.disposables.add(
      space.onDidChange((c: TreeChange) => {
        if (c.origin === 'local') for (const slot of this.slots.values()) slot.enqueue(c.treeId, c.ops);
      }),
    );
    this.disposables.add(
      space.onDidChangeSecrets((c) => {
        if (c.origin === 'local') for (const slot of this.slots.values()) slot.enqueueSecrets(c.records);
      }),
    );
  }

  private addSlot(layer: PersistenceLayer): LayerSlot {
    if (layer.spaceId !== this.spaceId) throw new SpaceOpenError(`layer ${layer.label} holds space ${layer.spaceId}, not ${this.spaceId}`, 'SPACE_MISMATCH');
    if (this.slots.has(layer.id)) throw new SpaceOpenError(`space ${this.spaceId} already has layer ${layer.id}`, 'UNUSABLE');
    const slot = new LayerSlot(layer, this.opts.retry, (sl) => this.resync(sl));
    this.slots.set(layer.id, slot);
    const subs = this.disposables.add(new DisposableStore());
    this.slotSubscriptions.set(slot, subs);
    subs.add(slot.onDidChangeState((state) => this.layerStateEmitter.fire({ spaceId: this.spaceId, layerId: layer.id, label: layer.label, state })));
    if (layer.onIncoming) subs.add(layer.onIncoming((batch) => this.onIncoming(slot, batch)));
    if (layer.onIncomingSecrets) subs.add(layer.onIncomingSecrets((records) => this.onIncomingSecrets(slot, records)));
    const report = this.opts.onLoadProgress;
    if (layer.onLoadProgress && report) subs.add(layer.onLoadProgress((p) => report({ ...p, spaceId: this.spaceId, layerId: layer.id, label: layer.label })));
    return slot;
  }

  /** Attaches another layer to the open space and reconciles it with every loaded tree. */
  async addLayer(layer: PersistenceLayer): Promise<void> {
    const slot = this.addSlot(layer);
    if (!(await this.resync(slot))) slot.degrade(slot.error ?? 'load failed');
  }

  /**
   * Detaches one layer while the space stays open with the others: local edits are no longer
   * queued for it, what was queued before is saved (when the layer is ready), then the layer is
   * closed (its state goes to `closed`) and its events are no longer listened to. Resolves with
   * what it could not save, undefined when everything was saved or the space has no such layer.
   */
  async removeLayer(layerId: string): Promise<UnsavedReport | undefined> {
    const slot = this.slots.get(layerId);
    if (!slot || this.closed) return undefined;
    this.slots.delete(layerId);
    await slot.drained();
    const unsaved: UnsavedReport | undefined =
      slot.status !== 'ready' || slot.pendingOps > 0 ? { layerId, label: slot.layer.label, pendingOps: slot.pendingOps, error: slot.error } : undefined;
    let closeError: string | undefined;
    try {
      await slot.close();
    } catch (e) {
      closeError = `close failed: ${errorMessage(e)}`;
    }
    this.slotSubscriptions.get(slot)?.dispose();
    this.slotSubscriptions.delete(slot);
    if (closeError) return { layerId, label: slot.layer.label, pendingOps: unsaved?.pendingOps ?? 0, error: unsaved?.error ? `${unsaved.error}; ${closeError}` : closeError };
    return unsaved;
  }

  // ---- loading -------------------------------------------------------------

  /**
   * Bounds a load by `loadTimeoutMs`, counted from the layer's last progress report (if it
   * reports any) and in time this process was free to see it (FreeTimeDeadline).
   */
  private async withTimeout<T>(p: Promise<T>, what: string, layer: PersistenceLayer): Promise<T> {
    const ms = this.opts.loadTimeoutMs;
    let deadline: FreeTimeDeadline | undefined;
    let progress: { dispose(): void } | undefined;
    const timeout = new Promise<never>((_, reject) => {
      deadline = new FreeTimeDeadline(ms, () => reject(new Error(`${what} timed out after ${ms} ms${progress ? ' without progress' : ''}`)));
      deadline.reset();
      progress = layer.onLoadProgress?.(() => deadline?.reset());
    });
    try {
      return await Promise.race([p, timeout]);
    } finally {
      deadline?.stop();
      progress?.dispose();
    }
  }

  /**
   * Loads and validates one tree from one layer; never throws. `opening`: the tree is being
   * built, so a layer's snapshot (loadTreeState) may stand for its history.
   */
  private async loadFrom(slot: LayerSlot, treeId: string, opening = false): Promise<LoadResult<TreeLoad>> {
    try {
      const layer = slot.layer;
      const load: TreeLoad = await this.withTimeout(opening && layer.loadTreeState ? layer.loadTreeState(treeId) : layer.loadTree(treeId).then((ops) => ({ ops })), `loading from ${layer.label}`, layer);
      if (!layer.validatesOps) validateOps(load.ops, treeId, layer.label);
      return { ok: true, value: load };
    } catch (e) {
      return { ok: false, error: errorMessage(e), code: layerErrorCode(e) ?? (e instanceof InvalidOpError ? 'INVALID_DATA' : undefined) };
    }
  }

  /**
   * Builds a tree from its loads: from the first snapshot among them plus every other op
   * (AppTree.fromTreeLoad; a bad snapshot is rebuilt from its layer's ops), else from all ops.
   */
  private async buildTree(treeId: string, ok: LayerLoad[]): Promise<AppTree> {
    const first = ok.find((r) => r.snapshot);
    if (!first) return AppTree.fromOps(this.opts.peerId, treeId, allOf(ok)); // sorts and dedupes
    const opened = await AppTree.fromTreeLoad(this.opts.peerId, treeId, { snapshot: first.snapshot, ops: first.ops }, (ops) => validateOps(ops, treeId, first.slot.layer.label));
    first.ops = opened.ops;
    first.have = opened.have;
    for (const r of ok) if (r !== first && r.ops.length > 0) opened.tree.tree.merge(r.ops);
    return opened.tree;
  }

  /** Loads one tree from several layers in parallel; splits the layers that answered from those that failed. */
  private async loadTreeFrom(
    slots: readonly LayerSlot[],
    treeId: string,
    opening = false,
  ): Promise<{ ok: LayerLoad[]; failed: Array<{ slot: LayerSlot; error: string; code?: LayerErrorCode }> }> {
    const results = await Promise.all(slots.map((slot) => this.loadFrom(slot, treeId, opening)));
    const ok: LayerLoad[] = [];
    const failed: Array<{ slot: LayerSlot; error: string; code?: LayerErrorCode }> = [];
    results.forEach((r, i) => (r.ok ? ok.push({ slot: slots[i], ops: r.value.ops, snapshot: r.value.snapshot }) : failed.push({ slot: slots[i], error: r.error, code: r.code })));
    return { ok, failed };
  }

  private async loadSecretsFrom(slot: LayerSlot): Promise<LoadResult<SecretRecord[]>> {
    try {
      const records = await this.withTimeout(slot.layer.loadSecrets(), `loading secrets from ${slot.layer.label}`, slot.layer);
      validateSecretRecords(records, slot.layer.label);
      return { ok: true, value: records };
    } catch (e) {
      return { ok: false, error: errorMessage(e) };
    }
  }

  /** The Space's loader for app trees: merge from every ready layer, reconcile each. */
  private async loadAppTree(treeId: string): Promise<AppTree> {
    this.loadingTrees.set(treeId, []);
    try {
      return await this.buildAppTree(treeId);
    } finally {
      this.loadingTrees.delete(treeId);
    }
  }

  private async buildAppTree(treeId: string): Promise<AppTree> {
    const slots = [...this.slots.values()].filter((s) => s.status === 'ready');
    const { ok, failed } = await this.loadTreeFrom(slots, treeId, true);
    for (const f of failed) f.slot.degrade(f.error);
    if (!ok.some((r) => r.ops.length > 0 || r.snapshot)) {
      const why = ok.length ? 'no layer holds its ops yet' : failed.map((f) => `${f.slot.layer.label}: ${f.error}`).join('; ');
      const code = ok.length > 0 && failed.length === 0 ? 'NOT_FOUND' : failureCode(failed);
      throw new SpaceOpenError(`cannot load app tree ${treeId} of space ${this.spaceId}: ${why || 'no layer is ready'}`, code);
    }
    let tree: AppTree;
    await yieldToIo();
    try {
      tree = await this.buildTree(treeId, ok);
    } catch (e) {
      throw new SpaceOpenError(`cannot load app tree ${treeId} of space ${this.spaceId}: ${errorMessage(e)}`, 'UNUSABLE');
    }
    for (const { slot, ops, have } of ok) this.pushMissing(slot, tree, ops, ok.length === 1, heldFor(ok, slot), have);
    // Layers that recovered while this tree loaded were not read, and their resync did not see
    // this tree: reconcile them with it now.
    for (const late of [...this.slots.values()].filter((sl) => sl.status === 'ready' && !slots.includes(sl))) {
      const r = await this.loadFrom(late, treeId);
      if (!r.ok) {
        late.degrade(r.error);
        continue;
      }
      this.forward(late, treeId, tree.applyRemote(r.value.ops));
      this.pushMissing(late, tree, r.value.ops);
    }
    // What arrived while loading was forwarded to the other layers already; now merge it too.
    for (const batch of this.loadingTrees.get(treeId) ?? []) tree.applyRemote(batch);
    return tree;
  }

  /**
   * Queues for `slot` every op of `tree` that `layerOps` (what the layer holds) lacks.
   * `onlySource`: the tree was built from this layer's ops alone, so it lacks nothing. `holds`:
   * what the layer holds besides `layerOps`, when it sent a snapshot.
   */
  private pushMissing(slot: LayerSlot, tree: AppTree, layerOps: readonly Op[], onlySource = false, held: ReadonlyArray<readonly Op[]> = [], holds?: StateVectorRanges): void {
    if (onlySource) return;
    if (slot.layer.missingOps) {
      slot.layer.missingOps(tree.id, tree.allOps()).then(
        (missing) => slot.enqueue(tree.id, missing),
        (e: unknown) => slot.degrade(`cannot tell what ${slot.layer.label} lacks: ${errorMessage(e)}`),
      );
      return;
    }
    // Op ids as counter ranges per peer (no string key per op: a clone reconciles 10k+ ops per tree).
    const have = OpRangeSet.fromOps(layerOps);
    // Ops another layer stores into this one itself (a server layer into its file) are not missing here.
    for (const ops of held) have.addOps(ops);
    const missing = tree.allOps().filter((op) => !have.hasOp(op) && !(holds && rangesHave(holds, op.id.peerId, op.id.counter)));
    slot.enqueue(tree.id, missing);
  }

  /**
   * Reconciles secrets with a layer after loading them: merges what it has (and, when `apply`,
   * forwards the winners to the other layers), queues what it lacks. A layer whose secrets cannot
   * be read keeps syncing ops; its secrets are blocked and reported.
   */
  private takeSecrets(slot: LayerSlot, result: LoadResult<SecretRecord[]>, apply: boolean): void {
    if (!result.ok) {
      slot.blockSecrets(result.error);
      this.reportError({ spaceId: this.spaceId, layerId: slot.layer.id, message: `secrets unavailable: ${result.error}` });
      return;
    }
    slot.unblockSecrets();
    if (apply) this.forwardSecrets(slot, this.space.applySecrets(result.value));
    this.pushMissingSecrets(slot, result.value);
  }

  private pushMissingSecrets(slot: LayerSlot, layerRecords: readonly SecretRecord[]): void {
    const theirs = mergeSecrets(layerRecords);
    slot.enqueueSecrets(this.space.secretRecords().filter((r) => secretWins(r, theirs.get(r.key))));
  }

  /**
   * Brings a (recovering or new) layer up to date both ways: loads every loaded tree and the
   * secrets from it, applies what it has that we lack, queues what it lacks. True on success.
   */
  private async resync(slot: LayerSlot): Promise<boolean> {
    if (this.closed) return false;
    const trees = [this.space.tree, ...this.space.loadedAppTreeIds().map((id) => this.space.loadedTree(id) as AppTree)];
    const loaded = await Promise.all(trees.map((t) => this.loadFrom(slot, t.id)));
    const secrets = await this.loadSecretsFrom(slot);
    const failed = loaded.find((r) => !r.ok);
    if (failed && !failed.ok) {
      slot.setStatus('degraded', failed.error);
      return false;
    }
    if (this.closed) return false;
    trees.forEach((t, i) => {
      const r = loaded[i];
      if (!r.ok) return;
      const fresh = t.applyRemote(r.value.ops);
      this.forward(slot, t.id, fresh);
      this.pushMissing(slot, t, r.value.ops);
    });
    this.takeSecrets(slot, secrets, true);
    slot.setStatus('ready');
    slot.kick();
    return true;
  }

  // ---- incoming --------------------------------------------------------------

  private onIncoming(source: LayerSlot, batch: IncomingOps): void {
    if (this.closed) return;
    if (this.early) {
      this.early.push(() => this.onIncoming(source, batch));
      return;
    }
    try {
      // Once, at the edge: a layer that decoded and checked them says so (PersistenceLayer.validatesOps).
      if (!source.layer.validatesOps) validateOps(batch.ops, batch.treeId, source.layer.label);
    } catch (e) {
      this.reportError({ spaceId: this.spaceId, layerId: source.layer.id, message: `rejected incoming ops: ${errorMessage(e)}` });
      return;
    }
    const tree = this.space.loadedTree(batch.treeId);
    this.loadingTrees.get(batch.treeId)?.push([...batch.ops]);
    // An app tree nobody opened yet: store what arrived in the other layers without loading it.
    const fresh = tree ? tree.applyRemote(batch.ops) : batch.ops;
    this.forward(source, batch.treeId, fresh);
  }

  private onIncomingSecrets(source: LayerSlot, records: readonly SecretRecord[]): void {
    if (this.closed) return;
    if (this.early) {
      this.early.push(() => this.onIncomingSecrets(source, records));
      return;
    }
    try {
      validateSecretRecords(records, source.layer.label);
    } catch (e) {
      this.reportError({ spaceId: this.spaceId, layerId: source.layer.id, message: `rejected incoming secrets: ${errorMessage(e)}` });
      return;
    }
    this.forwardSecrets(source, this.space.applySecrets(records));
  }

  /** Queues ops for every layer but their source and the store the source writes them into itself (`positionStore`). */
  private forward(source: LayerSlot, treeId: string, ops: readonly Op[]): void {
    if (ops.length === 0) return;
    const held = positionStoreOf(source.layer);
    for (const slot of this.slots.values()) if (slot !== source && slot.layer.id !== held) slot.enqueue(treeId, ops);
  }

  private forwardSecrets(source: LayerSlot, records: readonly SecretRecord[]): void {
    if (records.length === 0) return;
    for (const slot of this.slots.values()) if (slot !== source) slot.enqueueSecrets(records);
  }

  private reportError(e: SpaceErrorEvent): void {
    if (this.errorEmitter.hasListeners) this.errorEmitter.fire(e);
    else this.earlyErrors.push(e);
  }

  /** Errors reported before anyone listened (while the space opened). */
  takeEarlyErrors(): SpaceErrorEvent[] {
    return this.earlyErrors.splice(0);
  }

  // ---- lifecycle ---------------------------------------------------------------

  layerStates(): Array<{ layerId: string; label: string; kind: string; state: SlotState }> {
    return [...this.slots.values()].map((s) => ({ layerId: s.layer.id, label: s.layer.label, kind: s.layer.kind, state: s.state() }));
  }

  retryLayers(): void {
    for (const s of this.slots.values()) s.retryNow();
  }

  /** Waits until every ready layer has saved everything; reports what could not be saved. */
  async flush(): Promise<UnsavedReport[]> {
    await Promise.all([...this.slots.values()].map((s) => s.drained()));
    return this.unsaved();
  }

  private unsaved(): UnsavedReport[] {
    return [...this.slots.values()]
      .filter((s) => s.status !== 'ready' || s.pendingOps > 0)
      .map((s) => ({ layerId: s.layer.id, label: s.layer.label, pendingOps: s.pendingOps, error: s.error }));
  }

  /** Flushes, closes every layer and disposes the space. Idempotent. */
  async close(): Promise<UnsavedReport[]> {
    if (this.closed) return [];
    const report = await this.flush();
    this.closed = true;
    this.disposables.dispose();
    const results = await Promise.allSettled([...this.slots.values()].map((s) => s.close()));
    const closeErrors: UnsavedReport[] = results.flatMap((r, i) =>
      r.status === 'rejected' ? [{ layerId: [...this.slots.keys()][i], label: [...this.slots.values()][i].layer.label, pendingOps: 0, error: `close failed: ${errorMessage(r.reason)}` }] : [],
    );
    this.dispose();
    return [...report, ...closeErrors];
  }

  private dispose(): void {
    this.closed = true;
    this.disposables.dispose();
    this.space?.dispose();
    this.layerStateEmitter.dispose();
    this.errorEmitter.dispose();
  }
}

