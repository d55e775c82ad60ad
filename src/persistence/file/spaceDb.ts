/**
 * One space file's database inside the worker: a sql.js (in-memory SQLite) database plus
 * caches of the interned strings. It checks files it is given (header, integrity, meta,
 * schema version), reads trees as validated ops, inserts ops idempotently, stores secrets
 * encrypted, and merges another copy of the same file (a newer version on disk) into itself.
 *
 * No I/O here: the worker reads and writes the bytes (fileIo.ts) under the lock (lockFile.ts).
 */
import type { Database, SqlJsStatic, SqlValue, Statement } from 'sql.js';
import type { SecretRecord } from '../contract';
import { checkOp, isMoveOp, type Op } from '../../spaces/ops';
import { checkSecretRecord, isInertSecretTime, secretWins } from '../../spaces/secrets';
import { SpaceFileError } from './errors';
import { OpKind, opsToColumns, type OpColumns } from './opColumns';
import { FORMAT, META, REQUIRED_TABLES, SCHEMA_SQL, SCHEMA_VERSION, isStorableKey, isValidTreeId } from './schema';
import { checkSecretRowShape, decryptSecret, encryptSecret, keyCheck, keyCheckMatches, sameSecretRow, type SecretRow } from './secretCrypto';
import { applySyncActions, dropOutboxSelection, ensureSyncTables, hasSyncActions, hasSyncTables, mergeSyncTables, readSeq, selectOutbox, type SyncActions } from './syncTables';

export interface SpaceFileMeta {
  readonly spaceId: string;
  readonly format: string;
  readonly schemaVersion: number;
  /** Milliseconds since the epoch, when the file was created (absent in foreign-made files). */
  readonly createdAt?: number;
}

interface MetaRow extends SpaceFileMeta {
  readonly keyCheck?: string;
}

/** What a merge found in the other copy that this database lacked. */
export interface MergeResult {
  readonly trees: OpColumns[];
  /** Plaintext secret records that won against ours (those this key could decrypt). */
  readonly secrets: SecretRecord[];
}

const SQLITE_MAGIC = 'SQLite format 3\0';

function notASpace(file: string, why: string): SpaceFileError {
  return new SpaceFileError(`${file} is not a Spaces file (${why})`, 'NOT_A_SPACE');
}

function invalidData(file: string, why: string): SpaceFileError {
  return new SpaceFileError(`${file} holds invalid data (${why})`, 'INVALID_DATA');
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Checks the 100-byte SQLite header: the magic string, a sane page size and, when the header's
 * page count is valid, that the file is not shorter than it says (a truncated file).
 * `fileSize`: the size of the whole file when `bytes` is only its start.
 */
export function checkHeader(bytes: Uint8Array, file: string, fileSize = bytes.length): void {
  if (bytes.length === 0) throw notASpace(file, 'the file is empty');
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 100 || buf.toString('latin1', 0, 16) !== SQLITE_MAGIC) throw notASpace(file, 'not a SQLite database');
  const rawPageSize = buf.readUInt16BE(16);
  const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
  if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) throw notASpace(file, `bad page size ${rawPageSize}`);
  const changeCounter = buf.readUInt32BE(24);
  const validFor = buf.readUInt32BE(92);
  const pageCount = buf.readUInt32BE(28);
  if (changeCounter === validFor && pageCount > 0) {
    const expected = pageCount * pageSize;
    if (fileSize < expected) throw notASpace(file, `truncated: ${fileSize} of ${expected} bytes`);
  } else if (fileSize % pageSize !== 0) {
    throw notASpace(file, `truncated: ${fileSize} bytes is not a whole number of ${pageSize}-byte pages`);
  }
}

