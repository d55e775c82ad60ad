/**
 * The binary op codec: a list of batches (each: a tree, a sequence number and its ops) sharing
 * one peer table and one string table. Storage keeps one such blob per saved chunk of ops; a
 * single batch is the same format with one entry. Figures: docs/storage.md ("Op codec").
 *
 *   byte    CODEC_VERSION
 *   byte    flags (bit 0: the body is raw-deflate compressed; other bits 0)
 *   body:
 *     uvarint nPeers,   nPeers × string (strings.ts; never derived)
 *     uvarint nStrings, nStrings × string (ids, keys, tree ids, repeated values; most used first)
 *     uvarint nBatches, per batch: uvarint tree (string index), svarint seq − previous seq,
 *                                  uvarint nOps, nOps × op
 *   op:
 *     byte header: bits 0-1 kind (0 move, 1 set, 2 remove)
 *                  bit 2  a peer index follows (else: the previous op's peer)
 *                  bit 3  a counter delta follows (svarint; else: the previous op's counter + 1)
 *                  bit 4  a target reference follows (else: the previous op's target)
 *                  move:  bit 5 parent is null; bit 6 parent = the previous move's parent;
 *                         else a parent reference follows
 *                  set:   bits 5-7 the value type (values.ts); remove: bits 5-7 zero
 *     [uvarint peer] [svarint counter delta] [ref target] [ref parent | uvarint key] [value]
 *   ref: uvarint, 0 = the id derived from this op's id (src/spaces/ids.ts), i + 1 = string i
 *
 * "Previous" runs on across the batches of a blob. Decoding is strict and bounded: every count is
 * checked against the bytes left, the inflated body against `maxBodyBytes`, the ops against
 * `maxOps`; anything wrong is a CodecError. The ops are not validated here (callers run
 * `validateOps`), but counters stay within 1..2^53-1 so that no arithmetic loses precision.
 */
import zlib from 'node:zlib';
import type { JsonValue, Op } from '../spaces/ops';
import { ByteReader, ByteWriter } from './bytes';
import { derivedVertexId, parseDerivedVertexId } from '../spaces/ids';
import { CodecError } from './errors';
import { readString, writeTableString } from './strings';
import { readValue, valueType, writeValue } from './values';

export const CODEC_VERSION = 1;

const FLAG_DEFLATE = 1;
const KNOWN_FLAGS = FLAG_DEFLATE;

const KIND_MOVE = 0;
const KIND_SET = 1;
const KIND_REMOVE = 2;
const KIND_MASK = 0b11;
const H_PEER = 1 << 2;
const H_COUNTER = 1 << 3;
const H_TARGET = 1 << 4;
const H_PARENT_NULL = 1 << 5;
const H_PARENT_SAME = 1 << 6;
const MOVE_FLAGS_MASK = 0b1000_0000;
const VALUE_SHIFT = 5;
const VALUE_MASK = 0b111;

/** Ref 0: the target is the id derived from this op's own id. */
const REF_DERIVED = 0;

/** A body smaller than this is stored as is: deflate's own overhead would eat the gain. */
const MIN_DEFLATE_BYTES = 128;

export interface CodecBatch {
  readonly treeId: string;
  /** The batch's sequence number (the server's seq; 0 where there is none). */
  readonly seq: number;
  readonly ops: readonly Op[];
}

export interface DecodedBatch {
  readonly treeId: string;
  readonly seq: number;
  readonly ops: Op[];
}

export interface EncodeOptions {
  /** Deflate the body when that makes it smaller (storage: yes; small wire frames: no). */
  readonly compress?: boolean;
}

export interface DecodeLimits {
  /** Largest body after inflating. */
  readonly maxBodyBytes: number;
  /** Most ops in one blob. */
  readonly maxOps: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = {
  maxBodyBytes: 256 * 1024 * 1024,
  maxOps: 8 * 1024 * 1024,
};

function isMove(op: Op): op is Op & { parentId: string | null } {
  return 'parentId' in op;
}

/** Interns strings with use counts; the table is ordered most used first (1-byte refs). */
class TableBuilder {
  private readonly uses = new Map<string, number>();
  private index: Map<string, number> | undefined;
  strings: string[] = [];

