/**
 * A SyncStateStore whose writes land only when the test says so: a store on a busy disk (or a
 * shared SQL worker) made controllable. Writes are held in call order and applied, in that order,
 * to an inner MemorySyncStateStore (what is "durable") by `release()`; `afterCrash()` is a copy of
 * what has landed so far — what a process killed now would find on its disk.
 */
import { MemorySyncStateStore, type SyncState, type SyncStateStore } from '../../src/persistence/server/syncState';
import type { Op } from '../../src/spaces/ops';

type Call = 'saveIncoming' | 'addToOutbox' | 'removeFromOutbox';
type Write = (into: MemorySyncStateStore) => Promise<void>;

interface Held {
  readonly write: Write;
  readonly call: Call;
  readonly layerId: string;
  readonly treeId: string;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

export class GatedSyncStateStore implements SyncStateStore {
  /** What has landed. */
  readonly durable = new MemorySyncStateStore();
  private readonly held: Held[] = [];
  private readonly writes: Write[] = [];
  private open = false;
  /** Each landed write, in order, with the watermark and the tree's op count right after it. */
  readonly landed: Array<{ readonly call: Call; readonly seq: number; readonly ops: number }> = [];

  get heldWrites(): number {
    return this.held.length;
  }

  loadSyncState(layerId: string): Promise<SyncState> {
    return this.durable.loadSyncState(layerId);
  }

  loadOps(layerId: string, treeId: string): Promise<Op[]> {
    return this.durable.loadOps(layerId, treeId);
  }

  saveIncoming(layerId: string, treeId: string, ops: readonly Op[], seq: number): Promise<void> {
    return this.hold((into) => into.saveIncoming(layerId, treeId, ops, seq), 'saveIncoming', layerId, treeId);
  }

  addToOutbox(layerId: string, treeId: string, ops: readonly Op[]): Promise<void> {
    return this.hold((into) => into.addToOutbox(layerId, treeId, ops), 'addToOutbox', layerId, treeId);
  }

  removeFromOutbox(layerId: string, treeId: string, ops: readonly Op[]): Promise<void> {
    return this.hold((into) => into.removeFromOutbox(layerId, treeId, ops), 'removeFromOutbox', layerId, treeId);
  }

  /** Applies every held write in call order, and lets later writes through at once. */
  async release(): Promise<void> {
    this.open = true;
    for (const h of this.held.splice(0)) await this.apply(h.write, h.call, h.layerId, h.treeId).then(h.resolve, h.reject);
  }

  /** What a process killed now would find: the writes that landed, none of those held. */
  async afterCrash(): Promise<MemorySyncStateStore> {
    const disk = new MemorySyncStateStore();
    for (const w of this.writes) await w(disk);
    return disk;
  }

  private async apply(write: Write, call: Call, layerId: string, treeId: string): Promise<void> {
    await write(this.durable);
    this.writes.push(write);
    const ops = (await this.durable.loadOps(layerId, treeId)).length;
    this.landed.push({ call, seq: (await this.durable.loadSyncState(layerId)).seq, ops });
  }

  private hold(write: Write, call: Call, layerId: string, treeId: string): Promise<void> {
    if (this.open) return this.apply(write, call, layerId, treeId);
    return new Promise((resolve, reject) => this.held.push({ write, call, layerId, treeId, resolve, reject }));
  }
}
