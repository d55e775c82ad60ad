/**
 * Where a ServerLayer keeps its sync state between runs: the server sequence it has applied
 * (`seq`, the `since` of its next subscribe) and its outbox (ops saved locally but not yet
 * acknowledged by the server), per layer id (`server:<url>`), so that one store can serve layers
 * of several servers.
 *
 * Rules every store keeps:
 * - `saveIncoming` stores the ops and advances the watermark in the same durable write, so the
 *   stored `seq` never claims ops that are not stored; the watermark only grows.
 * - `addToOutbox` resolves once the ops (and their outbox entries) are durable: an op whose
 *   `saveOps` resolved survives a restart and is sent by the next run.
 * - `removeFromOutbox` may lag: an op left in the outbox after its ack is only sent (or found in
 *   the server's state vector and dropped) again.
 * - Calls take effect in the order they are made, also when the caller does not wait for one
 *   before making the next (the ServerLayer pipelines a catch-up's batches). A write that fails
 *   must not let a later one land without it: FileLayer keeps a failed flush's rows in its
 *   database and writes them with the next flush.
 *
 * `FileLayer` implements it in the space file (tables `outbox` and `watermarks`, see
 * docs/storage.md); `MemorySyncStateStore` is for tests.
 */
import { opKey, validateOps, type Op } from '../../spaces/ops';

export interface SyncState {
  /** The highest server sequence whose batches (and every earlier one) are stored here; 0 = none. */
  readonly seq: number;
  /** Ops not yet acknowledged by the server, per tree. */
  readonly outbox: Map<string, Op[]>;
  /** Who writes under which peer id, as the server said (identity.ts); absent: the store keeps none. */
  readonly peers?: ReadonlyArray<readonly [string, string]>;
}

export interface SyncStateStore {
  /**
   * When the store is also one of the space's layers (FileLayer): its layer id. Ops stored with
   * `saveIncoming` are then in that layer, and the ServerLayer says so (`positionStore`), so the
   * manager does not write them there a second time.
   */
  readonly id?: string;
  loadSyncState(layerId: string): Promise<SyncState>;
  /** Stores ops received from the server and advances the watermark to `seq` (if higher), durably, together. */
  saveIncoming(layerId: string, treeId: string, ops: readonly Op[], seq: number): Promise<void>;
  /** Stores `ops` and records them as not yet acknowledged; resolves when durable. */
  addToOutbox(layerId: string, treeId: string, ops: readonly Op[]): Promise<void>;
  /** Forgets outbox entries (the server acknowledged the ops or already had them). */
  removeFromOutbox(layerId: string, treeId: string, ops: readonly Op[]): Promise<void>;
  /**
   * Optional: every op this store holds for a tree (received, or sent through the outbox). A store
   * that keeps a copy of the server's ops (like MemorySyncStateStore) has it, and a ServerLayer over
   * it then loads whole trees after a restart, not just what arrived since `seq`. FileLayer does
   * not: the file is one of the space's layers, and the manager loads those ops from it directly.
   */
  loadOps?(layerId: string, treeId: string): Promise<Op[]>;
  /** Optional: keeps peer id → user bindings the server reported (identity.ts), returned by `loadSyncState` as `peers`. */
  savePeerUsers?(layerId: string, entries: ReadonlyArray<readonly [string, string]>): Promise<void>;
}

interface MemoryState {
  seq: number;
  readonly peers: Map<string, string>;
  readonly outbox: Map<string, Map<string, Op>>;
  readonly ops: Map<string, Map<string, Op>>;
}

function copy(op: Op): Op {
  return structuredClone(op);
}

/** A SyncStateStore in memory (tests): "durable" for as long as the object lives. */
export class MemorySyncStateStore implements SyncStateStore {
  private readonly layers = new Map<string, MemoryState>();
  /** Calls made, for tests. */
  readonly calls = { saveIncoming: 0, addToOutbox: 0, removeFromOutbox: 0 };

  private state(layerId: string): MemoryState {
    let s = this.layers.get(layerId);
    if (!s) this.layers.set(layerId, (s = { seq: 0, outbox: new Map(), ops: new Map(), peers: new Map() }));
    return s;
  }

  private static tree(m: Map<string, Map<string, Op>>, treeId: string): Map<string, Op> {
    let t = m.get(treeId);
    if (!t) m.set(treeId, (t = new Map()));
    return t;
  }

  async loadSyncState(layerId: string): Promise<SyncState> {
    const s = this.state(layerId);
    const outbox = new Map<string, Op[]>();
    for (const [treeId, ops] of s.outbox) if (ops.size) outbox.set(treeId, [...ops.values()].map(copy));
    return { seq: s.seq, outbox, peers: Array.from(s.peers) };
  }

  async savePeerUsers(layerId: string, entries: ReadonlyArray<readonly [string, string]>): Promise<void> {
    const peers = this.state(layerId).peers;
    for (const [peer, user] of entries) peers.set(peer, user);
  }

  async saveIncoming(layerId: string, treeId: string, ops: readonly Op[], seq: number): Promise<void> {
    this.calls.saveIncoming++;
    validateOps(ops, treeId, 'saveIncoming');
    const s = this.state(layerId);
    const stored = MemorySyncStateStore.tree(s.ops, treeId);
    for (const op of ops) stored.set(opKey(op), copy(op));
    if (seq > s.seq) s.seq = seq;
  }

  async addToOutbox(layerId: string, treeId: string, ops: readonly Op[]): Promise<void> {
    this.calls.addToOutbox++;
    validateOps(ops, treeId, 'addToOutbox');
    const s = this.state(layerId);
    const stored = MemorySyncStateStore.tree(s.ops, treeId);
    const out = MemorySyncStateStore.tree(s.outbox, treeId);
    for (const op of ops) {
      const k = opKey(op);
      stored.set(k, copy(op));
      out.set(k, copy(op));
    }
  }

  async removeFromOutbox(layerId: string, treeId: string, ops: readonly Op[]): Promise<void> {
    this.calls.removeFromOutbox++;
    const out = this.state(layerId).outbox.get(treeId);
    if (!out) return;
    for (const op of ops) out.delete(opKey(op));
  }

  async loadOps(layerId: string, treeId: string): Promise<Op[]> {
    return [...(this.state(layerId).ops.get(treeId)?.values() ?? [])].map(copy);
  }

  /** For tests: how many ops the outbox of `layerId` holds. */
  outboxSize(layerId: string): number {
    let n = 0;
    for (const t of this.state(layerId).outbox.values()) n += t.size;
    return n;
  }
}
