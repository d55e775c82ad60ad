/**
 * The sync wire protocol, version 1: JSON text frames over one WebSocket per client.
 * Both ends import this module; every frame is validated here before anyone acts on it.
 * docs/protocol.md describes it for writers of other clients.
 *
 * A frame that does not parse or validate closes the socket with `CloseCode.badMessage`
 * (the server keeps serving everyone else); a refused but well-formed request gets an
 * `error` message and the socket stays open.
 */
import type { SecretRecord } from '../persistence/contract';
import type { EncodedOp } from '../spaces/opCodec';
import { isValidPeerId } from '../spaces/peerId';
import { checkSecretRecord } from '../spaces/secrets';
import { ID_RULES, isHexId } from '../spaces/ids';

export const PROTOCOL_VERSION = 1;
/** The WebSocket path of the sync endpoint. */
export const SYNC_PATH = '/v1/sync';

/**
 * WebSocket close codes (4000–4999 are application codes): 44xx and 45xx mirror an HTTP status;
 * 40xx have no HTTP counterpart.
 */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  /** The client did not read what it was sent (no progress for the server's slow-consumer time): reconnect later. */
  slowConsumer: 4001,
  /** The token has as many open connections as the server allows: reconnect later. */
  tooManyConnections: 4002,
  badMessage: 4400,
  unauthorized: 4401,
  forbidden: 4403,
  timeout: 4408,
  tooLarge: 4413,
  unsupportedVersion: 4426,
  rateLimited: 4429,
  internalError: 4500,
  /** The server's database is unreachable: nothing of the unacknowledged writes was kept; reconnect (maybe elsewhere) and send them again. */
  storeUnavailable: 4503,
} as const;
export type CloseCodeName = keyof typeof CloseCode;

export const PROTOCOL_LIMITS = {
  /** Largest frame either side accepts (bytes). */
  maxFrameBytes: 8 * 1024 * 1024,
  /** Most ops in one `ops` message. */
  maxOpsPerBatch: 20_000,
  maxSecretsPerMessage: 1_000,
  maxPeerIdsPerHello: 16,
  maxTokenLength: 512,
  /** A client must send `hello` this soon after connecting. */
  helloTimeoutMs: 10_000,
  /** Most peer → user entries in one `peers` message. */
  maxPeersPerMessage: 1_000,
  /** Longest user name in a `peers` message (the server's token users have at most 100 characters). */
  maxUserLength: 200,
} as const;

/** Ranges of op counters per peer: `{ peerId: [[start, end], …] }`, inclusive, sorted. */
export type StateVectorRanges = Record<string, Array<[number, number]>>;

// ---- client → server ---------------------------------------------------------------

/** First message: protocol version, credentials and the peer ids this client writes as. */
export interface HelloMessage {
  type: 'hello';
  protocol: number;
  token: string;
  peerIds: string[];
  /** Free text for logs, e.g. "spaces-vscode/0.1.0". */
  client?: string;
}

/** Start receiving a space: every batch after server sequence `since` (0 = all), then `synced`. */
export interface SubscribeMessage {
  type: 'subscribe';
  spaceId: string;
  since: number;
}

export interface UnsubscribeMessage {
  type: 'unsubscribe';
  spaceId: string;
}

/** Ops for one tree. `ref` is the client's id for the batch, echoed in `ack` or `error`. */
export interface ClientOpsMessage {
  type: 'ops';
  spaceId: string;
  treeId: string;
  ops: EncodedOp[];
  ref: number;
}

export interface ClientSecretsMessage {
  type: 'secrets';
  spaceId: string;
  records: SecretRecord[];
  ref: number;
}

export type ClientMessage = HelloMessage | SubscribeMessage | UnsubscribeMessage | ClientOpsMessage | ClientSecretsMessage;

// ---- server → client ---------------------------------------------------------------

export type Role = 'read' | 'write' | 'admin';

export interface WelcomeMessage {
  type: 'welcome';
  protocol: number;
  user: string;
  serverId: string;
}

