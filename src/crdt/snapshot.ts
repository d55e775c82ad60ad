/**
 * Snapshots: a tree's state in a compact binary form that loads without replaying its ops —
 * vertices, parents and child order, the winning properties with their op ids, the property ops
 * they superseded, the move log (op ids and undo records, for merging concurrent older ops
 * later), the state vector, the Lamport clock and the parked ops. A tree loaded from a snapshot
 * plus the ops that came after it equals the tree built from all the ops.
 *
 * Layout (little-endian): magic "RTSN", version byte, flags byte (0), body length (u32), CRC-32
 * of the body (u32), body. The body is varints (unsigned LEB128, counters up to 2^53) and
 * length-prefixed UTF-8 strings, in the order `encode` writes them. A snapshot that is truncated,
 * damaged, from a newer version or inconsistent (an index out of range, a cycle, children that
 * disagree with parents) is refused with a SnapshotError, so the caller can rebuild from ops.
 */
import * as zlib from 'node:zlib';
import type { TreeColumns } from './repTree';
import type { MoveVertex, SetVertexProperty, VertexOperation, VertexPropertyType } from './operations';
import type { StateVectorRanges } from './stateVector';

export const SNAPSHOT_VERSION = 1;
const MAGIC = [0x52, 0x54, 0x53, 0x4e]; // "RTSN"
const HEADER_BYTES = 14;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

// Value tags.
const V_UNDEFINED = 0;
const V_NULL = 1;
const V_FALSE = 2;
const V_TRUE = 3;
const V_UINT = 4;
const V_NEGINT = 5;
const V_FLOAT = 6;
const V_STRING = 7;
const V_JSON = 8;

// Parked op kinds.
const PARKED_MOVE = 0;
const PARKED_MOVE_TO_ROOT = 1;
const PARKED_PROPERTY = 2;

export type SnapshotErrorCode = 'truncated' | 'not-a-snapshot' | 'newer-version' | 'checksum' | 'corrupt';

/** A snapshot that cannot be used; `code` says why. The tree can always be rebuilt from its ops. */
export class SnapshotError extends Error {
  constructor(
    readonly code: SnapshotErrorCode,
    message: string,
  ) {
    super(`snapshot ${code}: ${message}`);
    this.name = 'SnapshotError';
  }
}

/** Something with the columns of a tree (RepTree). */
export interface SnapshotSource {
  toState(): TreeColumns;
}

export function encodeSnapshot(tree: SnapshotSource): Uint8Array {
  const s = tree.toState();
  const w = new Writer();
  w.strings(s.peers);
  w.strings(s.keys);
  w.stringBlob(s.vertexIds);
  const n = s.vertexIds.length;
  for (let v = 0; v < n; v++) w.uint(s.parents[v] + 1);
  for (let v = 0; v < n; v++) {
    w.uint(s.childStart[v + 1] - s.childStart[v]);
    for (let j = s.childStart[v]; j < s.childStart[v + 1]; j++) w.uint(s.childList[j]);
  }
  const pc = s.propVertex.length;
  w.uint(pc);
  let lastVertex = 0;
  for (let e = 0; e < pc; e++) {
    w.uint(s.propVertex[e] - lastVertex);
    lastVertex = s.propVertex[e];
    w.uint(s.propKey[e]);
    w.uint(s.propPeer[e]);
    w.uint(s.propCounter[e]);
    w.value(s.propValue[e]);
  }
  const mc = s.moveCounter.length;
  w.uint(mc);
  let lastCounter = 0;
  for (let i = 0; i < mc; i++) {
    w.uint(s.moveCounter[i] - lastCounter);
    lastCounter = s.moveCounter[i];
    w.uint(s.movePeer[i]);
    w.uint(s.moveTarget[i]);
    w.uint(s.moveParent[i] + 1);
    w.uint(s.moveUndo[i] + 2);
  }
  const sc = s.supCounter.length;
  w.uint(sc);
  for (let i = 0; i < sc; i++) {
    w.uint(s.supTarget[i]);
    w.uint(s.supKey[i]);
    w.uint(s.supPeer[i]);
    w.uint(s.supCounter[i]);
    w.value(s.supValue[i]);
  }
  const svPeers = Object.keys(s.stateVector);
  w.uint(svPeers.length);
  for (const peer of svPeers) {
    w.string(peer);
    const ranges = s.stateVector[peer];
    w.uint(ranges.length);
    let last = 0;
    for (const [a, b] of ranges) {
      w.uint(a - last);
      w.uint(b - a);
      last = b;
    }
  }
  w.uint(s.clock);
  w.uint(s.parked.length);
  for (const op of s.parked) {
    if ('parentId' in op) {
      w.uint(op.parentId === null ? PARKED_MOVE_TO_ROOT : PARKED_MOVE);
      w.uint(op.id.counter);
      w.string(op.id.peerId);
      w.string(op.targetId);
      if (op.parentId !== null) w.string(op.parentId);
    } else {
      w.uint(PARKED_PROPERTY);
      w.uint(op.id.counter);
      w.string(op.id.peerId);
      w.string(op.targetId);
      w.string(op.key);
      w.value(op.value);
    }
  }
  const body = w.finish();
  const out = new Uint8Array(HEADER_BYTES + body.length);
  out.set(MAGIC, 0);
  out[4] = SNAPSHOT_VERSION;
  out[5] = 0;
  const view = new DataView(out.buffer);
  view.setUint32(6, body.length, true);
  view.setUint32(10, crc32(body), true);
  out.set(body, HEADER_BYTES);
  return out;
}

