/**
 * What a store can hand over when a tree is opened: a snapshot of the tree's state plus the ops
 * stored after it, instead of every op (PersistenceLayer.loadTreeState, optional beside loadTree).
 * Types only, like contract.ts.
 */
import type { Op } from '../spaces/ops';

export interface TreeSnapshotLoad {
  /** The snapshot (src/crdt/snapshot.ts); its header was checked, its body was not. */
  readonly bytes: Uint8Array;
  /**
   * How many distinct ops the store holds for the tree: the snapshot plus `TreeLoad.ops` must
   * hold exactly these, or the snapshot disagrees with the ops and must not be used.
   */
  readonly storedOps: number;
  /**
   * For a snapshot that cannot be used (it does not decode, or disagrees with the ops): the store
   * drops it (and writes a new one later), reports `reason`, and resolves with every op it holds
   * for the tree, as `loadTree` does.
   */
  discard(reason: string): Promise<Op[]>;
}

export interface TreeLoad {
  readonly snapshot?: TreeSnapshotLoad;
  /** Without a snapshot: every op the store holds for the tree. With one: the ops after it (any order; some may be in it too). */
  readonly ops: Op[];
}
