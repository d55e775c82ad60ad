/**
 * FileLayer: a space stored in one `*.space` file (a SQLite database written with sql.js).
 *
 * All SQLite and file work runs in a worker thread (sqlWorker.ts); this class validates input,
 * batches saves (debounced flushes with a maximum wait), reports ops other processes wrote to
 * the file (`onIncoming`, on `refresh()` and from a file watcher), and refuses to write after a
 * failed load. See docs/storage.md for the file format and the crash-safety argument.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { IncomingOps, LayerKind, PersistenceLayer, SecretRecord, TreeLoad } from '../contract';
import { Emitter, type Event } from '../../spaces/events';
import { decodeOps, encodeOps } from '../../spaces/opCodec';
import { isMoveOp, sortAndDedupe, validateOps, type Op } from '../../spaces/ops';
import { mergeSecrets, validateSecretRecords } from '../../spaces/secrets';
import { SpaceFileError, deserializeError } from './errors';
import { columnsToOps } from './opColumns';
import { isStorableKey, isValidTreeId } from './schema';
import { SECRET_KEY_BYTES } from './secretCrypto';
import type { SpaceFileMeta } from './spaceDb';
import { acquireWorker, releaseWorker, type SqlWorkerClient } from './workerPool';
import { SNAPSHOT_TAIL_OPS } from './snapshotStore';
import type { Changes, FlushTimings, OpenOptions, Opened } from './workerProtocol';
import type { SyncState, SyncStateStore } from '../server/syncState';
import { emptySyncActions, hasSyncActions, type SyncActions } from './syncTables';

export { SpaceFileError, type SpaceFileErrorCode } from './errors';
export type { SpaceFileMeta } from './spaceDb';
export type { FlushTimings } from './workerProtocol';

export interface FileLayerOptions {
  /**
   * The 32-byte key that encrypts secret values (AES-256-GCM). Supplied by the caller (e.g. from
   * the OS keychain); never derived from the space. Without it, secrets cannot be read or saved
   * (ops can).
   */
  readonly secretKey?: Uint8Array;
  /** A flush starts this long after the last save (default 20 ms)… */
  readonly debounceMs?: number;
  /** …but no later than this after the first unflushed save (default 250 ms). */
  readonly maxWaitMs?: number;
  /** The compiled worker script (default: `sqlWorker.js` next to this module). */
  readonly workerPath?: string;
  /** Watch the file for changes by other processes (default true). */
  readonly watch?: boolean;
  /** Delay between a file system event and the refresh it triggers (default 30 ms). */
  readonly watchDebounceMs?: number;
  /** How long a save waits for another process's lock before failing (default 60 s). */
  readonly lockTimeoutMs?: number;
  /** A lock older than this is broken even if its process seems alive (default 30 s). */
  readonly lockStaleMs?: number;
  /**
   * A tree gets a new snapshot, written in the background, once this many ops were stored after
   * the last one (default SNAPSHOT_TAIL_OPS, see snapshotStore.ts); Infinity: this layer writes
   * none (it still reads the ones it finds).
   */
  readonly snapshotTailOps?: number;
  /** Where the layer reports what it repaired by itself (a snapshot it could not use); default console.warn. */
  readonly log?: (line: string) => void;
}

const DEFAULTS = {
  debounceMs: 20,
  maxWaitMs: 250,
  watchDebounceMs: 30,
  lockTimeoutMs: 60_000,
  lockStaleMs: 30_000,
} as const;

export function defaultWorkerPath(): string {
  return path.join(__dirname, 'sqlWorker.js');
}

interface Waiter {
  resolve(): void;
  reject(e: Error): void;
  /** A saveSecrets call: also fails when only the secrets could not be stored. */
  readonly secrets: boolean;
}

/** Saves accepted but not yet handed to the worker. */
interface PendingBatch {
  /** Per tree: JSON fragments of encoded ops (`[..],[..]` without the outer brackets). */
  readonly ops: Map<string, string[]>;
  readonly secrets: SecretRecord[];
  /** Outbox and watermark writes of server layers using this file as their SyncStateStore. */
  readonly sync: SyncActions;
  readonly waiters: Waiter[];
}

function newBatch(): PendingBatch {
  return { ops: new Map(), secrets: [], sync: emptySyncActions(), waiters: [] };
}

