/**
 * The `peer_users` table of a space file: who writes under which peer id, as each team server
 * said (`peers` messages, src/persistence/server/identity.ts), per server layer:
 * `peer_users (layer, peer, user)`. Kept so that a file names the authors of its ops offline and
 * after a restart. Created on first use (files without it open as before); another writer's copy
 * merges in as a union, ours kept on a conflict. Runs in the worker, inside the SpaceDb's
 * transactions, like syncTables.ts.
 */
import type { Database } from 'sql.js';

export const PEER_USERS_SQL = `
CREATE TABLE IF NOT EXISTS peer_users (
  layer TEXT NOT NULL,
  peer TEXT NOT NULL,
  user TEXT NOT NULL,
  PRIMARY KEY (layer, peer)
) WITHOUT ROWID;`;

/** One binding as a server layer reported it. */
export type PeerUserRow = readonly [layer: string, peer: string, user: string];

function hasTable(db: Database, schema: 'main' | 'ext'): boolean {
  const r = db.exec(`SELECT 1 FROM ${schema}.sqlite_schema WHERE type = 'table' AND name = 'peer_users'`);
  return (r[0]?.values.length ?? 0) > 0;
}

/** Writes the bindings (a server's newer word replaces an older one). Returns how many rows changed. */
export function applyPeerUsers(db: Database, rows: readonly PeerUserRow[]): number {
  if (rows.length === 0) return 0;
  db.exec(PEER_USERS_SQL);
  const put = db.prepare('INSERT INTO main.peer_users (layer, peer, user) VALUES (?, ?, ?) ON CONFLICT (layer, peer) DO UPDATE SET user = excluded.user WHERE user <> excluded.user');
  let changed = 0;
  try {
    for (const [layer, peer, user] of rows) {
      put.run([layer, peer, user]);
      changed += db.getRowsModified();
    }
  } finally {
    put.free();
  }
  return changed;
}

/** The bindings a layer stored: `[peer, user]` (rows that are not text are skipped). */
export function readPeerUsers(db: Database, layer: string): Array<[string, string]> {
  if (!hasTable(db, 'main')) return [];
  const out: Array<[string, string]> = [];
  for (const [peer, user] of db.exec('SELECT peer, user FROM main.peer_users WHERE layer = ?', [layer])[0]?.values ?? []) {
    if (typeof peer === 'string' && typeof user === 'string') out.push([peer, user]);
  }
  return out;
}

/** Merges the attached `ext` copy's bindings into ours (union; ours win a conflict). */
export function mergePeerUsers(db: Database): void {
  if (!hasTable(db, 'ext')) return;
  db.exec(PEER_USERS_SQL);
  db.exec('INSERT OR IGNORE INTO main.peer_users (layer, peer, user) SELECT layer, peer, user FROM ext.peer_users');
}
