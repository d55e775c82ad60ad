/**
 * The sql.js worker: owns the in-memory databases of every open space file of this process
 * (one "handle" per FileLayer) and does all SQLite and file work off the caller's thread.
 *
 * Requests of one handle run one after the other; a flush holds the file's lock only during
 * its synchronous read-merge-write section. See docs/storage.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import initSqlJs, { type SqlJsStatic } from 'sql.js';
import type { SecretRecord } from '../contract';
import { decodeOps } from '../../spaces/opCodec';
import type { Op } from '../../spaces/ops';
import { SpaceFileError, serializeError, type SerializedError } from './errors';
import { forgetSeen, readPrefix, readWhole, removeOrphans, sameFile, statFile, writeAtomically, writeRefusal, type SeenFile } from './fileIo';
import { checkTarget, resolveForCreate, resolveForOpen } from './fileTarget';
import { acquireLock, releaseLock, type LockOptions } from './lockFile';
import { columnsTransferList } from './opColumns';
import { absorbBackup, migrateOnDisk } from './migration';
import { isValidTreeId } from './schema';
import { SpaceDb, readMetaFromBytes, type MergeResult, type SpaceFileMeta } from './spaceDb';
import type { SyncActions } from './syncTables';
import { isWasmModule, wasmApi, type WasmInstance, type WasmModule } from './wasm';
import type { SqlWorkerData } from './workerPool';
import type { Changes, FlushTimings, OpenOptions, Opened, WorkerMethod, WorkerParams, WorkerRequest, WorkerResponse, WorkerResult } from './workerProtocol';

/** The first bytes `readMeta` looks at before falling back to the whole file. */
const META_PREFIX_BYTES = 64 * 1024;

interface Handle {
  /** The name the layer was opened with (absolute; may be a symbolic link). */
  readonly name: string;
  /** The file `name` led to when opened (fileTarget.ts): the one read, locked and written. */
  readonly file: string;
  readonly db: SpaceDb;
  readonly lock: LockOptions;
  /** The file as we last read or wrote it (kept open, see fileIo.ts). */
  seen: SeenFile | undefined;
  orphansSwept: boolean;
  queue: Promise<unknown>;
  /** See OpenOptions.snapshotTailOps. */
  readonly snapshotTailOps: number;
}

let sqlPromise: Promise<SqlJsStatic> | undefined;

/** Not a literal, so that a bundler leaves the lookup to run time (see workerPool.ts). */
const SQL_WASM_MODULE = ['sql.js', 'dist', 'sql-wasm.wasm'].join('/');

function wasmPath(): string {
  const local = path.join(__dirname, 'sql-wasm.wasm');
  return fs.existsSync(local) ? local : require.resolve(SQL_WASM_MODULE);
}

function sql(): Promise<SqlJsStatic> {
  if (!sqlPromise) {
    const mod = (workerData as SqlWorkerData | null)?.wasmModule;
    if (isWasmModule(mod)) {
      // Compiled once by the caller's thread and shared (see workerPool.ts).
      const config = {
        instantiateWasm(imports: object, done: (instance: WasmInstance, module: WasmModule) => void): object {
          void wasmApi.instantiate(mod, imports).then((instance) => done(instance, mod));
          return {};
        },
      };
      sqlPromise = initSqlJs(config as unknown as Parameters<typeof initSqlJs>[0]);
    } else {
      const bin = fs.readFileSync(wasmPath());
      const wasmBinary = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength) as ArrayBuffer;
      sqlPromise = initSqlJs({ wasmBinary });
    }
  }
  return sqlPromise;
}

const handles = new Map<number, Handle>();
let nextHandle = 1;

function handleOf(id: number): Handle {
  const h = handles.get(id);
  if (!h) throw new SpaceFileError(`storage handle ${id} is closed`, 'CLOSED');
  return h;
}

/** Runs `fn` after every earlier request of the handle. */
function serial<T>(h: Handle, fn: () => Promise<T> | T): Promise<T> {
  const run = h.queue.then(fn, fn);
  h.queue = run.catch(() => undefined);
  return run;
}

