/**
 * SpaceStore: what the team server keeps, as the server uses it — spaces, their batches under
 * per-space seqs, the op index, peer bindings, secrets and tokens. Two implementations:
 *
 * - `SqliteSpaceStore` (sqliteSpaceStore.ts): one SQLite file in the data directory, for one
 *   server process (the default);
 * - `PostgresSpaceStore` (postgresStore.ts): one PostgreSQL database shared by several server
 *   processes (`--store postgres://…`).
 *
 * Both pass the same conformance suite (test/conformance/serverStoreConformance.ts). Methods are
 * async because PostgreSQL is; the SQLite one answers from already-resolved promises. Every write
 * method returns only once what it wrote is durable (committed), so the server acknowledges
 * nothing that a crash could lose.
 */
import type { SecretRecord } from '../../persistence/contract';
import type { Role } from '../../protocol/messages';
import type { OpRangeSet } from '../../spaces/opRanges';
import type { Op } from '../../spaces/ops';
import type { AppendResult, BatchInput, SpaceInfo, StoredBatch } from './serverStore';
import type { NewToken, TokenCheck, TokenInfo } from './tokenStore';
import { StoreError } from './database';

export type { AppendResult, BatchInput, BatchRefusal, BatchWriter, SpaceInfo, StoredBatch } from './serverStore';

/** Tokens, as the server and the `token` commands use them (tokenStore.ts has the rules). */
export interface TokenRegistry {
  /** Creates a token; the returned `token` string is the only copy there will ever be. */
  create(spec: NewToken, now?: number): Promise<{ token: string; info: TokenInfo }>;
  list(): Promise<TokenInfo[]>;
  get(id: string): Promise<TokenInfo | undefined>;
  /** False when there is no token with that id. Revoking twice keeps the first time. */
  revoke(id: string, now?: number): Promise<boolean>;
  setRole(id: string, role: Role): Promise<boolean>;
  /** A value that changes whenever tokens may have changed (another process's writes included). */
  changeStamp(): Promise<number>;
  verify(token: string, now?: number): Promise<TokenCheck>;
}

/** What /healthz says about the store. */
export interface StoreHealth {
  readonly ok: boolean;
  /** `sqlite` or `postgres`. */
  readonly kind: string;
  readonly error?: string;
}

export interface SpaceStore {
  /** `sqlite` or `postgres`. */
  readonly kind: string;
  /** Random id of the database, sent in `welcome`. */
  readonly serverId: string;
  readonly tokens: TokenRegistry;
  /** Set when server.key is readable by group or others (the server logs a warning). */
  readonly keyFileMode: number | undefined;
  readonly isClosed: boolean;
  close(): Promise<void>;
  /** A cheap round trip to the database. */
  health(): Promise<StoreHealth>;

  getSpace(id: string): Promise<SpaceInfo | undefined>;
  listSpaces(): Promise<SpaceInfo[]>;
  /** Creates a space with the ops of its space tree (seq 1); rejects with SpaceExistsError when taken. */
  createSpace(id: string, name: string, spaceTreeOps: readonly Op[], now?: number): Promise<SpaceInfo>;
  /** Makes sure a space row exists (empty name); for direct layers. */
  ensureSpace(id: string, now?: number): Promise<void>;
  setSpaceName(id: string, name: string): Promise<void>;

  /**
   * Stores batches of one space in one transaction. Each keeps only its ops not stored before
   * (nor earlier in the call) and, when any is left, gets the space's next seq: the seqs of one
   * call are consecutive, and no other writer (another process) gets a seq in between.
   */
  appendBatches(spaceId: string, batches: readonly BatchInput[], now?: number): Promise<AppendResult[]>;
  /** Binds `peer` to `user` unless it is bound; returns the user it is bound to. */
  bindPeer(spaceId: string, peer: string, user: string): Promise<string>;
  peerOwner(spaceId: string, peer: string): Promise<string | undefined>;
  /** Every (peer id, user) binding of a space, by peer id, at most `limit` (src/server/identity.ts). */
  peerUsers(spaceId: string, limit: number): Promise<Array<[string, string]>>;
  /** Batches with seq > `afterSeq`, in seq order, at most `limit`. */
  batchesAfter(spaceId: string, afterSeq: number, limit: number): Promise<StoredBatch[]>;
  /**
   * Visits batches with seq > `afterSeq` in seq order, at most `limit`; stops when `visit`
   * returns false. `visit` is synchronous and must not use the store. Returns how many it visited.
   */
  readBatches(spaceId: string, afterSeq: number, limit: number, visit: (b: StoredBatch) => boolean): Promise<number>;
  lastSeq(spaceId: string): Promise<number>;
  loadTreeOps(spaceId: string, treeId: string): Promise<Op[]>;
  listTrees(spaceId: string): Promise<string[]>;
  stateVectors(spaceId: string): Promise<Map<string, OpRangeSet>>;
  opCount(spaceId: string): Promise<number>;

  loadSecrets(spaceId: string): Promise<SecretRecord[]>;
  /** Merges records (validated by the caller), last writer wins per key; returns those that won. */
  mergeSecrets(spaceId: string, records: readonly SecretRecord[]): Promise<SecretRecord[]>;
}

/**
 * The database cannot be reached (down, restarting, connection lost): nothing of the request was
 * stored; it may be sent again once the store is healthy.
 */
export class StoreUnavailableError extends StoreError {
  constructor(message: string) {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}