  use(s: string): void {
    this.uses.set(s, (this.uses.get(s) ?? 0) + 1);
  }

  /** Orders the table: by use count, ties in order of first use. */
  seal(keep: (s: string, uses: number) => boolean): void {
    const list: Array<[string, number, number]> = [];
    let i = 0;
    for (const [s, n] of this.uses) if (keep(s, n)) list.push([s, n, i++]);
    list.sort((a, b) => b[1] - a[1] || a[2] - b[2]);
    this.strings = list.map((e) => e[0]);
    this.index = new Map(this.strings.map((s, j) => [s, j]));
  }

  indexOf(s: string): number | undefined {
    return this.index?.get(s);
  }

  ref(s: string): number {
    const i = this.index?.get(s);
    if (i === undefined) throw new Error(`codec: ${JSON.stringify(s)} is not in the string table`);
    return i;
  }
}

/** Encodes batches into one blob. The ops must be valid (`validateOps`); they are not checked here. */
export function encodeBatches(batches: readonly CodecBatch[], opts: EncodeOptions = {}): Uint8Array {
  const peers = new Map<string, number>();
  const ids = new TableBuilder();
  const values = new TableBuilder();
  // Pass 1: the peer table, and what the string table needs (refs the ops will actually write).
  let prevTarget: string | undefined;
  let prevParent: string | null | undefined;
  for (const b of batches) {
    ids.use(b.treeId);
    for (const op of b.ops) {
      const peer = op.id.peerId;
      if (!peers.has(peer)) peers.set(peer, peers.size);
      if (op.targetId !== prevTarget && op.targetId !== derivedVertexId(peer, op.id.counter)) ids.use(op.targetId);
      if (isMove(op)) {
        if (op.parentId !== null && op.parentId !== prevParent) ids.use(op.parentId);
        prevParent = op.parentId;
      } else {
        ids.use(op.key);
        if (typeof op.value === 'string') values.use(op.value);
      }
      prevTarget = op.targetId;
    }
  }
  // A string value goes into the table only when it repeats (once, inline is as small).
  values.seal((_, n) => n > 1);
  for (const s of values.strings) ids.use(s);
  ids.seal(() => true);

  const w = new ByteWriter();
  w.uvarint(peers.size);
  for (const p of peers.keys()) writeTableString(w, p);
  w.uvarint(ids.strings.length);
  for (const s of ids.strings) {
    const d = parseDerivedVertexId(s);
    const peer = d && peers.get(d.peerId);
    writeTableString(w, s, d && peer !== undefined ? { peer, counter: d.counter } : undefined);
  }
  w.uvarint(batches.length);
  let seq = 0;
  let counter = 0;
  let peerIx = -1;
  prevTarget = undefined;
  prevParent = undefined;
  const valueIndex = (s: string): number | undefined => (values.indexOf(s) === undefined ? undefined : ids.ref(s));
  for (const b of batches) {
    w.uvarint(ids.ref(b.treeId));
    w.svarint(b.seq - seq);
    seq = b.seq;
    w.uvarint(b.ops.length);
    for (const op of b.ops) {
      const p = peers.get(op.id.peerId) as number;
      const c = op.id.counter;
      let h = 0;
      if (p !== peerIx) h |= H_PEER;
      if (c !== counter + 1) h |= H_COUNTER;
      if (op.targetId !== prevTarget) h |= H_TARGET;
      let vt = 0;
      if (isMove(op)) {
        h |= KIND_MOVE;
        if (op.parentId === null) h |= H_PARENT_NULL;
        else if (op.parentId === prevParent) h |= H_PARENT_SAME;
      } else if (op.value === undefined) {
        h |= KIND_REMOVE;
      } else {
        vt = valueType(op.value);
        h |= KIND_SET | (vt << VALUE_SHIFT);
      }
      w.byte(h);
      if (h & H_PEER) w.uvarint(p);
      if (h & H_COUNTER) w.svarint(c - counter);
      if (h & H_TARGET) w.uvarint(op.targetId === derivedVertexId(op.id.peerId, c) ? REF_DERIVED : ids.ref(op.targetId) + 1);
      if (isMove(op)) {
        if (op.parentId !== null && op.parentId !== prevParent) w.uvarint(ids.ref(op.parentId) + 1);
        prevParent = op.parentId;
      } else {
        w.uvarint(ids.ref(op.key));
        if (op.value !== undefined) writeValue(w, vt, op.value, valueIndex);
      }
      peerIx = p;
      counter = c;
      prevTarget = op.targetId;
    }
  }
  const body = w.finish();
  const deflated = opts.compress && body.length >= MIN_DEFLATE_BYTES ? zlib.deflateRawSync(body) : undefined;
  const useDeflate = deflated !== undefined && deflated.length < body.length;
  const payload = useDeflate ? deflated : body;
  const out = new Uint8Array(2 + payload.length);
  out[0] = CODEC_VERSION;
  out[1] = useDeflate ? FLAG_DEFLATE : 0;
  out.set(payload, 2);
  return out;
}

/** The body of a blob: checks version and flags, inflates within the limit. */
function bodyOf(bytes: Uint8Array, limits: DecodeLimits): Uint8Array {
  if (bytes.length < 2) throw new CodecError(`truncated: a codec blob has at least 2 bytes, got ${bytes.length}`, 'TRUNCATED');
  if (bytes[0] !== CODEC_VERSION) {
    throw new CodecError(`codec version ${bytes[0]} is not one this build reads (${CODEC_VERSION}); a newer version of Spaces wrote it`, 'VERSION');
  }
  const flags = bytes[1];
  if (flags & ~KNOWN_FLAGS) throw new CodecError(`unknown codec flags ${flags.toString(2)}`, 'BAD_KIND');
  const payload = bytes.subarray(2);
  if (!(flags & FLAG_DEFLATE)) {
    if (payload.length > limits.maxBodyBytes) throw new CodecError(`codec body of ${payload.length} bytes is larger than ${limits.maxBodyBytes}`, 'TOO_LARGE');
    return payload;
  }
  try {
    return zlib.inflateRawSync(payload, { maxOutputLength: limits.maxBodyBytes });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') throw new CodecError(`codec body inflates past ${limits.maxBodyBytes} bytes`, 'TOO_LARGE');
    throw new CodecError(`codec body does not inflate (${e instanceof Error ? e.message : String(e)})`, 'BAD_COMPRESSION');
  }
}

/** Decodes a blob into its batches (ops not validated: run `validateOps` per batch). */
export function decodeBatches(bytes: Uint8Array, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): DecodedBatch[] {
  const r = new ByteReader(bodyOf(bytes, limits));
  const nPeers = r.count('peer count');
  const peers: string[] = new Array<string>(nPeers);
  for (let i = 0; i < nPeers; i++) peers[i] = readString(r, 'a peer id');
  const derive = (peer: number, counter: number): string => {
    const p = peers[peer];
    const id = p === undefined ? undefined : derivedVertexId(p, counter);
    if (id === undefined) throw new CodecError(`derived id of peer #${peer} counter ${counter} is not possible (${nPeers} peers)`, 'BAD_REF');
    return id;
  };
  const nStrings = r.count('string count');
  const table: string[] = new Array<string>(nStrings);
  for (let i = 0; i < nStrings; i++) table[i] = readString(r, 'a table string', derive);
  const str = (i: number, what: string): string => {
    const s = table[i];
    if (s === undefined) throw new CodecError(`${what} points past the string table (${i} of ${nStrings}) at offset ${r.offset}`, 'BAD_REF');
    return s;
  };
  const nBatches = r.count('batch count', 3);
  const out: DecodedBatch[] = new Array<DecodedBatch>(nBatches);
  let total = 0;
  let seq = 0;
  let counter = 0;
  let peerId: string | undefined;
  let target: string | undefined;
  let parent: string | null | undefined;
  for (let bi = 0; bi < nBatches; bi++) {
    const treeId = str(r.uvarint('a tree reference'), 'a tree reference');
    seq += r.svarint('a seq delta');
    if (!Number.isSafeInteger(seq) || seq < 0) throw new CodecError(`batch #${bi} has seq ${seq}, outside 0..2^53-1`, 'BAD_VALUE');
    const nOps = r.count('op count');
    total += nOps;
    if (total > limits.maxOps) throw new CodecError(`more than ${limits.maxOps} ops in one blob`, 'TOO_LARGE');
    const ops: Op[] = new Array<Op>(nOps);
    for (let i = 0; i < nOps; i++) {
      const at = r.offset;
      const h = r.byte('an op header');
      const kind = h & KIND_MASK;
      if (h & H_PEER) {
        const p = r.uvarint('a peer reference');
        peerId = peers[p];
        if (peerId === undefined) throw new CodecError(`op at offset ${at} names peer #${p} of ${nPeers}`, 'BAD_REF');
      } else if (peerId === undefined) {
        throw new CodecError(`op at offset ${at} reuses the previous op's peer, but there is none`, 'BAD_REF');
      }
      const c = h & H_COUNTER ? counter + r.svarint('a counter delta') : counter + 1;
      if (!Number.isSafeInteger(c) || c < 1) throw new CodecError(`op at offset ${at} has counter ${c}, outside 1..2^53-1`, 'BAD_VALUE');
      counter = c;
      if (h & H_TARGET) {
        const ref = r.uvarint('a target reference');
        if (ref === REF_DERIVED) {
          const d = derivedVertexId(peerId, c);
          if (d === undefined) throw new CodecError(`op at offset ${at} derives its target from peer ${peerId}, which is not 16 hex digits`, 'BAD_REF');
          target = d;
        } else {
          target = str(ref - 1, 'a target reference');
        }
      } else if (target === undefined) {
        throw new CodecError(`op at offset ${at} reuses the previous op's target, but there is none`, 'BAD_REF');
      }
      const id = { counter: c, peerId };
      switch (kind) {
        case KIND_MOVE: {
          if (h & MOVE_FLAGS_MASK) throw new CodecError(`move at offset ${at} has unknown flags`, 'BAD_KIND');
          if (h & H_PARENT_NULL) {
            if (h & H_PARENT_SAME) throw new CodecError(`move at offset ${at} has a null and a repeated parent`, 'BAD_KIND');
            parent = null;
          } else if (h & H_PARENT_SAME) {
            if (parent === undefined) throw new CodecError(`move at offset ${at} reuses the previous parent, but there is none`, 'BAD_REF');
          } else {
            const ref = r.uvarint('a parent reference');
            if (ref === REF_DERIVED) throw new CodecError(`move at offset ${at} derives its parent from itself`, 'BAD_REF');
            parent = str(ref - 1, 'a parent reference');
          }
          ops[i] = { id, targetId: target, parentId: parent };
          break;
        }
        case KIND_SET: {
          const key = str(r.uvarint('a key reference'), 'a key reference');
          const value = readValue(r, (h >> VALUE_SHIFT) & VALUE_MASK, table) as JsonValue;
          ops[i] = { id, targetId: target, key, value, transient: false };
          break;
        }
        case KIND_REMOVE: {
          if (h >> VALUE_SHIFT) throw new CodecError(`remove at offset ${at} has a value type`, 'BAD_KIND');
          const key = str(r.uvarint('a key reference'), 'a key reference');
          ops[i] = { id, targetId: target, key, value: undefined, transient: false };
          break;
        }
        default:
          throw new CodecError(`op at offset ${at} has unknown kind ${kind}`, 'BAD_KIND');
      }
    }
    out[bi] = { treeId, seq, ops };
  }
  if (r.remaining > 0) throw new CodecError(`${r.remaining} bytes after the last batch`, 'TRAILING');
  return out;
}