/** Ops stored by the server under sequence `seq` of the space (a catch-up or a live batch). */
export interface ServerOpsMessage {
  type: 'ops';
  spaceId: string;
  treeId: string;
  ops: EncodedOp[];
  seq: number;
}

/**
 * Catch-up after `subscribe` is complete: everything up to `seq` was sent. `trees` holds what the
 * server stores per tree, so the client can send exactly what the server lacks. `role` is what
 * this client may do in the space.
 */
export interface SyncedMessage {
  type: 'synced';
  spaceId: string;
  seq: number;
  role: Role;
  trees: Record<string, StateVectorRanges>;
}

/** The batch `ref` is stored (or was already) as of sequence `seq`. */
export interface AckMessage {
  type: 'ack';
  spaceId: string;
  ref: number;
  seq: number;
}

/** Secret records of a space (after `synced`, and live when they change). */
export interface ServerSecretsMessage {
  type: 'secrets';
  spaceId: string;
  records: SecretRecord[];
}

/**
 * Who writes under which peer id in the space: `{peerId: user}` as the server bound them (a peer
 * id writes for the token user that first used it as its own). Sent after `synced` (every binding
 * of the space, in messages of at most `maxPeersPerMessage`) and live when a subscriber's own peer
 * id is bound. Clients attribute ops by their peer id with it (docs/protocol.md, "Identity").
 */
export interface ServerPeersMessage {
  type: 'peers';
  spaceId: string;
  peers: Record<string, string>;
}

export type ErrorCode =
  | 'forbidden'
  | 'not-found'
  | 'invalid'
  | 'too-large'
  | 'rate-limited'
  | 'internal'
  /** A counter too far above the tree's, or a secret time too far ahead of the server's clock. */
  | 'out-of-range'
  /** An op id the server stores with other content. */
  | 'conflict'
  /** A new op under a peer id that writes for another user in the space (or the server's own). */
  | 'peer-forbidden';

/** A refused request; the socket stays open. `ref` names the refused batch when there is one. */
export interface ErrorMessage {
  type: 'error';
  code: ErrorCode;
  message: string;
  spaceId?: string;
  ref?: number;
}

export type ServerMessage = WelcomeMessage | ServerOpsMessage | SyncedMessage | AckMessage | ServerSecretsMessage | ErrorMessage | ServerPeersMessage;

// ---- validation ----------------------------------------------------------------------

