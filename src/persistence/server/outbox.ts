/**
 * The ServerLayer's in-memory view of its outbox: ops stored durably (SyncStateStore) but not yet
 * acknowledged by the server, per tree, and which of them are in flight under which `ref`.
 *
 * Batches hold ops of one tree and one peer id, at most `maxOps`, only from peer ids the
 * connection announced in its `hello` (the server refuses ops under other peer ids). One peer per
 * batch because the server refuses a batch whole: ops relayed for a peer id that writes for
 * another user (`peer-forbidden`) must not hold back this client's own edits. A connection that drops puts its
 * in-flight batches back (`requeueInFlight`); an ack removes its batch's ops for good.
 */
import { encodeOp, type EncodedOp } from '../../spaces/opCodec';
import { opKey, type Op } from '../../spaces/ops';

export interface OutboxBatch {
  readonly ref: number;
  readonly treeId: string;
  readonly ops: Op[];
  /** `ops` in the wire encoding. */
  readonly encoded: EncodedOp[];
}

export class Outbox {
  private readonly trees = new Map<string, Map<string, Op>>();
  private readonly flying = new Map<number, OutboxBatch>();
  private readonly flyingKeys = new Map<string, Set<string>>();
  private count = 0;

  /** Ops waiting or in flight. */
  get size(): number {
    return this.count;
  }

  get inFlightBatches(): number {
    return this.flying.size;
  }

  get inFlightOps(): number {
    let n = 0;
    for (const b of this.flying.values()) n += b.ops.length;
    return n;
  }

  treeIds(): string[] {
    return [...this.trees.keys()];
  }

  ops(treeId: string): Op[] {
    return [...(this.trees.get(treeId)?.values() ?? [])];
  }

  has(treeId: string, op: Op): boolean {
    return this.trees.get(treeId)?.has(opKey(op)) ?? false;
  }

  /** Adds ops; returns those that were not in it yet. */
  add(treeId: string, ops: readonly Op[]): Op[] {
    let t = this.trees.get(treeId);
    if (!t) this.trees.set(treeId, (t = new Map()));
    const fresh: Op[] = [];
    for (const op of ops) {
      const k = opKey(op);
      if (t.has(k)) continue;
      t.set(k, op);
      fresh.push(op);
    }
    this.count += fresh.length;
    return fresh;
  }

  /** Removes ops (acknowledged, or found on the server); returns those that were in it. */
  remove(treeId: string, ops: readonly Op[]): Op[] {
    const t = this.trees.get(treeId);
    if (!t) return [];
    const flying = this.flyingKeys.get(treeId);
    const gone: Op[] = [];
    for (const op of ops) {
      const k = opKey(op);
      const had = t.get(k);
      if (!had) continue;
      t.delete(k);
      flying?.delete(k);
      gone.push(had);
    }
    this.count -= gone.length;
    if (t.size === 0) this.trees.delete(treeId);
    return gone;
  }

  /** Peer ids of ops waiting to be sent (not in flight), most ops first. */
  waitingPeers(): string[] {
    const n = new Map<string, number>();
    for (const [treeId, t] of this.trees) {
      const flying = this.flyingKeys.get(treeId);
      for (const [k, op] of t) if (!flying?.has(k)) n.set(op.id.peerId, (n.get(op.id.peerId) ?? 0) + 1);
    }
    return [...n.entries()].sort((a, b) => b[1] - a[1]).map(([p]) => p);
  }

  /**
   * The next batch to send, marked in flight under `ref`: ops of one tree and one peer id not in
   * flight, of `allowedPeers`, not `excluded`, at most `maxOps` and (but for a first op that is
   * larger) `maxBytes` of encoded JSON.
   */
  take(ref: number, maxOps: number, maxBytes: number, allowedPeers: ReadonlySet<string>, excluded?: (treeId: string, op: Op) => boolean): OutboxBatch | undefined {
    for (const [treeId, t] of this.trees) {
      let flying = this.flyingKeys.get(treeId);
      const ops: Op[] = [];
      const encoded: EncodedOp[] = [];
      let bytes = 2;
      let peer: string | undefined;
      for (const [k, op] of t) {
        if (flying?.has(k) || (peer !== undefined && op.id.peerId !== peer) || !allowedPeers.has(op.id.peerId) || excluded?.(treeId, op)) continue;
        peer = op.id.peerId;
        const e = encodeOp(op);
        const n = JSON.stringify(e).length + 1;
        if (ops.length > 0 && bytes + n > maxBytes) break;
        bytes += n;
        ops.push(op);
        encoded.push(e);
        if (ops.length >= maxOps) break;
      }
      if (ops.length === 0) continue;
      if (!flying) this.flyingKeys.set(treeId, (flying = new Set()));
      for (const op of ops) flying.add(opKey(op));
      const batch = { ref, treeId, ops, encoded };
      this.flying.set(ref, batch);
      return batch;
    }
    return undefined;
  }

  /** The batch sent under `ref`, no longer in flight (undefined when unknown). */
  settle(ref: number): OutboxBatch | undefined {
    const b = this.flying.get(ref);
    if (!b) return undefined;
    this.flying.delete(ref);
    const keys = this.flyingKeys.get(b.treeId);
    for (const op of b.ops) keys?.delete(opKey(op));
    return b;
  }

  /** The connection dropped: nothing is in flight any more; every op waits to be sent again. */
  requeueInFlight(): void {
    this.flying.clear();
    this.flyingKeys.clear();
  }

  /** Ops waiting (not in flight) per tree, for counting. */
  waitingOps(): number {
    let n = this.count;
    for (const k of this.flyingKeys.values()) n -= k.size;
    return n;
  }
}
