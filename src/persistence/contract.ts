/**
 * The PersistenceLayer contract: one interface for every storage or sync backend.
 *
 * A layer instance belongs to one space. The SpaceManager loads from every layer of a space in
 * parallel, merges, reconciles (each layer gets what it lacks) and saves every new op to all
 * layers. A one-way layer only stores; a two-way layer also delivers ops that other peers made.
 * Any layer may report ops it finds from outside this process (another process wrote the file),
 * through `onIncoming`.
 *
 * This module holds types only, so that src/spaces can depend on it without importing any I/O.
 * test/conformance holds the one suite every implementation must pass.
 */
import type { Op } from '../spaces/ops';
import type { Event } from '../spaces/events';
import type { TreeLoad } from './treeLoad';

export type { TreeLoad, TreeSnapshotLoad } from './treeLoad';

export type LayerKind = 'one-way' | 'two-way';

/**
 * One secret as layers store it. `value: null` is a tombstone (the secret was deleted).
 * Merged per key: the record with the greater (time, peerId) wins.
 * Layers must keep `value` encrypted at rest; in memory it is plaintext.
 */
export interface SecretRecord {
  readonly key: string;
  readonly value: string | null;
  /** Milliseconds since the epoch when the change was made. */
  readonly time: number;
  readonly peerId: string;
}

export interface IncomingOps {
  readonly treeId: string;
  readonly ops: readonly Op[];
}

/** What a slow load has done so far (a server sending a space): for progress UIs, and to tell a slow layer from a stuck one. */
export interface LoadProgress {
  /** For people: "receiving from host: 12000 ops (1.2 MiB)", "host: reconnecting (…)". */
  readonly message: string;
  /** Ops received so far. */
  readonly ops: number;
  readonly bytes: number;
}

/** Connection or health state a layer reports by itself (two-way layers mostly). */
export type LayerConnectionState =
  | { readonly status: 'connected' }
  | { readonly status: 'syncing' }
  | { readonly status: 'offline'; readonly reason?: string }
  | { readonly status: 'error'; readonly reason: string };

export interface PersistenceLayer {
  /** Stable id, unique among a space's layers (e.g. `file:/abs/x.space`, `server:https://host`). */
  readonly id: string;
  /** Human label for UIs and error messages. */
  readonly label: string;
  readonly kind: LayerKind;
  /** The space this layer instance stores. */
  readonly spaceId: string;

  /**
   * Optional: the id of another layer of the space that every op this layer loads or delivers is
   * stored into by this layer itself (a server layer keeps what it receives, and its outbox, in
   * its SyncStateStore, which is usually the space's file). The manager then neither forwards
   * this layer's incoming ops to that layer nor counts them as missing there after a load: an
   * incoming op is written once.
   */
  readonly storesInto?: string;

  /** Ids of every tree this layer holds ops for (the space tree's id is the space id). */
  listTrees(): Promise<string[]>;
  /** Every op this layer holds for a tree, in any order. Rejects when the data cannot be read. */
  loadTree(treeId: string): Promise<Op[]>;
  /**
   * Optional: the tree as a snapshot plus the ops stored after it (treeLoad.ts), so that opening
   * it need not replay its history; without a snapshot, every op (as `loadTree`).
   */
  loadTreeState?(treeId: string): Promise<TreeLoad>;
  /** Stores ops; idempotent (key: tree id + op id); resolves once they are durable. */
  saveOps(treeId: string, ops: readonly Op[]): Promise<void>;

  /**
   * Optional: of `ops` (everything the space holds for a tree), those this layer lacks. A layer
   * whose `loadTree` returns only part of what it holds (a server sending a delta) must have it;
   * without it the manager sends the layer every op its `loadTree` did not return.
   */
  missingOps?(treeId: string, ops: readonly Op[]): Promise<Op[]>;

  loadSecrets(): Promise<SecretRecord[]>;
  /** Stores secret records; a record replaces the stored one only when it wins the merge. */
  saveSecrets(records: readonly SecretRecord[]): Promise<void>;

  /** Ops made elsewhere (a server, another process writing the same file). */
  readonly onIncoming?: Event<IncomingOps>;
  /** Secret records changed elsewhere. */
  readonly onIncomingSecrets?: Event<readonly SecretRecord[]>;
  /** Connection state, for two-way layers. */
  readonly onStateChange?: Event<LayerConnectionState>;
  /**
   * Optional: progress of a load under way. The manager waits for a layer whose load keeps
   * reporting progress (its load timeout counts from the last report) and passes it on
   * (SpaceManager.onDidReportLoadProgress).
   */
  readonly onLoadProgress?: Event<LoadProgress>;

  /** Flushes pending writes and frees every resource; idempotent. */
  close(): Promise<void>;
}