/** The columns in `bytes`, checked; throws SnapshotError. */
export function decodeSnapshot(bytes: Uint8Array): TreeColumns {
  const body = checkSnapshotHeader(bytes);
  try {
    return readBody(new Reader(body));
  } catch (e) {
    if (e instanceof SnapshotError) throw e;
    throw new SnapshotError('corrupt', e instanceof Error ? e.message : String(e));
  }
}

/**
 * Checks what can be checked without decoding the body — magic, version, length, CRC-32 — and
 * returns the body; throws SnapshotError (`truncated`, `newer-version`, `checksum`, …).
 */
export function checkSnapshotHeader(bytes: Uint8Array): Uint8Array {
  if (bytes.length < HEADER_BYTES) throw new SnapshotError('truncated', `${bytes.length} bytes, shorter than the header`);
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) throw new SnapshotError('not-a-snapshot', 'bad magic bytes');
  if (bytes[4] > SNAPSHOT_VERSION) throw new SnapshotError('newer-version', `version ${bytes[4]}; this build reads up to ${SNAPSHOT_VERSION}`);
  if (bytes[4] < 1 || bytes[5] !== 0) throw new SnapshotError('corrupt', `version ${bytes[4]}, flags ${bytes[5]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(6, true);
  if (bytes.length < HEADER_BYTES + length) throw new SnapshotError('truncated', `body of ${length} bytes, ${bytes.length - HEADER_BYTES} present`);
  if (bytes.length > HEADER_BYTES + length) throw new SnapshotError('corrupt', `${bytes.length - HEADER_BYTES - length} bytes after the body`);
  const body = bytes.subarray(HEADER_BYTES);
  if (crc32(body) !== view.getUint32(10, true)) throw new SnapshotError('checksum', 'the body does not match its CRC-32');
  return body;
}

function readBody(r: Reader): TreeColumns {
  const peers = r.strings();
  const keys = r.strings();
  const vertexIds = r.stringBlob();
  unique(peers, 'peer id');
  unique(keys, 'key');
  // Vertex ids are checked for repeats as the tree indexes them (RepTree.fromState).
  const n = vertexIds.length;
  const parents = new Int32Array(n);
  for (let v = 0; v < n; v++) parents[v] = r.index(n + 1, 'parent') - 1;
  const childStart = new Int32Array(n + 1);
  const children: number[] = [];
  const seenAsChild = new Uint8Array(n);
  for (let v = 0; v < n; v++) {
    childStart[v] = children.length;
    const count = r.index(n + 1, 'child count');
    for (let j = 0; j < count; j++) {
      const c = r.index(n, 'child');
      if (parents[c] !== v || seenAsChild[c]) throw new SnapshotError('corrupt', `vertex ${c} listed as a child of ${v}, which is not its parent`);
      seenAsChild[c] = 1;
      children.push(c);
    }
  }
  childStart[n] = children.length;
  for (let v = 0; v < n; v++) if (parents[v] >= 0 && !seenAsChild[v]) throw new SnapshotError('corrupt', `vertex ${v} is missing from its parent's children`);
  checkNoCycles(parents);
  const pc = r.count();
  const propVertex = new Int32Array(pc);
  const propKey = new Int32Array(pc);
  const propPeer = new Int32Array(pc);
  const propCounter = new Float64Array(pc);
  const propValue: VertexPropertyType[] = new Array<VertexPropertyType>(pc);
  let vertex = 0;
  let groupStart = 0;
  for (let e = 0; e < pc; e++) {
    const step = r.uint();
    vertex += step;
    if (vertex >= n) throw new SnapshotError('corrupt', `property of vertex ${vertex}, of ${n}`);
    if (step > 0) groupStart = e;
    propVertex[e] = vertex;
    propKey[e] = r.index(keys.length, 'key');
    for (let x = groupStart; x < e; x++) if (propKey[x] === propKey[e]) throw new SnapshotError('corrupt', `key ${propKey[e]} twice on vertex ${vertex}`);
    propPeer[e] = r.index(peers.length, 'peer');
    propCounter[e] = r.counter();
    propValue[e] = r.value();
  }
  const mc = r.count();
  const movePeer = new Int32Array(mc);
  const moveTarget = new Int32Array(mc);
  const moveParent = new Int32Array(mc);
  const moveUndo = new Int32Array(mc);
  const moveCounter = new Float64Array(mc);
  let counter = 0;
  for (let i = 0; i < mc; i++) {
    counter += r.uint();
    if (counter < 1 || counter > MAX_SAFE) throw new SnapshotError('corrupt', `move counter ${counter}`);
    moveCounter[i] = counter;
    movePeer[i] = r.index(peers.length, 'peer');
    if (i > 0 && counter === moveCounter[i - 1] && !(peers[movePeer[i]] > peers[movePeer[i - 1]])) throw new SnapshotError('corrupt', 'the move log is not in op-id order');
    moveTarget[i] = r.index(n, 'move target');
    moveParent[i] = r.index(n + 1, 'move parent') - 1;
    moveUndo[i] = r.index(n + 2, 'undo record') - 2;
  }
  const sc = r.count();
  const supTarget = new Int32Array(sc);
  const supKey = new Int32Array(sc);
  const supPeer = new Int32Array(sc);
  const supCounter = new Float64Array(sc);
  const supValue: VertexPropertyType[] = new Array<VertexPropertyType>(sc);
  for (let i = 0; i < sc; i++) {
    supTarget[i] = r.index(n, 'target');
    supKey[i] = r.index(keys.length, 'key');
    supPeer[i] = r.index(peers.length, 'peer');
    supCounter[i] = r.counter();
    supValue[i] = r.value();
  }
  const stateVector: StateVectorRanges = {};
  const svPeers = r.count();
  for (let p = 0; p < svPeers; p++) {
    const peer = r.string();
    if (Object.prototype.hasOwnProperty.call(stateVector, peer)) throw new SnapshotError('corrupt', `peer ${peer} twice in the state vector`);
    const ranges: number[][] = [];
    let last = 0;
    for (let k = r.count(); k > 0; k--) {
      const a = last + r.uint();
      const b = a + r.uint();
      if (a < 1 || b > MAX_SAFE || (ranges.length > 0 && a <= last)) throw new SnapshotError('corrupt', `state vector range [${a}, ${b}] of ${peer}`);
      ranges.push([a, b]);
      last = b;
    }
    stateVector[peer] = ranges;
  }
  const clock = r.uint();
  if (clock > MAX_SAFE) throw new SnapshotError('corrupt', `clock ${clock}`);
  const parked: VertexOperation[] = [];
  for (let k = r.count(); k > 0; k--) {
    const kind = r.uint();
    const id = { counter: r.counter(), peerId: r.string() };
    const targetId = r.string();
    if (kind === PARKED_MOVE || kind === PARKED_MOVE_TO_ROOT) {
      const op: MoveVertex = { id, targetId, parentId: kind === PARKED_MOVE ? r.string() : null };
      parked.push(op);
    } else if (kind === PARKED_PROPERTY) {
      const key = r.string();
      const op: SetVertexProperty = { id, targetId, key, value: r.value(), transient: false };
      parked.push(op);
    } else throw new SnapshotError('corrupt', `parked op kind ${kind}`);
  }
  if (!r.done()) throw new SnapshotError('corrupt', 'bytes left after the last section');
  return {
    vertexIds,
    parents,
    childList: Int32Array.from(children),
    childStart,
    peers,
    keys,
    propVertex,
    propKey,
    propPeer,
    propCounter,
    propValue,
    movePeer,
    moveTarget,
    moveParent,
    moveUndo,
    moveCounter,
    supTarget,
    supKey,
    supPeer,
    supCounter,
    supValue,
    stateVector,
    clock,
    parked,
  };
}

