/**
 * SpaceManager: orchestrates many open spaces, each with several persistence layers.
 * Environment-agnostic: the extension host, the CLI and the server all run this same class.
 *
 * - open is idempotent: opening an open (or opening) space returns the same Space instance;
 *   layers passed again with an id the space already has are closed, new ones are attached.
 * - load merges ops from every layer; a layer that fails or times out is degraded and retried
 *   with backoff, and is never written to until it loads again (see LayerSlot).
 * - layers can be added to and removed from an open space (`addLayer`, `removeLayer`).
 * - every local op is saved to all layers in parallel; incoming ops of any layer are applied
 *   and saved to the others; secrets merge per key (last writer wins, tombstones).
 */
import type { PersistenceLayer } from '../persistence/contract';
import type { TreeChange } from './appTree';
import { DisposableStore, Emitter, type Disposable } from './events';
import { DEFAULT_RETRY, type RetryPolicy } from './layerSlot';
import { newPeerId } from './peerId';
import { Space } from './space';
import { SpaceOpenError, SpaceSession, type LayerStateChange, type LoadProgressEvent, type SpaceErrorEvent, type UnsavedReport } from './spaceSession';

export interface SpaceManagerOptions {
  /** Defaults to a fresh random id: one per running instance. */
  readonly peerId?: string;
  readonly retry?: RetryPolicy;
  readonly loadTimeoutMs?: number;
}

export interface SpaceChange extends TreeChange {
  readonly spaceId: string;
}

export class SpaceManager implements Disposable {
  readonly peerId: string;
  private readonly sessions = new Map<string, Promise<SpaceSession>>();
  private readonly ready = new Map<string, SpaceSession>();
  private readonly sessionListeners = new Map<string, DisposableStore>();
  /** Closes under way, so a second close (or dispose) waits for the first to finish saving. */
  private readonly closing = new Map<string, Promise<UnsavedReport[]>>();
  private readonly retry: RetryPolicy;
  private readonly loadTimeoutMs: number;

  private readonly openedEmitter = new Emitter<Space>();
  readonly onDidOpenSpace = this.openedEmitter.event;
  private readonly closedEmitter = new Emitter<string>();
  readonly onDidCloseSpace = this.closedEmitter.event;
  private readonly changeEmitter = new Emitter<SpaceChange>();
  readonly onDidChangeSpace = this.changeEmitter.event;
  private readonly layerStateEmitter = new Emitter<LayerStateChange>();
  readonly onDidChangeLayerState = this.layerStateEmitter.event;
  private readonly errorEmitter = new Emitter<SpaceErrorEvent>();
  readonly onDidError = this.errorEmitter.event;
  private readonly progressEmitter = new Emitter<LoadProgressEvent>();
  /** A layer's load is under way and moving (a server sending a space): for progress UIs; fired while opening too. */
  readonly onDidReportLoadProgress = this.progressEmitter.event;

  constructor(opts: SpaceManagerOptions = {}) {
    this.peerId = opts.peerId ?? newPeerId();
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.loadTimeoutMs = opts.loadTimeoutMs ?? 60_000;
  }

  private get sessionOptions() {
    return { peerId: this.peerId, retry: this.retry, loadTimeoutMs: this.loadTimeoutMs, onLoadProgress: (e: LoadProgressEvent) => this.progressEmitter.fire(e) };
  }

  /** Creates a new space named `name`; `makeLayers` gets its id and returns its (empty) layers. */
  async create(name: string, makeLayers: (spaceId: string) => Promise<PersistenceLayer[]> | PersistenceLayer[]): Promise<Space> {
    const tree = Space.newSpaceTree(this.peerId, name);
    let layers: PersistenceLayer[];
    try {
      layers = await makeLayers(tree.id);
    } catch (e) {
      tree.dispose();
      throw e;
    }
    const session = await SpaceSession.create(tree, layers, this.sessionOptions);
    this.sessions.set(tree.id, Promise.resolve(session));
    this.adopt(session);
    return session.space;
  }

