/**
 * Writes a `*.space` file in schema 1 (one row per op, strings interned), the format files had
 * before the codec, to test that such files open and migrate. The schema is frozen here as it
 * was shipped; nothing in src/ writes it any more.
 */
import fs from 'node:fs';
import type { SqlJsStatic } from 'sql.js';
import { isMoveOp, type Op } from '../../src/spaces/ops';

const V1_SCHEMA = `
PRAGMA page_size = 16384;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE trees (id INTEGER PRIMARY KEY, tree TEXT NOT NULL UNIQUE);
CREATE TABLE peers (id INTEGER PRIMARY KEY, peer TEXT NOT NULL UNIQUE);
CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE ops (
  tree INTEGER NOT NULL, counter INTEGER NOT NULL, peer INTEGER NOT NULL,
  kind INTEGER NOT NULL, target INTEGER NOT NULL, a INTEGER, b TEXT,
  PRIMARY KEY (tree, counter, peer)) WITHOUT ROWID;
CREATE TABLE secrets (key TEXT PRIMARY KEY, time INTEGER NOT NULL, peer TEXT NOT NULL, iv BLOB, data BLOB) WITHOUT ROWID;
CREATE TABLE outbox (layer TEXT NOT NULL, tree INTEGER NOT NULL, counter INTEGER NOT NULL, peer INTEGER NOT NULL,
  PRIMARY KEY (layer, tree, counter, peer)) WITHOUT ROWID;
CREATE TABLE watermarks (layer TEXT NOT NULL, tree INTEGER NOT NULL, value TEXT NOT NULL, PRIMARY KEY (layer, tree)) WITHOUT ROWID;
PRAGMA application_id = 1397769029;
PRAGMA user_version = 1;
`;

export interface V1Contents {
  readonly spaceId: string;
  readonly trees: ReadonlyArray<{ readonly treeId: string; readonly ops: readonly Op[] }>;
  /** Outbox entries: [layer, treeId, counter, peerId]. */
  readonly outbox?: ReadonlyArray<readonly [string, string, number, string]>;
  /** Watermarks: [layer, seq]. */
  readonly seqs?: ReadonlyArray<readonly [string, number]>;
}

/** The bytes of a schema-1 file holding `c`. */
export function v1SpaceFileBytes(SQL: SqlJsStatic, c: V1Contents): Uint8Array {
  const db = new SQL.Database();
  try {
    db.exec(V1_SCHEMA);
    for (const [k, v] of [
      ['format', 'spaces-vscode'],
      ['schema_version', '1'],
      ['space_id', c.spaceId],
      ['created_at', '1700000000000'],
    ]) {
      db.run('INSERT INTO meta (key, value) VALUES (?, ?)', [k, v]);
    }
    const interned = (table: string, column: string) => {
      const ids = new Map<string, number>();
      return (s: string): number => {
        let id = ids.get(s);
        if (id === undefined) {
          id = ids.size + 1;
          ids.set(s, id);
          db.run(`INSERT INTO ${table} (id, ${column}) VALUES (?, ?)`, [id, s]);
        }
        return id;
      };
    };
    const tree = interned('trees', 'tree');
    const peer = interned('peers', 'peer');
    const name = interned('names', 'name');
    db.exec('BEGIN');
    for (const t of c.trees) {
      const tid = tree(t.treeId);
      for (const op of t.ops) {
        const row = [tid, op.id.counter, peer(op.id.peerId)];
        if (isMoveOp(op)) db.run('INSERT OR IGNORE INTO ops VALUES (?, ?, ?, 0, ?, ?, NULL)', [...row, name(op.targetId), op.parentId === null ? null : name(op.parentId)]);
        else if (op.value === undefined) db.run('INSERT OR IGNORE INTO ops VALUES (?, ?, ?, 2, ?, ?, NULL)', [...row, name(op.targetId), name(op.key)]);
        else db.run('INSERT OR IGNORE INTO ops VALUES (?, ?, ?, 1, ?, ?, ?)', [...row, name(op.targetId), name(op.key), JSON.stringify(op.value)]);
      }
    }
    for (const [layer, treeId, counter, peerId] of c.outbox ?? []) db.run('INSERT INTO outbox VALUES (?, ?, ?, ?)', [layer, tree(treeId), counter, peer(peerId)]);
    for (const [layer, seq] of c.seqs ?? []) db.run('INSERT INTO watermarks VALUES (?, 0, ?)', [layer, String(seq)]);
    db.exec('COMMIT');
    return db.export();
  } finally {
    db.close();
  }
}

export function writeV1SpaceFile(SQL: SqlJsStatic, file: string, c: V1Contents): void {
  fs.writeFileSync(file, v1SpaceFileBytes(SQL, c));
}
