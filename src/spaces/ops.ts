/**
 * Operations as they are stored and sent: RepTree's two op kinds, validated at every edge.
 *
 * RepTree's `merge()` trusts its input: a malformed op, a move of a tree's root or a counter
 * past 2^53 breaks or freezes the tree. Every op that comes from a file, a socket or another
 * process goes through `validateOps` first, and a batch with one bad op is rejected whole.
 */
import type { MoveVertex, SetVertexProperty, VertexOperation } from '../crdt';
import { isValidPeerId } from './peerId';
import { ID_LIMITS, isVertexId } from './ids';

export type Op = VertexOperation;
export type MoveOp = MoveVertex;
export type PropertyOp = SetVertexProperty;
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The id of RepTree's internal "deleted" parent: moving a vertex under it deletes the vertex. */
export const DELETED_PARENT_ID = '0';

export const LIMITS = {
  /** Longest vertex id (RepTree uses UUIDs, 36 chars). */
  maxVertexIdLength: ID_LIMITS.maxVertexIdLength,
  maxKeyLength: 256,
  /** Largest JSON-encoded property value. */
  maxValueBytes: 1024 * 1024,
  /** Deepest nesting of a property value. */
  maxValueDepth: 32,
  /** Counters are Lamport clocks; past 2^53 they lose precision and ids collide. */
  maxCounter: Number.MAX_SAFE_INTEGER,
} as const;


export class InvalidOpError extends Error {
  constructor(
    message: string,
    readonly index: number,
  ) {
    super(message);
    this.name = 'InvalidOpError';
  }
}

export function isMoveOp(op: Op): op is MoveOp {
  return 'parentId' in op;
}

export function isPropertyOp(op: Op): op is PropertyOp {
  return 'key' in op;
}

/** A key unique within one tree: `counter@peerId`. */
export function opKey(op: Op): string {
  return `${op.id.counter}@${op.id.peerId}`;
}

/**
 * Total order of op ids, the same order RepTree applies moves in: counter, then peer id.
 * Peer ids are restricted to [0-9a-z], where RepTree's `localeCompare` and a code-point
 * comparison agree, so this is both fast and identical to RepTree's order.
 */
export function compareOps(a: Op, b: Op): number {
  const d = a.id.counter - b.id.counter;
  if (d !== 0) return d;
  const pa = a.id.peerId;
  const pb = b.id.peerId;
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}

/** Sorts in place by op id and drops duplicates (same id). Returns the same array. */
export function sortAndDedupe(ops: Op[]): Op[] {
  ops.sort(compareOps);
  let w = 0;
  for (let r = 0; r < ops.length; r++) {
    if (w > 0 && compareOps(ops[w - 1], ops[r]) === 0) continue;
    ops[w++] = ops[r];
  }
  ops.length = w;
  return ops;
}

/** Checks that `v` is plain JSON (no undefined inside, no NaN, no cycles) within the depth limit. */
export function isJsonValue(v: unknown, depth = 0): v is JsonValue {
  if (depth > LIMITS.maxValueDepth) return false;
  if (v === null) return true;
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(v);
    case 'object': {
      if (Array.isArray(v)) return v.every((x) => isJsonValue(x, depth + 1));
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) return false;
      for (const [k, x] of Object.entries(v)) {
        if (k === '__proto__' || !isJsonValue(x, depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** Approximate encoded size of a JSON value without serialising small scalars. */
function jsonBytes(v: JsonValue): number {
  if (typeof v === 'string') return v.length * 3 + 2;
  if (typeof v !== 'object' || v === null) return 24;
  return Buffer.byteLength(JSON.stringify(v));
}

/**
 * Returns a problem description for one op, or undefined when it is valid for tree `treeId`
 * (whose root vertex id equals the tree id).
 */
export function checkOp(op: unknown, treeId: string): string | undefined {
  if (typeof op !== 'object' || op === null) return 'not an object';
  const o = op as Record<string, unknown>;
  const id = o.id as Record<string, unknown> | undefined;
  if (typeof id !== 'object' || id === null) return 'missing id';
  const counter = id.counter;
  if (typeof counter !== 'number' || !Number.isSafeInteger(counter) || counter < 1 || counter > LIMITS.maxCounter) {
    return `counter must be an integer in 1..2^53-1 (got ${String(counter)})`;
  }
  if (!isValidPeerId(id.peerId)) return `bad peer id ${JSON.stringify(id.peerId)}`;
  if (!isVertexId(o.targetId)) return `bad target id ${JSON.stringify(o.targetId)}`;
  if ('parentId' in o) {
    if ('key' in o) return 'an op cannot be both a move and a property op';
    const parentId = o.parentId;
    if (parentId === null) {
      if (o.targetId !== DELETED_PARENT_ID && o.targetId !== treeId) return 'only the root may have no parent';
    } else {
      if (!isVertexId(parentId)) return `bad parent id ${JSON.stringify(parentId)}`;
      if (o.targetId === treeId) return "a tree's root cannot be moved";
      if (o.targetId === DELETED_PARENT_ID) return 'the deleted-items vertex cannot be moved';
    }
    return undefined;
  }
  if ('key' in o) {
    const key = o.key;
    if (typeof key !== 'string' || key.length === 0 || key.length > LIMITS.maxKeyLength || key === '__proto__') {
      return `bad property key ${JSON.stringify(key)}`;
    }
    if (o.transient !== false) return 'transient property ops are never stored or sent';
    // undefined means "remove the property" in RepTree; the codec stores it as a removal flag.
    if (o.value === undefined) return undefined;
    if (!isJsonValue(o.value)) return `value of ${key} is not JSON`;
    if (jsonBytes(o.value) > LIMITS.maxValueBytes) return `value of ${key} is larger than ${LIMITS.maxValueBytes} bytes`;
    return undefined;
  }
  return 'neither a move nor a property op';
}

/**
 * Validates a batch for one tree; throws InvalidOpError naming the first bad op.
 * `source` says where the batch came from ("file x.space", "server") for the message.
 */
export function validateOps(ops: readonly unknown[], treeId: string, source: string): asserts ops is Op[] {
  if (!Array.isArray(ops)) throw new InvalidOpError(`${source}: ops must be an array`, -1);
  for (let i = 0; i < ops.length; i++) {
    const problem = checkOp(ops[i], treeId);
    if (problem) throw new InvalidOpError(`${source}: invalid op #${i} in tree ${treeId}: ${problem}`, i);
  }
}

/** A copy of an op with exactly the known fields (drops anything extra a peer attached). */
export function normalizeOp(op: Op): Op {
  if (isMoveOp(op)) return { id: { counter: op.id.counter, peerId: op.id.peerId }, targetId: op.targetId, parentId: op.parentId };
  return { id: { counter: op.id.counter, peerId: op.id.peerId }, targetId: op.targetId, key: op.key, value: op.value, transient: false };
}
