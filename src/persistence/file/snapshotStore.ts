/**
 * Snapshots of a space file's trees (table `snapshots`, one row per tree): the tree's state
 * (src/crdt/snapshot.ts), deflated, as of chunk `chunk` — it holds every op of the tree's chunks
 * with id ≤ `chunk` (a merge of chunks keeps the newest id, so that stays true; a merged chunk
 * may then hold ops the snapshot has too, which a load skips). Opening a tree reads the snapshot
 * and the chunks after it instead of every op; history stays in the chunks.
 *
 * A snapshot is written in the worker, off the edit path, when the tree holds at least
 * SNAPSHOT_MIN_TREE_FACTOR × `tailOps` ops and the ops after the last one are more than `tailOps`
 * and more than SNAPSHOT_TAIL_SHARE of those before it (or SNAPSHOT_MAX_TAIL_OPS). One that does not inflate, has
 * a bad header (truncated, damaged, newer version) or, once decoded, does not hold exactly the
 * tree's ops, is dropped and rebuilt from the ops: nothing is lost, the ops are the record.
 *
 * Runs in the worker on the SpaceDb's database, inside its transactions.
 */
import zlib from 'node:zlib';
import type { Database } from 'sql.js';
import { RepTree, SnapshotError, checkSnapshotHeader, encodeSnapshot } from '../../crdt';
import type { Op } from '../../spaces/ops';
import type { ChunkStore } from './chunkStore';

/** A tree gets a (new) snapshot once this many ops were stored after the last one… */
export const SNAPSHOT_TAIL_OPS = 16_384;
/**
 * …and it holds at least this many times as many ops: a smaller tree opens from its ops about as
 * fast (≈0.1 s for 65k ops), and its snapshot would grow the file by half (the peer workload's 10k
 * edits, 41k ops: 224 KiB without, 352 KiB with, load 11).
 */
export const SNAPSHOT_MIN_TREE_FACTOR = 4;
/** …and they are at least this share of the ops before it (a big tree is not re-encoded for every few thousand ops)… */
export const SNAPSHOT_TAIL_SHARE = 0.1;
/** …or at least this many: the tail an open decodes and merges stays bounded (a 3M-op tree: every 64k ops, not every 300k). */
export const SNAPSHOT_MAX_TAIL_OPS = 65_536;
/**
 * zlib level of the stored snapshot. Measured on a 101k-item tree (7.6 MB raw): level 1 gives
 * 1.45 MB and inflates in ~24 ms, level 6 1.39 MB in ~11 ms at about the same deflate time;
 * level 9 saves 1% more for 6× the time. Read on every open, written in the background.
 */
const SNAPSHOT_DEFLATE_LEVEL = 6;
/** The peer id of the throwaway tree a snapshot is built with (it makes no ops). */
const BUILDER_PEER = 'snapshot';

const SNAPSHOTS_TABLE_SQL = 'CREATE TABLE IF NOT EXISTS snapshots (tree INTEGER PRIMARY KEY, chunk INTEGER NOT NULL, data BLOB NOT NULL)';

