/**
 * The id rules, in one place. Ops, the file schema, the wire protocol, the server's HTTP API and
 * token store, the webview protocol, the CLI and the extension all check ids with these, so an id
 * one part accepts is never refused by another (the webview used to refuse `.` and `:` in item
 * ids that every op validator accepts, so such an item could be shown but not edited).
 *
 * - **Hex ids** (32 lowercase hex digits, 128 random bits): every space id, tree id and item id
 *   this project makes (`newVertexId`). The server, its HTTP API, tokens and the settings name
 *   spaces and trees only by hex ids.
 * - **Vertex ids** (1..128 of `[A-Za-z0-9_.:-]`): what an op may name as its target or parent, and
 *   what a file may use as a tree id (a tree's id is its root's vertex id). Wider than hex ids so
 *   that files made by other tools (RepTree uses UUIDs) still open; every hex id is one.
 * - **Peer ids** (1..64 of `[0-9a-z]`): the writer part of an op id. Restricted so that RepTree's
 *   `localeCompare` order of peer ids equals code-point order (src/spaces/ops.ts `compareOps`).
 * - **App ids** (a lowercase letter, then up to 63 of `[a-z0-9._-]`): the kind of an app tree.
 * - **Derived ids**: the hex id of a vertex made from the op that creates it — the creating move's
 *   peer id (16 hex digits) followed by its counter as 16 hex digits. Op ids are unique, so these
 *   are too; the codec (src/codec/) stores such a target as "derived from this op" in one byte and
 *   any other reference to it as (peer, counter) instead of 16 raw bytes. Random ids (older files,
 *   imports, peers with other id shapes) keep working: they are just not compressed.
 *
 * Pure: no Node or DOM APIs, so the webview bundle can use it too.
 */

export const ID_LIMITS = {
  hexIdLength: 32,
  maxVertexIdLength: 128,
  maxPeerIdLength: 64,
  maxAppIdLength: 64,
} as const;

const HEX_ID_RE = /^[0-9a-f]{32}$/;
const VERTEX_ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
const PEER_ID_RE = /^[0-9a-z]{1,64}$/;
const APP_ID_RE = /^[a-z][a-z0-9._-]{0,63}$/;

/** How each rule reads in an error message. */
export const ID_RULES = {
  hex: '32 lowercase hex digits',
  vertex: '1..128 of A-Z a-z 0-9 _ . : -',
  peer: '1..64 of 0-9 a-z',
  app: 'a lowercase letter, then up to 63 of a-z 0-9 . _ -',
} as const;

/** A space, tree or item id as this project makes them. */
export function isHexId(v: unknown): v is string {
  return typeof v === 'string' && HEX_ID_RE.test(v);
}

/** An id an op may name (target or parent), and a file's tree id. */
export function isVertexId(v: unknown): v is string {
  return typeof v === 'string' && VERTEX_ID_RE.test(v);
}

export function isPeerId(v: unknown): v is string {
  return typeof v === 'string' && PEER_ID_RE.test(v);
}

export function isAppId(v: unknown): v is string {
  return typeof v === 'string' && APP_ID_RE.test(v);
}

const PEER_HEX_RE = /^[0-9a-f]{16}$/;
const COUNTER_DIGITS = 16;

/** The derived id of op (peerId, counter), or undefined when the peer id is not 16 hex digits. */
export function derivedVertexId(peerId: string, counter: number): string | undefined {
  if (!PEER_HEX_RE.test(peerId) || !Number.isSafeInteger(counter) || counter < 1) return undefined;
  return peerId + counter.toString(16).padStart(COUNTER_DIGITS, '0');
}

/** The (peer id, counter) an id was derived from, if it has that shape (a random id may too). */
export function parseDerivedVertexId(id: string): { peerId: string; counter: number } | undefined {
  if (!isHexId(id)) return undefined;
  const counter = parseInt(id.slice(COUNTER_DIGITS), 16);
  if (!Number.isSafeInteger(counter) || counter < 1) return undefined;
  return { peerId: id.slice(0, COUNTER_DIGITS), counter };
}

