/**
 * ServerStore: everything the team server keeps, in one SQLite database in its data directory.
 *
 * - spaces: id, name, creation time and `last_seq`, the seq of the space's newest batch;
 * - chunks: every accepted batch under the next per-space `seq` (only the ops that were new), in
 *   codec blobs of consecutive seqs (opChunks.ts), so catch-up is "every batch with seq > N", in order;
 * - the op index as counter ranges (tree, peer, first..last → the chunk holding them): an op
 *   already stored is never stored again, and an op under a stored id with other content is
 *   refused (`conflict`);
 * - peer bindings: the user each peer id writes for in a space (the first that used it keeps
 *   it), so one user cannot write under another's peer id (`peer-forbidden`);
 * - secrets, encrypted with the server key; tokens (tokenStore.ts).
 *
 * All methods are synchronous (better-sqlite3) and every write is one transaction: when a write
 * method returns, what it wrote is durable (see database.ts). The server serialises the writes of
 * a space in its write queue; other connections to the same file (a second process) are safe too,
 * because the op index and `last_seq` are read and written inside the same transaction.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { SecretRecord } from '../../persistence/contract';
import { decryptSecret, encryptSecret, type SecretRow } from '../../persistence/file/secretCrypto';
import { encodeOps } from '../../spaces/opCodec';
import { OpRangeSet } from '../../spaces/opRanges';
import { validateOps, type Op } from '../../spaces/ops';
import { secretWins } from '../../spaces/secrets';
import { DB_FILE, StoreError, openDatabase, type Db } from './database';
import { OpChunks, decodeChunk, type StoredChunk } from './opChunks';
import { sameOpContent } from './opContent';
import { loadOrCreateServerKey } from './serverKey';
import { TokenStore } from './tokenStore';

export interface SpaceInfo {
  readonly id: string;
  readonly name: string;
  /** Milliseconds since the epoch. */
  readonly created: number;
  /** The seq of the space's newest batch (0: none). */
  readonly lastSeq: number;
}

/** Who wrote a batch; a batch without one (the server's own) is not checked against bindings. */
export interface BatchWriter {
  /** The token's user. */
  readonly user: string;
  /** The connection's own peer id (the first in its hello): bound to `user` on first use. */
  readonly ownPeer: string | undefined;
  /** Peer ids no client may write new ops under (the server's own). */
  readonly reservedPeers?: ReadonlySet<string>;
}

export interface BatchInput {
  readonly treeId: string;
  /** Validated ops (the caller ran `validateOps`/`decodeOps`). */
  readonly ops: readonly Op[];
  readonly writer?: BatchWriter;
}

/** Why a batch was refused; nothing of it was stored. */
export interface BatchRefusal {
  readonly code: 'conflict' | 'peer-forbidden';
  readonly message: string;
}

export interface AppendResult {
  /** The batch's seq; undefined when every op was stored already or the batch was refused. */
  readonly seq: number | undefined;
  /** The ops that were new, in the order given (duplicates within the batch dropped). */
  readonly fresh: Op[];
  /** `fresh` as stored: a JSON array of encoded ops (wire format). */
  readonly opsJson: string | undefined;
  readonly refused?: BatchRefusal;
}

/** Stored ops read back from their chunks (for `conflict` checks), each chunk decoded once per call. */
class StoredOps {
  private readonly chunks = new Map<number, Map<string, Op>>();

  constructor(private readonly store: OpChunks) {}

  get(cid: number, treeId: string, peerId: string, counter: number): Op | undefined {
    let ops = this.chunks.get(cid);
    if (!ops) {
      ops = new Map();
      for (const b of this.store.read(cid)) {
        if (b.treeId !== treeId) continue;
        for (const op of b.ops) ops.set(`${op.id.counter}@${op.id.peerId}`, op);
      }
      this.chunks.set(cid, ops);
    }
    return ops.get(`${counter}@${peerId}`);
  }
}

