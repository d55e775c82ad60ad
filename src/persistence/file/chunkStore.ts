/**
 * A space file's ops (schema 2): per tree, rows of `chunks`, each a codec blob (src/codec/) of
 * ops the tree did not hold before. Which ops a tree holds (its state vector, an OpRangeSet) is
 * rebuilt from the blobs the first time a tree is read or written, so there is no per-op index
 * row; a save keeps only the ops that are new ("INSERT OR IGNORE" by op id, as schema 1 did).
 *
 * Small chunks are merged as they accumulate (like a binary counter: the newest two while the
 * newer is at least half the older), so a tree saved in many small flushes keeps O(log n) chunks
 * and each op is re-encoded O(log n) times over the file's life.
 *
 * Runs in the worker on the SpaceDb's database, inside its transactions; `reset()` after a
 * rollback drops the cached state.
 */
import type { Database } from 'sql.js';
import { CodecError } from '../../codec/errors';
import { decodeBatches, encodeBatches } from '../../codec/opBatch';
import { decodeValidBatches } from '../../codec/validated';
import { OpRangeSet } from '../../spaces/opRanges';
import { InvalidOpError, type Op } from '../../spaces/ops';
import { SpaceFileError } from './errors';

interface ChunkRef {
  readonly id: number;
  n: number;
}

interface TreeState {
  readonly chunks: ChunkRef[];
  readonly have: OpRangeSet;
}

/** Chunks are merged while the newer of the last two has at least 1/MERGE_RATIO of the older's ops. */
const MERGE_RATIO = 2;

function invalidData(file: string, why: string): SpaceFileError {
  return new SpaceFileError(`${file} holds invalid data (${why})`, 'INVALID_DATA');
}

export class ChunkStore {
  private readonly trees = new Map<number, TreeState>();

  constructor(
    private readonly db: () => Database,
    private readonly file: string,
  ) {}

  /** Forgets cached state (after a rollback, or when the database was replaced). */
  reset(): void {
    this.trees.clear();
  }

  /** Interned tree ids that have at least one chunk. */
  treesWithOps(): number[] {
    return (this.db().exec('SELECT DISTINCT tree FROM main.chunks ORDER BY tree')[0]?.values ?? []).map((r) => Number(r[0]));
  }

  /** Every op of tree `t` (id `treeId`), decoded and validated; INVALID_DATA when a chunk is bad. */
  readOps(t: number, treeId: string): Op[] {
    const out: Op[] = [];
    const chunks: ChunkRef[] = [];
    const have = new OpRangeSet();
    for (const [id, n, blob] of this.db().exec('SELECT id, n_ops, ops FROM main.chunks WHERE tree = ? ORDER BY id', [t])[0]?.values ?? []) {
      if (!(blob instanceof Uint8Array) || typeof id !== 'number' || typeof n !== 'number') throw invalidData(this.file, `chunk ${String(id)} of tree ${treeId} is not a blob`);
      const ops = this.decode(blob, treeId, id);
      if (ops.length !== n) throw invalidData(this.file, `chunk ${id} of tree ${treeId} holds ${ops.length} ops, its row says ${n}`);
      have.addOps(ops);
      for (const op of ops) out.push(op);
      chunks.push({ id, n });
    }
    this.trees.set(t, { chunks, have });
    return out;
  }

  private decode(blob: Uint8Array, treeId: string, id: number): Op[] {
    let batches;
    try {
      batches = decodeValidBatches(blob, `chunk ${id} of tree ${treeId}`);
    } catch (e) {
      if (e instanceof CodecError || e instanceof InvalidOpError) throw invalidData(this.file, `chunk ${id} of tree ${treeId}: ${e.message}`);
      throw e;
    }
    const ops: Op[] = [];
    for (const b of batches) {
      if (b.treeId !== treeId) throw invalidData(this.file, `chunk ${id} of tree ${treeId} holds ops of tree ${b.treeId}`);
      for (const op of b.ops) ops.push(op);
    }
    return ops;
  }

  private state(t: number, treeId: string): TreeState {
    let s = this.trees.get(t);
    if (!s) {
      this.readOps(t, treeId);
      s = this.trees.get(t) as TreeState;
    }
    return s;
  }

  /**
   * Stores the ops of `ops` (valid) that tree `t` does not hold yet, as one new chunk, and returns
   * them (in the given order, duplicates within `ops` dropped).
   */
  append(t: number, treeId: string, ops: readonly Op[]): Op[] {
    const s = this.state(t, treeId);
    const fresh: Op[] = [];
    for (const op of ops) {
      if (s.have.has(op.id.peerId, op.id.counter)) continue;
      s.have.add(op.id.peerId, op.id.counter);
      fresh.push(op);
    }
    if (fresh.length === 0) return fresh;
    const db = this.db();
    db.run('INSERT INTO main.chunks (tree, n_ops, ops) VALUES (?, ?, ?)', [t, fresh.length, encodeBatches([{ treeId, seq: 0, ops: fresh }], { compress: true })]);
    const id = Number(db.exec('SELECT last_insert_rowid()')[0]?.values[0]?.[0]);
    s.chunks.push({ id, n: fresh.length });
    this.compact(s, treeId);
    return fresh;
  }

  /** Merges the newest two chunks while they are of similar size (see the module comment). */
  private compact(s: TreeState, treeId: string): void {
    const db = this.db();
    const read = (id: number): Op[] => {
      const blob = db.exec('SELECT ops FROM main.chunks WHERE id = ?', [id])[0]?.values[0]?.[0];
      if (!(blob instanceof Uint8Array)) throw invalidData(this.file, `chunk ${id} of tree ${treeId} is missing`);
      const ops: Op[] = [];
      for (const b of decodeBatches(blob)) for (const op of b.ops) ops.push(op);
      return ops;
    };
    while (s.chunks.length >= 2) {
      const newer = s.chunks[s.chunks.length - 1];
      const older = s.chunks[s.chunks.length - 2];
      if (newer.n * MERGE_RATIO < older.n) return;
      const ops = read(older.id);
      for (const op of read(newer.id)) ops.push(op);
      // The merged chunk keeps the newer id: "chunks with id ≤ X" (a snapshot's cover) stays true.
      db.run('UPDATE main.chunks SET n_ops = ?, ops = ? WHERE id = ?', [ops.length, encodeBatches([{ treeId, seq: 0, ops }], { compress: true }), newer.id]);
      db.run('DELETE FROM main.chunks WHERE id = ?', [older.id]);
      newer.n = ops.length;
      s.chunks.splice(s.chunks.length - 2, 1);
    }
  }
}