/** A tree as a file holds it: its snapshot (when there is a usable one) and the ops after it. */
export interface StoredTree {
  /** The snapshot, inflated, its header and checksum checked. */
  readonly snapshot?: Uint8Array;
  /** With a snapshot, the ops of the chunks after it; without, every op. */
  readonly ops: Op[];
  /** How many distinct ops the file holds for the tree. */
  readonly storedOps: number;
  /** Why a stored snapshot was dropped (it could not be used), if one was. */
  readonly dropped?: string;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class SnapshotStore {
  /** Per tree: the newest chunk when a snapshot was last built (or tried), so a failing build is not retried until more ops come. */
  private readonly tried = new Map<number, number>();

  constructor(
    private readonly db: () => Database,
    private readonly chunks: ChunkStore,
  ) {}

  /** Forgets cached state (after a rollback, or when the database was replaced). */
  reset(): void {
    this.tried.clear();
  }

  private row(t: number): { chunk: number; data: Uint8Array } | undefined {
    let r;
    try {
      r = this.db().exec('SELECT chunk, data FROM main.snapshots WHERE tree = ?', [t])[0]?.values[0];
    } catch (e) {
      if (/no such table/.test(messageOf(e))) return undefined; // made by a build or tool without it
      throw e;
    }
    if (!r) return undefined;
    const [chunk, data] = r;
    return { chunk: typeof chunk === 'number' ? chunk : NaN, data: data instanceof Uint8Array ? data : new Uint8Array(0) };
  }

  /** The stored snapshot of tree `t`, inflated and header-checked, or why it cannot be used. */
  private stored(t: number): { bytes: Uint8Array; chunk: number } | { problem: string } | undefined {
    const row = this.row(t);
    if (!row) return undefined;
    try {
      if (!Number.isSafeInteger(row.chunk) || row.chunk < 1) throw new SnapshotError('corrupt', `bad chunk ${String(row.chunk)}`);
      let bytes: Uint8Array;
      try {
        bytes = zlib.inflateRawSync(row.data);
      } catch (e) {
        throw new SnapshotError('corrupt', `does not inflate (${messageOf(e)})`);
      }
      checkSnapshotHeader(bytes);
      return { bytes, chunk: row.chunk };
    } catch (e) {
      if (e instanceof SnapshotError) return { problem: e.message };
      throw e;
    }
  }

  /** Tree `t` for opening: snapshot + the ops after it, or every op. A bad snapshot is dropped (`dropped` says why). */
  load(t: number, treeId: string): StoredTree {
    const storedOps = this.chunks.countAfter(t).ops;
    const s = this.stored(t);
    if (s && 'bytes' in s) return { snapshot: s.bytes, ops: this.chunks.readOpsAfter(t, treeId, s.chunk), storedOps };
    if (s) this.drop(t);
    return { ops: this.chunks.readOps(t, treeId), storedOps, dropped: s?.problem };
  }

  /** Deletes tree `t`'s snapshot (in the caller's transaction). */
  drop(t: number): void {
    this.tried.delete(t);
    try {
      this.db().run('DELETE FROM main.snapshots WHERE tree = ?', [t]);
    } catch (e) {
      if (!/no such table/.test(messageOf(e))) throw e;
    }
  }

  /** True when tree `t` should get a new snapshot (see SNAPSHOT_TAIL_OPS). */
  due(t: number, tailOps: number): boolean {
    if (!Number.isFinite(tailOps)) return false;
    const since = Math.max(this.row(t)?.chunk ?? 0, this.tried.get(t) ?? 0);
    const tail = this.chunks.countAfter(t, since).ops;
    if (tail === 0) return false;
    const all = this.chunks.countAfter(t).ops;
    if (all < tailOps * SNAPSHOT_MIN_TREE_FACTOR) return false;
    return tail >= Math.max(tailOps, Math.min(SNAPSHOT_TAIL_SHARE * (all - tail), SNAPSHOT_MAX_TAIL_OPS));
  }

  /**
   * Builds tree `t`'s snapshot from the stored one (when usable) and the ops after it, or from
   * every op, and stores it (in the caller's transaction). Returns whether it stored one and why
   * the old one was dropped, if it was. A tree that cannot be built (no root yet) gets none.
   */
  build(t: number, treeId: string): { built: boolean; dropped?: string } {
    const newest = this.chunks.countAfter(t).newest;
    try {
      return this.buildAt(t, treeId, newest);
    } finally {
      this.tried.set(t, newest);
    }
  }

  private buildAt(t: number, treeId: string, newest: number): { built: boolean; dropped?: string } {
    const state = this.load(t, treeId);
    let dropped = state.dropped;
    let tree: RepTree | undefined;
    if (state.snapshot) {
      try {
        tree = RepTree.fromSnapshot(BUILDER_PEER, state.snapshot, state.ops);
        if (tree.opCount + tree.parkedCount !== state.storedOps) {
          throw new SnapshotError('corrupt', `it and the ops after it hold ${tree.opCount + tree.parkedCount} ops, the file ${state.storedOps}`);
        }
      } catch (e) {
        if (!(e instanceof SnapshotError)) throw e;
        tree?.dispose();
        tree = undefined;
        dropped = e.message;
        this.drop(t);
      }
    }
    if (!tree) {
      const ops = state.snapshot ? this.chunks.readOps(t, treeId) : state.ops;
      if (ops.length === 0) return { built: false, dropped };
      try {
        tree = new RepTree(BUILDER_PEER, ops);
      } catch {
        return { built: false, dropped }; // no root vertex among the ops yet: nothing to open
      }
    }
    const data = zlib.deflateRawSync(encodeSnapshot(tree), { level: SNAPSHOT_DEFLATE_LEVEL });
    tree.dispose();
    const db = this.db();
    db.exec(SNAPSHOTS_TABLE_SQL);
    db.run('INSERT OR REPLACE INTO main.snapshots (tree, chunk, data) VALUES (?, ?, ?)', [t, newest, data]);
    return { built: true, dropped };
  }
}
