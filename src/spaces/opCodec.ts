/**
 * The op codec for storage and the wire: each op as a compact JSON tuple.
 *
 *   move:            [0, counter, peerId, targetId, parentId | null]
 *   set property:    [1, counter, peerId, targetId, key, value]
 *   remove property: [2, counter, peerId, targetId, key]
 *
 * Tuples are about half the size of RepTree's objects in JSON and decode without key lookups.
 * Decoding checks the tuple shape; `validateOps` then checks the values.
 */
import { InvalidOpError, isMoveOp, validateOps, type Op } from './ops';

export type EncodedOp =
  | [0, number, string, string, string | null]
  | [1, number, string, string, string, unknown]
  | [2, number, string, string, string];

export function encodeOp(op: Op): EncodedOp {
  if (isMoveOp(op)) return [0, op.id.counter, op.id.peerId, op.targetId, op.parentId];
  if (op.value === undefined) return [2, op.id.counter, op.id.peerId, op.targetId, op.key];
  return [1, op.id.counter, op.id.peerId, op.targetId, op.key, op.value];
}

export function encodeOps(ops: readonly Op[]): EncodedOp[] {
  return ops.map(encodeOp);
}

/** Decodes one tuple without validating values; returns undefined when the shape is wrong. */
export function decodeOpShape(t: unknown): Op | undefined {
  if (!Array.isArray(t)) return undefined;
  const [kind, counter, peerId, targetId] = t as unknown[];
  if (typeof counter !== 'number' || typeof peerId !== 'string' || typeof targetId !== 'string') return undefined;
  const id = { counter, peerId };
  switch (kind) {
    case 0:
      if (t.length !== 5) return undefined;
      return { id, targetId, parentId: t[4] as string | null };
    case 1:
      if (t.length !== 6) return undefined;
      return { id, targetId, key: t[4] as string, value: t[5] as never, transient: false };
    case 2:
      if (t.length !== 5) return undefined;
      return { id, targetId, key: t[4] as string, value: undefined, transient: false };
    default:
      return undefined;
  }
}

/** Decodes and validates a batch for one tree; throws InvalidOpError on the first bad op. */
export function decodeOps(data: unknown, treeId: string, source: string): Op[] {
  if (!Array.isArray(data)) throw new InvalidOpError(`${source}: ops must be an array`, -1);
  const ops: Op[] = new Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const op = decodeOpShape(data[i]);
    if (!op) throw new InvalidOpError(`${source}: op #${i} in tree ${treeId} is not an encoded op`, i);
    ops[i] = op;
  }
  validateOps(ops, treeId, source);
  return ops;
}