class BatchRefused extends Error {
  constructor(readonly refusal: BatchRefusal) {
    super(refusal.message);
    this.name = 'BatchRefused';
  }
}

export interface StoredBatch {
  readonly seq: number;
  readonly treeId: string;
  readonly nOps: number;
  /** JSON array of encoded ops, ready to splice into an `ops` frame. */
  readonly opsJson: string;
}

export class SpaceExistsError extends StoreError {
  constructor(id: string) {
    super(`space ${id} already exists`);
    this.name = 'SpaceExistsError';
  }
}

interface SpaceRow {
  sid: number;
  id: string;
  name: string;
  created: number;
  last_seq: number;
}

interface SecretDbRow {
  key: string;
  time: number;
  peer: string;
  iv: Buffer | null;
  data: Buffer | null;
}

export interface StoreOptions {
  /** The 32-byte key for secrets; default: `DIR/server.key` (created 0600 when missing). */
  readonly secretKey?: Buffer;
}

export class ServerStore {
  readonly tokens: TokenStore;
  readonly serverId: string;
  /** Set when server.key is readable by group or others (the server logs a warning). */
  readonly keyFileMode: number | undefined;
  private readonly key: Buffer;
  private closed = false;
  private readonly sids = new Map<string, number>();
  private readonly tids = new Map<string, number>();

  private readonly q: Statements;
  private readonly chunks: OpChunks;
  private constructor(
    private readonly db: Db,
    readonly file: string,
    key: Buffer,
    keyFileMode: number | undefined,
  ) {
    this.key = key;
    this.keyFileMode = keyFileMode;
    this.tokens = new TokenStore(db);
    this.serverId = (db.prepare("SELECT value FROM meta WHERE key = 'serverId'").get() as { value: string }).value;
    this.q = prepareStatements(db);
    this.chunks = new OpChunks(db);
  }

