/**
 * One space file's database inside the worker: a sql.js (in-memory SQLite) database plus
 * caches of the interned strings. It checks files it is given (header, integrity, meta,
 * schema version), migrates a schema-1 file to schema 2 in memory (the worker then writes it,
 * migration.ts), reads trees as validated ops (chunkStore.ts), inserts ops idempotently, stores
 * secrets encrypted, and merges another copy of the same file (a newer version on disk) into itself.
 *
 * No I/O here: the worker reads and writes the bytes (fileIo.ts) under the lock (lockFile.ts).
 */
import type { Database, SqlJsStatic, SqlValue, Statement } from 'sql.js';
import type { SecretRecord } from '../contract';
import { checkOp, isMoveOp, type Op } from '../../spaces/ops';
import { ChunkStore } from './chunkStore';
import { SnapshotStore } from './snapshotStore';
import { checkSecretRecord, isInertSecretTime, secretWins } from '../../spaces/secrets';
import { SpaceFileError } from './errors';
import { OpKind, columnsLength, columnsToOps, opsToColumns, type OpColumns } from './opColumns';
import { CHUNK_TABLES_SQL, FORMAT, META, REQUIRED_TABLES, SCHEMA_SQL, SCHEMA_V1, SCHEMA_VERSION, isStorableKey, isValidTreeId } from './schema';
import { checkSecretRowShape, decryptSecret, encryptSecret, keyCheck, keyCheckMatches, sameSecretRow, type SecretRow } from './secretCrypto';
import { readPeerUsers } from './peerUsersTable';
import { applySyncActions, ensureSyncTables, hasSyncActions, hasSyncTables, mergeSyncTables, readSeq, type SyncActions } from './syncTables';

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
/** Free pages, as a share of the file, above which a snapshot write vacuums (see vacuumIfSparse). */
const FREE_PAGE_SHARE = 0.25;

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
    const missing = (REQUIRED_TABLES[meta.schemaVersion] ?? []).filter((t) => !tables.has(t));
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
 * Schema 1 only (read once, to migrate): one tree's op rows as column strings: comma-separated integers (interned ids; 0 for a null
 * parent: ids start at 1), and the set ops' JSON values joined into one JSON array whose length
 * is checked against the number of set ops (a NULL or malformed value cannot go unnoticed).
 */
const COLUMNS_SQL = (table: string): string => `
  SELECT count(*), group_concat(kind), group_concat(counter), group_concat(peer), group_concat(target),
         group_concat(ifnull(a, 0)), '[' || ifnull(group_concat(b) FILTER (WHERE kind = ${OpKind.Set}), '') || ']',
         count(*) FILTER (WHERE kind = ${OpKind.Set})
  FROM ${table} WHERE tree = ?`;

export class SpaceDb {
  private readonly trees = new Interner('trees', 'tree');
  private readonly peers = new Interner('peers', 'peer');
  private readonly names = new Interner('names', 'name');
  private readonly chunks: ChunkStore;
  private readonly snapshots: SnapshotStore;
  /** The database holds changes the file on disk may lack. */
  dirty = false;
  /** The schema version the file had when it was opened, when it was migrated in memory. */
  migratedFrom: number | undefined;
  /** How many op rows the migration read (the migrated file must hold as many ops). */
  migratedOps = 0;
  private readonly statements = new Map<string, Statement>();
  private keyCheckValue: string | undefined;

  private constructor(
    private readonly SQL: SqlJsStatic,
    private db: Database,
    readonly file: string,
    public meta: SpaceFileMeta,
    keyCheckValue: string | undefined,
    private readonly secretKey: Uint8Array | undefined,
  ) {
    this.keyCheckValue = keyCheckValue;
    this.chunks = new ChunkStore(() => this.db, file);
    this.snapshots = new SnapshotStore(() => this.db, this.chunks);
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
      for (const [, tree] of s.trees.entries()) if (!isValidTreeId(tree)) throw invalidData(file, `bad tree id ${JSON.stringify(tree)}`);
      if (meta.schemaVersion === SCHEMA_V1) s.migrateV1();
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

  /**
   * Schema 1 → 2 in memory: every tree's op rows (validated like any load) become one chunk,
   * the per-op tables go. Any bad row fails the open: nothing is written (the file stays as is).
   */
  private migrateV1(): void {
    this.names.load(this.db, this.file);
    this.tx(() => {
      this.db.exec(CHUNK_TABLES_SQL);
      for (const [t, treeId] of this.trees.entries()) {
        const cols = this.readColumns('main.ops', t, treeId);
        this.migratedOps += columnsLength(cols);
        if (columnsLength(cols) > 0) this.chunks.append(t, treeId, columnsToOps(cols));
      }
      this.db.exec('DROP TABLE main.ops; DROP TABLE main.names;');
      this.db.run('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)', [META.schemaVersion, String(SCHEMA_VERSION)]);
      this.db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    });
    this.db.exec('VACUUM'); // the freed pages of the old tables would stay in the file
    this.names.truncate(0);
    this.migratedFrom = SCHEMA_V1;
    this.meta = { ...this.meta, schemaVersion: SCHEMA_VERSION };
    this.dirty = true;
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
      this.chunks.reset();
      this.snapshots.reset();
      throw e;
    }
  }