/** Reads and checks the meta table; throws NOT_A_SPACE or NEWER_SCHEMA. */
function readMeta(db: Database, file: string): MetaRow {
  let rows: SqlValue[][];
  try {
    rows = db.exec('SELECT key, value FROM meta')[0]?.values ?? [];
  } catch (e) {
    const m = messageOf(e);
    throw notASpace(file, /no such table/.test(m) ? 'it has no meta table' : m);
  }
  const meta = new Map<string, SqlValue>();
  for (const [k, v] of rows) if (typeof k === 'string') meta.set(k, v);
  const format = meta.get(META.format);
  if (format !== FORMAT) throw notASpace(file, format === undefined ? 'no format in its meta table' : `its format is ${JSON.stringify(format)}`);
  const version = Number(meta.get(META.schemaVersion));
  if (!Number.isSafeInteger(version) || version < 1) throw notASpace(file, `bad schema_version ${JSON.stringify(meta.get(META.schemaVersion))}`);
  if (version > SCHEMA_VERSION) {
    throw new SpaceFileError(`${file} was written by a newer version of Spaces (schema ${version}; this build reads ${SCHEMA_VERSION})`, 'NEWER_SCHEMA');
  }
  const spaceId = meta.get(META.spaceId);
  if (!isValidTreeId(spaceId)) throw notASpace(file, `bad space_id ${JSON.stringify(spaceId ?? null)}`);
  const createdAt = Number(meta.get(META.createdAt));
  const check = meta.get(META.keyCheck);
  return {
    spaceId,
    format,
    schemaVersion: version,
    createdAt: Number.isSafeInteger(createdAt) ? createdAt : undefined,
    keyCheck: typeof check === 'string' ? check : undefined,
  };
}

/**
 * Opens `bytes` as a database and checks that it is a Spaces file this build reads: header
 * (magic, page size, not truncated), meta (format, schema version, space id), required tables.
 * The database is closed again when a check fails. Damaged pages are found by SQLite when they
 * are read (every load reads all rows of a tree): a load then fails, and a failed load is never
 * followed by a write.
 */
export function openChecked(SQL: SqlJsStatic, bytes: Uint8Array, file: string): { db: Database; meta: MetaRow } {
  checkHeader(bytes, file);
  const db = new SQL.Database(bytes);
  try {
    const meta = readMeta(db, file);
    let tables: Set<SqlValue>;
    try {
      tables = new Set((db.exec("SELECT name FROM sqlite_schema WHERE type = 'table'")[0]?.values ?? []).map((r) => r[0]));
    } catch (e) {
      throw notASpace(file, messageOf(e));
    }
    const missing = REQUIRED_TABLES.filter((t) => !tables.has(t));
    if (missing.length) throw notASpace(file, `missing tables ${missing.join(', ')}`);
    return { db, meta };
  } catch (e) {
    db.close();
    throw e;
  }
}

/**
 * The meta of a file from its first bytes only (`bytes` may be a prefix of the file): `meta` is
 * the first table created, so it sits on page 2. Throws when the prefix is not enough; the
 * caller then reads the whole file.
 */
export function readMetaFromBytes(SQL: SqlJsStatic, bytes: Uint8Array, file: string, fileSize = bytes.length): SpaceFileMeta {
  checkHeader(bytes, file, fileSize);
  const db = new SQL.Database(bytes);
  try {
    const { spaceId, format, schemaVersion, createdAt } = readMeta(db, file);
    return { spaceId, format, schemaVersion, createdAt };
  } finally {
    db.close();
  }
}

/**
 * An interning table (`trees`, `peers`, `names`) mirrored in memory. The string → id map is
 * built on first use (only writes need it), so opening a file only builds the id → string list.
 */
class Interner {
  private byId: Array<string | undefined> = [];
  private idsCache: Map<string, number> | undefined;
  maxId = 0;

  constructor(
    readonly table: 'trees' | 'peers' | 'names',
    readonly column: 'tree' | 'peer' | 'name',
  ) {}

