/**
 * Whether two ops with the same id have the same content. The op index keeps, per op id, the seq
 * of the batch that holds it; when a client sends an id the server has, the stored op is read from
 * that batch and compared: an identical resend is a duplicate (acked), another op under the same
 * id is refused (`conflict`). Object keys of values may come in any order (a relay may reorder
 * them), so values are compared as JSON, not as strings.
 */
import { isMoveOp, type JsonValue, type Op } from '../../spaces/ops';

function jsonEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (!Object.prototype.hasOwnProperty.call(b, k) || !jsonEqual(a[k], b[k])) return false;
  return true;
}

/** Same target and same move or same property write (ids are not compared). */
export function sameOpContent(a: Op, b: Op): boolean {
  if (a.targetId !== b.targetId) return false;
  if (isMoveOp(a) || isMoveOp(b)) return isMoveOp(a) && isMoveOp(b) && a.parentId === b.parentId;
  return a.key === b.key && jsonEqual(a.value as JsonValue | undefined, b.value as JsonValue | undefined);
}
