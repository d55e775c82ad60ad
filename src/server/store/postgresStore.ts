/**
 * PostgresSpaceStore: the SpaceStore in one PostgreSQL database, shared by several server
 * processes (`spaces-server --store postgres://…`). Schema: postgresSchema.ts.
 *
 * Seqs stay gap-free and in order per space with any number of processes writing one space at
 * once: `appendBatches` is one transaction that first locks the space's row
 * (`SELECT last_seq … FOR UPDATE`), so the writers of one space take turns for the length of a
 * transaction (a few ms) while writers of other spaces do not wait at all. Inside it, the next
 * seq is last_seq + 1, the batch rows and op index rows are inserted, last_seq is moved and a
 * notification `"<space id> <seq>"` is queued on BATCH_CHANNEL — PostgreSQL sends it only when
 * the transaction commits, and in commit order, so a listener never hears of a seq that is not
 * stored (fanout/pgBus.ts). A transaction that fails leaves nothing (no seq is used up: the row
 * lock, not a sequence object, hands out seqs).
 *
 * Secrets are encrypted with the server key as in SQLite; the key's check value is kept in
 * spaces_meta, so a process started with another key refuses to start instead of writing
 * secrets the others cannot read. Tokens carry a change counter (spaces_meta.token_version)
 * bumped in the same transaction as every token write: that is the changeStamp every process
 * polls (tokenWatch.ts).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { SecretRecord } from '../../persistence/contract';
import { decryptSecret, encryptSecret, keyCheck, keyCheckMatches } from '../../persistence/file/secretCrypto';
import type { Role } from '../../protocol/messages';
import { decodeOps, encodeOps } from '../../spaces/opCodec';
import { OpRangeSet } from '../../spaces/opRanges';
import { validateOps, type Op } from '../../spaces/ops';
import { secretWins } from '../../spaces/secrets';
import { StoreError } from './database';
import { sameOpContent } from './opContent';
import { BATCH_CHANNEL, PG_SCHEMA, PG_SCHEMA_VERSION, SCHEMA_LOCK_KEY } from './postgresSchema';
import { SpaceExistsError, type AppendResult, type BatchInput, type BatchRefusal, type SpaceInfo, type StoredBatch } from './serverStore';
import { StoreUnavailableError, type SpaceStore, type StoreHealth, type TokenRegistry } from './spaceStore';
import { checkToken, hashToken, isRole, newToken, plausibleToken, ROLES, toInfo, TokenError, type NewToken, type TokenCheck, type TokenInfo, type TokenRow } from './tokenStore';

/** Connections per process: writes of different spaces run side by side. */
const POOL_SIZE = 8;
/** A connection attempt that takes longer than this counts as "the database is down". */
const CONNECT_TIMEOUT_MS = 5_000;
/** Client-side bound on one query (a stuck database must not hang a write queue forever). */
const QUERY_TIMEOUT_MS = 30_000;
/** Batches read per query when a caller asks for many. */
const READ_PAGE = 512;

/** SQLSTATE classes and codes, and socket errors, that mean "no database to talk to now". */
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', '57P01', '57P02', '57P03', '53300']);

/** Whether `e` says the database is unreachable (as opposed to a bad query or bad data). */
export function isUnavailable(e: unknown): boolean {
  if (e instanceof StoreUnavailableError) return true;
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended|not queryable/i.test(e.message);
}

function classify(e: unknown): Error {
  if (e instanceof StoreError) return e;
  if (isUnavailable(e)) return new StoreUnavailableError(`PostgreSQL is unavailable: ${e instanceof Error ? e.message : String(e)}`);
  return e instanceof Error ? e : new Error(String(e));
}

/** int8 and numeric as JS numbers (seqs, counters and times are far below 2^53). */
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === pg.types.builtins.INT8 || oid === pg.types.builtins.NUMERIC) return (v: string) => Number(v);
    return format === 'binary' ? pg.types.getTypeParser(oid, 'binary') : pg.types.getTypeParser(oid, 'text');
  }) as typeof pg.types.getTypeParser,
};

/** Pool settings for a `postgres://` URL; also used by the fan-out listener. */
export function pgConfig(url: string): pg.PoolConfig {
  return { connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, query_timeout: QUERY_TIMEOUT_MS, types: TYPES, application_name: 'spaces-server' };
}

