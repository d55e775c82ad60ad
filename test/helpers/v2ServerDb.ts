/**
 * Writes a server data directory in store schema 2 (batches as JSON tuples, one row each, and a
 * per-op index), the format before the codec, to test that such databases open and migrate. The
 * schema is frozen here as it was shipped; nothing in src/ writes it any more.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { encodeOps } from '../../src/spaces/opCodec';
import type { Op } from '../../src/spaces/ops';

const V2_SCHEMA = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE spaces (sid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, created INTEGER NOT NULL, last_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE trees (tid INTEGER PRIMARY KEY, sid INTEGER NOT NULL REFERENCES spaces (sid), tree_id TEXT NOT NULL, UNIQUE (sid, tree_id));
CREATE TABLE batches (bid INTEGER PRIMARY KEY, sid INTEGER NOT NULL REFERENCES spaces (sid), seq INTEGER NOT NULL,
  tid INTEGER NOT NULL REFERENCES trees (tid), n_ops INTEGER NOT NULL, ops TEXT NOT NULL, created INTEGER NOT NULL, UNIQUE (sid, seq));
CREATE INDEX batches_by_tree ON batches (tid, seq);
CREATE TABLE ops (tid INTEGER NOT NULL, peer TEXT NOT NULL, counter INTEGER NOT NULL, seq INTEGER, PRIMARY KEY (tid, peer, counter)) WITHOUT ROWID;
CREATE TABLE peers (sid INTEGER NOT NULL REFERENCES spaces (sid), peer TEXT NOT NULL, user TEXT NOT NULL, PRIMARY KEY (sid, peer)) WITHOUT ROWID;
CREATE TABLE secrets (sid INTEGER NOT NULL REFERENCES spaces (sid), key TEXT NOT NULL, time INTEGER NOT NULL, peer TEXT NOT NULL,
  iv BLOB, data BLOB, PRIMARY KEY (sid, key)) WITHOUT ROWID;
CREATE TABLE tokens (id TEXT PRIMARY KEY, hash BLOB NOT NULL UNIQUE, user TEXT NOT NULL, space TEXT NOT NULL, role TEXT NOT NULL,
  created INTEGER NOT NULL, expires INTEGER, revoked INTEGER) WITHOUT ROWID;
PRAGMA user_version = 2;
`;

export interface V2Space {
  readonly id: string;
  /** Batches in seq order (seq 1, 2, …): each a tree and its ops (all new). */
  readonly batches: ReadonlyArray<{ readonly treeId: string; readonly ops: readonly Op[] }>;
}

/** Creates `dir/spaces.db` in schema 2 holding `spaces`. */
export function writeV2ServerDb(dir: string, spaces: readonly V2Space[]): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const db = new Database(path.join(dir, 'spaces.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.exec(V2_SCHEMA);
    db.prepare('INSERT INTO meta VALUES (?, ?)').run('serverId', '00112233aabbccdd');
    db.transaction(() => {
      for (const s of spaces) {
        const sid = Number(db.prepare('INSERT INTO spaces (id, name, created, last_seq) VALUES (?, ?, ?, ?)').run(s.id, 'old', 1_700_000_000_000, s.batches.length).lastInsertRowid);
        const tids = new Map<string, number>();
        s.batches.forEach((b, i) => {
          let tid = tids.get(b.treeId);
          if (tid === undefined) tids.set(b.treeId, (tid = Number(db.prepare('INSERT INTO trees (sid, tree_id) VALUES (?, ?)').run(sid, b.treeId).lastInsertRowid)));
          db.prepare('INSERT INTO batches (sid, seq, tid, n_ops, ops, created) VALUES (?, ?, ?, ?, ?, ?)').run(sid, i + 1, tid, b.ops.length, JSON.stringify(encodeOps(b.ops)), 1_700_000_000_000);
          for (const op of b.ops) db.prepare('INSERT INTO ops (tid, peer, counter, seq) VALUES (?, ?, ?, ?)').run(tid, op.id.peerId, op.id.counter, i + 1);
        });
      }
    })();
  } finally {
    db.close();
  }
}