  /** Ids of the trees that have ops. */
  listTrees(): string[] {
    return this.chunks.treesWithOps().map((t) => {
      const treeId = this.trees.str(t);
      if (treeId === undefined) throw invalidData(this.file, `chunks of a missing tree ${t}`);
      return treeId;
    });
  }

  /** Every op of a tree in columns, validated (INVALID_DATA naming the file when one is bad). */
  readTree(treeId: string): OpColumns {
    return opsToColumns(treeId, this.readTreeOps(treeId));
  }

  /**
   * A tree for opening: its snapshot and the ops after it, or every op (snapshotStore.ts), in
   * columns, validated. A snapshot that cannot be used is dropped (`dropped` says why).
   */
  readTreeState(treeId: string): { snapshot?: Uint8Array; ops: OpColumns; storedOps: number; dropped?: string } {
    const t = this.trees.get(treeId);
    if (t === undefined) return { ops: opsToColumns(treeId, []), storedOps: 0 };
    const r = this.tx(() => this.snapshots.load(t, treeId));
    if (r.dropped !== undefined) this.dirty = true;
    return { snapshot: r.snapshot, ops: opsToColumns(treeId, r.ops), storedOps: r.storedOps, dropped: r.dropped };
  }

  /** Of `treeIds`, those that should get a new snapshot (more than `tailOps` ops after the last one, see snapshotStore.ts). */
  snapshotsDue(treeIds: Iterable<string>, tailOps: number): string[] {
    const out: string[] = [];
    for (const treeId of treeIds) {
      const t = this.trees.get(treeId);
      if (t !== undefined && this.snapshots.due(t, tailOps)) out.push(treeId);
    }
    return out;
  }

  /** Builds and stores a tree's snapshot when it is due (or always, with `tailOps` 0). */
  buildSnapshot(treeId: string, tailOps: number): { built: boolean; dropped?: string } {
    const t = this.trees.get(treeId);
    if (t === undefined || !this.snapshots.due(t, tailOps)) return { built: false };
    const r = this.tx(() => this.snapshots.build(t, treeId));
    if (r.built || r.dropped !== undefined) {
      this.dirty = true;
      this.vacuumIfSparse();
    }
    return r;
  }

  /**
   * A replaced snapshot leaves its pages free in the file, which every write then carries: when
   * they are more than FREE_PAGE_SHARE of it, the database is rebuilt without them.
   */
  private vacuumIfSparse(): void {
    const free = Number(this.db.exec('PRAGMA freelist_count')[0]?.values[0]?.[0] ?? 0);
    const pages = Number(this.db.exec('PRAGMA page_count')[0]?.values[0]?.[0] ?? 0);
    if (pages > 0 && free / pages > FREE_PAGE_SHARE) this.db.exec('VACUUM');
  }

  /** Deletes a tree's snapshot (one its reader could not use); the next build starts from the ops. */
  dropSnapshot(treeId: string): void {
    const t = this.trees.get(treeId);
    if (t === undefined) return;
    this.tx(() => this.snapshots.drop(t));
    this.dirty = true;
  }

  /** How many ops the database holds (every tree read and validated). */
  countOps(): number {
    let n = 0;
    for (const treeId of this.listTrees()) n += this.readTreeOps(treeId).length;
    return n;
  }