  /** Loads rows with id > `after` (all of them at first). */
  load(db: Database, file: string, after = 0): void {
    const r = db.exec(`SELECT json_group_array(id), json_group_array(${this.column}) FROM (SELECT id, ${this.column} FROM main.${this.table} WHERE id > ? ORDER BY id)`, [after]);
    const row = r[0]?.values[0];
    const ids = JSON.parse(String(row?.[0] ?? '[]')) as unknown[];
    const strs = JSON.parse(String(row?.[1] ?? '[]')) as unknown[];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const s = strs[i];
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0 || typeof s !== 'string') {
        throw invalidData(file, `bad row in table ${this.table}`);
      }
      this.byId[id] = s;
      this.idsCache?.set(s, id);
      if (id > this.maxId) this.maxId = id;
    }
  }

  private get ids(): Map<string, number> {
    if (!this.idsCache) {
      const m = new Map<string, number>();
      this.byId.forEach((s, id) => {
        if (s !== undefined) m.set(s, id);
      });
      this.idsCache = m;
    }
    return this.idsCache;
  }

  str(id: unknown): string | undefined {
    return typeof id === 'number' ? this.byId[id] : undefined;
  }

  get(s: string): number | undefined {
    return this.ids.get(s);
  }

  get insertSql(): string {
    return `INSERT INTO main.${this.table} (id, ${this.column}) VALUES (?, ?)`;
  }

  /** The id of `s`, inserting it with `insert` (a prepared `insertSql`, in the caller's transaction) when new. */
  intern(insert: Statement, s: string): number {
    const ids = this.ids;
    let id = ids.get(s);
    if (id === undefined) {
      id = this.maxId + 1;
      insert.run([id, s]);
      this.maxId = id;
      this.byId[id] = s;
      ids.set(s, id);
    }
    return id;
  }

  /** Forgets ids above `maxId` (after a rollback). */
  truncate(maxId: number): void {
    for (let id = maxId + 1; id <= this.maxId; id++) {
      const s = this.byId[id];
      if (s !== undefined) this.idsCache?.delete(s);
    }
    this.byId.length = Math.min(this.byId.length, maxId + 1);
    this.maxId = maxId;
  }

  entries(): Array<[number, string]> {
    const out: Array<[number, string]> = [];
    this.byId.forEach((s, id) => {
      if (s !== undefined) out.push([id, s]);
    });
    return out;
  }
}

/**
 * One tree's ops as column strings: comma-separated integers (interned ids; 0 for a null
 * parent: ids start at 1), and the set ops' JSON values joined into one JSON array whose length
 * is checked against the number of set ops (a NULL or malformed value cannot go unnoticed).
 */
const INSERT_OP_SQL = 'INSERT OR IGNORE INTO ops (tree, counter, peer, kind, target, a, b) VALUES (?, ?, ?, ?, ?, ?, ?)';
const INSERT_OP_VALUES = '(?, ?, ?, ?, ?, ?, ?)';
const INSERT_ROWS = 64;

const COLUMNS_SQL = (table: string): string => `
  SELECT count(*), group_concat(kind), group_concat(counter), group_concat(peer), group_concat(target),
         group_concat(ifnull(a, 0)), '[' || ifnull(group_concat(b) FILTER (WHERE kind = ${OpKind.Set}), '') || ']',
         count(*) FILTER (WHERE kind = ${OpKind.Set})
  FROM ${table} WHERE tree = ?`;

export class SpaceDb {
  private readonly trees = new Interner('trees', 'tree');
  private readonly peers = new Interner('peers', 'peer');
  private readonly names = new Interner('names', 'name');
  /** The database holds changes the file on disk may lack. */
  dirty = false;
  private readonly statements = new Map<string, Statement>();
  private keyCheckValue: string | undefined;

  private constructor(
    private readonly SQL: SqlJsStatic,
    private db: Database,
    readonly file: string,
    readonly meta: SpaceFileMeta,
    keyCheckValue: string | undefined,
    private readonly secretKey: Uint8Array | undefined,
  ) {
    this.keyCheckValue = keyCheckValue;
    this.applyPragmas();
  }

  get spaceId(): string {
    return this.meta.spaceId;
  }

  /** Opens and checks a file's bytes, loads the interning tables. */
  static open(SQL: SqlJsStatic, bytes: Uint8Array, file: string, secretKey: Uint8Array | undefined): SpaceDb {
    const { db, meta } = openChecked(SQL, bytes, file);
    try {
      const { keyCheck: check, ...pub } = meta;
      const s = new SpaceDb(SQL, db, file, pub, check, secretKey);
      s.trees.load(db, file);
      s.peers.load(db, file);
      s.names.load(db, file);
      for (const [, tree] of s.trees.entries()) if (!isValidTreeId(tree)) throw invalidData(file, `bad tree id ${JSON.stringify(tree)}`);
      return s;
    } catch (e) {
      db.close();
      throw e;
    }
  }