function lockOptions(o: OpenOptions): LockOptions {
  return { timeoutMs: o.lockTimeoutMs, staleMs: o.lockStaleMs };
}

function keyOf(o: OpenOptions): Uint8Array | undefined {
  return o.secretKey ? new Uint8Array(o.secretKey) : undefined;
}

function register(o: OpenOptions, file: string, db: SpaceDb, seen: SeenFile | undefined): Opened {
  const handle = nextHandle++;
  handles.set(handle, { name: o.path, file, db, lock: lockOptions(o), seen, orphansSwept: false, queue: Promise.resolve(), snapshotTailOps: o.snapshotTailOps });
  return { handle, meta: db.meta, file, readOnly: writeRefusal(file)?.message };
}

async function open(o: OpenOptions): Promise<Opened> {
  const SQL = await sql();
  const file = resolveForOpen(o.path);
  const { bytes, seen } = readWhole(file);
  let db: SpaceDb;
  try {
    db = SpaceDb.open(SQL, bytes, file, keyOf(o));
  } catch (e) {
    forgetSeen(seen);
    throw e;
  }
  try {
    if (writeRefusal(file)) {
      // Migrated in memory only; the first save writes schema 2 (atomically, like every save).
      db.dirty = false;
      return register(o, file, db, seen);
    }
    if (db.migratedFrom !== undefined) {
      const migrated = await migrateOnDisk(SQL, file, keyOf(o), lockOptions(o));
      db.close();
      forgetSeen(seen);
      return register(o, file, migrated.db, migrated.seen);
    }
    return register(o, file, db, await absorbBackup(file, db, seen, lockOptions(o)));
  } catch (e) {
    db.close();
    forgetSeen(seen);
    throw e;
  }
}

async function create(o: OpenOptions & { spaceId: string }): Promise<Opened> {
  if (!isValidTreeId(o.spaceId)) throw new SpaceFileError(`cannot create ${o.path}: bad space id ${JSON.stringify(o.spaceId)}`, 'INVALID_DATA');
  const SQL = await sql();
  const file = resolveForCreate(o.path);
  const db = SpaceDb.create(SQL, o.spaceId, file, keyOf(o));
  let seen: SeenFile | undefined;
  try {
    const lock = await acquireLock(file, lockOptions(o));
    try {
      seen = writeAtomically(file, db.export(), true);
    } finally {
      releaseLock(lock);
    }
    db.dirty = false;
    return register(o, file, db, seen);
  } catch (e) {
    db.close();
    throw e;
  }
}

async function readMeta(file: string): Promise<SpaceFileMeta> {
  const SQL = await sql();
  const { bytes: prefix, size } = readPrefix(file, META_PREFIX_BYTES);
  if (prefix.length >= size) return readMetaFromBytes(SQL, prefix, file);
  try {
    return readMetaFromBytes(SQL, prefix, file, size);
  } catch (e) {
    // Not enough in the prefix (or a real problem): decide on the whole file.
    if (e instanceof SpaceFileError && e.code !== 'NOT_A_SPACE') throw e;
    const { bytes, seen } = readWhole(file);
    forgetSeen(seen);
    return readMetaFromBytes(SQL, bytes, file);
  }
}

const NO_CHANGES: MergeResult = { trees: [], secrets: [] };

/** Merges the file on disk into the handle's database when it is not the file we last saw. */
function mergeIfChanged(h: Handle): MergeResult {
  checkTarget(h.name, h.file);
  const now = statFile(h.file);
  if (!now) return NO_CHANGES; // deleted: nothing to merge; the next flush writes it again
  if (h.seen && sameFile(h.seen, now)) return NO_CHANGES;
  const { bytes, seen } = readWhole(h.file);
  let result: MergeResult;
  try {
    result = h.db.mergeFrom(bytes);
  } catch (e) {
    forgetSeen(seen);
    throw e;
  }
  forgetSeen(h.seen);
  h.seen = seen;
  return result;
}

function toChanges(m: MergeResult): { changes: Changes; transfer: ArrayBuffer[] } {
  return { changes: { ops: m.trees, secrets: m.secrets }, transfer: m.trees.flatMap(columnsTransferList) };
}

