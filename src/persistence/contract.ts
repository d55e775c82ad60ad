/**
 * The layer contracts: the seam between a space and where it lives.
 *
 * Two kinds of layer, one base (PersistenceLayer):
 * - a **store** (StoreLayer, `kind: 'one-way'`) is durable and one-way: the space file
 *   (FileLayer), the server's SQLite (SqlitePersistenceLayer), the memory layer of the tests,
 *   IndexedDB later. `saveOps` resolves once the ops are durable there; it reports ops only when
 *   another process wrote the same storage.
 * - a **sync channel** (SyncChannel, `kind: 'two-way'`) connects the space with other peers: the
 *   team server (ServerLayer). It delivers their ops (`onIncoming`), reports its connection state,
 *   and keeps its position — the server's state it has acknowledged — and its outbox in a store of
 *   the space (`positionStore`), which also stores every op it delivers.
 *
 * A layer instance belongs to one space. The session (src/spaces/spaceSession.ts) loads from every
 * layer of a space in parallel, merges, reconciles (each layer gets what it lacks) and saves every
 * new op to all layers; an op a channel delivers is written once, by the channel into its store.
 *
 * This module holds types only (and one guard), so that src/spaces can depend on it without
 * importing any I/O. Failures at the seam are LayerErrors (./layerError.ts). test/conformance
 * holds one suite per contract: every store runs the store suite, every channel the channel suite.
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

/** What every layer is and does; a layer is a StoreLayer or a SyncChannel. */
export interface PersistenceLayer {
  /** Stable id, unique among a space's layers (e.g. `file:/abs/x.space`, `server:https://host`). */
  readonly id: string;
  /** Human label for UIs and error messages. */
  readonly label: string;
  readonly kind: LayerKind;
  /** The space this layer instance stores. */
  readonly spaceId: string;

  /**
   * Optional: every op this layer returns from `loadTree` or reports through `onIncoming` it has
   * validated for that tree itself (validateOps, where it decoded them from bytes it received or
   * read), in arrays it does not change afterwards. The session then does not check them a second
   * time; without it, the session validates everything the layer gives it.
   */
  readonly validatesOps?: boolean;

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

/** A durable, one-way layer: `saveOps` resolves once the ops are durable in its storage. */
export interface StoreLayer extends PersistenceLayer {
  readonly kind: 'one-way';
}

/**
 * A two-way layer that connects the space with other peers. `saveOps` resolves once the ops are
 * recorded for sending in its outbox (they may be sent before that write lands: see
 * docs/sync-client.md, "Outgoing", for the rule that nothing acknowledged is lost).
 */
export interface SyncChannel extends PersistenceLayer {
  readonly kind: 'two-way';
  /** Ops other peers made, in the order the channel received them. */
  readonly onIncoming: Event<IncomingOps>;
  readonly onStateChange: Event<LayerConnectionState>;
  /**
   * Optional: the id of the space's store that keeps this channel's position and outbox and
   * into which the channel itself writes every op it loads or delivers (the ServerLayer's
   * SyncStateStore, usually the space's file). The session then neither forwards the channel's
   * incoming ops to that store nor counts what the channel loaded as missing there: an incoming
   * op is written once.
   */
  readonly positionStore?: string;
}

/** The layer is a sync channel (two-way, with deliveries and a connection state). */
export function isSyncChannel(layer: PersistenceLayer): layer is SyncChannel {
  return layer.kind === 'two-way' && layer.onIncoming !== undefined && layer.onStateChange !== undefined;
}