  static create(SQL: SqlJsStatic, spaceId: string, file: string, secretKey: Uint8Array | undefined): SpaceDb {
    const db = new SQL.Database();
    const createdAt = Date.now();
    db.exec(SCHEMA_SQL);
    const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
    for (const [k, v] of [
      [META.format, FORMAT],
      [META.schemaVersion, String(SCHEMA_VERSION)],
      [META.spaceId, spaceId],
      [META.createdAt, String(createdAt)],
    ]) {
      put.run([k, v]);
    }
    put.free();
    const s = new SpaceDb(SQL, db, file, { spaceId, format: FORMAT, schemaVersion: SCHEMA_VERSION, createdAt }, undefined, secretKey);
    s.dirty = true;
    return s;
  }

  private applyPragmas(): void {
    // The database lives in memory (Emscripten's MEMFS): keep the rollback journal in memory too.
    this.db.exec('PRAGMA journal_mode = MEMORY; PRAGMA temp_store = MEMORY;');
  }

  close(): void {
    this.statements.clear();
    this.db.close();
  }

  /** A prepared statement, kept until the next export (which frees every statement). */
  private stmt(sql: string): Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  /** The database file's bytes, to be written to disk. */
  export(): Uint8Array {
    this.statements.clear(); // export() frees them
    const bytes = this.db.export();
    this.applyPragmas(); // export() closes and reopens the connection
    return bytes;
  }

  private tx<T>(fn: () => T): T {
    const marks = [this.trees.maxId, this.peers.maxId, this.names.maxId] as const;
    this.db.exec('BEGIN');
    try {
      const r = fn();
      this.db.exec('COMMIT');
      return r;
    } catch (e) {
      try {
        this.db.exec('ROLLBACK');
      } catch {
        // no transaction left to roll back
      }
      this.trees.truncate(marks[0]);
      this.peers.truncate(marks[1]);
      this.names.truncate(marks[2]);
      throw e;
    }
  }

  /** Ids of the trees that have ops. */
  listTrees(): string[] {
    const r = this.db.exec('SELECT t.tree FROM trees t WHERE EXISTS (SELECT 1 FROM ops o WHERE o.tree = t.id)');
    return (r[0]?.values ?? []).map((row) => String(row[0]));
  }

  /** Every op of a tree in columns, validated (INVALID_DATA naming the file when one is bad). */
  readTree(treeId: string): OpColumns {
    const t = this.trees.get(treeId);
    if (t === undefined) return opsToColumns(treeId, []);
    return this.readColumns('main.ops', t, treeId);
  }