function checkKey(key: Uint8Array | undefined, file: string): Uint8Array | undefined {
  if (key === undefined) return undefined;
  if (!(key instanceof Uint8Array) || key.length !== SECRET_KEY_BYTES) {
    throw new SpaceFileError(`${file}: the secret key must be ${SECRET_KEY_BYTES} bytes`, 'NO_KEY');
  }
  return Uint8Array.from(key);
}

function checkTailOps(n: number, file: string): number {
  if (!(n === Infinity || (Number.isSafeInteger(n) && n >= 1))) throw new SpaceFileError(`${file}: snapshotTailOps must be a positive integer or Infinity`, 'INVALID_DATA');
  return n;
}

export class FileLayer implements PersistenceLayer, SyncStateStore {
  readonly kind: LayerKind = 'one-way';
  readonly id: string;
  readonly label: string;
  readonly spaceId: string;

  private readonly incoming = new Emitter<IncomingOps>();
  private readonly incomingSecrets = new Emitter<readonly SecretRecord[]>();
  private readonly errors = new Emitter<Error>();
  readonly onIncoming: Event<IncomingOps> = this.incoming.event;
  readonly onIncomingSecrets: Event<readonly SecretRecord[]> = this.incomingSecrets.event;
  /** Failures of background work (watcher-triggered refreshes). */
  readonly onError: Event<Error> = this.errors.event;

  private pending = newBatch();
  private pendingSince: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private flushAgain = false;
  private closing: Promise<void> | undefined;
  private isClosed = false;
  /** Trees whose last load failed: no writes until they load (never write what could not be read). */
  private readonly failedLoads = new Map<string, Error>();
  private readonly watchers = new Set<fs.FSWatcher>();
  private polling = false;
  private watchTimer: NodeJS.Timeout | undefined;
  private readonly debounceMs: number;
  private readonly maxWaitMs: number;
  private readonly hasSecretKey: boolean;
  private readonly counters = { flushes: 0, writes: 0, incomingOps: 0 };
  private lastFlushTimings: FlushTimings | undefined;
  private readonly watchDebounceMs: number;
  private readonly log: (line: string) => void;
  /** Trees whose snapshot is being built in the background (one request per tree at a time). */
  private readonly snapshotting = new Set<string>();

  /** The file's meta as read when it was opened. */
  readonly meta: SpaceFileMeta;
  /**
   * The file read, locked, written and watched: `path` with symbolic links resolved when the
   * layer was opened (see fileTarget.ts). Equal to `path` when no link is involved.
   */
  readonly realPath: string;
  /**
   * Why the file could not be written when it was opened (no write permission bit, another
   * owner, a read-only mount), or undefined. It reads normally; a save that has something to
   * write rejects with READ_ONLY for as long as that lasts (and succeeds once it is writable).
   */
  readonly readOnlyReason: string | undefined;
  private readonly handle: number;

  private constructor(
    /** Absolute path of the file, as given (it may be a symbolic link). */
    readonly path: string,
    opened: Opened,
    private readonly worker: SqlWorkerClient,
    opts: FileLayerOptions,
  ) {
    this.spaceId = opened.meta.spaceId;
    this.meta = opened.meta;
    this.realPath = opened.file;
    this.readOnlyReason = opened.readOnly;
    this.handle = opened.handle;
    this.hasSecretKey = opts.secretKey !== undefined;
    this.id = `file:${path}`;
    this.label = path.split(/[\\/]/).pop() ?? path;
    this.debounceMs = opts.debounceMs ?? DEFAULTS.debounceMs;
    this.maxWaitMs = opts.maxWaitMs ?? DEFAULTS.maxWaitMs;
    this.watchDebounceMs = opts.watchDebounceMs ?? DEFAULTS.watchDebounceMs;
    this.log = opts.log ?? ((line) => console.warn(line));
    if (opts.watch ?? true) this.startWatching();
  }

  // ---------------------------------------------------------------------------------------------
  // Factories

  private static async start(
    file: string,
    opts: FileLayerOptions,
    call: (worker: SqlWorkerClient, o: OpenOptions) => Promise<Opened>,
  ): Promise<FileLayer> {
    const abs = path.resolve(file);
    const o: OpenOptions = {
      path: abs,
      secretKey: checkKey(opts.secretKey, abs),
      lockTimeoutMs: opts.lockTimeoutMs ?? DEFAULTS.lockTimeoutMs,
      lockStaleMs: opts.lockStaleMs ?? DEFAULTS.lockStaleMs,
      snapshotTailOps: checkTailOps(opts.snapshotTailOps ?? SNAPSHOT_TAIL_OPS, abs),
    };
    const worker = acquireWorker(opts.workerPath ?? defaultWorkerPath());
    try {
      return new FileLayer(abs, await call(worker, o), worker, opts);
    } catch (e) {
      await releaseWorker(worker);
      throw e;
    }
  }

