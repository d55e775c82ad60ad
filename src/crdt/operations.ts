/** The two op kinds (from reptree's operations.ts) and the JSON values properties hold. */
import { createOpId, type OpId } from './opId';

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
/** A property value; `undefined` in an op removes the property. */
export type VertexPropertyType = JsonValue | undefined;

export interface TreeVertexProperty {
  readonly key: string;
  readonly value: VertexPropertyType;
}

/** Moves `targetId` under `parentId`; the first move of an id creates the vertex. */
export interface MoveVertex {
  id: OpId;
  targetId: string;
  parentId: string | null;
}

/**
 * Sets a property, last writer (by op id) wins. `transient` is kept for the shape reptree's ops
 * have on the wire and on disk; it is always false here (reptree's transient properties, never
 * stored or sent, are not part of this module).
 */
export interface SetVertexProperty {
  id: OpId;
  targetId: string;
  key: string;
  value: VertexPropertyType;
  transient: boolean;
}

export type VertexOperation = MoveVertex | SetVertexProperty;

export function isMoveVertexOp(op: VertexOperation): op is MoveVertex {
  return 'parentId' in op;
}

export function isAnyPropertyOp(op: VertexOperation): op is SetVertexProperty {
  return 'key' in op;
}

export function newMoveVertexOp(counter: number, peerId: string, targetId: string, parentId: string | null): MoveVertex {
  return { id: createOpId(counter, peerId), targetId, parentId };
}

export function newSetVertexPropertyOp(counter: number, peerId: string, targetId: string, key: string, value: VertexPropertyType): SetVertexProperty {
  return { id: createOpId(counter, peerId), targetId, key, value, transient: false };
}