  /**
   * Reads one tree's rows of `table` with a single query that returns each column as one
   * string (much faster through sql.js than stepping 300k rows), remaps the interned ids to a
   * table of just the strings this tree uses, and checks every op with the rules of `validateOps`.
   */
  private readColumns(table: string, t: number, treeId: string): OpColumns {
    let row: SqlValue[] | undefined;
    try {
      row = this.db.exec(COLUMNS_SQL(table), [t])[0]?.values[0];
    } catch (e) {
      throw invalidData(this.file, `ops of tree ${treeId}: ${messageOf(e)}`);
    }
    const n = Number(row?.[0] ?? 0);
    if (!row || n === 0) return opsToColumns(treeId, []);
    let kind: unknown[], counter: unknown[], peer: unknown[], target: unknown[], a: unknown[], values: unknown[];
    const valuesJson = typeof row[6] === 'string' ? row[6] : '[]';
    try {
      const list = (v: SqlValue): unknown[] => JSON.parse(`[${typeof v === 'string' ? v : ''}]`) as unknown[];
      kind = list(row[1]);
      counter = list(row[2]);
      peer = list(row[3]);
      target = list(row[4]);
      a = list(row[5]);
      values = JSON.parse(valuesJson) as unknown[];
    } catch (e) {
      throw invalidData(this.file, `ops of tree ${treeId} are damaged (${messageOf(e)})`);
    }
    if (kind.length !== n || counter.length !== n || peer.length !== n || target.length !== n || a.length !== n) {
      throw invalidData(this.file, `ops of tree ${treeId} have empty columns`);
    }
    if (values.length !== Number(row[7])) throw invalidData(this.file, `property values of tree ${treeId} are damaged`);

    const strings: string[] = [];
    const local = new Map<string, number>();
    const localOf = (s: string): number => {
      let i = local.get(s);
      if (i === undefined) {
        i = strings.length;
        strings.push(s);
        local.set(s, i);
      }
      return i;
    };
    const peerLocal = new Int32Array(this.peers.maxId + 1).fill(-1);
    const nameLocal = new Int32Array(this.names.maxId + 1).fill(-1);
    const missing = (i: number, what: string): SpaceFileError => invalidData(this.file, `op #${i} of tree ${treeId} points to a missing ${what}`);
    const viaPeer = (id: unknown, i: number): number => {
      if (typeof id !== 'number' || !(id > 0 && id < peerLocal.length)) throw missing(i, 'peer');
      let l = peerLocal[id];
      if (l < 0) {
        const s = this.peers.str(id);
        if (s === undefined) throw missing(i, 'peer');
        l = peerLocal[id] = localOf(s);
      }
      return l;
    };
    const viaName = (id: unknown, i: number, what: string): number => {
      if (typeof id !== 'number' || !(id > 0 && id < nameLocal.length)) throw missing(i, what);
      let l = nameLocal[id];
      if (l < 0) {
        const s = this.names.str(id);
        if (s === undefined) throw missing(i, what);
        l = nameLocal[id] = localOf(s);
      }
      return l;
    };

    const cols: OpColumns = {
      treeId,
      strings,
      kind: new Uint8Array(n),
      counter: new Float64Array(n),
      peer: new Uint32Array(n),
      target: new Uint32Array(n),
      a: new Int32Array(n),
      values: valuesJson,
    };
    // Every op is checked with `checkOp`, the rule set of `validateOps`, on three reused
    // scratch objects (one per op shape): no per-op allocation on the worker.
    const moveId = { counter: 0, peerId: '' };
    const move = { id: moveId, targetId: '', parentId: null as string | null };
    const setId = { counter: 0, peerId: '' };
    const set = { id: setId, targetId: '', key: '', value: undefined as unknown, transient: false };
    let vi = 0;
    for (let i = 0; i < n; i++) {
      const k = kind[i];
      const c = counter[i] as number;
      const p = viaPeer(peer[i], i);
      const tg = viaName(target[i], i, 'vertex');
      let ai: number;
      let problem: string | undefined;
      if (k === OpKind.Move) {
        ai = a[i] === 0 ? -1 : viaName(a[i], i, 'parent');
        moveId.counter = c;
        moveId.peerId = strings[p];
        move.targetId = strings[tg];
        move.parentId = ai < 0 ? null : strings[ai];
        problem = checkOp(move, treeId);
      } else if (k === OpKind.Set || k === OpKind.Remove) {
        ai = viaName(a[i], i, 'key');
        setId.counter = c;
        setId.peerId = strings[p];
        set.targetId = strings[tg];
        set.key = strings[ai];
        set.value = k === OpKind.Set ? values[vi++] : undefined;
        problem = checkOp(set, treeId);
      } else {
        throw invalidData(this.file, `op #${i} of tree ${treeId} has unknown kind ${JSON.stringify(k)}`);
      }
      if (problem !== undefined) throw invalidData(this.file, `invalid op #${i} in tree ${treeId}: ${problem}`);
      cols.kind[i] = k;
      cols.counter[i] = c;
      cols.peer[i] = p;
      cols.target[i] = tg;
      cols.a[i] = ai;
    }
    return cols;
  }