  /**
   * Starts the storage worker before the first file is opened (e.g. while the workspace is
   * searched for space files: the wasm compile and the thread start then overlap the search).
   * Call the returned function when done; the worker stops when its last user lets it go.
   */
  static prewarm(workerPath: string = defaultWorkerPath()): () => Promise<void> {
    const worker = acquireWorker(workerPath);
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      await releaseWorker(worker);
    };
  }

  /** Creates a new space file (fails with code EXISTS if there is a file or a symbolic link at `file`). */
  static create(file: string, spaceId: string, opts: FileLayerOptions = {}): Promise<FileLayer> {
    return FileLayer.start(file, opts, (w, o) => w.request('create', { ...o, spaceId }));
  }

  /**
   * Opens an existing space file; the space id comes from the file. Rejects with a
   * SpaceFileError naming the file when it is not a Spaces file this build can read.
   */
  static open(file: string, opts: FileLayerOptions = {}): Promise<FileLayer> {
    return FileLayer.start(file, opts, (w, o) => w.request('open', o));
  }

  /** Reads only a file's meta (space id, format, schema version), usually from its first 64 KiB. */
  static async readMeta(file: string, opts: Pick<FileLayerOptions, 'workerPath'> = {}): Promise<SpaceFileMeta> {
    const worker = acquireWorker(opts.workerPath ?? defaultWorkerPath());
    try {
      return await worker.request('readMeta', { path: path.resolve(file) });
    } finally {
      await releaseWorker(worker);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  /** See `readOnlyReason`. */
  get readOnly(): boolean {
    return this.readOnlyReason !== undefined;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * For tests and benchmarks: flushes sent to the worker, file writes, ops reported incoming,
   * and where the last flush spent its time.
   */
  get stats(): { readonly flushes: number; readonly writes: number; readonly incomingOps: number; readonly lastFlush?: Readonly<FlushTimings> } {
    return { ...this.counters, lastFlush: this.lastFlushTimings };
  }

  private assertOpen(operation: string): void {
    if (this.isClosed) throw new SpaceFileError(`${this.id}: ${operation}() called on a closed layer`, 'CLOSED');
  }

  async listTrees(): Promise<string[]> {
    this.assertOpen('listTrees');
    const trees = new Set(await this.worker.request('listTrees', { handle: this.handle }));
    for (const [treeId, frags] of this.pending.ops) if (frags.length) trees.add(treeId);
    return [...trees];
  }

  async loadTree(treeId: string): Promise<Op[]> {
    this.assertOpen('loadTree');
    if (!isValidTreeId(treeId)) throw new SpaceFileError(`${this.id}: bad tree id ${JSON.stringify(treeId)}`, 'INVALID_DATA');
    let ops: Op[];
    try {
      await this.refreshNow();
      ops = columnsToOps(await this.worker.request('loadTree', { handle: this.handle, treeId }));
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.failedLoads.set(treeId, err);
      throw err;
    }
    this.failedLoads.delete(treeId);
    const queued = this.pending.ops.get(treeId);
    if (queued?.length) for (const op of decodeOps(JSON.parse(`[${queued.join(',')}]`), treeId, this.id)) ops.push(op);
    return sortAndDedupe(ops);
  }

  /**
   * The tree as its snapshot plus the ops stored after it (docs/storage.md, "Snapshots"), or
   * every op when it has none (yet). A snapshot the caller cannot use goes back through
   * `snapshot.discard`, which drops it and loads every op. Saves not yet flushed for the tree
   * make this a plain `loadTree`.
   */
  async loadTreeState(treeId: string): Promise<TreeLoad> {
    this.assertOpen('loadTreeState');
    if (!isValidTreeId(treeId)) throw new SpaceFileError(`${this.id}: bad tree id ${JSON.stringify(treeId)}`, 'INVALID_DATA');
    if (this.pending.ops.get(treeId)?.length) return { ops: await this.loadTree(treeId) };
    let r;
    try {
      await this.refreshNow();
      r = await this.worker.request('loadTreeState', { handle: this.handle, treeId });
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.failedLoads.set(treeId, err);
      throw err;
    }
    this.failedLoads.delete(treeId);
    if (r.dropped !== undefined) this.reportDropped(treeId, r.dropped);
    if (r.due) this.snapshotLater(treeId);
    const ops = columnsToOps(r.ops);
    if (!r.snapshot) return { ops: sortAndDedupe(ops) };
    return { ops, snapshot: { bytes: r.snapshot, storedOps: r.storedOps, discard: (reason) => this.discardSnapshot(treeId, reason) } };
  }

  private reportDropped(treeId: string, why: string): void {
    this.log(`${this.path}: the snapshot of tree ${treeId} could not be used (${why}); the tree was loaded from its ops and gets a new snapshot`);
  }

  private async discardSnapshot(treeId: string, reason: string): Promise<Op[]> {
    this.assertOpen('loadTreeState');
    this.reportDropped(treeId, reason);
    await this.worker.request('dropSnapshot', { handle: this.handle, treeId });
    const ops = await this.loadTree(treeId);
    this.snapshotLater(treeId);
    return ops;
  }

  /** Asks the worker to build (if still due) and write a tree's snapshot, in the background. */
  private snapshotLater(treeId: string): void {
    if (this.isClosed || this.snapshotting.has(treeId)) return;
    this.snapshotting.add(treeId);
    // Not awaited by anyone: close() waits for it, as the worker answers a handle's requests in order.
    void this.worker
      .request('snapshot', { handle: this.handle, treeId })
      .then((r) => {
        if (r.dropped !== undefined) this.reportDropped(treeId, r.dropped);
        if (r.wrote) this.counters.writes++;
        if (!this.isClosed) this.deliver(r.changes);
        if (r.error) throw deserializeError(r.error);
      })
      .catch((e: unknown) => {
        if (!this.isClosed) this.log(`${this.path}: could not write the snapshot of tree ${treeId}: ${e instanceof Error ? e.message : String(e)}`);
      })
      .finally(() => this.snapshotting.delete(treeId));
  }

  async loadSecrets(): Promise<SecretRecord[]> {
    this.assertOpen('loadSecrets');
    const stored = await this.worker.request('loadSecrets', { handle: this.handle });
    if (this.pending.secrets.length === 0) return stored;
    return [...mergeSecrets(stored, this.pending.secrets).values()];
  }

  // ---------------------------------------------------------------------------------------------
  // Writes

  private assertWritable(operation: string): void {
    this.assertOpen(operation);
    const failed = this.failedLoads.entries().next();
    if (!failed.done) {
      const [treeId, e] = failed.value;
      throw new SpaceFileError(`${this.id}: not writing, loading tree ${treeId} failed: ${e.message}`, 'NOT_LOADED');
    }
  }

  saveOps(treeId: string, ops: readonly Op[]): Promise<void> {
    try {
      this.queueOps('saveOps', treeId, ops);
    } catch (e) {
      return Promise.reject(e);
    }
    if (ops.length === 0) return Promise.resolve();
    return this.enqueue();
  }

  /** Validates ops and adds them to the pending batch (throws when they cannot be stored). */
  private queueOps(operation: string, treeId: string, ops: readonly Op[]): void {
    this.assertWritable(operation);
    if (!isValidTreeId(treeId)) throw new SpaceFileError(`${this.id}: bad tree id ${JSON.stringify(treeId)}`, 'INVALID_DATA');
    validateOps(ops, treeId, `${operation} to ${this.label}`);
    for (const op of ops) {
      if (!isMoveOp(op) && !isStorableKey(op.key)) {
        throw new SpaceFileError(`${this.id}: property key ${JSON.stringify(op.key)} cannot be stored (NUL or unpaired surrogate)`, 'INVALID_DATA');
      }
    }
    if (ops.length === 0) return;
    // Encoded now: later changes to the caller's objects do not change what is stored.
    const json = JSON.stringify(encodeOps(ops));
    const frags = this.pending.ops.get(treeId);
    if (frags) frags.push(json.slice(1, -1));
    else this.pending.ops.set(treeId, [json.slice(1, -1)]);
  }

  // ---------------------------------------------------------------------------------------------
  // SyncStateStore: a server layer's watermark and outbox, written with the ops they cover in the
  // same flush (tables `outbox` and `watermarks`, see syncTables.ts and docs/storage.md).

  async loadSyncState(layerId: string): Promise<SyncState> {
    this.assertOpen('loadSyncState');
    await this.flush();
    const r = await this.worker.request('loadSyncState', { handle: this.handle, layer: layerId });
    const outbox = new Map<string, Op[]>();
    for (const cols of r.outbox) {
      const ops = columnsToOps(cols);
      if (ops.length) outbox.set(cols.treeId, ops);
    }
    return { seq: r.seq, outbox, peers: r.peers };
  }

  /** Keeps who writes under which peer id, as the server of `layerId` said (src/persistence/server/identity.ts). */
  savePeerUsers(layerId: string, entries: ReadonlyArray<readonly [string, string]>): Promise<void> {
    return this.saveSync('savePeerUsers', this.spaceId, [], (a) => {
      for (const [peer, user] of entries) a.peers.push([layerId, peer, user]);
    });
  }

  saveIncoming(layerId: string, treeId: string, ops: readonly Op[], seq: number): Promise<void> {
    if (!Number.isSafeInteger(seq) || seq < 0) return Promise.reject(new SpaceFileError(`${this.id}: bad sequence ${seq}`, 'INVALID_DATA'));
    return this.saveSync('saveIncoming', treeId, ops, (a) => {
      if (seq > 0) a.seqs.push([layerId, seq]);
    });
  }

  addToOutbox(layerId: string, treeId: string, ops: readonly Op[]): Promise<void> {
    return this.saveSync('addToOutbox', treeId, ops, (a) => a.outbox.push({ layer: layerId, treeId, add: true, ids: ops.map((o) => [o.id.counter, o.id.peerId] as const) }));
  }

  removeFromOutbox(layerId: string, treeId: string, ops: readonly Op[]): Promise<void> {
    return this.saveSync('removeFromOutbox', treeId, [], (a) => a.outbox.push({ layer: layerId, treeId, add: false, ids: ops.map((o) => [o.id.counter, o.id.peerId] as const) }));
  }

  private saveSync(operation: string, treeId: string, ops: readonly Op[], record: (a: SyncActions) => void): Promise<void> {
    try {
      this.queueOps(operation, treeId, ops);
    } catch (e) {
      return Promise.reject(e);
    }
    record(this.pending.sync);
    if (ops.length === 0 && !hasSyncActions(this.pending.sync)) return Promise.resolve();
    return this.enqueue();
  }

  saveSecrets(records: readonly SecretRecord[]): Promise<void> {
    try {
      this.assertWritable('saveSecrets');
      validateSecretRecords(records, `saveSecrets to ${this.label}`);
      if (records.length > 0 && !this.hasSecretKey) throw new SpaceFileError(`${this.path}: cannot store secrets: no secret key was given`, 'NO_KEY');
    } catch (e) {
      return Promise.reject(e);
    }
    if (records.length === 0) return Promise.resolve();
    for (const r of records) this.pending.secrets.push({ key: r.key, value: r.value, time: r.time, peerId: r.peerId });
    return this.enqueue(true);
  }

  private enqueue(secrets = false): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.pending.waiters.push({ resolve, reject, secrets }));
    this.schedule();
    return done;
  }

  /** (Re)arms the flush timer: `debounceMs` after now, but no later than `maxWaitMs` after the first pending save. */
  private schedule(): void {
    const now = Date.now();
    this.pendingSince ??= now;
    const due = Math.min(now + this.debounceMs, this.pendingSince + this.maxWaitMs);
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, due - now));
  }

  private onTimer(): void {
    this.timer = undefined;
    if (this.inFlight) this.flushAgain = true;
    else this.startFlush();
  }

  /** Hands the pending batch to the worker; saves made meanwhile go into the next batch. */
  private startFlush(): void {
    const batch = this.pending;
    this.pending = newBatch();
    this.pendingSince = undefined;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const run: Promise<void> = this.flushBatch(batch).finally(() => {
      if (this.inFlight === run) this.inFlight = undefined;
      this.afterFlush();
    });
    this.inFlight = run;
  }

  /** Saves that queued during a flush: flush now if their deadline passed (or we are closing). */
  private afterFlush(): void {
    const again = this.flushAgain;
    this.flushAgain = false;
    if (this.inFlight || this.pending.waiters.length === 0) return;
    const overdue = this.pendingSince !== undefined && Date.now() >= this.pendingSince + this.maxWaitMs;
    if (again || overdue || this.isClosed) this.startFlush();
    else if (!this.timer) this.schedule();
  }

  private async flushBatch(batch: PendingBatch): Promise<void> {
    if (batch.waiters.length === 0) return;
    const parts: string[] = [];
    for (const [treeId, frags] of batch.ops) parts.push(`[${JSON.stringify(treeId)},[${frags.join(',')}]]`);
    let error: Error | undefined;
    let secretsError: Error | undefined;
    try {
      this.counters.flushes++;
      const sync = hasSyncActions(batch.sync) ? batch.sync : undefined;
      const r = await this.worker.request('flush', { handle: this.handle, ops: `[${parts.join(',')}]`, secrets: batch.secrets, sync });
      if (r.wrote) this.counters.writes++;
      this.lastFlushTimings = r.timings;
      this.deliver(r.changes);
      for (const treeId of r.snapshotsDue) this.snapshotLater(treeId);
      if (r.error) error = deserializeError(r.error);
      if (r.secretsError) secretsError = deserializeError(r.secretsError);
    } catch (e) {
      error = e instanceof Error ? e : new Error(String(e));
    }
    for (const w of batch.waiters) {
      const e = error ?? (w.secrets ? secretsError : undefined);
      if (e) w.reject(e);
      else w.resolve();
    }
  }

  /** Flushes every pending save now and waits until they are on disk (or failed). */
  async flush(): Promise<void> {
    for (;;) {
      if (this.inFlight) {
        await this.inFlight;
        continue;
      }
      if (this.pending.waiters.length === 0) return;
      this.startFlush();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Changes by other processes

  private deliver(changes: Changes): void {
    for (const cols of changes.ops) {
      const ops = columnsToOps(cols);
      this.counters.incomingOps += ops.length;
      if (ops.length) this.incoming.fire({ treeId: cols.treeId, ops: sortAndDedupe(ops) });
    }
    if (changes.secrets.length) this.incomingSecrets.fire(changes.secrets);
  }

  private async refreshNow(): Promise<void> {
    this.deliver(await this.worker.request('refresh', { handle: this.handle }));
  }

  /**
   * Re-reads the file if another process changed it, merges what it has that this layer lacks,
   * and reports the new ops through `onIncoming` (and secrets through `onIncomingSecrets`).
   * Cheap when the file did not change (resolving its name, one stat). Rejects with RELINKED
   * when the name now leads to another file than the one opened (see fileTarget.ts).
   */
  async refresh(): Promise<void> {
    this.assertOpen('refresh');
    await this.refreshNow();
  }

  /**
   * Watches the folder of the real file (saves replace it by rename, so the file itself cannot
   * be watched) and, when the layer was opened through a link, the link's folder too: a link
   * pointed elsewhere is then reported (RELINKED, through `onError`) without waiting for a save.
   */
  private startWatching(): void {
    const names = new Set([this.realPath, this.path]);
    for (const name of names) this.watchFolderOf(name);
  }

  private watchFolderOf(name: string): void {
    const base = path.basename(name);
    try {
      const w = fs.watch(path.dirname(name), { persistent: false }, (_event, filename) => {
        if (filename === null || filename === base) this.scheduleWatchRefresh();
      });
      w.on('error', () => {
        w.close();
        this.watchers.delete(w);
        this.startPolling();
      });
      this.watchers.add(w);
    } catch {
      this.startPolling();
    }
  }

  private startPolling(): void {
    if (this.isClosed || this.polling) return;
    this.polling = true;
    fs.watchFile(this.realPath, { persistent: false, interval: 1000 }, this.onPoll);
  }

  private readonly onPoll = (): void => this.scheduleWatchRefresh();

  private scheduleWatchRefresh(): void {
    if (this.isClosed || this.watchTimer) return;
    this.watchTimer = setTimeout(() => {
      this.watchTimer = undefined;
      if (this.isClosed) return;
      this.refreshNow().catch((e: unknown) => {
        if (!this.isClosed) this.errors.fire(e instanceof Error ? e : new Error(String(e)));
      });
    }, this.watchDebounceMs);
    this.watchTimer.unref();
  }

  private stopWatching(): void {
    for (const w of this.watchers) w.close();
    this.watchers.clear();
    if (this.polling) fs.unwatchFile(this.realPath, this.onPoll);
    this.polling = false;
    if (this.watchTimer) clearTimeout(this.watchTimer);
    this.watchTimer = undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // Close

  /** Flushes pending saves, stops the watcher, frees the worker's copy of the file; idempotent. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.isClosed = true;
    this.stopWatching();
    try {
      await this.flush();
    } catch {
      // failures were delivered to the saves' promises
    }
    try {
      await this.worker.request('close', { handle: this.handle });
    } catch {
      // the worker is gone: nothing left to free in it
    }
    await releaseWorker(this.worker);
    this.incoming.dispose();
    this.incomingSecrets.dispose();
    this.errors.dispose();
  }

}
