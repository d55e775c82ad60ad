/**
 * The project's CRDT: a replicated tree (move ops with undo/redo, last-writer-wins properties),
 * grown from reptree 0.9.0 (MIT, see LICENSE here; what changed: docs/upstream/reptree-fixes.md).
 */
export { RepTree, Vertex, type TreeColumns } from './repTree';
export { StateVector, rangesHave, type StateVectorRanges } from './stateVector';
export { compareIds, compareOpId, createOpId, opIdToString, type OpId } from './opId';
export {
  isAnyPropertyOp,
  isMoveVertexOp,
  newMoveVertexOp,
  newSetVertexPropertyOp,
  type JsonPrimitive,
  type JsonValue,
  type MoveVertex,
  type SetVertexProperty,
  type TreeVertexProperty,
  type VertexOperation,
  type VertexPropertyType,
} from './operations';
export { MAX_CLOCK_STEP, clockOfCounters, followCounter } from './clock';
export { SNAPSHOT_VERSION, SnapshotError, checkSnapshotHeader, decodeSnapshot, encodeSnapshot, type SnapshotErrorCode } from './snapshot';
import { decodeSnapshot, encodeSnapshot, SNAPSHOT_VERSION } from './snapshot';

/** Snapshots of a tree's state: `encode(tree)`, `decode(bytes)`; `RepTree.fromSnapshot` opens one. */
export const TreeSnapshot = { encode: encodeSnapshot, decode: decodeSnapshot, version: SNAPSHOT_VERSION } as const;
export type { ChangeListener, VertexChangeEvent, VertexChildrenChangeEvent, VertexMoveEvent, VertexPropertyChangeEvent } from './treeEvents';