  /**
   * Inserts ops (already validated by the caller) idempotently: INSERT OR IGNORE on the primary
   * key (tree, counter, peer). Returns how many were new.
   */
  insertOps(batches: ReadonlyArray<{ treeId: string; ops: readonly Op[] }>): number {
    for (const { ops } of batches) {
      for (const op of ops) {
        if (!isMoveOp(op) && !isStorableKey(op.key)) {
          throw new SpaceFileError(`${this.file}: property key ${JSON.stringify(op.key)} cannot be stored (NUL or unpaired surrogate)`, 'INVALID_DATA');
        }
      }
    }
    const added = this.tx(() => {
      const insTree = this.stmt(this.trees.insertSql);
      const insPeer = this.stmt(this.peers.insertSql);
      const insName = this.stmt(this.names.insertSql);
      // Rows go in INSERT_ROWS at a time (one statement run per 64 ops), the rest one by one.
      const many = this.stmt(`${INSERT_OP_SQL}${`, ${INSERT_OP_VALUES}`.repeat(INSERT_ROWS - 1)}`);
      const one = this.stmt(INSERT_OP_SQL);
      const params: SqlValue[] = [];
      let n = 0;
      for (const { treeId, ops } of batches) {
        if (ops.length === 0) continue;
        const t = this.trees.intern(insTree, treeId);
        for (const op of ops) {
          const peer = this.peers.intern(insPeer, op.id.peerId);
          const target = this.names.intern(insName, op.targetId);
          if (isMoveOp(op)) {
            params.push(t, op.id.counter, peer, OpKind.Move, target, op.parentId === null ? null : this.names.intern(insName, op.parentId), null);
          } else if (op.value === undefined) {
            params.push(t, op.id.counter, peer, OpKind.Remove, target, this.names.intern(insName, op.key), null);
          } else {
            params.push(t, op.id.counter, peer, OpKind.Set, target, this.names.intern(insName, op.key), JSON.stringify(op.value));
          }
          if (params.length === INSERT_ROWS * 7) {
            many.run(params);
            n += this.db.getRowsModified();
            params.length = 0;
          }
        }
      }
      for (let i = 0; i < params.length; i += 7) {
        one.run(params.slice(i, i + 7));
        n += this.db.getRowsModified();
      }
      return n;
    });
    if (added > 0) this.dirty = true;
    return added;
  }

  // ---------------------------------------------------------------------------------------------
  // Sync state of server layers (syncTables.ts)

  /** Applies a flush's outbox changes and sequence advances (after its ops were inserted). */
  applySync(actions: SyncActions | undefined): void {
    if (!hasSyncActions(actions)) return;
    ensureSyncTables(this.db);
    const changed = this.tx(() => {
      const insTree = this.stmt(this.trees.insertSql);
      const insPeer = this.stmt(this.peers.insertSql);
      return applySyncActions(this.db, actions, {
        internTree: (s) => this.trees.intern(insTree, s),
        internPeer: (s) => this.peers.intern(insPeer, s),
        tree: (s) => this.trees.get(s),
        peer: (s) => this.peers.get(s),
      });
    });
    if (changed > 0) this.dirty = true;
  }