function unique(xs: readonly string[], what: string): void {
  if (new Set(xs).size !== xs.length) throw new SnapshotError('corrupt', `a ${what} appears twice`);
}

/** Every parent chain ends at a vertex without a parent (O(n): each vertex is walked once). */
function checkNoCycles(parents: Int32Array): void {
  const state = new Uint8Array(parents.length); // 0 unvisited, 1 on the current walk, 2 done
  for (let v = 0; v < parents.length; v++) {
    let x = v;
    while (x >= 0 && state[x] === 0) {
      state[x] = 1;
      x = parents[x];
    }
    if (x >= 0 && state[x] === 1) throw new SnapshotError('corrupt', `a cycle through vertex ${x}`);
    for (let y = v; y >= 0 && state[y] === 1; y = parents[y]) state[y] = 2;
  }
}

class Writer {
  private buf = Buffer.allocUnsafe(1 << 16);
  private pos = 0;

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Unsigned LEB128 of an integer in 0..2^53-1 (arithmetic, not 32-bit shifts). */
  uint(x: number): void {
    this.room(8);
    let v = x;
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  string(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.uint(n);
    this.room(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  strings(xs: readonly string[]): void {
    this.uint(xs.length);
    for (const s of xs) this.string(s);
  }

  /** Many strings as their UTF-16 lengths and one UTF-8 blob: one decode for all of them. */
  stringBlob(xs: readonly string[]): void {
    this.uint(xs.length);
    for (const s of xs) this.uint(s.length);
    this.string(xs.join(''));
  }

  value(v: VertexPropertyType): void {
    if (v === undefined) this.uint(V_UNDEFINED);
    else if (v === null) this.uint(V_NULL);
    else if (v === false) this.uint(V_FALSE);
    else if (v === true) this.uint(V_TRUE);
    else if (typeof v === 'number') {
      if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
        this.uint(v >= 0 ? V_UINT : V_NEGINT);
        this.uint(Math.abs(v));
      } else {
        this.uint(V_FLOAT);
        this.room(8);
        this.buf.writeDoubleLE(v, this.pos);
        this.pos += 8;
      }
    } else if (typeof v === 'string') {
      this.uint(V_STRING);
      this.string(v);
    } else {
      this.uint(V_JSON);
      this.string(JSON.stringify(v));
    }
  }

  finish(): Uint8Array {
    return new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.pos).slice();
  }
}

class Reader {
  private pos = 0;
  private readonly buf: Buffer;

