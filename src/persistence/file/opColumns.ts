/**
 * Ops in columns, for moving many ops across the worker boundary cheaply: a few typed arrays
 * (transferred, not copied), one table of the distinct strings they point into, and the
 * property values as one JSON array. 300k ops cross as ~6 buffers and 2 strings instead of
 * 300k cloned objects, and the strings (vertex ids, keys, peer ids) are shared by every op
 * that uses them.
 *
 * This module only converts; validation of what came from a file happens where it is read.
 */
import { isMoveOp, type JsonValue, type Op } from '../../spaces/ops';

export const OpKind = { Move: 0, Set: 1, Remove: 2 } as const;

export interface OpColumns {
  readonly treeId: string;
  /** Distinct strings (peer ids, vertex ids, property keys) the columns below point into. */
  readonly strings: string[];
  /** 0 move, 1 set property, 2 remove property. */
  readonly kind: Uint8Array;
  readonly counter: Float64Array;
  /** Index into `strings`. */
  readonly peer: Uint32Array;
  /** Index into `strings`. */
  readonly target: Uint32Array;
  /** Index into `strings` of the parent (moves) or the key (property ops); -1 = null parent. */
  readonly a: Int32Array;
  /** JSON array of the values of the set-property ops, in op order. */
  readonly values: string;
}

/** Interns strings into a table while building columns. */
class StringTable {
  readonly strings: string[] = [];
  private readonly index = new Map<string, number>();

  get(s: string): number {
    let i = this.index.get(s);
    if (i === undefined) {
      i = this.strings.length;
      this.strings.push(s);
      this.index.set(s, i);
    }
    return i;
  }
}

export function opsToColumns(treeId: string, ops: readonly Op[]): OpColumns {
  const n = ops.length;
  const table = new StringTable();
  const kind = new Uint8Array(n);
  const counter = new Float64Array(n);
  const peer = new Uint32Array(n);
  const target = new Uint32Array(n);
  const a = new Int32Array(n);
  const values: JsonValue[] = [];
  for (let i = 0; i < n; i++) {
    const op = ops[i];
    counter[i] = op.id.counter;
    peer[i] = table.get(op.id.peerId);
    target[i] = table.get(op.targetId);
    if (isMoveOp(op)) {
      kind[i] = OpKind.Move;
      a[i] = op.parentId === null ? -1 : table.get(op.parentId);
    } else {
      a[i] = table.get(op.key);
      if (op.value === undefined) {
        kind[i] = OpKind.Remove;
      } else {
        kind[i] = OpKind.Set;
        values.push(op.value as JsonValue);
      }
    }
  }
  return { treeId, strings: table.strings, kind, counter, peer, target, a, values: JSON.stringify(values) };
}

/** The buffers to transfer with `postMessage` (the receiver owns them afterwards). */
export function columnsTransferList(c: OpColumns): ArrayBuffer[] {
  return [c.kind.buffer, c.counter.buffer, c.peer.buffer, c.target.buffer, c.a.buffer] as ArrayBuffer[];
}

export function columnsLength(c: OpColumns): number {
  return c.kind.length;
}

/**
 * Builds op objects from columns. Throws when the columns do not fit together (lengths,
 * indices, number of values); the ops themselves are not validated here.
 */
export function columnsToOps(c: OpColumns): Op[] {
  const n = c.kind.length;
  if (c.counter.length !== n || c.peer.length !== n || c.target.length !== n || c.a.length !== n) {
    throw new Error(`op columns of tree ${c.treeId} have different lengths`);
  }
  const values = JSON.parse(c.values) as unknown;
  if (!Array.isArray(values)) throw new Error(`op values of tree ${c.treeId} are not an array`);
  const s = c.strings;
  const str = (i: number): string => {
    const v = s[i];
    if (v === undefined) throw new Error(`op columns of tree ${c.treeId} point past their string table`);
    return v;
  };
  const ops: Op[] = new Array<Op>(n);
  let vi = 0;
  for (let i = 0; i < n; i++) {
    const id = { counter: c.counter[i], peerId: str(c.peer[i]) };
    const targetId = str(c.target[i]);
    const a = c.a[i];
    switch (c.kind[i]) {
      case OpKind.Move:
        ops[i] = { id, targetId, parentId: a < 0 ? null : str(a) };
        break;
      case OpKind.Set:
        if (vi >= values.length) throw new Error(`op columns of tree ${c.treeId} have too few values`);
        ops[i] = { id, targetId, key: str(a), value: values[vi++] as never, transient: false };
        break;
      case OpKind.Remove:
        ops[i] = { id, targetId, key: str(a), value: undefined, transient: false };
        break;
      default:
        throw new Error(`op columns of tree ${c.treeId} hold an unknown op kind ${c.kind[i]}`);
    }
  }
  if (vi !== values.length) throw new Error(`op columns of tree ${c.treeId} have too many values`);
  return ops;
}
