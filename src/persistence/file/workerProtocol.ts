/**
 * Messages between FileLayer (caller's thread) and the sql.js worker. Every request carries an
 * id; the worker answers each with exactly one response of the same id. Ops cross in columns
 * (opColumns.ts) with their typed arrays transferred; saves cross as one JSON string of the
 * codec's tuples.
 */
import type { SecretRecord } from '../contract';
import type { SerializedError } from './errors';
import type { OpColumns } from './opColumns';
import type { SpaceFileMeta } from './spaceDb';
import type { SyncActions } from './syncTables';

export interface OpenOptions {
  readonly path: string;
  /** 32 bytes, or absent when the caller has no key (then secrets cannot be read or written). */
  readonly secretKey?: Uint8Array;
  readonly lockTimeoutMs: number;
  readonly lockStaleMs: number;
  /** A tree gets a new snapshot once this many ops follow the last one (snapshotStore.ts); Infinity: never. */
  readonly snapshotTailOps: number;
}

/** An opened (or created) file's handle and meta. */
export interface Opened {
  readonly handle: number;
  readonly meta: SpaceFileMeta;
  /** The file read and written: the real path the name led to (symbolic links resolved). */
  readonly file: string;
  /** Why the file could not be written when it was opened (fileIo.ts `writeRefusal`), if so. */
  readonly readOnly?: string;
}

/** What a refresh or a flush found in the file that this layer lacked. */
export interface Changes {
  readonly ops: OpColumns[];
  readonly secrets: SecretRecord[];
}

/** Where a flush spent its time (milliseconds), and the size of the file it wrote. */
export interface FlushTimings {
  /** Waiting for the lock. */
  lockMs: number;
  /** Reading and merging a file another process changed. */
  mergeMs: number;
  /** Inserting the batch. */
  insertMs: number;
  /** Serialising the database. */
  exportMs: number;
  /** Temp file, fsync, rename, directory fsync. */
  writeMs: number;
  bytes: number;
}

export interface WorkerMethods {
  open: { params: OpenOptions; result: Opened };
  create: { params: OpenOptions & { readonly spaceId: string }; result: Opened };
  readMeta: { params: { readonly path: string }; result: SpaceFileMeta };
  listTrees: { params: { readonly handle: number }; result: string[] };
  loadTree: { params: { readonly handle: number; readonly treeId: string }; result: OpColumns };
  /**
   * A tree for opening (snapshotStore.ts): its snapshot (inflated, header checked) and the ops
   * after it, or every op; `dropped` says why a stored snapshot could not be used; `due` that the
   * tree should get a new snapshot (ask with `snapshot`).
   */
  loadTreeState: {
    params: { readonly handle: number; readonly treeId: string };
    result: { snapshot?: Uint8Array; ops: OpColumns; storedOps: number; dropped?: string; due: boolean };
  };
  /** Builds a tree's snapshot if it is due and writes the file like a flush (merge first, under the lock). */
  snapshot: {
    params: { readonly handle: number; readonly treeId: string };
    result: { built: boolean; dropped?: string; changes: Changes; wrote: boolean; error?: SerializedError };
  };
  /** Deletes a tree's snapshot (its reader could not use it); the next flush writes the file without it. */
  dropSnapshot: { params: { readonly handle: number; readonly treeId: string }; result: null };
  loadSecrets: { params: { readonly handle: number }; result: SecretRecord[] };
  /**
   * Under the lock: merge the file if it changed, add `ops` (JSON: `[[treeId, EncodedOp[]], …]`)
   * and `secrets`, write the file if anything is new. `error` is set when the write failed after
   * a merge, so that what the merge found is still reported; `secretsError` when only the
   * secrets could not be stored (wrong key): the ops were still written.
   */
  flush: {
    params: { readonly handle: number; readonly ops: string; readonly secrets: SecretRecord[]; readonly sync?: SyncActions };
    result: { changes: Changes; wrote: boolean; error?: SerializedError; secretsError?: SerializedError; timings: FlushTimings; snapshotsDue: string[] };
  };
  /** A server layer's stored sequence and outbox ops (syncTables.ts). */
  loadSyncState: { params: { readonly handle: number; readonly layer: string }; result: { seq: number; outbox: OpColumns[]; peers: Array<[string, string]> } };
  /**
   * Merge the file if it changed on disk (no lock needed: files are replaced atomically).
   * RELINKED when the layer's name now leads to another file (fileTarget.ts).
   */
  refresh: { params: { readonly handle: number }; result: Changes };
  close: { params: { readonly handle: number }; result: null };
}

export type WorkerMethod = keyof WorkerMethods;
export type WorkerParams<M extends WorkerMethod> = WorkerMethods[M]['params'];
export type WorkerResult<M extends WorkerMethod> = WorkerMethods[M]['result'];

export type WorkerRequest = { [M in WorkerMethod]: { readonly id: number; readonly method: M; readonly params: WorkerParams<M> } }[WorkerMethod];

export type WorkerResponse =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: SerializedError };
