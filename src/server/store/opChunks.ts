/**
 * The server's op storage (schema 3): a space's accepted batches as codec blobs (src/codec/) in
 * `chunks`, each row covering the consecutive seqs first_seq..last_seq of one space, and an index
 * of which op ids are stored where, as counter ranges: `op_ranges (tid, pid, first, last, cid)`
 * says ops first..last of peer `pid` in tree `tid` are in chunk `cid`. A batch is appended as its
 * own chunk (one transaction, durable when the write returns); a run of small chunks of a space is
 * then merged into one (src/codec/chunking.ts), and their ranges with them, so a space keeps a
 * few chunks per thousand ops and a handful of range rows per chunk. See docs/server.md ("Store").
 *
 * Runs inside the store's transactions (better-sqlite3, synchronous).
 */
import { CodecError } from '../../codec/errors';
import { TAIL_CHUNKS, chunksToMerge } from '../../codec/chunking';
import { decodeBatches, encodeBatches, type DecodedBatch } from '../../codec/opBatch';
import type { Op } from '../../spaces/ops';
import { StoreError, type Db } from './database';


export interface ChunkBatch {
  readonly seq: number;
  readonly tid: number;
  readonly treeId: string;
  readonly ops: readonly Op[];
}

export interface StoredChunk {
  readonly cid: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** The codec blob: the chunk's batches (seq, tree, ops). */
  readonly bytes: Uint8Array;
}

export function decodeChunk(bytes: Uint8Array, what: string): DecodedBatch[] {
  try {
    return decodeBatches(bytes);
  } catch (e) {
    if (e instanceof CodecError) throw new StoreError(`${what} is damaged: ${e.message}`);
    throw e;
  }
}

/** Counter runs per (tid, pid): [tid, pid, first, last]. */
function rangesOf(batches: readonly ChunkBatch[], pidOf: (peer: string) => number): Array<[number, number, number, number]> {
  const byKey = new Map<string, { tid: number; pid: number; counters: number[] }>();
  for (const b of batches) {
    for (const op of b.ops) {
      const pid = pidOf(op.id.peerId);
      const k = `${b.tid}/${pid}`;
      let e = byKey.get(k);
      if (!e) byKey.set(k, (e = { tid: b.tid, pid, counters: [] }));
      e.counters.push(op.id.counter);
    }
  }
  const out: Array<[number, number, number, number]> = [];
  for (const { tid, pid, counters } of byKey.values()) {
    counters.sort((x, y) => x - y);
    let first = counters[0];
    let last = first;
    for (let i = 1; i < counters.length; i++) {
      const c = counters[i];
      if (c <= last + 1) {
        last = Math.max(last, c);
        continue;
      }
      out.push([tid, pid, first, last]);
      first = last = c;
    }
    out.push([tid, pid, first, last]);
  }
  return out;
}

export class OpChunks {
  private readonly q;
  private readonly pids = new Map<string, number>();

  constructor(db: Db) {
    this.q = {
      pid: db.prepare('SELECT pid FROM peer_ids WHERE peer = ?').pluck(),
      insertPid: db.prepare('INSERT INTO peer_ids (peer) VALUES (?)'),
      insertChunk: db.prepare('INSERT INTO chunks (sid, first_seq, last_seq, n_ops, ops) VALUES (?, ?, ?, ?, ?)'),
      insertRange: db.prepare('INSERT OR IGNORE INTO op_ranges (tid, pid, first, last, cid) VALUES (?, ?, ?, ?, ?)'),
      covering: db.prepare('SELECT last, cid FROM op_ranges WHERE tid = ? AND pid = ? AND first <= ? ORDER BY first DESC LIMIT 1').raw(),
      chunk: db.prepare('SELECT ops FROM chunks WHERE cid = ?').pluck(),
      newest: db.prepare('SELECT cid, first_seq, n_ops FROM chunks WHERE sid = ? ORDER BY last_seq DESC LIMIT ?').raw(),
      mergeInto: db.prepare('UPDATE chunks SET first_seq = ?, n_ops = ?, ops = ? WHERE cid = ?'),
      deleteChunk: db.prepare('DELETE FROM chunks WHERE cid = ?'),
      rangesOfChunk: db.prepare('SELECT tid, pid, first, last FROM op_ranges WHERE cid = ? ORDER BY tid, pid, first').raw(),
      deleteRangesOfChunk: db.prepare('DELETE FROM op_ranges WHERE cid = ?'),
      chunksAfter: db.prepare('SELECT cid, first_seq, last_seq, ops FROM chunks WHERE sid = ? AND last_seq > ? ORDER BY last_seq').raw(),
    };
  }

