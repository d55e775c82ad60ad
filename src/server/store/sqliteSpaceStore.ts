/**
 * SqliteSpaceStore: the SpaceStore over the synchronous SQLite ServerStore (serverStore.ts), for
 * one server process. Each method runs the synchronous call and returns its result as a settled
 * promise (a thrown error becomes a rejection), so the SQLite path costs one microtask per call
 * and nothing else.
 */
import type { SecretRecord } from '../../persistence/contract';
import type { Role } from '../../protocol/messages';
import type { OpRangeSet } from '../../spaces/opRanges';
import type { Op } from '../../spaces/ops';
import { ServerStore, type AppendResult, type BatchInput, type SpaceInfo, type StoredBatch, type StoreOptions } from './serverStore';
import type { SpaceStore, StoreHealth, TokenRegistry } from './spaceStore';
import type { NewToken, TokenCheck, TokenInfo, TokenStore } from './tokenStore';

/** Runs `fn` now; its result or its error as a promise. */
function now<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
}

class SqliteTokens implements TokenRegistry {
  constructor(private readonly t: TokenStore) {}
  create(spec: NewToken, at?: number): Promise<{ token: string; info: TokenInfo }> {
    return now(() => this.t.create(spec, at));
  }
  list(): Promise<TokenInfo[]> {
    return now(() => this.t.list());
  }
  get(id: string): Promise<TokenInfo | undefined> {
    return now(() => this.t.get(id));
  }
  revoke(id: string, at?: number): Promise<boolean> {
    return now(() => this.t.revoke(id, at));
  }
  setRole(id: string, role: Role): Promise<boolean> {
    return now(() => this.t.setRole(id, role));
  }
  changeStamp(): Promise<number> {
    return now(() => this.t.changeStamp());
  }
  verify(token: string, at?: number): Promise<TokenCheck> {
    return now(() => this.t.verify(token, at));
  }
}

export class SqliteSpaceStore implements SpaceStore {
  readonly kind = 'sqlite';
  readonly tokens: TokenRegistry;

  constructor(readonly sync: ServerStore) {
    this.tokens = new SqliteTokens(sync.tokens);
  }

  /** Opens the SQLite store in `dataDir` (see ServerStore.open). */
  static open(dataDir: string, opts: StoreOptions = {}): SqliteSpaceStore {
    return new SqliteSpaceStore(ServerStore.open(dataDir, opts));
  }

  get serverId(): string {
    return this.sync.serverId;
  }
  get keyFileMode(): number | undefined {
    return this.sync.keyFileMode;
  }
  get isClosed(): boolean {
    return this.sync.isClosed;
  }
  close(): Promise<void> {
    return now(() => this.sync.close());
  }
  health(): Promise<StoreHealth> {
    return Promise.resolve(this.sync.isClosed ? { ok: false, kind: this.kind, error: 'closed' } : { ok: true, kind: this.kind });
  }
  getSpace(id: string): Promise<SpaceInfo | undefined> {
    return now(() => this.sync.getSpace(id));
  }
  listSpaces(): Promise<SpaceInfo[]> {
    return now(() => this.sync.listSpaces());
  }
  createSpace(id: string, name: string, ops: readonly Op[], at?: number): Promise<SpaceInfo> {
    return now(() => this.sync.createSpace(id, name, ops, at));
  }
  ensureSpace(id: string, at?: number): Promise<void> {
    return now(() => this.sync.ensureSpace(id, at));
  }
  setSpaceName(id: string, name: string): Promise<void> {
    return now(() => this.sync.setSpaceName(id, name));
  }
  appendBatches(spaceId: string, batches: readonly BatchInput[], at?: number): Promise<AppendResult[]> {
    return now(() => this.sync.appendBatches(spaceId, batches, at));
  }
  bindPeer(spaceId: string, peer: string, user: string): Promise<string> {
    return now(() => this.sync.bindPeer(spaceId, peer, user));
  }
  peerOwner(spaceId: string, peer: string): Promise<string | undefined> {
    return now(() => this.sync.peerOwner(spaceId, peer));
  }
  peerUsers(spaceId: string, limit: number): Promise<Array<[string, string]>> {
    return now(() => this.sync.peerUsers(spaceId, limit));
  }
  batchesAfter(spaceId: string, afterSeq: number, limit: number): Promise<StoredBatch[]> {
    return now(() => this.sync.batchesAfter(spaceId, afterSeq, limit));
  }
  readBatches(spaceId: string, afterSeq: number, limit: number, visit: (b: StoredBatch) => boolean): Promise<number> {
    return now(() => this.sync.readBatches(spaceId, afterSeq, limit, visit));
  }
  lastSeq(spaceId: string): Promise<number> {
    return now(() => this.sync.lastSeq(spaceId));
  }
  loadTreeOps(spaceId: string, treeId: string): Promise<Op[]> {
    return now(() => this.sync.loadTreeOps(spaceId, treeId));
  }
  listTrees(spaceId: string): Promise<string[]> {
    return now(() => this.sync.listTrees(spaceId));
  }
  stateVectors(spaceId: string): Promise<Map<string, OpRangeSet>> {
    return now(() => this.sync.stateVectors(spaceId));
  }
  opCount(spaceId: string): Promise<number> {
    return now(() => this.sync.opCount(spaceId));
  }
  loadSecrets(spaceId: string): Promise<SecretRecord[]> {
    return now(() => this.sync.loadSecrets(spaceId));
  }
  mergeSecrets(spaceId: string, records: readonly SecretRecord[]): Promise<SecretRecord[]> {
    return now(() => this.sync.mergeSecrets(spaceId, records));
  }
}