export class ProtocolError extends Error {
  constructor(
    message: string,
    readonly closeCode: number = CloseCode.badMessage,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

const ERROR_CODES: ReadonlySet<string> = new Set<ErrorCode>(['forbidden', 'not-found', 'invalid', 'too-large', 'rate-limited', 'internal', 'out-of-range', 'conflict', 'peer-forbidden']);
const ROLES: ReadonlySet<string> = new Set<Role>(['read', 'write', 'admin']);

type Obj = Record<string, unknown>;

function fail(msg: string): never {
  throw new ProtocolError(msg);
}

function obj(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${what} must be an object`);
  return v as Obj;
}

function onlyKeys(o: Obj, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) fail(`${what}: unknown field ${JSON.stringify(k)}`);
}

function id(v: unknown, what: string): string {
  if (!isHexId(v)) fail(`${what} must be ${ID_RULES.hex}`);
  return v;
}

function seq(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${what} must be a non-negative integer`);
  return v;
}

/** Checks the array shape only; op values are checked by `decodeOps` where they are used. */
function encodedOps(v: unknown): EncodedOp[] {
  if (!Array.isArray(v)) fail('ops must be an array');
  if (v.length === 0) fail('ops must not be empty');
  if (v.length > PROTOCOL_LIMITS.maxOpsPerBatch) throw new ProtocolError(`a batch holds at most ${PROTOCOL_LIMITS.maxOpsPerBatch} ops`, CloseCode.tooLarge);
  return v as EncodedOp[];
}

function secretRecords(v: unknown): SecretRecord[] {
  if (!Array.isArray(v)) fail('records must be an array');
  if (v.length > PROTOCOL_LIMITS.maxSecretsPerMessage) throw new ProtocolError(`at most ${PROTOCOL_LIMITS.maxSecretsPerMessage} secrets per message`, CloseCode.tooLarge);
  v.forEach((r, i) => {
    const p = checkSecretRecord(r);
    if (p) fail(`records[${i}]: ${p}`);
    onlyKeys(r as Obj, ['key', 'value', 'time', 'peerId'], `records[${i}]`);
  });
  return v as SecretRecord[];
}

function parseFrame(data: string | Buffer): Obj {
  const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  if (size > PROTOCOL_LIMITS.maxFrameBytes) throw new ProtocolError(`frame of ${size} bytes is over the ${PROTOCOL_LIMITS.maxFrameBytes} limit`, CloseCode.tooLarge);
  let v: unknown;
  try {
    v = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch {
    fail('frame is not JSON');
  }
  const o = obj(v, 'message');
  if (typeof o.type !== 'string') fail('message has no type');
  return o;
}

/** Parses and validates a frame from a client; throws ProtocolError (with its close code). */
export function parseClientMessage(data: string | Buffer): ClientMessage {
  const o = parseFrame(data);
  switch (o.type) {
    case 'hello': {
      onlyKeys(o, ['type', 'protocol', 'token', 'peerIds', 'client'], 'hello');
      if (typeof o.protocol !== 'number') fail('hello.protocol must be a number');
      if (o.protocol !== PROTOCOL_VERSION) throw new ProtocolError(`protocol ${o.protocol} is not supported (this server speaks ${PROTOCOL_VERSION})`, CloseCode.unsupportedVersion);
      if (typeof o.token !== 'string' || o.token.length === 0 || o.token.length > PROTOCOL_LIMITS.maxTokenLength) {
        throw new ProtocolError(`hello.token must be a token (1..${PROTOCOL_LIMITS.maxTokenLength} characters)`, CloseCode.unauthorized);
      }
      if (!Array.isArray(o.peerIds) || o.peerIds.length === 0 || o.peerIds.length > PROTOCOL_LIMITS.maxPeerIdsPerHello || !o.peerIds.every(isValidPeerId)) {
        fail(`hello.peerIds must be 1..${PROTOCOL_LIMITS.maxPeerIdsPerHello} peer ids ([0-9a-z]{1,64})`);
      }
      if (o.client !== undefined && (typeof o.client !== 'string' || o.client.length > 200)) fail('hello.client must be a short string');
      return { type: 'hello', protocol: o.protocol, token: o.token, peerIds: o.peerIds as string[], client: o.client as string | undefined };
    }
    case 'subscribe':
      onlyKeys(o, ['type', 'spaceId', 'since'], 'subscribe');
      return { type: 'subscribe', spaceId: id(o.spaceId, 'spaceId'), since: seq(o.since, 'since') };
    case 'unsubscribe':
      onlyKeys(o, ['type', 'spaceId'], 'unsubscribe');
      return { type: 'unsubscribe', spaceId: id(o.spaceId, 'spaceId') };
    case 'ops':
      onlyKeys(o, ['type', 'spaceId', 'treeId', 'ops', 'ref'], 'ops');
      return { type: 'ops', spaceId: id(o.spaceId, 'spaceId'), treeId: id(o.treeId, 'treeId'), ops: encodedOps(o.ops), ref: seq(o.ref, 'ref') };
    case 'secrets':
      onlyKeys(o, ['type', 'spaceId', 'records', 'ref'], 'secrets');
      return { type: 'secrets', spaceId: id(o.spaceId, 'spaceId'), records: secretRecords(o.records), ref: seq(o.ref, 'ref') };
    default:
      return fail(`unknown message type ${JSON.stringify(o.type).slice(0, 64)}`);
  }
}

function ranges(v: unknown, what: string): StateVectorRanges {
  const o = obj(v, what);
  for (const [peer, rs] of Object.entries(o)) {
    if (!isValidPeerId(peer)) fail(`${what}: bad peer id`);
    if (!Array.isArray(rs) || !rs.every((r) => Array.isArray(r) && r.length === 2 && r.every((n) => Number.isSafeInteger(n) && (n as number) >= 1) && r[0] <= r[1])) {
      fail(`${what}.${peer} must be [start, end] ranges`);
    }
  }
  return o as StateVectorRanges;
}

/** A `peers` map: peer ids to user names, bounded in count and length, no control characters. */
function peerUsers(v: unknown): Record<string, string> {
  const o = obj(v, 'peers');
  const entries = Object.entries(o);
  if (entries.length > PROTOCOL_LIMITS.maxPeersPerMessage) throw new ProtocolError(`at most ${PROTOCOL_LIMITS.maxPeersPerMessage} peers per message`, CloseCode.tooLarge);
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [peer, user] of entries) {
    if (!isValidPeerId(peer)) fail('peers: bad peer id');
    if (typeof user !== 'string' || user.length === 0 || user.length > PROTOCOL_LIMITS.maxUserLength || /\p{Cc}/u.test(user)) fail(`peers.${peer} must be a user name (1..${PROTOCOL_LIMITS.maxUserLength} printable characters)`);
    out[peer] = user;
  }
  return out;
}

/** Parses and validates a frame from the server; throws ProtocolError. */
export function parseServerMessage(data: string | Buffer): ServerMessage {
  const o = parseFrame(data);
  switch (o.type) {
    case 'welcome':
      if (o.protocol !== PROTOCOL_VERSION) throw new ProtocolError(`server speaks protocol ${String(o.protocol)}, this client ${PROTOCOL_VERSION}`, CloseCode.unsupportedVersion);
      if (typeof o.user !== 'string' || typeof o.serverId !== 'string') fail('welcome needs user and serverId');
      return { type: 'welcome', protocol: o.protocol, user: o.user, serverId: o.serverId };
    case 'ops':
      return { type: 'ops', spaceId: id(o.spaceId, 'spaceId'), treeId: id(o.treeId, 'treeId'), ops: encodedOps(o.ops), seq: seq(o.seq, 'seq') };
    case 'synced': {
      if (typeof o.role !== 'string' || !ROLES.has(o.role)) fail('synced.role must be read, write or admin');
      const trees = obj(o.trees, 'synced.trees');
      const out: Record<string, StateVectorRanges> = {};
      for (const [t, r] of Object.entries(trees)) out[id(t, 'synced.trees key')] = ranges(r, `synced.trees.${t}`);
      return { type: 'synced', spaceId: id(o.spaceId, 'spaceId'), seq: seq(o.seq, 'seq'), role: o.role as Role, trees: out };
    }
    case 'ack':
      return { type: 'ack', spaceId: id(o.spaceId, 'spaceId'), ref: seq(o.ref, 'ref'), seq: seq(o.seq, 'seq') };
    case 'secrets':
      return { type: 'secrets', spaceId: id(o.spaceId, 'spaceId'), records: secretRecords(o.records) };
    case 'peers':
      return { type: 'peers', spaceId: id(o.spaceId, 'spaceId'), peers: peerUsers(o.peers) };
    case 'error':
      if (typeof o.code !== 'string' || !ERROR_CODES.has(o.code) || typeof o.message !== 'string') fail('error needs a known code and a message');
      return {
        type: 'error',
        code: o.code as ErrorCode,
        message: o.message,
        spaceId: o.spaceId === undefined ? undefined : id(o.spaceId, 'spaceId'),
        ref: o.ref === undefined ? undefined : seq(o.ref, 'ref'),
      };
    default:
      return fail(`unknown message type ${JSON.stringify(o.type).slice(0, 64)}`);
  }
}

export function encodeMessage(m: ClientMessage | ServerMessage): string {
  return JSON.stringify(m);
}
