/**
 * The schema of a `*.space` file (a SQLite database). See docs/storage.md.
 *
 * Version 2 stores ops as blobs of the binary codec (src/codec/), one row per chunk of a tree's
 * ops; which ops a tree holds is rebuilt from them when needed, so there is no per-op index row.
 * Version 1 (one row per op, strings interned in `names`) is read and migrated on open.
 */
import { isVertexId } from '../../spaces/ids';

export const FORMAT = 'spaces-vscode';
export const SCHEMA_VERSION = 2;

/** The version with one row per op (migrated on open, migration.ts). */
export const SCHEMA_V1 = 1;

/** The application_id in the SQLite header ("SPCE"), a hint for tools like `file(1)`. */
export const APPLICATION_ID = 0x53504345;

/**
 * The sync layer's tables (outbox and watermarks). Part of every new file; `ensureSyncTables`
 * adds them to files made without them.
 */
export const SYNC_TABLES_SQL = `
CREATE TABLE IF NOT EXISTS outbox (
  layer TEXT NOT NULL,
  tree INTEGER NOT NULL,
  counter INTEGER NOT NULL,
  peer INTEGER NOT NULL,
  PRIMARY KEY (layer, tree, counter, peer)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS watermarks (
  layer TEXT NOT NULL,
  tree INTEGER NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (layer, tree)
) WITHOUT ROWID;`;

/**
 * Ops in codec blobs: `chunks` holds a tree's ops (each op once, chunks in the order they were
 * written; small ones are merged as they accumulate); `snapshots` is reserved for a tree's state
 * encoded as of chunk `chunk` (every chunk of the tree with id ≤ `chunk`), read by nothing yet.
 */
export const CHUNK_TABLES_SQL = `
CREATE TABLE IF NOT EXISTS chunks (
  id INTEGER PRIMARY KEY,
  tree INTEGER NOT NULL,
  n_ops INTEGER NOT NULL,
  ops BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_tree ON chunks (tree, id);
CREATE TABLE IF NOT EXISTS snapshots (
  tree INTEGER PRIMARY KEY,
  chunk INTEGER NOT NULL,
  data BLOB NOT NULL
);`;

/**
 * `meta` is created first so that it sits on page 2, which lets `readMeta` answer from the first
 * few pages of a file (see `readMetaFromPrefix`).
 */
export const SCHEMA_SQL = `
PRAGMA page_size = 16384;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE trees (id INTEGER PRIMARY KEY, tree TEXT NOT NULL UNIQUE);
CREATE TABLE peers (id INTEGER PRIMARY KEY, peer TEXT NOT NULL UNIQUE);
${CHUNK_TABLES_SQL}
CREATE TABLE secrets (
  key TEXT PRIMARY KEY,
  time INTEGER NOT NULL,
  peer TEXT NOT NULL,
  iv BLOB,
  data BLOB
) WITHOUT ROWID;
${SYNC_TABLES_SQL}
PRAGMA application_id = ${APPLICATION_ID};
PRAGMA user_version = ${SCHEMA_VERSION};
`;

/** Tables every file of a version must have. */
export const REQUIRED_TABLES: Readonly<Record<number, readonly string[]>> = {
  1: ['meta', 'trees', 'peers', 'names', 'ops', 'secrets'],
  2: ['meta', 'trees', 'peers', 'chunks', 'secrets'],
};

/** Meta keys. */
export const META = {
  format: 'format',
  schemaVersion: 'schema_version',
  spaceId: 'space_id',
  createdAt: 'created_at',
  /** HMAC of the secret key (see secretCrypto.ts), set once the first secret is stored. */
  keyCheck: 'key_check',
} as const;

/** Tree ids and space ids: a tree's id is its root's vertex id (src/spaces/ids.ts). */
export const isValidTreeId = isVertexId;

const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Property keys SQLite stores faithfully through sql.js, which binds text as NUL-terminated
 * UTF-8: no NUL character and no unpaired surrogate (either would come back changed).
 */
export function isStorableKey(s: string): boolean {
  return !s.includes('\0') && !LONE_SURROGATE_RE.test(s);
}
