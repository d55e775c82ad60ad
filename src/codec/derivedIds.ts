/**
 * Vertex ids made from the op that creates the vertex: the creating move's peer id (16 hex
 * digits) followed by its counter as 16 hex digits — 32 hex digits, like a random id. Op ids are
 * unique, so these are too; the codec stores such a target as "derived from this op" in one byte
 * and any other reference to it as (peer, counter) instead of 16 raw bytes. Random ids (older
 * files, imports, peers with other id shapes) keep working: they are just not compressed.
 */

const PEER_HEX_RE = /^[0-9a-f]{16}$/;
const DERIVED_RE = /^[0-9a-f]{32}$/;
const COUNTER_DIGITS = 16;

/** The derived id of op (peerId, counter), or undefined when the peer id is not 16 hex digits. */
export function derivedVertexId(peerId: string, counter: number): string | undefined {
  if (!PEER_HEX_RE.test(peerId) || !Number.isSafeInteger(counter) || counter < 1) return undefined;
  return peerId + counter.toString(16).padStart(COUNTER_DIGITS, '0');
}

/** The (peer id, counter) an id was derived from, if it has that shape (a random id may too). */
export function parseDerivedVertexId(id: string): { peerId: string; counter: number } | undefined {
  if (!DERIVED_RE.test(id)) return undefined;
  const counter = parseInt(id.slice(COUNTER_DIGITS), 16);
  if (!Number.isSafeInteger(counter) || counter < 1) return undefined;
  return { peerId: id.slice(0, COUNTER_DIGITS), counter };
}