function decodeSaveBatches(file: string, json: string): Array<{ treeId: string; ops: Op[] }> {
  const data = JSON.parse(json) as unknown;
  if (!Array.isArray(data)) throw new SpaceFileError(`${file}: malformed save batch`, 'INVALID_DATA');
  return data.map((entry: unknown) => {
    if (!Array.isArray(entry) || entry.length !== 2 || !isValidTreeId(entry[0])) throw new SpaceFileError(`${file}: malformed save batch`, 'INVALID_DATA');
    const treeId = entry[0];
    return { treeId, ops: decodeOps(entry[1], treeId, `saveOps to ${file}`) };
  });
}

async function flush(
  h: Handle,
  opsJson: string,
  secrets: SecretRecord[],
  sync: SyncActions | undefined,
): Promise<{ result: WorkerResult<'flush'>; transfer: ArrayBuffer[] }> {
  const t0 = performance.now();
  const batches = decodeSaveBatches(h.file, opsJson);
  const lock = await acquireLock(h.file, h.lock);
  const timings: FlushTimings = { lockMs: performance.now() - t0, mergeMs: 0, insertMs: 0, exportMs: 0, writeMs: 0, bytes: 0 };
  let merged: MergeResult = NO_CHANGES;
  let wrote = false;
  let error: SerializedError | undefined;
  let secretsError: SerializedError | undefined;
  try {
    if (!h.orphansSwept) {
      removeOrphans(h.file);
      h.orphansSwept = true;
    }
    let t = performance.now();
    merged = mergeIfChanged(h);
    timings.mergeMs = performance.now() - t;
    t = performance.now();
    h.db.insertOps(batches);
    h.db.applySync(sync);
    try {
      h.db.saveSecrets(secrets);
    } catch (e) {
      if (!(e instanceof SpaceFileError) || (e.code !== 'WRONG_KEY' && e.code !== 'NO_KEY')) throw e;
      secretsError = serializeError(e);
    }
    timings.insertMs = performance.now() - t;
    if (h.db.dirty || !statFile(h.file)) {
      t = performance.now();
      // Renaming over a read-only file would succeed (the folder is writable): refuse first.
      const refusal = writeRefusal(h.file);
      if (refusal) throw refusal;
      const bytes = h.db.export();
      timings.exportMs = performance.now() - t;
      timings.bytes = bytes.length;
      t = performance.now();
      const seen = writeAtomically(h.file, bytes);
      timings.writeMs = performance.now() - t;
      forgetSeen(h.seen);
      h.seen = seen;
      h.db.dirty = false;
      wrote = true;
    }
  } catch (e) {
    if (merged === NO_CHANGES) throw e;
    error = serializeError(e);
  } finally {
    releaseLock(lock);
  }
  const { changes, transfer } = toChanges(merged);
  const touched = new Set(batches.map((b) => b.treeId));
  for (const t of merged.trees) touched.add(t.treeId);
  const snapshotsDue = error === undefined && touched.size > 0 ? h.db.snapshotsDue(touched, h.snapshotTailOps) : [];
  return { result: { changes, wrote, error, secretsError, timings, snapshotsDue }, transfer };
}

/** Builds a tree's snapshot when it is due and writes it like a flush (snapshotStore.ts). */
async function snapshot(h: Handle, treeId: string): Promise<Reply<'snapshot'>> {
  const none: WorkerResult<'snapshot'> = { built: false, changes: { ops: [], secrets: [] }, wrote: false };
  // A file that cannot be written keeps no snapshot: building one would be wasted.
  if (writeRefusal(h.file)) return { result: none };
  const r = h.db.buildSnapshot(treeId, h.snapshotTailOps);
  if (!h.db.dirty) return { result: { ...none, ...r } };
  const f = await flush(h, '[]', [], undefined);
  return { result: { ...r, changes: f.result.changes, wrote: f.result.wrote, error: f.result.error }, transfer: f.transfer };
}