interface SpaceRow {
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

const EMPTY: AppendResult = { seq: undefined, fresh: [], opsJson: undefined };

/** The rows of an append, in one statement (data-modifying CTEs all run, whatever the SELECT reads). */
const WRITE_BATCHES = `
WITH b AS (
  INSERT INTO batches (space_id, seq, tree_id, n_ops, ops)
  SELECT $1, s, t, n, o FROM unnest($2::bigint[], $3::text[], $4::int[], $5::text[]) AS u (s, t, n, o)
), i AS (
  INSERT INTO op_index (space_id, tree_id, peer, counter, seq)
  SELECT $1, t, p, n, s FROM unnest($6::text[], $7::text[], $8::bigint[], $9::bigint[]) AS u (t, p, n, s)
), u AS (
  UPDATE spaces SET last_seq = $10 WHERE id = $1 RETURNING id
)
SELECT pg_notify($11, $1 || ' ' || $10::text) FROM u`;

/**
 * Which op ids of a call are stored (kind 'o', with the seq of their batch) and who owns the
 * writers' peer ids (kind 'p'), in one round trip. Run after the space row is locked: a new
 * statement sees everything committed before the lock was granted.
 */
const LOOK_UP = `
SELECT 'o' AS kind, tree_id, peer, counter, seq, NULL AS owner FROM op_index
  WHERE space_id = $1 AND (tree_id, peer, counter) IN (SELECT * FROM unnest($2::text[], $3::text[], $4::bigint[]))
UNION ALL
SELECT 'p', NULL, peer, NULL, NULL, owner FROM peers WHERE space_id = $1 AND peer = ANY($5::text[])`;

function toSpaceInfo(r: SpaceRow): SpaceInfo {
  return { id: r.id, name: r.name, created: r.created, lastSeq: r.last_seq };
}

type Queryable = pg.Pool | pg.PoolClient;

class Refused extends Error {
  constructor(readonly refusal: BatchRefusal) {
    super(refusal.message);
  }
}

const TOKEN_COLUMNS = 'id, owner AS "user", space, role, created, expires, revoked';

class PostgresTokens implements TokenRegistry {
  constructor(private readonly s: PostgresSpaceStore) {}

  async create(spec: NewToken, now = Date.now()): Promise<{ token: string; info: TokenInfo }> {
    const { token, info, hash } = newToken(spec, now);
    await this.s.tx(async (c) => {
      await c.query('INSERT INTO tokens (id, hash, owner, space, role, created, expires, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)', [info.id, hash, info.user, info.space, info.role, info.created, info.expires]);
      await bumpTokens(c);
    });
    return { token, info };
  }

  async list(): Promise<TokenInfo[]> {
    const r = await this.s.query<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM tokens ORDER BY created, id`);
    return r.rows.map(toInfo);
  }

  async get(id: string): Promise<TokenInfo | undefined> {
    const r = await this.s.query<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE id = $1`, [id]);
    return r.rows[0] ? toInfo(r.rows[0]) : undefined;
  }

  revoke(id: string, now = Date.now()): Promise<boolean> {
    return this.s.tx(async (c) => {
      const r = await c.query('UPDATE tokens SET revoked = coalesce(revoked, $1) WHERE id = $2', [now, id]);
      if (r.rowCount === 0) return false;
      await bumpTokens(c);
      return true;
    });
  }

  setRole(id: string, role: Role): Promise<boolean> {
    if (!isRole(role)) return Promise.reject(new TokenError(`role must be one of ${ROLES.join(', ')}`));
    return this.s.tx(async (c) => {
      const r = await c.query('UPDATE tokens SET role = $1 WHERE id = $2', [role, id]);
      if (r.rowCount === 0) return false;
      await bumpTokens(c);
      return true;
    });
  }

  async changeStamp(): Promise<number> {
    const r = await this.s.query<{ value: string }>("SELECT value FROM spaces_meta WHERE key = 'tokenVersion'");
    return Number(r.rows[0]?.value ?? 0);
  }

