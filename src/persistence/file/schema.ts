/**
 * The schema of a `*.space` file (a SQLite database). See docs/storage.md.
 *
 * Strings that repeat (tree ids, peer ids, vertex ids and property keys) are interned in small
 * tables and ops point at them by integer, which keeps the file about 20% smaller than storing
 * UUIDs in every row and lets a tree load as a few integer columns.
 */
import { isVertexId } from '../../spaces/ids';

export const FORMAT = 'spaces-vscode';
export const SCHEMA_VERSION = 1;

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
 * `meta` is created first so that it sits on page 2, which lets `readMeta` answer from the first
 * few pages of a file (see `readMetaFromPrefix`).
 */
export const SCHEMA_SQL = `
PRAGMA page_size = 16384;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE trees (id INTEGER PRIMARY KEY, tree TEXT NOT NULL UNIQUE);
CREATE TABLE peers (id INTEGER PRIMARY KEY, peer TEXT NOT NULL UNIQUE);
CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE ops (
  tree INTEGER NOT NULL,
  counter INTEGER NOT NULL,
  peer INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  target INTEGER NOT NULL,
  a INTEGER,
  b TEXT,
  PRIMARY KEY (tree, counter, peer)
) WITHOUT ROWID;
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

/** Tables every version-1 file must have. */
export const REQUIRED_TABLES = ['meta', 'trees', 'peers', 'names', 'ops', 'secrets'] as const;

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
