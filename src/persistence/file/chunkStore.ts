/**
 * A space file's ops (schema 2): per tree, rows of `chunks`, each a codec blob (src/codec/) of
 * ops the tree did not hold before. Which ops a tree holds (its state vector, an OpRangeSet) is
 * rebuilt from the blobs the first time a tree is read or written, so there is no per-op index
 * row; a save keeps only the ops that are new ("INSERT OR IGNORE" by op id, as schema 1 did).
 *
 * Small chunks are merged as they accumulate (src/codec/chunking.ts): a tree saved in many small
 * flushes keeps a few chunks per thousand ops, and each op is re-encoded a few times at most.
 *
 * Runs in the worker on the SpaceDb's database, inside its transactions; `reset()` after a
 * rollback drops the cached state.
 */
import type { Database } from 'sql.js';
import { TAIL_CHUNKS, chunksToMerge } from '../../codec/chunking';
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

  /**
   * The ops of tree `t`'s chunks with id > `after` (the tail after a snapshot), decoded and
   * validated like `readOps`. The tree's state vector is not rebuilt (it needs every chunk).
   */
  readOpsAfter(t: number, treeId: string, after: number): Op[] {
    const out: Op[] = [];
    for (const [id, n, blob] of this.db().exec('SELECT id, n_ops, ops FROM main.chunks WHERE tree = ? AND id > ? ORDER BY id', [t, after])[0]?.values ?? []) {
      if (!(blob instanceof Uint8Array) || typeof id !== 'number' || typeof n !== 'number') throw invalidData(this.file, `chunk ${String(id)} of tree ${treeId} is not a blob`);
      const ops = this.decode(blob, treeId, id);
      if (ops.length !== n) throw invalidData(this.file, `chunk ${id} of tree ${treeId} holds ${ops.length} ops, its row says ${n}`);
      for (const op of ops) out.push(op);
    }
    return out;
  }

  /** How many ops tree `t` holds in chunks with id > `after` (each op is in one chunk), and the newest chunk's id (0: none). */
  countAfter(t: number, after = 0): { ops: number; newest: number } {
    const row = this.db().exec('SELECT coalesce(sum(n_ops), 0), coalesce(max(id), 0) FROM main.chunks WHERE tree = ? AND id > ?', [t, after])[0]?.values[0];
    return { ops: Number(row?.[0] ?? 0), newest: Number(row?.[1] ?? 0) };
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
    // Repeats within the batch, per peer as numbers: no key string per op (a clone stores 100k at once).
    const inBatch = new Map<string, Set<number>>();
    let lastPeer = '';
    let seen: Set<number> | undefined;
    for (const op of ops) {
      const { peerId, counter } = op.id;
      if (s.have.has(peerId, counter)) continue;
      if (peerId !== lastPeer || !seen) {
        lastPeer = peerId;
        seen = inBatch.get(peerId);
        if (!seen) inBatch.set(peerId, (seen = new Set()));
      }
      if (seen.has(counter)) continue;
      seen.add(counter);
      fresh.push(op);
    }
    if (fresh.length === 0) return fresh;
    // All at once: adding one by one is O(ranges) per op that lands before the last range.
    s.have.addOps(fresh);
    const db = this.db();
    db.run('INSERT INTO main.chunks (tree, n_ops, ops) VALUES (?, ?, ?)', [t, fresh.length, encodeBatches([{ treeId, seq: 0, ops: fresh }], { compress: true })]);
    const id = Number(db.exec('SELECT last_insert_rowid()')[0]?.values[0]?.[0]);
    s.chunks.push({ id, n: fresh.length });
    this.compact(s, treeId);
    return fresh;
  }

  /** Merges the newest small chunks of a tree into one when there are enough (src/codec/chunking.ts). */
  private compact(s: TreeState, treeId: string): void {
    // A merge makes the newest chunk a bigger one, which may complete a run of its level.
    while (this.mergeTail(s, treeId));
  }

  private mergeTail(s: TreeState, treeId: string): boolean {
    const newestFirst: number[] = [];
    for (let i = s.chunks.length - 1; i >= 0 && newestFirst.length < TAIL_CHUNKS; i--) newestFirst.push(s.chunks[i].n);
    const n = chunksToMerge(newestFirst);
    if (n < 2) return false;
    const db = this.db();
    const tail = s.chunks.slice(s.chunks.length - n);
    const ops: Op[] = [];
    for (const c of tail) {
      const blob = db.exec('SELECT ops FROM main.chunks WHERE id = ?', [c.id])[0]?.values[0]?.[0];
      if (!(blob instanceof Uint8Array)) throw invalidData(this.file, `chunk ${c.id} of tree ${treeId} is missing`);
      for (const b of decodeBatches(blob)) for (const op of b.ops) ops.push(op);
    }
    // The merged chunk keeps the newest id: "chunks with id ≤ X" (a snapshot's cover) stays true.
    const into = tail[tail.length - 1];
    db.run('UPDATE main.chunks SET n_ops = ?, ops = ? WHERE id = ?', [ops.length, encodeBatches([{ treeId, seq: 0, ops }], { compress: true }), into.id]);
    for (const c of tail) if (c !== into) db.run('DELETE FROM main.chunks WHERE id = ?', [c.id]);
    into.n = ops.length;
    s.chunks.splice(s.chunks.length - n, n - 1);
    return true;
  }
}