  /** Opens the store in `dataDir` (created with mode 0700 when missing). */
  static open(dataDir: string, opts: StoreOptions = {}): ServerStore {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const key = opts.secretKey ? { key: opts.secretKey, looseMode: undefined } : loadOrCreateServerKey(dataDir);
    if (key.key.length !== 32) throw new StoreError('the secret key must be 32 bytes');
    const file = path.join(dataDir, DB_FILE);
    return new ServerStore(openDatabase(file), file, key.key, key.looseMode);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Closes the database (checkpointing the WAL); idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  private check(): void {
    if (this.closed) throw new StoreError('the server store is closed');
  }

  /** Runs `fn` in one immediate transaction; the id caches are dropped when it rolls back. */
  private tx<T>(fn: () => T): T {
    this.check();
    try {
      return this.db.transaction(fn).immediate();
    } catch (e) {
      this.sids.clear();
      this.tids.clear();
      this.chunks.reset();
      throw e;
    }
  }

  // ---- spaces ----------------------------------------------------------------

  getSpace(id: string): SpaceInfo | undefined {
    this.check();
    const r = this.q.space.get(id) as SpaceRow | undefined;
    return r ? toSpaceInfo(r) : undefined;
  }

  listSpaces(): SpaceInfo[] {
    this.check();
    return (this.q.spaces.all() as SpaceRow[]).map(toSpaceInfo);
  }

  /**
   * Creates a space with the ops that create its space tree (seq 1); one transaction.
   * Throws SpaceExistsError when the id is taken.
   */
  createSpace(id: string, name: string, spaceTreeOps: readonly Op[], now = Date.now()): SpaceInfo {
    return this.tx(() => {
      if (this.q.space.get(id)) throw new SpaceExistsError(id);
      this.q.insertSpace.run(id, name, now);
      this.appendIn(this.sid(id), [{ treeId: id, ops: spaceTreeOps }]);
      return toSpaceInfo(this.q.space.get(id) as SpaceRow);
    });
  }

  /** Makes sure a space row exists (with an empty name) and returns nothing; for direct layers. */
  ensureSpace(id: string, now = Date.now()): void {
    this.check();
    if (this.sidOrUndefined(id) !== undefined) return;
    this.tx(() => {
      if (!this.q.space.get(id)) this.q.insertSpace.run(id, '', now);
    });
  }

  setSpaceName(id: string, name: string): void {
    this.check();
    const sid = this.sidOrUndefined(id);
    if (sid !== undefined) this.q.setName.run(name, sid);
  }

  private sidOrUndefined(id: string): number | undefined {
    let sid = this.sids.get(id);
    if (sid === undefined) {
      const r = this.q.space.get(id) as SpaceRow | undefined;
      if (!r) return undefined;
      sid = r.sid;
      this.sids.set(id, sid);
    }
    return sid;
  }

  private sid(id: string): number {
    const sid = this.sidOrUndefined(id);
    if (sid === undefined) throw new StoreError(`no space ${id}`);
    return sid;
  }

  private tid(sid: number, treeId: string, create: boolean): number | undefined {
    const k = `${sid}/${treeId}`;
    let tid = this.tids.get(k);
    if (tid !== undefined) return tid;
    tid = this.q.tid.get(sid, treeId) as number | undefined;
    if (tid === undefined) {
      if (!create) return undefined;
      tid = Number(this.q.insertTree.run(sid, treeId).lastInsertRowid);
    }
    this.tids.set(k, tid);
    return tid;
  }

  // ---- ops ---------------------------------------------------------------------

  /**
   * Stores batches of one space in one transaction (one fsync). Each batch keeps only its ops
   * not stored before (nor earlier in the same call) and, when any is left, gets the next seq.
   */
  appendBatches(spaceId: string, batches: readonly BatchInput[], now = Date.now()): AppendResult[] {
    void now; // kept for callers: batches have no time of their own since schema 3 (seqs order them)
    return this.tx(() => this.appendIn(this.sid(spaceId), batches));
  }

  private appendIn(sid: number, batches: readonly BatchInput[]): AppendResult[] {
    const before = this.q.lastSeq.get(sid) as number;
    let seq = before;
    const stored = new StoredOps(this.chunks);
    const out = batches.map((b): AppendResult => {
      if (b.ops.length === 0) return { seq: undefined, fresh: [], opsJson: undefined };
      // Outside the savepoint: a rolled-back tree row would leave a stale id in the cache.
      const tid = this.tid(sid, b.treeId, true) as number;
      let fresh: Op[];
      try {
        // A savepoint per batch: a refused batch leaves nothing, the others in the call stay.
        fresh = this.savepoint(() => {
          const f = this.insertOps(sid, tid, b, stored);
          if (f.length > 0) {
            this.chunks.append(sid, [{ seq: seq + 1, tid, treeId: b.treeId, ops: f }]);
            this.chunks.compact(sid, (treeId) => this.tid(sid, treeId, true) as number);
          }
          return f;
        });
      } catch (e) {
        if (e instanceof BatchRefused) return { seq: undefined, fresh: [], opsJson: undefined, refused: e.refusal };
        throw e;
      }
      if (fresh.length === 0) return { seq: undefined, fresh, opsJson: undefined };
      seq++;
      return { seq, fresh, opsJson: JSON.stringify(encodeOps(fresh)) };
    });
    if (seq !== before) this.q.setLastSeq.run(seq, sid);
    return out;
  }

  /** Runs `fn` in a savepoint of the open transaction (better-sqlite3 nests transactions so). */
  private savepoint<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /**
   * Returns the ops of a batch that are not stored yet (nor earlier in the batch). Throws BatchRefused when an op's id is stored (or earlier in the batch) with other
   * content, or a new op's peer id writes for another user.
   */
  private insertOps(sid: number, tid: number, b: BatchInput, stored: StoredOps): Op[] {
    const fresh: Op[] = [];
    const freshByKey = new Map<string, Op>();
    const admitted = new Set<string>();
    for (const op of b.ops) {
      const { peerId, counter } = op.id;
      const key = `${counter}@${peerId}`;
      const cid = freshByKey.has(key) ? undefined : this.chunks.chunkOf(tid, peerId, counter);
      if (!freshByKey.has(key) && cid === undefined) {
        if (b.writer && !admitted.has(peerId)) {
          this.admitPeer(sid, peerId, b.writer);
          admitted.add(peerId);
        }
        fresh.push(op);
        freshByKey.set(key, op);
        continue;
      }
      const earlier = cid === undefined ? freshByKey.get(key) : stored.get(cid, b.treeId, peerId, counter);
      if (earlier && !sameOpContent(earlier, op)) {
        throw new BatchRefused({ code: 'conflict', message: `op ${counter}@${peerId} is stored already with other content; an op id is never reused` });
      }
    }
    return fresh;
  }

  /**
   * Lets `writer` store new ops under `peer`: a reserved peer id never; one bound to another user
   * never; the writer's own peer id is bound to it on first use. A peer id that is neither the
   * writer's nor bound stays unbound (the writer relays ops made elsewhere, e.g. in a space file
   * created offline); its owner binds it when it connects.
   */
  private admitPeer(sid: number, peer: string, writer: BatchWriter): void {
    if (writer.reservedPeers?.has(peer)) throw new BatchRefused({ code: 'peer-forbidden', message: `peer id ${peer} is the server's own` });
    const owner = this.q.peerOwner.get(sid, peer) as string | undefined;
    if (owner === undefined) {
      if (peer === writer.ownPeer) this.q.bindPeer.run(sid, peer, writer.user);
      return;
    }
    if (owner !== writer.user) throw new BatchRefused({ code: 'peer-forbidden', message: `peer id ${peer} writes for another user in this space` });
  }

  /**
   * Binds `peer` to `user` in the space unless it is bound already; returns the user it is bound
   * to. Reads first, so a peer that is bound costs no write.
   */
  bindPeer(spaceId: string, peer: string, user: string): string {
    this.check();
    const sid = this.sid(spaceId);
    const owner = this.q.peerOwner.get(sid, peer) as string | undefined;
    if (owner !== undefined) return owner;
    return this.tx(() => {
      const again = this.q.peerOwner.get(sid, peer) as string | undefined;
      if (again !== undefined) return again;
      this.q.bindPeer.run(sid, peer, user);
      return user;
    });
  }

  /** The user `peer` is bound to in the space, if any. */
  peerOwner(spaceId: string, peer: string): string | undefined {
    this.check();
    const sid = this.sidOrUndefined(spaceId);
    return sid === undefined ? undefined : (this.q.peerOwner.get(sid, peer) as string | undefined);
  }

  /** Every peer binding of the space (peer id → user), in peer id order, at most `limit`. */
  peerUsers(spaceId: string, limit: number): Array<[string, string]> {
    this.check();
    const sid = this.sidOrUndefined(spaceId);
    return sid === undefined ? [] : (this.q.peerUsers.all(sid, limit) as Array<[string, string]>);
  }

  /** Batches with seq > `afterSeq`, in seq order, at most `limit`. */
  batchesAfter(spaceId: string, afterSeq: number, limit: number): StoredBatch[] {
    const out: StoredBatch[] = [];
    this.readBatches(spaceId, afterSeq, limit, (b) => out.push(b) > 0);
    return out;
  }

  /**
   * Visits batches with seq > `afterSeq` in seq order, at most `limit`, reading one row at a time;
   * stops when `visit` returns false. `visit` must not use the store (the read is still open).
   * Returns how many batches were visited.
   */
  readBatches(spaceId: string, afterSeq: number, limit: number, visit: (b: StoredBatch) => boolean): number {
    this.check();
    const sid = this.sidOrUndefined(spaceId);
    if (sid === undefined) return 0;
    let n = 0;
    for (const c of this.chunks.chunksAfter(sid, afterSeq)) {
      for (const b of decodeChunk(c.bytes, `chunk ${c.cid} of space ${spaceId}`)) {
        if (b.seq <= afterSeq) continue;
        if (n >= limit) return n;
        n++;
        if (!visit({ seq: b.seq, treeId: b.treeId, nOps: b.ops.length, opsJson: JSON.stringify(encodeOps(b.ops)) })) return n;
      }
    }
    return n;
  }

  /**
   * Visits the stored chunks holding batches with seq > `afterSeq`, in seq order, as their codec
   * blobs (src/codec/opBatch.ts: each batch with its seq and tree; the first chunk may also hold
   * batches ≤ `afterSeq`, which a reader skips by seq). For serving catch-up without re-encoding.
   * Stops when `visit` returns false; `visit` must not use the store.
   */
  readEncodedChunks(spaceId: string, afterSeq: number, visit: (c: StoredChunk) => boolean): void {
    this.check();
    const sid = this.sidOrUndefined(spaceId);
    if (sid === undefined) return;
    for (const c of this.chunks.chunksAfter(sid, afterSeq)) if (!visit(c)) return;
  }

  lastSeq(spaceId: string): number {
    this.check();
    const sid = this.sidOrUndefined(spaceId);
    return sid === undefined ? 0 : (this.q.lastSeq.get(sid) as number);
  }

  /** Every stored op of a tree (validated on the way out). */
  loadTreeOps(spaceId: string, treeId: string): Op[] {
    this.check();
    const sid = this.sidOrUndefined(spaceId);
    const tid = sid === undefined ? undefined : this.tid(sid, treeId, false);
    if (tid === undefined) return [];
    const out: Op[] = [];
    for (const c of this.chunks.chunksAfter(sid as number, 0)) {
      for (const b of decodeChunk(c.bytes, `chunk ${c.cid} of space ${spaceId}`)) {
        if (b.treeId !== treeId) continue;
        validateOps(b.ops, treeId, `server store ${spaceId}`);
        for (const op of b.ops) out.push(op);
      }
    }
    return out;
  }

  /** Ids of the space's trees that hold ops. */
  listTrees(spaceId: string): string[] {
    this.check();
    const sid = this.sidOrUndefined(spaceId);
    return sid === undefined ? [] : (this.q.trees.all(sid) as string[]);
  }

  /** The state vector of every tree of the space: which op ids are stored. */
  stateVectors(spaceId: string): Map<string, OpRangeSet> {
    this.check();
    const out = new Map<string, OpRangeSet>();
    const sid = this.sidOrUndefined(spaceId);
    if (sid === undefined) return out;
    for (const [t, peer, first, last] of this.q.ranges.iterate(sid) as Iterable<[string, string, number, number]>) {
      let set = out.get(t);
      if (!set) out.set(t, (set = new OpRangeSet()));
      set.addRange(peer, first, last);
    }
    return out;
  }

  opCount(spaceId: string): number {
    this.check();
    const sid = this.sidOrUndefined(spaceId);
    return sid === undefined ? 0 : (this.q.opCount.get(sid) as number);
  }

  // ---- secrets -------------------------------------------------------------------

  /** Every secret record of the space (tombstones included), decrypted. */
  loadSecrets(spaceId: string): SecretRecord[] {
    this.check();
    const sid = this.sidOrUndefined(spaceId);
    if (sid === undefined) return [];
    return (this.q.secrets.all(sid) as SecretDbRow[]).map((r) => this.decrypt(spaceId, r));
  }

  /**
   * Merges records (validated by the caller) into the stored ones, last writer wins per key;
   * one transaction. Returns the records that won, i.e. changed what is stored.
   */
  mergeSecrets(spaceId: string, records: readonly SecretRecord[]): SecretRecord[] {
    if (records.length === 0) {
      this.check();
      return [];
    }
    return this.tx(() => {
      const sid = this.sid(spaceId);
      const won = new Map<string, SecretRecord>();
      for (const r of records) {
        const row = this.q.secret.get(sid, r.key) as SecretDbRow | undefined;
        // The stored value matters only for a tie on (time, peer): decrypt only then.
        const stored: SecretRecord | undefined = row && (row.time === r.time && row.peer === r.peerId ? this.decrypt(spaceId, row) : { key: row.key, value: null, time: row.time, peerId: row.peer });
        if (!secretWins(r, stored)) continue;
        const enc: SecretRow = encryptSecret(this.key, spaceId, r);
        this.q.putSecret.run(sid, r.key, r.time, r.peerId, enc.iv, enc.data);
        won.set(r.key, r);
      }
      return [...won.values()];
    });
  }

  private decrypt(spaceId: string, r: SecretDbRow): SecretRecord {
    try {
      return decryptSecret(this.key, spaceId, { key: r.key, time: r.time, peerId: r.peer, iv: r.iv, data: r.data });
    } catch {
      throw new StoreError(`cannot decrypt secret ${JSON.stringify(r.key)} of space ${spaceId}: server.key is not the key it was written with, or the row was altered`);
    }
  }
}

type Statements = ReturnType<typeof prepareStatements>;

function prepareStatements(db: Db) {
  return {
    space: db.prepare('SELECT sid, id, name, created, last_seq FROM spaces WHERE id = ?'),
    spaces: db.prepare('SELECT sid, id, name, created, last_seq FROM spaces ORDER BY created, id'),
    insertSpace: db.prepare('INSERT INTO spaces (id, name, created, last_seq) VALUES (?, ?, ?, 0)'),
    setName: db.prepare('UPDATE spaces SET name = ? WHERE sid = ?'),
    lastSeq: db.prepare('SELECT last_seq FROM spaces WHERE sid = ?').pluck(),
    setLastSeq: db.prepare('UPDATE spaces SET last_seq = ? WHERE sid = ?'),
    tid: db.prepare('SELECT tid FROM trees WHERE sid = ? AND tree_id = ?').pluck(),
    insertTree: db.prepare('INSERT INTO trees (sid, tree_id) VALUES (?, ?)'),
    trees: db.prepare('SELECT tree_id FROM trees t WHERE sid = ? AND EXISTS (SELECT 1 FROM op_ranges r WHERE r.tid = t.tid) ORDER BY tid').pluck(),
    peerOwner: db.prepare('SELECT user FROM peers WHERE sid = ? AND peer = ?').pluck(),
    bindPeer: db.prepare('INSERT OR IGNORE INTO peers (sid, peer, user) VALUES (?, ?, ?)'),
    peerUsers: db.prepare('SELECT peer, user FROM peers WHERE sid = ? ORDER BY peer LIMIT ?').raw(),
    ranges: db.prepare('SELECT t.tree_id, p.peer, r.first, r.last FROM trees t JOIN op_ranges r ON r.tid = t.tid JOIN peer_ids p ON p.pid = r.pid WHERE t.sid = ? ORDER BY t.tid, p.peer, r.first').raw(),
    opCount: db.prepare('SELECT ifnull(sum(n_ops), 0) FROM chunks WHERE sid = ?').pluck(),
    secrets: db.prepare('SELECT key, time, peer, iv, data FROM secrets WHERE sid = ? ORDER BY key'),
    secret: db.prepare('SELECT key, time, peer, iv, data FROM secrets WHERE sid = ? AND key = ?'),
    putSecret: db.prepare('INSERT OR REPLACE INTO secrets (sid, key, time, peer, iv, data) VALUES (?, ?, ?, ?, ?, ?)'),
  };
}

function toSpaceInfo(r: SpaceRow): SpaceInfo {
  return { id: r.id, name: r.name, created: r.created, lastSeq: r.last_seq };
}