  /** Opens a space from its layers (idempotent). Rejects when no layer can provide it. */
  async open(spaceId: string, layers: readonly PersistenceLayer[]): Promise<Space> {
    const existing = this.sessions.get(spaceId);
    if (existing) {
      let session: SpaceSession;
      try {
        session = await existing;
      } catch (e) {
        await Promise.allSettled(layers.map((l) => l.close()));
        throw e;
      }
      for (const l of layers) {
        if (session.slots.has(l.id)) await l.close();
        else await session.addLayer(l);
      }
      return session.space;
    }
    const p = SpaceSession.open(spaceId, layers, this.sessionOptions);
    this.sessions.set(spaceId, p);
    try {
      const session = await p;
      this.adopt(session);
      return session.space;
    } catch (e) {
      this.sessions.delete(spaceId);
      throw e;
    }
  }

  private adopt(session: SpaceSession): void {
    const store = new DisposableStore();
    store.add(session.space.onDidChange((c) => this.changeEmitter.fire({ ...c, spaceId: session.spaceId })));
    store.add(session.layerStateEmitter.event((e) => this.layerStateEmitter.fire(e)));
    store.add(session.errorEmitter.event((e) => this.errorEmitter.fire(e)));
    this.sessionListeners.set(session.spaceId, store);
    this.ready.set(session.spaceId, session);
    this.openedEmitter.fire(session.space);
    // Errors and states reached while opening (a layer degraded at load) came before anyone listened.
    for (const e of session.takeEarlyErrors()) this.errorEmitter.fire(e);
    for (const l of session.layerStates()) {
      if (l.state.status !== 'ready') this.layerStateEmitter.fire({ spaceId: session.spaceId, layerId: l.layerId, label: l.label, state: l.state });
    }
  }

  get(spaceId: string): Space | undefined {
    return this.ready.get(spaceId)?.space;
  }

  list(): Space[] {
    return [...this.ready.values()].map((s) => s.space);
  }

  private session(spaceId: string): SpaceSession {
    const s = this.ready.get(spaceId);
    if (!s) throw new SpaceOpenError(`space ${spaceId} is not open`, 'CLOSED');
    return s;
  }

  async addLayer(spaceId: string, layer: PersistenceLayer): Promise<void> {
    await this.session(spaceId).addLayer(layer);
  }

  /**
   * Detaches layer `layerId` from an open space (e.g. a team server it should no longer sync
   * with): what was queued for it is saved, then it is closed; the space stays open. Resolves with
   * what it could not save, or undefined (also when the space has no such layer).
   */
  async removeLayer(spaceId: string, layerId: string): Promise<UnsavedReport | undefined> {
    return this.session(spaceId).removeLayer(layerId);
  }

  layerStates(spaceId: string) {
    return this.session(spaceId).layerStates();
  }

  /** Retries every degraded layer of a space now instead of at its next backoff. */
  retryLayers(spaceId: string): void {
    this.session(spaceId).retryLayers();
  }

  /** Waits until all ops so far are saved to every healthy layer; reports layers left behind. */
  async flush(spaceId: string): Promise<UnsavedReport[]> {
    return this.session(spaceId).flush();
  }

  /** Flushes and closes a space; reports layers that could not save everything. */
  close(spaceId: string): Promise<UnsavedReport[]> {
    const closing = this.closing.get(spaceId);
    if (closing) return closing;
    const p = this.closeSession(spaceId).finally(() => this.closing.delete(spaceId));
    this.closing.set(spaceId, p);
    return p;
  }

  private async closeSession(spaceId: string): Promise<UnsavedReport[]> {
    const p = this.sessions.get(spaceId);
    if (!p) return [];
    let session: SpaceSession;
    try {
      session = await p;
    } catch {
      return [];
    }
    if (this.sessions.get(spaceId) !== p) return [];
    this.sessions.delete(spaceId);
    this.ready.delete(spaceId);
    const report = await session.close();
    this.sessionListeners.get(spaceId)?.dispose();
    this.sessionListeners.delete(spaceId);
    this.closedEmitter.fire(spaceId);
    return report;
  }

  async closeAll(): Promise<UnsavedReport[]> {
    const ids = new Set([...this.sessions.keys(), ...this.closing.keys()]);
    const reports = await Promise.all([...ids].map((id) => this.close(id)));
    return reports.flat();
  }

  /** Closes everything and disposes the emitters. */
  async dispose(): Promise<void> {
    await this.closeAll();
    for (const e of [this.openedEmitter, this.closedEmitter, this.changeEmitter, this.layerStateEmitter, this.errorEmitter, this.progressEmitter]) e.dispose();
  }
}