  /** Every op of a tree, validated. */
  readTreeOps(treeId: string): Op[] {
    const t = this.trees.get(treeId);
    return t === undefined ? [] : this.chunks.readOps(t, treeId);
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
   * Inserts ops (already validated by the caller) idempotently: an op id the tree holds is
   * skipped. Returns how many were new.
   */
  insertOps(batches: ReadonlyArray<{ treeId: string; ops: readonly Op[] }>): number {
    for (const { ops } of batches) {
      for (const op of ops) {
        if (!isMoveOp(op) && !isStorableKey(op.key)) {
          throw new SpaceFileError(`${this.file}: property key ${JSON.stringify(op.key)} cannot be stored (NUL or unpaired surrogate)`, 'INVALID_DATA');
        }
      }
    }
    let added = 0;
    this.tx(() => {
      for (const b of this.insertIn(batches)) added += b.ops.length;
    });
    if (added > 0) this.dirty = true;
    return added;
  }

  /** Inserts in the open transaction; returns the new ops per tree. */
  private insertIn(batches: ReadonlyArray<{ treeId: string; ops: readonly Op[] }>): Array<{ treeId: string; ops: Op[] }> {
    const insTree = this.stmt(this.trees.insertSql);
    const byTree = new Map<string, Op[]>();
    for (const { treeId, ops } of batches) {
      if (ops.length === 0) continue;
      const fresh = this.chunks.append(this.trees.intern(insTree, treeId), treeId, ops);
      if (fresh.length === 0) continue;
      const list = byTree.get(treeId);
      if (list) for (const op of fresh) list.push(op);
      else byTree.set(treeId, fresh);
    }
    return Array.from(byTree, ([treeId, ops]) => ({ treeId, ops }));
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
  readSyncState(layer: string): { seq: number; outbox: OpColumns[]; peers: Array<[string, string]> } {
    const peers = readPeerUsers(this.db, layer);
    if (!hasSyncTables(this.db)) return { seq: 0, outbox: [], peers };
    const seq = readSeq(this.db, layer);
    // Outbox entries name op ids; the ops are read from their tree (an entry without a stored op is skipped).
    const wanted = new Map<number, Set<string>>();
    for (const [t, counter, p] of this.db.exec('SELECT tree, counter, peer FROM main.outbox WHERE layer = ?', [layer])[0]?.values ?? []) {
      const peer = this.peers.str(p);
      if (typeof t !== 'number' || peer === undefined) continue;
      let set = wanted.get(t);
      if (!set) wanted.set(t, (set = new Set()));
      set.add(`${String(counter)}@${peer}`);
    }
    const outbox: OpColumns[] = [];
    for (const [t, keys] of wanted) {
      const treeId = this.trees.str(t);
      if (treeId === undefined || !isValidTreeId(treeId)) throw invalidData(this.file, `outbox entry of a missing tree ${t}`);
      const ops = this.chunks.readOps(t, treeId).filter((op) => keys.has(`${op.id.counter}@${op.id.peerId}`));
      if (ops.length > 0) outbox.push(opsToColumns(treeId, ops));
    }
    return { seq, outbox, peers };
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
    // Opened like any file (checks; a schema-1 copy is migrated in memory), read tree by tree.
    const other = SpaceDb.open(this.SQL, bytes, this.file, this.secretKey);
    try {
      if (other.spaceId !== this.spaceId) {
        throw new SpaceFileError(`${this.file} now holds another space (${other.spaceId}, not ${this.spaceId})`, 'SPACE_MISMATCH');
      }
      const incoming = other.listTrees().map((treeId) => ({ treeId, ops: other.readTreeOps(treeId) }));
      const extName = (other.db as unknown as { filename: string }).filename;
      this.db.run('ATTACH ? AS ext', [extName]);
      try {
        return this.tx(() => {
          const fresh = this.insertIn(incoming);
          this.db.exec(`
            INSERT OR IGNORE INTO main.trees (tree) SELECT tree FROM ext.trees ORDER BY id;
            INSERT OR IGNORE INTO main.peers (peer) SELECT peer FROM ext.peers ORDER BY id;
          `);
          this.trees.load(this.db, this.file, this.trees.maxId);
          this.peers.load(this.db, this.file, this.peers.maxId);
          const secrets = this.mergeSecretRows(other.keyCheckValue);
          mergeSyncTables(this.db);
          return { trees: fresh.map((f) => opsToColumns(f.treeId, f.ops)), secrets };
        });
      } finally {
        this.db.exec('DETACH ext');
      }
    } finally {
      other.close();
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
