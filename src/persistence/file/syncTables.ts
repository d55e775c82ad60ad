/**
 * The `outbox` and `watermarks` tables of a space file: the sync state of the server layers that
 * use the file as their SyncStateStore (src/persistence/server/syncState.ts). See docs/storage.md.
 *
 * - `outbox (layer, tree, counter, peer)`: ops (stored in the file's chunks) a server layer has not had
 *   acknowledged yet. Another writer's copy merges in as a union: an entry is only ever lost by
 *   being acknowledged; a resurrected entry is sent again or dropped against the server's state
 *   vector.
 * - `watermarks (layer, tree, value)`: `tree = 0` holds the server sequence (decimal) up to which
 *   the file holds every batch of that layer's server. It is written in the same flush as the
 *   ops it covers and merges as the maximum: each copy holds the ops its own watermark claims,
 *   and a merge takes all of them.
 *
 * Runs in the worker, on the SpaceDb's database, inside its transactions.
 */
import type { Database } from 'sql.js';
import { applyPeerUsers, mergePeerUsers, type PeerUserRow } from './peerUsersTable';
import { SYNC_TABLES_SQL } from './schema';

/** The watermark row that holds the space-wide server sequence. */
export const SEQ_ROW_TREE = 0;

/** One change to a layer's outbox: op ids as `[counter, peerId]`. */
export interface OutboxChange {
  readonly layer: string;
  readonly treeId: string;
  readonly add: boolean;
  readonly ids: ReadonlyArray<readonly [number, string]>;
}

/** Sync-state writes carried by a flush, applied after its ops, in order. */
export interface SyncActions {
  readonly outbox: OutboxChange[];
  /** Per layer: the new sequence (applied only when higher than the stored one). */
  readonly seqs: Array<[string, number]>;
  /** Who writes under which peer id, as a server layer reported it (peerUsersTable.ts). */
  readonly peers: PeerUserRow[];
}

export function emptySyncActions(): SyncActions {
  return { outbox: [], seqs: [], peers: [] };
}

export function hasSyncActions(a: SyncActions | undefined): a is SyncActions {
  return a !== undefined && (a.outbox.length > 0 || a.seqs.length > 0 || a.peers.length > 0);
}

function hasTable(db: Database, schema: 'main' | 'ext', table: string): boolean {
  const r = db.exec(`SELECT 1 FROM ${schema}.sqlite_schema WHERE type = 'table' AND name = ?`, [table]);
  return (r[0]?.values.length ?? 0) > 0;
}

/** Files made by other tools may lack the tables (they are not required to open a file). */
export function ensureSyncTables(db: Database): void {
  db.exec(SYNC_TABLES_SQL); // unqualified CREATE TABLE goes to main, never to an attached file
}

export function hasSyncTables(db: Database): boolean {
  return hasTable(db, 'main', 'outbox') && hasTable(db, 'main', 'watermarks');
}

const UPSERT_SEQ_SQL = `INSERT INTO main.watermarks (layer, tree, value) VALUES (?, ${SEQ_ROW_TREE}, ?)
  ON CONFLICT (layer, tree) DO UPDATE SET value = excluded.value
  WHERE CAST(excluded.value AS INTEGER) > CAST(watermarks.value AS INTEGER)`;

/**
 * Applies outbox changes and sequence advances; `internTree`/`internPeer` give (creating) the
 * interned ids, `treeId`/`peerId` only look them up. Returns how many rows changed.
 */
export function applySyncActions(
  db: Database,
  actions: SyncActions,
  ids: { internTree(s: string): number; internPeer(s: string): number; tree(s: string): number | undefined; peer(s: string): number | undefined },
): number {
  let changed = 0;
  const add = db.prepare('INSERT OR IGNORE INTO main.outbox (layer, tree, counter, peer) VALUES (?, ?, ?, ?)');
  const del = db.prepare('DELETE FROM main.outbox WHERE layer = ? AND tree = ? AND counter = ? AND peer = ?');
  const seq = db.prepare(UPSERT_SEQ_SQL);
  try {
    for (const c of actions.outbox) {
      if (c.add) {
        const t = ids.internTree(c.treeId);
        for (const [counter, peer] of c.ids) {
          add.run([c.layer, t, counter, ids.internPeer(peer)]);
          changed += db.getRowsModified();
        }
      } else {
        const t = ids.tree(c.treeId);
        if (t === undefined) continue;
        for (const [counter, peer] of c.ids) {
          const p = ids.peer(peer);
          if (p === undefined) continue;
          del.run([c.layer, t, counter, p]);
          changed += db.getRowsModified();
        }
      }
    }
    for (const [layer, value] of actions.seqs) {
      seq.run([layer, String(value)]);
      changed += db.getRowsModified();
    }
    changed += applyPeerUsers(db, actions.peers);
  } finally {
    add.free();
    del.free();
    seq.free();
  }
  return changed;
}

/** The stored sequence of `layer` (0 when none). */
export function readSeq(db: Database, layer: string): number {
  const r = db.exec(`SELECT value FROM main.watermarks WHERE layer = ? AND tree = ${SEQ_ROW_TREE}`, [layer]);
  const v = Number(r[0]?.values[0]?.[0] ?? 0);
  return Number.isSafeInteger(v) && v > 0 ? v : 0;
}

/**
 * Merges the attached `ext` copy's outbox (union) and watermarks (maximum) into ours, mapping
 * interned ids through the names (the caller merged `trees` and `peers` first). A copy without
 * the tables contributes nothing.
 */
export function mergeSyncTables(db: Database): void {
  mergePeerUsers(db);
  const extOutbox = hasTable(db, 'ext', 'outbox');
  const extMarks = hasTable(db, 'ext', 'watermarks');
  if (!extOutbox && !extMarks) return;
  ensureSyncTables(db);
  if (extOutbox) {
    db.exec(`
      INSERT OR IGNORE INTO main.outbox (layer, tree, counter, peer)
      SELECT e.layer, mt.id, e.counter, mp.id
      FROM ext.outbox AS e
      JOIN ext.trees AS et ON et.id = e.tree JOIN main.trees AS mt ON mt.tree = et.tree
      JOIN ext.peers AS ep ON ep.id = e.peer JOIN main.peers AS mp ON mp.peer = ep.peer`);
  }
  if (extMarks) {
    db.exec(`
      INSERT INTO main.watermarks (layer, tree, value)
      SELECT e.layer, ${SEQ_ROW_TREE}, e.value FROM ext.watermarks AS e
      WHERE e.tree = ${SEQ_ROW_TREE} AND CAST(e.value AS INTEGER) > 0
      ON CONFLICT (layer, tree) DO UPDATE SET value = excluded.value
      WHERE CAST(excluded.value AS INTEGER) > CAST(watermarks.value AS INTEGER)`);
  }
}