  constructor(bytes: Uint8Array) {
    this.buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  done(): boolean {
    return this.pos === this.buf.length;
  }

  uint(): number {
    let x = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= this.buf.length) throw new SnapshotError('corrupt', 'a number runs past the end');
      const b = this.buf[this.pos++];
      x += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 0x80;
      if (scale > 2 ** 56) throw new SnapshotError('corrupt', 'a number longer than 8 bytes');
    }
    if (x > MAX_SAFE) throw new SnapshotError('corrupt', `number ${x} above 2^53-1`);
    return x;
  }

  /** A length or count: at most the bytes left, so a damaged one cannot allocate gigabytes. */
  count(): number {
    const n = this.uint();
    if (n > this.buf.length - this.pos) throw new SnapshotError('corrupt', `count ${n} larger than the bytes left`);
    return n;
  }

  index(limit: number, what: string): number {
    const i = this.uint();
    if (i >= limit) throw new SnapshotError('corrupt', `${what} ${i} out of range (${limit})`);
    return i;
  }

  counter(): number {
    const c = this.uint();
    if (c < 1) throw new SnapshotError('corrupt', 'counter 0');
    return c;
  }

  string(): string {
    const n = this.count();
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  stringBlob(): string[] {
    const n = this.count();
    const lengths = new Array<number>(n);
    let total = 0;
    for (let i = 0; i < n; i++) total += lengths[i] = this.uint();
    const blob = this.string();
    if (blob.length !== total) throw new SnapshotError('corrupt', `string lengths add up to ${total}, the blob has ${blob.length}`);
    const out = new Array<string>(n);
    let at = 0;
    for (let i = 0; i < n; i++) {
      out[i] = blob.slice(at, at + lengths[i]);
      at += lengths[i];
    }
    return out;
  }

  strings(): string[] {
    const n = this.count();
    const out = new Array<string>(n);
    for (let i = 0; i < n; i++) out[i] = this.string();
    return out;
  }

  value(): VertexPropertyType {
    const tag = this.uint();
    switch (tag) {
      case V_UNDEFINED:
        return undefined;
      case V_NULL:
        return null;
      case V_FALSE:
        return false;
      case V_TRUE:
        return true;
      case V_UINT:
        return this.uint();
      case V_NEGINT:
        return -this.uint();
      case V_FLOAT: {
        if (this.pos + 8 > this.buf.length) throw new SnapshotError('corrupt', 'a number runs past the end');
        const v = this.buf.readDoubleLE(this.pos);
        this.pos += 8;
        if (!Number.isFinite(v)) throw new SnapshotError('corrupt', 'a value that is not a finite number');
        return v;
      }
      case V_STRING:
        return this.string();
      case V_JSON: {
        const v: unknown = JSON.parse(this.string());
        if (typeof v !== 'object' || v === null) throw new SnapshotError('corrupt', 'a JSON value that is not an object or array');
        return v as VertexPropertyType;
      }
      default:
        throw new SnapshotError('corrupt', `value tag ${tag}`);
    }
  }
}

/** CRC-32 (IEEE 802.3), computed by zlib. */
export function crc32(bytes: Uint8Array): number {
  return zlib.crc32(bytes) >>> 0;
}