export type Reply<M extends WorkerMethod> = { result: WorkerResult<M>; transfer?: ArrayBuffer[] };
/** Answers one request (see `serve`). */
export type Dispatch = (req: WorkerRequest) => Promise<Reply<WorkerMethod>>;

export async function dispatch(req: WorkerRequest): Promise<Reply<WorkerMethod>> {
  switch (req.method) {
    case 'open':
      return { result: await open(req.params) };
    case 'create':
      return { result: await create(req.params) };
    case 'readMeta':
      return { result: await readMeta(req.params.path) };
    case 'listTrees': {
      const h = handleOf(req.params.handle);
      return serial(h, () => {
        return { result: h.db.listTrees() };
      });
    }
    case 'loadTree': {
      const p: WorkerParams<'loadTree'> = req.params;
      const h = handleOf(p.handle);
      return serial(h, () => {
        const cols = h.db.readTree(p.treeId);
        return { result: cols, transfer: columnsTransferList(cols) };
      });
    }
    case 'loadTreeState': {
      const p: WorkerParams<'loadTreeState'> = req.params;
      const h = handleOf(p.handle);
      return serial(h, () => {
        const r = h.db.readTreeState(p.treeId);
        const due = h.db.snapshotsDue([p.treeId], h.snapshotTailOps).length > 0;
        const transfer = columnsTransferList(r.ops);
        if (r.snapshot) transfer.push(r.snapshot.buffer as ArrayBuffer);
        return { result: { ...r, due }, transfer };
      });
    }
    case 'snapshot': {
      const p: WorkerParams<'snapshot'> = req.params;
      const h = handleOf(p.handle);
      return serial(h, () => snapshot(h, p.treeId));
    }
    case 'dropSnapshot': {
      const p: WorkerParams<'dropSnapshot'> = req.params;
      const h = handleOf(p.handle);
      return serial(h, () => {
        h.db.dropSnapshot(p.treeId);
        return { result: null };
      });
    }
    case 'loadSecrets': {
      const h = handleOf(req.params.handle);
      return serial(h, () => {
        return { result: h.db.loadSecrets() };
      });
    }
    case 'flush': {
      const p: WorkerParams<'flush'> = req.params;
      const h = handleOf(p.handle);
      return serial(h, () => flush(h, p.ops, p.secrets, p.sync));
    }
    case 'loadSyncState': {
      const p: WorkerParams<'loadSyncState'> = req.params;
      const h = handleOf(p.handle);
      return serial(h, () => {
        // A server layer stores what it receives here: with a read-only file it could keep nothing.
        const refusal = writeRefusal(h.file);
        if (refusal) throw new SpaceFileError(`${refusal.message}: it cannot keep what a server sends`, refusal.code, refusal.errno);
        const r = h.db.readSyncState(p.layer);
        return { result: r, transfer: r.outbox.flatMap(columnsTransferList) };
      });
    }
    case 'refresh': {
      const h = handleOf(req.params.handle);
      return serial(h, () => {
        const { changes, transfer } = toChanges(mergeIfChanged(h));
        return { result: changes, transfer };
      });
    }
    case 'close': {
      const id = req.params.handle;
      const h = handles.get(id);
      if (!h) return { result: null };
      return serial(h, () => {
        handles.delete(id);
        forgetSeen(h.seen);
        h.seen = undefined;
        h.db.close();
        return { result: null };
      });
    }
  }
}

/**
 * Answers the requests arriving on `port` with `handler`. The worker serves itself with
 * `dispatch` when it is the thread's entry point; a script that imports it (to wrap `dispatch`)
 * calls this instead.
 */
export function serve(port: MessagePort, handler: Dispatch = dispatch): void {
  port.on('message', (req: WorkerRequest) => {
    handler(req).then(
      ({ result, transfer }) => {
        const msg: WorkerResponse = { id: req.id, ok: true, result };
        port.postMessage(msg, transfer ?? []);
      },
      (e: unknown) => {
        const msg: WorkerResponse = { id: req.id, ok: false, error: serializeError(e) };
        port.postMessage(msg);
      },
    );
  });
}

if (parentPort && require.main === module) serve(parentPort);