  /** A layer's stored sequence and its outbox ops per tree (validated like any load). */
  readSyncState(layer: string): { seq: number; outbox: OpColumns[] } {
    if (!hasSyncTables(this.db)) return { seq: 0, outbox: [] };
    const seq = readSeq(this.db, layer);
    try {
      const outbox = selectOutbox(this.db, layer).map((t) => {
        const treeId = this.trees.str(t);
        if (treeId === undefined || !isValidTreeId(treeId)) throw invalidData(this.file, `outbox entry of a missing tree ${t}`);
        return this.readColumns('temp.outbox_ops', t, treeId);
      });
      return { seq, outbox };
    } finally {
      dropOutboxSelection(this.db);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Secrets

  private readSecretRows(table: 'main.secrets' | 'ext.secrets', file: string): SecretRow[] {
    const r = this.db.exec(`SELECT key, time, peer, iv, data FROM ${table}`);
    const rows: SecretRow[] = [];
    for (const [key, time, peer, iv, data] of r[0]?.values ?? []) {
      const row: SecretRow = {
        key: key as string,
        time: time as number,
        peerId: peer as string,
        iv: iv instanceof Uint8Array ? iv : iv === null ? null : new Uint8Array(0),
        data: data instanceof Uint8Array ? data : data === null ? null : new Uint8Array(0),
      };
      const problem = checkSecretRecord({ key: row.key, value: null, time: row.time, peerId: row.peerId }) ?? checkSecretRowShape(row);
      if (problem) throw invalidData(file, `secret ${JSON.stringify(row.key)}: ${problem}`);
      rows.push(row);
    }
    return rows;
  }

  private requireKey(doing: string): Uint8Array {
    const key = this.secretKey;
    if (!key) throw new SpaceFileError(`${this.file}: cannot ${doing}: no secret key was given`, 'NO_KEY');
    if (this.keyCheckValue !== undefined && !keyCheckMatches(key, this.spaceId, this.keyCheckValue)) {
      throw new SpaceFileError(`${this.file}: cannot ${doing}: this file's secrets were written with another key`, 'WRONG_KEY');
    }
    return key;
  }

  private decrypt(key: Uint8Array, row: SecretRow): SecretRecord {
    let rec: SecretRecord;
    try {
      rec = decryptSecret(key, this.spaceId, row);
    } catch {
      throw new SpaceFileError(`${this.file}: cannot decrypt secret ${JSON.stringify(row.key)}: this file's secrets were written with another key, or the file was tampered with`, 'WRONG_KEY');
    }
    const problem = checkSecretRecord(rec);
    if (problem) throw invalidData(this.file, `secret ${JSON.stringify(row.key)}: ${problem}`);
    return rec;
  }

  /** Every secret record, decrypted (tombstones included). */
  loadSecrets(): SecretRecord[] {
    const rows = this.readSecretRows('main.secrets', this.file);
    if (rows.length === 0) return [];
    const key = this.requireKey('read secrets');
    return rows.map((row) => this.decrypt(key, row));
  }

  /** Stores the records that win against the stored ones. Returns how many changed. */
  saveSecrets(records: readonly SecretRecord[]): number {
    if (records.length === 0) return 0;
    const key = this.requireKey('store secrets');
    const current = new Map(this.readSecretRows('main.secrets', this.file).map((r) => [r.key, r]));
    const winners = new Map<string, SecretRecord>();
    for (const r of records) {
      const prev = winners.get(r.key);
      if (prev) {
        if (secretWins(r, prev)) winners.set(r.key, r);
        continue;
      }
      const stored = current.get(r.key);
      let storedRec: SecretRecord | undefined;
      if (stored) {
        try {
          storedRec = decryptSecret(key, this.spaceId, stored);
        } catch {
          storedRec = undefined; // undecryptable (damaged): any record replaces it
        }
      }
      if (secretWins(r, storedRec)) winners.set(r.key, r);
    }
    if (winners.size === 0) return 0;
    this.tx(() => {
      if (this.keyCheckValue === undefined) {
        this.keyCheckValue = keyCheck(key, this.spaceId);
        this.db.run('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)', [META.keyCheck, this.keyCheckValue]);
      }
      for (const r of winners.values()) this.putSecretRow(encryptSecret(key, this.spaceId, r));
    });
    this.dirty = true;
    return winners.size;
  }

  private putSecretRow(row: SecretRow): void {
    this.db.run('INSERT OR REPLACE INTO secrets (key, time, peer, iv, data) VALUES (?, ?, ?, ?, ?)', [row.key, row.time, row.peerId, row.iv, row.data]);
  }

  /** Does stored row `a` (from another copy) win over our row `b`? */
  private rowWins(a: SecretRow, b: SecretRow | undefined): boolean {
    // The same rule as secretWins: a record dated past SECRET_LIMITS.maxTime never wins.
    if (isInertSecretTime(a.time)) return false;
    if (!b || isInertSecretTime(b.time)) return true;
    if (a.time !== b.time) return a.time > b.time;
    if (a.peerId !== b.peerId) return a.peerId > b.peerId;
    if (sameSecretRow(a, b)) return false;
    const key = this.secretKey;
    if (key) {
      try {
        return secretWins(decryptSecret(key, this.spaceId, a), decryptSecret(key, this.spaceId, b));
      } catch {
        // fall through: decide on what is visible without the plaintext
      }
    }
    return a.iv === null && b.iv !== null;
  }

  // ---------------------------------------------------------------------------------------------
  // Merge

  /**
   * Merges another copy of this space's file (the version on disk, written by another process)
   * into this database: its ops we lack (INSERT OR IGNORE), its secret records that win, its
   * key check. Everything new is validated first; on any problem nothing is merged.
   */
  mergeFrom(bytes: Uint8Array): MergeResult {
    const { db: ext, meta } = openChecked(this.SQL, bytes, this.file);
    try {
      if (meta.spaceId !== this.spaceId) {
        throw new SpaceFileError(`${this.file} now holds another space (${meta.spaceId}, not ${this.spaceId})`, 'SPACE_MISMATCH');
      }
      const extName = (ext as unknown as { filename: string }).filename;
      this.db.run('ATTACH ? AS ext', [extName]);
      try {
        return this.tx(() => this.mergeAttached(meta.keyCheck));
      } finally {
        this.db.exec('DETACH ext');
      }
    } finally {
      ext.close();
    }
  }

  private mergeAttached(extKeyCheck: string | undefined): MergeResult {
    const db = this.db;
    db.exec(`
      INSERT OR IGNORE INTO main.trees (tree) SELECT tree FROM ext.trees ORDER BY id;
      INSERT OR IGNORE INTO main.peers (peer) SELECT peer FROM ext.peers ORDER BY id;
      INSERT OR IGNORE INTO main.names (name) SELECT name FROM ext.names ORDER BY id;
    `);
    this.trees.load(db, this.file, this.trees.maxId);
    this.peers.load(db, this.file, this.peers.maxId);
    this.names.load(db, this.file, this.names.maxId);
    db.exec(`
      DROP TABLE IF EXISTS temp.inc;
      CREATE TEMP TABLE inc AS
      SELECT mt.id AS tree, e.counter AS counter, mp.id AS peer, e.kind AS kind, mn.id AS target,
             ma.id AS a, e.a AS a_raw, e.b AS b
      FROM ext.ops AS e
      LEFT JOIN ext.trees AS et ON et.id = e.tree
      LEFT JOIN main.trees AS mt ON mt.tree = et.tree
      LEFT JOIN ext.peers AS ep ON ep.id = e.peer
      LEFT JOIN main.peers AS mp ON mp.peer = ep.peer
      LEFT JOIN ext.names AS en ON en.id = e.target
      LEFT JOIN main.names AS mn ON mn.name = en.name
      LEFT JOIN ext.names AS ea ON ea.id = e.a
      LEFT JOIN main.names AS ma ON ma.name = ea.name
      WHERE NOT EXISTS (SELECT 1 FROM main.ops AS o WHERE o.tree = mt.id AND o.counter = e.counter AND o.peer = mp.id);
    `);
    try {
      const dangling = Number(
        db.exec('SELECT count(*) FROM temp.inc WHERE tree IS NULL OR peer IS NULL OR target IS NULL OR (a_raw IS NOT NULL AND a IS NULL)')[0]?.values[0]?.[0] ?? 0,
      );
      if (dangling > 0) throw invalidData(this.file, `${dangling} ops point to missing trees, peers or vertices`);
      const trees: OpColumns[] = [];
      for (const [t] of db.exec('SELECT DISTINCT tree FROM temp.inc')[0]?.values ?? []) {
        const treeId = this.trees.str(t);
        if (treeId === undefined || !isValidTreeId(treeId)) throw invalidData(this.file, `bad tree id ${JSON.stringify(treeId ?? t)}`);
        trees.push(this.readColumns('temp.inc', t as number, treeId));
      }
      if (trees.length > 0) {
        db.exec('INSERT OR IGNORE INTO main.ops (tree, counter, peer, kind, target, a, b) SELECT tree, counter, peer, kind, target, a, b FROM temp.inc');
      }
      const secrets = this.mergeSecretRows(extKeyCheck);
      mergeSyncTables(db);
      return { trees, secrets };
    } finally {
      db.exec('DROP TABLE IF EXISTS temp.inc');
    }
  }

  private mergeSecretRows(extKeyCheck: string | undefined): SecretRecord[] {
    if (this.keyCheckValue === undefined && extKeyCheck !== undefined) {
      this.keyCheckValue = extKeyCheck;
      this.db.run('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)', [META.keyCheck, extKeyCheck]);
    }
    const theirs = this.readSecretRows('ext.secrets', this.file);
    if (theirs.length === 0) return [];
    const ours = new Map(this.readSecretRows('main.secrets', this.file).map((r) => [r.key, r]));
    const won: SecretRow[] = [];
    for (const row of theirs) {
      if (this.rowWins(row, ours.get(row.key))) {
        this.putSecretRow(row);
        won.push(row);
      }
    }
    const key = this.secretKey;
    const readable = key !== undefined && (this.keyCheckValue === undefined || keyCheckMatches(key, this.spaceId, this.keyCheckValue));
    if (!readable) return [];
    const out: SecretRecord[] = [];
    for (const row of won) {
      try {
        out.push(this.decrypt(key, row));
      } catch {
        // not readable with our key: stored as is, reported by loadSecrets
      }
    }
    return out;
  }
}