  /** Forgets cached ids (after a rollback). */
  reset(): void {
    this.pids.clear();
  }

  pidOf(peer: string, create: boolean): number | undefined {
    let pid = this.pids.get(peer);
    if (pid !== undefined) return pid;
    pid = this.q.pid.get(peer) as number | undefined;
    if (pid === undefined) {
      if (!create) return undefined;
      pid = Number(this.q.insertPid.run(peer).lastInsertRowid);
    }
    this.pids.set(peer, pid);
    return pid;
  }

  /** The chunk holding op (tid, peer, counter), if it is stored. */
  chunkOf(tid: number, peer: string, counter: number): number | undefined {
    const pid = this.pidOf(peer, false);
    if (pid === undefined) return undefined;
    const r = this.q.covering.get(tid, pid, counter) as [number, number] | undefined;
    return r && r[0] >= counter ? r[1] : undefined;
  }

  /** The decoded batches of chunk `cid`. */
  read(cid: number): DecodedBatch[] {
    const blob = this.q.chunk.get(cid) as Buffer | undefined;
    if (!blob) throw new StoreError(`chunk ${cid} is missing`);
    return decodeChunk(blob, `chunk ${cid}`);
  }

  /** Stores batches (consecutive seqs, all ops new) of space `sid` as one chunk; returns its id. */
  append(sid: number, batches: readonly ChunkBatch[]): number {
    let n = 0;
    for (const b of batches) n += b.ops.length;
    const blob = encodeBatches(
      batches.map((b) => ({ treeId: b.treeId, seq: b.seq, ops: b.ops })),
      { compress: true },
    );
    const cid = Number(this.q.insertChunk.run(sid, batches[0].seq, batches[batches.length - 1].seq, n, blob).lastInsertRowid);
    for (const [tid, pid, first, last] of rangesOf(batches, (p) => this.pidOf(p, true) as number)) this.q.insertRange.run(tid, pid, first, last, cid);
    return cid;
  }

  /** Merges the newest small chunks of a space into one when there are enough (src/codec/chunking.ts). */
  compact(sid: number, tidOf: (treeId: string) => number): void {
    // A merge makes the newest chunk a bigger one, which may complete a run of its level.
    while (this.mergeTail(sid, tidOf));
  }

  private mergeTail(sid: number, tidOf: (treeId: string) => number): boolean {
    const rows = this.q.newest.all(sid, TAIL_CHUNKS) as Array<[number, number, number]>;
    const n = chunksToMerge(rows.map((r) => r[2]));
    if (n < 2) return false;
    const tail = rows.slice(0, n).reverse(); // oldest first
    const batches: ChunkBatch[] = [];
    let total = 0;
    for (const [cid] of tail) {
      for (const b of this.read(cid)) batches.push({ seq: b.seq, tid: tidOf(b.treeId), treeId: b.treeId, ops: b.ops });
    }
    for (const b of batches) total += b.ops.length;
    const into = tail[tail.length - 1][0];
    const blob = encodeBatches(
      batches.map((b) => ({ treeId: b.treeId, seq: b.seq, ops: b.ops })),
      { compress: true },
    );
    this.q.mergeInto.run(tail[0][1], total, blob, into);
    // The ranges of all of them now point at the merged chunk; runs that touch become one row.
    let ranges: Array<[number, number, number, number]> = [];
    for (const [cid] of tail) {
      ranges = ranges.concat(this.q.rangesOfChunk.all(cid) as Array<[number, number, number, number]>);
      this.q.deleteRangesOfChunk.run(cid);
      if (cid !== into) this.q.deleteChunk.run(cid);
    }
    ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
    let cur: [number, number, number, number] | undefined;
    for (const r of ranges) {
      if (cur && cur[0] === r[0] && cur[1] === r[1] && r[2] <= cur[3] + 1) {
        cur[3] = Math.max(cur[3], r[3]);
        continue;
      }
      if (cur) this.q.insertRange.run(cur[0], cur[1], cur[2], cur[3], into);
      cur = [r[0], r[1], r[2], r[3]];
    }
    if (cur) this.q.insertRange.run(cur[0], cur[1], cur[2], cur[3], into);
    return true;
  }

  /** Chunks of a space that hold a batch with seq > `afterSeq`, in seq order (one row read at a time). */
  *chunksAfter(sid: number, afterSeq: number): Generator<StoredChunk> {
    for (const [cid, firstSeq, lastSeq, bytes] of this.q.chunksAfter.iterate(sid, afterSeq) as Iterable<[number, number, number, Buffer]>) yield { cid, firstSeq, lastSeq, bytes };
  }
}