  async verify(token: string, now = Date.now()): Promise<TokenCheck> {
    if (!plausibleToken(token)) return { ok: false, reason: 'unknown' };
    const r = await this.s.query<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE hash = $1`, [hashToken(token)]);
    return checkToken(r.rows[0] ? toInfo(r.rows[0]) : undefined, now);
  }
}

async function bumpTokens(c: pg.PoolClient): Promise<void> {
  await c.query("UPDATE spaces_meta SET value = (value::bigint + 1)::text WHERE key = 'tokenVersion'");
}

export interface PostgresStoreOptions {
  /** The 32-byte key for secrets (every process of one database must use the same). */
  readonly secretKey: Buffer;
  readonly keyFileMode?: number;
}

export class PostgresSpaceStore implements SpaceStore {
  readonly kind = 'postgres';
  readonly tokens: TokenRegistry;
  readonly keyFileMode: number | undefined;
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    readonly serverId: string,
    private readonly key: Buffer,
    keyFileMode: number | undefined,
  ) {
    this.keyFileMode = keyFileMode;
    this.tokens = new PostgresTokens(this);
  }

  /** Connects, creates the schema when missing and checks the secret key against the database's. */
  static async open(url: string, opts: PostgresStoreOptions): Promise<PostgresSpaceStore> {
    if (opts.secretKey.length !== 32) throw new StoreError('the secret key must be 32 bytes');
    const pool = new pg.Pool({ ...pgConfig(url), max: POOL_SIZE });
    // An idle connection that the server drops (restart) must not end the process; the next query reconnects.
    pool.on('error', () => undefined);
    try {
      const serverId = await withTx(pool, async (c) => {
        await c.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK_KEY]);
        await c.query(PG_SCHEMA);
        const version = await c.query<{ value: string }>("SELECT value FROM spaces_meta WHERE key = 'schema'");
        const v = version.rows[0] ? Number(version.rows[0].value) : undefined;
        if (v !== undefined && v > PG_SCHEMA_VERSION) throw new StoreError(`the database was written by a newer server (schema ${v}; this build reads ${PG_SCHEMA_VERSION})`);
        const check = keyCheck(opts.secretKey, '');
        await c.query(
          `INSERT INTO spaces_meta (key, value) VALUES ('schema', $1), ('serverId', $2), ('tokenVersion', '0'), ('keyCheck', $3) ON CONFLICT (key) DO NOTHING`,
          [String(PG_SCHEMA_VERSION), randomBytes(8).toString('hex'), check],
        );
        const meta = await c.query<{ key: string; value: string }>("SELECT key, value FROM spaces_meta WHERE key IN ('serverId', 'keyCheck')");
        const get = (k: string): string => meta.rows.find((r) => r.key === k)?.value ?? '';
        if (!keyCheckMatches(opts.secretKey, '', get('keyCheck'))) {
          throw new StoreError('the secret key is not the one this database was written with: give every server process of one database the same server.key');
        }
        return get('serverId');
      });
      return new PostgresSpaceStore(pool, serverId, opts.secretKey, opts.keyFileMode);
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw classify(e);
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  async health(): Promise<StoreHealth> {
    try {
      await this.query('SELECT 1');
      return { ok: true, kind: this.kind };
    } catch (e) {
      return { ok: false, kind: this.kind, error: e instanceof Error ? e.message : String(e) };
    }
  }

  private check(): void {
    if (this.closed) throw new StoreError('the server store is closed');
  }

  /** One query on any pooled connection; connection failures become StoreUnavailableError. */
  async query<R extends pg.QueryResultRow>(text: string, values?: unknown[], on: Queryable = this.pool): Promise<pg.QueryResult<R>> {
    this.check();
    try {
      return await on.query<R>(text, values);
    } catch (e) {
      throw classify(e);
    }
  }

  /** Runs `fn` in one transaction on one connection; committed when it resolves. */
  tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    this.check();
    return withTx(this.pool, fn).catch((e: unknown) => {
      throw classify(e);
    });
  }

  // ---- spaces ----------------------------------------------------------------

  async getSpace(id: string): Promise<SpaceInfo | undefined> {
    const r = await this.query<SpaceRow>('SELECT id, name, created, last_seq FROM spaces WHERE id = $1', [id]);
    return r.rows[0] ? toSpaceInfo(r.rows[0]) : undefined;
  }

  async listSpaces(): Promise<SpaceInfo[]> {
    const r = await this.query<SpaceRow>('SELECT id, name, created, last_seq FROM spaces ORDER BY created, id');
    return r.rows.map(toSpaceInfo);
  }

  createSpace(id: string, name: string, spaceTreeOps: readonly Op[], now = Date.now()): Promise<SpaceInfo> {
    return this.tx(async (c) => {
      const ins = await c.query('INSERT INTO spaces (id, name, created, last_seq) VALUES ($1, $2, $3, 0) ON CONFLICT (id) DO NOTHING', [id, name, now]);
      if (ins.rowCount === 0) throw new SpaceExistsError(id);
      await this.appendIn(c, id, [{ treeId: id, ops: spaceTreeOps }]);
      const r = await c.query<SpaceRow>('SELECT id, name, created, last_seq FROM spaces WHERE id = $1', [id]);
      return toSpaceInfo(r.rows[0]);
    });
  }

  async ensureSpace(id: string, now = Date.now()): Promise<void> {
    await this.query("INSERT INTO spaces (id, name, created, last_seq) VALUES ($1, '', $2, 0) ON CONFLICT (id) DO NOTHING", [id, now]);
  }

  async setSpaceName(id: string, name: string): Promise<void> {
    await this.query('UPDATE spaces SET name = $1 WHERE id = $2', [name, id]);
  }

  // ---- ops ---------------------------------------------------------------------

  appendBatches(spaceId: string, batches: readonly BatchInput[], now = Date.now()): Promise<AppendResult[]> {
    void now; // batches have no time of their own (seqs order them)
    return this.tx((c) => this.appendIn(c, spaceId, batches));
  }

  /**
   * Inside a transaction: locks the space row, stores the batches, notifies the newest seq. A
   * fixed number of round trips per call, whatever the number of batches: every stored op id of
   * the call is looked up in one query, every peer binding in one, and the new rows go in with one
   * INSERT per table — the write queue hands over all batches that queued up meanwhile, so a busy
   * space costs fewer transactions, not longer ones.
   */
  private async appendIn(c: pg.PoolClient, spaceId: string, batches: readonly BatchInput[]): Promise<AppendResult[]> {
    const locked = await c.query<{ last_seq: number }>('SELECT last_seq FROM spaces WHERE id = $1 FOR UPDATE', [spaceId]);
    if (locked.rows.length === 0) throw new StoreError(`no space ${spaceId}`);
    const before = locked.rows[0].last_seq;
    const known = await lookUp(c, spaceId, batches);
    const newBatches: Array<[number, string, number, string]> = [];
    const newOps: Array<[string, string, number, number]> = [];
    const binds = new Map<string, string>();
    let seq = before;
    const out = batches.map((b): AppendResult => {
      if (b.ops.length === 0) return EMPTY;
      try {
        const fresh = freshOps(b, known);
        if (fresh.length === 0) return EMPTY;
        admitPeers(b, fresh, known.owners, binds);
        seq++;
        const opsJson = JSON.stringify(encodeOps(fresh));
        newBatches.push([seq, b.treeId, fresh.length, opsJson]);
        for (const op of fresh) {
          newOps.push([b.treeId, op.id.peerId, op.id.counter, seq]);
          known.stored.set(treeOpKey(b.treeId, op), op);
        }
        return { seq, fresh, opsJson };
      } catch (e) {
        if (e instanceof Refused) return { ...EMPTY, refused: e.refusal };
        throw e;
      }
    });
    if (binds.size > 0) {
      await c.query('INSERT INTO peers (space_id, peer, owner) SELECT $1, p, o FROM unnest($2::text[], $3::text[]) AS u (p, o) ON CONFLICT DO NOTHING', [spaceId, [...binds.keys()], [...binds.values()]]);
    }
    if (seq !== before) {
      // One statement, one round trip: the batches, their index rows, last_seq and the notice
      // (pg_notify is delivered on commit, in commit order: listeners only hear of stored seqs).
      await c.query(WRITE_BATCHES, [
        spaceId,
        newBatches.map((r) => r[0]),
        newBatches.map((r) => r[1]),
        newBatches.map((r) => r[2]),
        newBatches.map((r) => r[3]),
        newOps.map((r) => r[0]),
        newOps.map((r) => r[1]),
        newOps.map((r) => r[2]),
        newOps.map((r) => r[3]),
        seq,
        BATCH_CHANNEL,
      ]);
    }
    return out;
  }

  async bindPeer(spaceId: string, peer: string, user: string): Promise<string> {
    const owner = await this.peerOwner(spaceId, peer);
    if (owner !== undefined) return owner;
    const r = await this.query('INSERT INTO peers (space_id, peer, owner) SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM spaces WHERE id = $1) ON CONFLICT DO NOTHING', [spaceId, peer, user]);
    if (r.rowCount === 0) {
      const again = await this.peerOwner(spaceId, peer);
      if (again === undefined) throw new StoreError(`no space ${spaceId}`);
      return again;
    }
    return user;
  }

  async peerOwner(spaceId: string, peer: string): Promise<string | undefined> {
    const r = await this.query<{ owner: string }>('SELECT owner FROM peers WHERE space_id = $1 AND peer = $2', [spaceId, peer]);
    return r.rows[0]?.owner;
  }

  async peerUsers(spaceId: string, limit: number): Promise<Array<[string, string]>> {
    const r = await this.query<{ peer: string; owner: string }>('SELECT peer, owner FROM peers WHERE space_id = $1 ORDER BY peer LIMIT $2', [spaceId, limit]);
    return r.rows.map((row) => [row.peer, row.owner]);
  }

  async batchesAfter(spaceId: string, afterSeq: number, limit: number): Promise<StoredBatch[]> {
    const out: StoredBatch[] = [];
    await this.readBatches(spaceId, afterSeq, limit, (b) => out.push(b) > 0);
    return out;
  }

  async readBatches(spaceId: string, afterSeq: number, limit: number, visit: (b: StoredBatch) => boolean): Promise<number> {
    let n = 0;
    let after = afterSeq;
    while (n < limit) {
      const page = Math.min(READ_PAGE, limit - n);
      const r = await this.query<{ seq: number; tree_id: string; n_ops: number; ops: string }>('SELECT seq, tree_id, n_ops, ops FROM batches WHERE space_id = $1 AND seq > $2 ORDER BY seq LIMIT $3', [spaceId, after, page]);
      for (const row of r.rows) {
        n++;
        after = row.seq;
        if (!visit({ seq: row.seq, treeId: row.tree_id, nOps: row.n_ops, opsJson: row.ops })) return n;
      }
      if (r.rows.length < page) break;
    }
    return n;
  }

  async lastSeq(spaceId: string): Promise<number> {
    const r = await this.query<{ last_seq: number }>('SELECT last_seq FROM spaces WHERE id = $1', [spaceId]);
    return r.rows[0]?.last_seq ?? 0;
  }

  async loadTreeOps(spaceId: string, treeId: string): Promise<Op[]> {
    const r = await this.query<{ seq: number; ops: string }>('SELECT seq, ops FROM batches WHERE space_id = $1 AND tree_id = $2 ORDER BY seq', [spaceId, treeId]);
    const out: Op[] = [];
    for (const row of r.rows) {
      const ops = decodeStored(spaceId, row.seq, treeId, row.ops);
      validateOps(ops, treeId, `server store ${spaceId}`);
      for (const op of ops) out.push(op);
    }
    return out;
  }

  async listTrees(spaceId: string): Promise<string[]> {
    const r = await this.query<{ tree_id: string }>('SELECT tree_id FROM batches WHERE space_id = $1 GROUP BY tree_id ORDER BY min(seq)', [spaceId]);
    return r.rows.map((x) => x.tree_id);
  }

  async stateVectors(spaceId: string): Promise<Map<string, OpRangeSet>> {
    // Runs of consecutive counters ("gaps and islands"): counter − rank is constant along a run.
    const r = await this.query<{ tree_id: string; peer: string; a: number; b: number }>(
      `SELECT tree_id, peer, min(counter) AS a, max(counter) AS b FROM (
         SELECT tree_id, peer, counter, counter - row_number() OVER (PARTITION BY tree_id, peer ORDER BY counter) AS g
         FROM op_index WHERE space_id = $1) runs
       GROUP BY tree_id, peer, g ORDER BY tree_id, peer, a`,
      [spaceId],
    );
    const out = new Map<string, OpRangeSet>();
    for (const row of r.rows) {
      let set = out.get(row.tree_id);
      if (!set) out.set(row.tree_id, (set = new OpRangeSet()));
      set.addRange(row.peer, row.a, row.b);
    }
    return out;
  }

  async opCount(spaceId: string): Promise<number> {
    const r = await this.query<{ n: number }>('SELECT coalesce(sum(n_ops), 0)::bigint AS n FROM batches WHERE space_id = $1', [spaceId]);
    return r.rows[0].n;
  }

  // ---- secrets -------------------------------------------------------------------

  async loadSecrets(spaceId: string): Promise<SecretRecord[]> {
    const r = await this.query<SecretDbRow>('SELECT key, time, peer, iv, data FROM secrets WHERE space_id = $1 ORDER BY key', [spaceId]);
    return r.rows.map((row) => this.decrypt(spaceId, row));
  }

  mergeSecrets(spaceId: string, records: readonly SecretRecord[]): Promise<SecretRecord[]> {
    if (records.length === 0) {
      this.check();
      return Promise.resolve([]);
    }
    return this.tx(async (c) => {
      // The space row lock orders merges of one space across processes, as it orders batches.
      const locked = await c.query('SELECT 1 FROM spaces WHERE id = $1 FOR UPDATE', [spaceId]);
      if (locked.rows.length === 0) throw new StoreError(`no space ${spaceId}`);
      const won = new Map<string, SecretRecord>();
      for (const rec of records) {
        const r = await c.query<SecretDbRow>('SELECT key, time, peer, iv, data FROM secrets WHERE space_id = $1 AND key = $2', [spaceId, rec.key]);
        const row = r.rows[0];
        const stored: SecretRecord | undefined = row && (row.time === rec.time && row.peer === rec.peerId ? this.decrypt(spaceId, row) : { key: row.key, value: null, time: row.time, peerId: row.peer });
        if (!secretWins(rec, stored)) continue;
        const enc = encryptSecret(this.key, spaceId, rec);
        await c.query(
          'INSERT INTO secrets (space_id, key, time, peer, iv, data) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (space_id, key) DO UPDATE SET time = EXCLUDED.time, peer = EXCLUDED.peer, iv = EXCLUDED.iv, data = EXCLUDED.data',
          [spaceId, rec.key, rec.time, rec.peerId, enc.iv === null ? null : Buffer.from(enc.iv), enc.data === null ? null : Buffer.from(enc.data)],
        );
        won.set(rec.key, rec);
      }
      return [...won.values()];
    });
  }

  private decrypt(spaceId: string, r: SecretDbRow): SecretRecord {
    try {
      return decryptSecret(this.key, spaceId, { key: r.key, time: r.time, peerId: r.peer, iv: r.iv, data: r.data });
    } catch {
      throw new StoreError(`cannot decrypt secret ${JSON.stringify(r.key)} of space ${spaceId}: the server key is not the key it was written with, or the row was altered`);
    }
  }
}

async function withTx<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  let broken = false;
  // A checked-out connection has no listener of the pool's: an error between two queries (the
  // server shutting down) would be unhandled and end the process. The next query reports it.
  const onError = (): void => void (broken = true);
  c.on('error', onError);
  try {
    await c.query('BEGIN');
    const r = await fn(c);
    await c.query('COMMIT');
    return r;
  } catch (e) {
    broken = isUnavailable(e);
    if (!broken) await c.query('ROLLBACK').catch(() => (broken = true));
    throw e;
  } finally {
    // A connection that failed is dropped, not handed to the next query.
    c.off('error', onError);
    c.release(broken);
  }
}

function opKey(op: Op): string {
  return `${op.id.counter}@${op.id.peerId}`;
}

function treeOpKey(treeId: string, op: Op): string {
  return `${treeId}/${op.id.counter}@${op.id.peerId}`;
}

/** What an append call knows of the space: stored ops (tree/counter@peer → op) and peer owners; updated as the call goes. */
interface Known {
  readonly stored: Map<string, Op>;
  readonly owners: Map<string, string>;
}

/** Stands for an indexed op whose batch does not hold it (damage): never stored again, compared with nothing. */
const INDEXED_ONLY: Op = { id: { counter: -1, peerId: '' }, targetId: '', parentId: null };

/** In one query (two when some are stored): which op ids of the call's batches are stored (with their content), and who owns their peer ids. */
async function lookUp(c: pg.PoolClient, spaceId: string, batches: readonly BatchInput[]): Promise<Known> {
  const trees: string[] = [];
  const peers: string[] = [];
  const counters: number[] = [];
  const writerPeers = new Set<string>();
  for (const b of batches) {
    for (const op of b.ops) {
      trees.push(b.treeId);
      peers.push(op.id.peerId);
      counters.push(op.id.counter);
      if (b.writer) writerPeers.add(op.id.peerId);
    }
  }
  const stored = new Map<string, Op>();
  const owners = new Map<string, string>();
  const rows = await c.query<{ kind: 'o' | 'p'; tree_id: string; peer: string; counter: number; seq: number; owner: string }>(LOOK_UP, [spaceId, trees, peers, counters, [...writerPeers]]);
  const found = rows.rows.filter((r) => r.kind === 'o');
  for (const r of rows.rows) if (r.kind === 'p') owners.set(r.peer, r.owner);
  if (found.length > 0) {
    // Their stored content, for `conflict` checks: each batch holding one read once.
    const want = new Set(found.map((r) => `${r.tree_id}/${r.counter}@${r.peer}`));
    const seqs = [...new Set(found.map((r) => r.seq))];
    const held = await c.query<{ seq: number; tree_id: string; ops: string }>('SELECT seq, tree_id, ops FROM batches WHERE space_id = $1 AND seq = ANY($2::bigint[])', [spaceId, seqs]);
    for (const r of held.rows) {
      for (const op of decodeStored(spaceId, r.seq, r.tree_id, r.ops)) {
        const k = treeOpKey(r.tree_id, op);
        if (want.has(k)) stored.set(k, op);
      }
    }
    for (const k of want) if (!stored.has(k)) stored.set(k, INDEXED_ONLY);
  }
  return { stored, owners };
}

/**
 * The ops of `b` not stored yet (nor earlier in it or in the call), writing nothing. Throws
 * Refused when an op id is stored (or earlier in the batch) with other content.
 */
function freshOps(b: BatchInput, known: Known): Op[] {
  const unique = new Map<string, Op>();
  const fresh: Op[] = [];
  for (const op of b.ops) {
    const key = opKey(op);
    const earlier = unique.get(key);
    if (earlier) {
      if (!sameOpContent(earlier, op)) throw conflict(op);
      continue;
    }
    unique.set(key, op);
    const stored = known.stored.get(treeOpKey(b.treeId, op));
    if (stored === undefined) fresh.push(op);
    else if (stored !== INDEXED_ONLY && !sameOpContent(stored, op)) throw conflict(op);
  }
  return fresh;
}

/**
 * The writer may store new ops under every peer id of `fresh` (the rules of serverStore.ts
 * admitPeer); its own peer id, when unbound, is bound to it (in `binds`, and in `owners` for the
 * rest of the call).
 */
function admitPeers(b: BatchInput, fresh: readonly Op[], owners: Map<string, string>, binds: Map<string, string>): void {
  const w = b.writer;
  if (!w) return;
  const peers = new Set(fresh.map((o) => o.id.peerId));
  for (const p of peers) {
    if (w.reservedPeers?.has(p)) throw new Refused({ code: 'peer-forbidden', message: `peer id ${p} is the server's own` });
    const owner = owners.get(p);
    if (owner !== undefined && owner !== w.user) throw new Refused({ code: 'peer-forbidden', message: `peer id ${p} writes for another user in this space` });
  }
  if (w.ownPeer !== undefined && peers.has(w.ownPeer) && !owners.has(w.ownPeer)) {
    owners.set(w.ownPeer, w.user);
    binds.set(w.ownPeer, w.user);
  }
}

function conflict(op: Op): Refused {
  return new Refused({ code: 'conflict', message: `op ${op.id.counter}@${op.id.peerId} is stored already with other content; an op id is never reused` });
}

function decodeStored(spaceId: string, seq: number, treeId: string, json: string): Op[] {
  try {
    return decodeOps(JSON.parse(json), treeId, `batch ${seq} of space ${spaceId}`);
  } catch (e) {
    throw new StoreError(`batch ${seq} of space ${spaceId} is damaged: ${e instanceof Error ? e.message : String(e)}`);
  }
}
