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
import { decodeOpShape } from '../../spaces/opCodec';

export type Db = Database.Database;

export const DB_FILE = 'spaces.db';
export const SCHEMA_VERSION = 2;

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
-- Accepted batches: only the ops that were new, encoded as the wire's JSON tuples.
CREATE TABLE IF NOT EXISTS batches (
  bid INTEGER PRIMARY KEY,
  sid INTEGER NOT NULL REFERENCES spaces (sid),
  seq INTEGER NOT NULL,
  tid INTEGER NOT NULL REFERENCES trees (tid),
  n_ops INTEGER NOT NULL,
  ops TEXT NOT NULL,
  created INTEGER NOT NULL,
  UNIQUE (sid, seq)
);
CREATE INDEX IF NOT EXISTS batches_by_tree ON batches (tid, seq);
-- The op index: one row per stored op id, so a duplicate is never stored twice; seq is the
-- batch that holds the op, to tell an identical resend from another op under the same id.
CREATE TABLE IF NOT EXISTS ops (
  tid INTEGER NOT NULL,
  peer TEXT NOT NULL,
  counter INTEGER NOT NULL,
  seq INTEGER,
  PRIMARY KEY (tid, peer, counter)
) WITHOUT ROWID;
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

/** Schema 1 → 2: the op index gets the seq of each op's batch, read once from the stored batches. */
function addOpSeqs(db: Db): void {
  db.exec('ALTER TABLE ops ADD COLUMN seq INTEGER');
  const put = db.prepare('UPDATE ops SET seq = ? WHERE tid = ? AND peer = ? AND counter = ? AND seq IS NULL');
  // Paged: better-sqlite3 runs no other statement while an iteration is open.
  const page = db.prepare('SELECT bid, seq, tid, ops FROM batches WHERE bid > ? ORDER BY bid LIMIT 512').raw();
  for (let after = 0; ; ) {
    const rows = page.all(after) as Array<[number, number, number, string]>;
    if (rows.length === 0) return;
    for (const [bid, seq, tid, json] of rows) {
      after = bid;
      for (const t of JSON.parse(json) as unknown[]) {
        const op = decodeOpShape(t);
        if (op) put.run(seq, tid, op.id.peerId, op.id.counter);
      }
    }
  }
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
    db.transaction(() => {
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) throw new StoreError(`${file} was written by a newer server (schema ${version}; this build reads ${SCHEMA_VERSION})`);
      db.exec(SCHEMA);
      if (version === 1) addOpSeqs(db);
      db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run('serverId', randomBytes(8).toString('hex'));
      if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }).immediate();
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}
