/**
 * A layer wrapper that gives any PersistenceLayer `loadTreeState` with snapshots, the way the
 * file layer does (src/persistence/file/snapshotStore.ts), for tests of the code that opens trees
 * from snapshots (SpaceSession, AppTree.fromTreeLoad): each load returns the tree's last snapshot
 * (taken at an earlier load, kept in a SnapshotCache that outlives restarts like the store does)
 * plus the ops stored since, and takes a new one when `every` ops came after it. With `badShare`,
 * that share of the snapshots handed out is damaged, so that the discard path runs too.
 */
import { RepTree, TreeSnapshot } from '../../src/crdt';
import { isSyncChannel, type IncomingOps, type LayerConnectionState, type LayerKind, type LoadProgress, type PersistenceLayer, type SecretRecord, type TreeLoad } from '../../src/persistence/contract';
import type { Event } from '../../src/spaces/events';
import { opKey, type Op } from '../../src/spaces/ops';

export class SnapshotCache {
  readonly trees = new Map<string, { readonly bytes: Uint8Array; readonly covered: ReadonlySet<string> }>();
  /** Snapshots handed out, damaged ones among them, and discards the reader asked for. */
  readonly counts = { offered: 0, damaged: 0, discarded: 0 };

  constructor(
    readonly every: number,
    readonly random: () => number,
    readonly badShare = 0,
  ) {}
}

/** A snapshot the reader must refuse: cut short, or its body changed under its checksum. */
function damaged(bytes: Uint8Array, r: number): Uint8Array {
  if (r < 0.5) return bytes.subarray(0, Math.floor(bytes.length * r));
  const b = Uint8Array.from(bytes);
  b[b.length - 1] ^= 0x20;
  return b;
}

export class SnapshottingLayer implements PersistenceLayer {
  readonly id: string;
  readonly label: string;
  readonly kind: LayerKind;
  readonly spaceId: string;
  /** The wrapped channel's position store (SyncChannel.positionStore), when it wraps one. */
  readonly positionStore?: string;
  readonly onIncoming?: Event<IncomingOps>;
  readonly onIncomingSecrets?: Event<readonly SecretRecord[]>;
  readonly onStateChange?: Event<LayerConnectionState>;
  readonly onLoadProgress?: Event<LoadProgress>;
  readonly missingOps?: (treeId: string, ops: readonly Op[]) => Promise<Op[]>;

  constructor(
    readonly inner: PersistenceLayer,
    private readonly cache: SnapshotCache,
  ) {
    this.id = inner.id;
    this.label = inner.label;
    this.kind = inner.kind;
    this.spaceId = inner.spaceId;
    this.positionStore = isSyncChannel(inner) ? inner.positionStore : undefined;
    this.onIncoming = inner.onIncoming;
    this.onIncomingSecrets = inner.onIncomingSecrets;
    this.onStateChange = inner.onStateChange;
    this.onLoadProgress = inner.onLoadProgress;
    if (inner.missingOps) this.missingOps = inner.missingOps.bind(inner);
  }

  listTrees(): Promise<string[]> {
    return this.inner.listTrees();
  }

  loadTree(treeId: string): Promise<Op[]> {
    return this.inner.loadTree(treeId);
  }

  async loadTreeState(treeId: string): Promise<TreeLoad> {
    const ops = await this.inner.loadTree(treeId);
    const keys = new Set(ops.map(opKey));
    let cached = this.cache.trees.get(treeId);
    if (cached && ![...cached.covered].every((k) => keys.has(k))) {
      this.cache.trees.delete(treeId);
      cached = undefined;
    }
    const tail = cached ? ops.filter((op) => !(cached as { covered: ReadonlySet<string> }).covered.has(opKey(op))) : ops;
    if (!cached || tail.length >= this.cache.every) this.takeSnapshot(treeId, ops, keys);
    if (!cached) return { ops };
    this.cache.counts.offered++;
    let bytes = cached.bytes;
    const r = this.cache.random();
    if (r < this.cache.badShare) {
      bytes = damaged(bytes, r / this.cache.badShare);
      this.cache.counts.damaged++;
    }
    return {
      ops: tail,
      snapshot: {
        bytes,
        storedOps: keys.size,
        discard: async () => {
          this.cache.counts.discarded++;
          this.cache.trees.delete(treeId);
          return this.inner.loadTree(treeId);
        },
      },
    };
  }

  private takeSnapshot(treeId: string, ops: readonly Op[], keys: ReadonlySet<string>): void {
    let tree: RepTree;
    try {
      tree = new RepTree('snapshot', ops);
    } catch {
      return; // no root among the ops yet
    }
    this.cache.trees.set(treeId, { bytes: TreeSnapshot.encode(tree), covered: keys });
    tree.dispose();
  }

  saveOps(treeId: string, ops: readonly Op[]): Promise<void> {
    return this.inner.saveOps(treeId, ops);
  }

  loadSecrets(): Promise<SecretRecord[]> {
    return this.inner.loadSecrets();
  }

  saveSecrets(records: readonly SecretRecord[]): Promise<void> {
    return this.inner.saveSecrets(records);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
