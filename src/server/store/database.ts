/**
 * The server's one SQLite database (`DIR/spaces.db`, better-sqlite3): schema, pragmas, migrations.
 *
 * Durability: WAL journal with `synchronous = FULL`, so every committed transaction has been
 * fsynced to the WAL before `commit` returns. The server acknowledges a batch only after its
 * transaction committed, so an acknowledged batch survives SIGKILL of the server and a power
 * loss. (NORMAL would survive SIGKILL too but may lose the last commits on power loss.) Writes are
 * grouped per space (see writeQueue.ts), so one fsync usually covers several batches.
 *
 * Other processes (the `token` commands) may open the same file while the server runs; WAL lets
 * them read and write next to it, and `busy_timeout` makes a writer wait instead of failing.
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { decodeOps } from '../../spaces/opCodec';
import type { Op } from '../../spaces/ops';
import { OpChunks, type ChunkBatch } from './opChunks';

export type Db = Database.Database;

export const DB_FILE = 'spaces.db';
export const SCHEMA_VERSION = 3;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
-- One row per space; last_seq is the seq of its newest batch (0: none yet).
CREATE TABLE IF NOT EXISTS spaces (
  sid INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  created INTEGER NOT NULL,
  last_seq INTEGER NOT NULL DEFAULT 0
);
-- Trees of a space (the space tree's id is the space id), numbered to keep the op index small.
CREATE TABLE IF NOT EXISTS trees (
  tid INTEGER PRIMARY KEY,
  sid INTEGER NOT NULL REFERENCES spaces (sid),
  tree_id TEXT NOT NULL,
  UNIQUE (sid, tree_id)
);
-- Accepted batches (only the ops that were new) as codec blobs, one row per run of consecutive
-- seqs of a space (opChunks.ts); catch-up reads the rows with last_seq > N.
CREATE TABLE IF NOT EXISTS chunks (
  cid INTEGER PRIMARY KEY,
  sid INTEGER NOT NULL REFERENCES spaces (sid),
  first_seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  n_ops INTEGER NOT NULL,
  ops BLOB NOT NULL,
  UNIQUE (sid, last_seq)
);
-- Peer ids, numbered for op_ranges.
CREATE TABLE IF NOT EXISTS peer_ids (pid INTEGER PRIMARY KEY, peer TEXT NOT NULL UNIQUE);
-- Which op ids are stored, as counter runs per tree and peer, and the chunk that holds them: an op
-- already stored is never stored again, and one under a stored id with other content is refused.
CREATE TABLE IF NOT EXISTS op_ranges (
  tid INTEGER NOT NULL,
  pid INTEGER NOT NULL,
  first INTEGER NOT NULL,
  last INTEGER NOT NULL,
  cid INTEGER NOT NULL,
  PRIMARY KEY (tid, pid, first)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS op_ranges_by_chunk ON op_ranges (cid);
-- Which user a peer id writes for in a space: the first that used it (as its own) keeps it.
CREATE TABLE IF NOT EXISTS peers (
  sid INTEGER NOT NULL REFERENCES spaces (sid),
  peer TEXT NOT NULL,
  user TEXT NOT NULL,
  PRIMARY KEY (sid, peer)
) WITHOUT ROWID;
-- Secrets per space, values AES-256-GCM encrypted with the server key (tombstones: iv/data NULL).
CREATE TABLE IF NOT EXISTS secrets (
  sid INTEGER NOT NULL REFERENCES spaces (sid),
  key TEXT NOT NULL,
  time INTEGER NOT NULL,
  peer TEXT NOT NULL,
  iv BLOB,
  data BLOB,
  PRIMARY KEY (sid, key)
) WITHOUT ROWID;
-- Access tokens, stored as SHA-256 of the token (the token itself is shown once, at creation).
CREATE TABLE IF NOT EXISTS tokens (
  id TEXT PRIMARY KEY,
  hash BLOB NOT NULL UNIQUE,
  user TEXT NOT NULL,
  space TEXT NOT NULL,
  role TEXT NOT NULL,
  created INTEGER NOT NULL,
  expires INTEGER,
  revoked INTEGER
) WITHOUT ROWID;
`;

export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreError';
  }
}

/** Ops per chunk when older schemas are migrated (as merging would leave them). */
const MIGRATION_CHUNK_OPS = 4096;

function hasTable(db: Db, name: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?").get(name) !== undefined;
}

/**
 * Schemas 1 and 2 → 3: every space's batches (JSON tuples, one row each) become codec chunks of
 * consecutive seqs, the per-op index becomes counter ranges, the old tables go. Runs inside the
 * open's transaction: a crash (or an error) before it commits leaves the old schema as it was
 * (WAL + synchronous FULL: the commit is durable when it returns). Returns whether it migrated.
 */
function migrateToChunks(db: Db, file: string): boolean {
  if (!hasTable(db, 'batches')) return false;
  // Test hook (synchronous: the migration does not yield): where a test may kill the process.
  if (process.env.SPACES_MIGRATION_TRACE) fs.writeSync(2, 'migration: start\n');
  const chunks = new OpChunks(db);
  const spaces = db.prepare('SELECT sid FROM spaces ORDER BY sid').pluck().all() as number[];
  // Paged: better-sqlite3 runs no other statement while an iteration is open.
  const page = db.prepare('SELECT b.seq, b.tid, t.tree_id, b.ops FROM batches b JOIN trees t ON t.tid = b.tid WHERE b.sid = ? AND b.seq > ? ORDER BY b.seq LIMIT 512').raw();
  for (const sid of spaces) {
    let pending: ChunkBatch[] = [];
    let n = 0;
    const flush = (): void => {
      if (pending.length > 0) chunks.append(sid, pending);
      pending = [];
      n = 0;
    };
    for (let after = 0; ; ) {
      const rows = page.all(sid, after) as Array<[number, number, string, string]>;
      if (rows.length === 0) break;
      for (const [seq, tid, treeId, json] of rows) {
        after = seq;
        let ops: Op[];
        try {
          ops = decodeOps(JSON.parse(json), treeId, `${file} batch ${seq}`);
        } catch (e) {
          throw new StoreError(`${file}: cannot migrate batch ${seq} of space #${sid}: ${e instanceof Error ? e.message : String(e)}`);
        }
        if (n > 0 && n + ops.length > MIGRATION_CHUNK_OPS) flush();
        pending.push({ seq, tid, treeId, ops });
        n += ops.length;
      }
    }
    flush();
  }
  db.exec('DROP INDEX IF EXISTS batches_by_tree; DROP TABLE batches; DROP TABLE IF EXISTS ops;');
  return true;
}

/** Opens (creating when missing) the database file and brings its schema up to date. */
export function openDatabase(file: string): Db {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 10000');
    db.pragma('foreign_keys = ON');
    const mode = db.pragma('journal_mode', { simple: true });
    if (mode !== 'wal') throw new StoreError(`${file}: cannot switch to WAL mode (got ${String(mode)})`);
    const migrated = db.transaction(() => {
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) throw new StoreError(`${file} was written by a newer server (schema ${version}; this build reads ${SCHEMA_VERSION})`);
      db.exec(SCHEMA);
      const old = version < SCHEMA_VERSION && migrateToChunks(db, file);
      db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run('serverId', randomBytes(8).toString('hex'));
      if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
      return old;
    }).immediate();
    // The old tables' pages stay in the file until it is rebuilt (journaled: a crash keeps either).
    if (migrated) db.exec('VACUUM');
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}
