/**
 * History from the op log (docs/team.md, "History"): every op a tree holds — the move log and
 * every property op, the superseded ones too (src/crdt/repTree.ts keeps them) — read as "who
 * changed what of an item". Pure: no I/O; authors come from a lookup (a peer id → user map the
 * team server reports, src/persistence/server/identity.ts).
 *
 * An item's history lists, in op-id order (the order every replica applies them in):
 * - `text` and `done`: each property op, with its value;
 * - `place`: each move of the item and each `order` op, with the placement (parent, order) the
 *   item had after it in that order — `created` for its first move, `deleted` for a move under
 *   the deleted-items vertex.
 * `current` marks the entries whose value is the one in force now (last writer wins by op id), so
 * a UI can offer to restore any other. Ops carry no wall-clock time: an entry's position is its
 * op id (a Lamport counter), which orders changes causally, not by the clock.
 */
import { ORDER_KEY, type Placement } from './appTree';
import { DELETED_PARENT_ID, compareOps, isMoveOp, type JsonValue, type Op } from './ops';

export const TEXT_KEY = 'text';
export const DONE_KEY = 'done';

export type HistoryKind = 'text' | 'done' | 'place' | 'created' | 'deleted';

export interface HistoryEntry {
  readonly kind: HistoryKind;
  readonly counter: number;
  readonly peerId: string;
  /** Who the server says writes under `peerId`; undefined when unknown. */
  readonly author: string | undefined;
  /** `text` / `done`: the value set. */
  readonly value?: JsonValue;
  /** `place` / `created` / `deleted`: where the item was after this op (parent null: deleted). */
  readonly placement?: Placement;
  /** This entry's value (or placement) is the one in force now. */
  readonly current: boolean;
}

export interface ActivityEntry {
  readonly treeId: string;
  readonly itemId: string;
  readonly kind: HistoryKind | 'other';
  readonly key?: string;
  readonly counter: number;
  readonly peerId: string;
  readonly author: string | undefined;
}

export type AuthorOf = (peerId: string) => string | undefined;

function kindOfKey(key: string): 'text' | 'done' | 'place' | undefined {
  return key === TEXT_KEY ? 'text' : key === DONE_KEY ? 'done' : key === ORDER_KEY ? 'place' : undefined;
}

/**
 * The history of item `itemId` among `ops` (a tree's ops, any order): see the header. `limit`
 * keeps the newest entries (the history of a long-lived item can be long).
 */
export function itemHistory(ops: Iterable<Op>, itemId: string, authorOf: AuthorOf, limit = Number.POSITIVE_INFINITY): HistoryEntry[] {
  const mine: Op[] = [];
  for (const op of ops) if (op.targetId === itemId && (isMoveOp(op) || kindOfKey(op.key) !== undefined)) mine.push(op);
  mine.sort(compareOps);
  // The winners: the last op per property key, and the last move or order op for the place
  // (RepTree applies moves in op-id order; one that would make a cycle is skipped, a rare case in
  // which the place marked current is the one that was tried last).
  const lastOfKey = new Map<string, number>();
  let lastMove = -1;
  let lastPlace = -1;
  mine.forEach((op, i) => {
    if (isMoveOp(op)) {
      lastMove = i;
      lastPlace = i;
    } else {
      lastOfKey.set(op.key, i);
      if (op.key === ORDER_KEY) lastPlace = i;
    }
  });
  const entries: HistoryEntry[] = [];
  let parentId: string | null = null;
  let order: number | undefined;
  let created = false;
  mine.forEach((op, i) => {
    const base = { counter: op.id.counter, peerId: op.id.peerId, author: authorOf(op.id.peerId) };
    if (isMoveOp(op)) {
      const deleted = op.parentId === DELETED_PARENT_ID;
      parentId = deleted ? null : op.parentId;
      const kind: HistoryKind = deleted ? 'deleted' : created ? 'place' : 'created';
      created = true;
      entries.push({ ...base, kind, placement: { parentId, order }, current: i === lastPlace && lastMove >= 0 });
      return;
    }
    const kind = kindOfKey(op.key) as 'text' | 'done' | 'place';
    if (kind === 'place') {
      order = typeof op.value === 'number' ? op.value : undefined;
      entries.push({ ...base, kind, placement: { parentId, order }, current: i === lastPlace });
      return;
    }
    entries.push({ ...base, kind, value: op.value as JsonValue, current: lastOfKey.get(op.key) === i });
  });
  return entries.length > limit ? entries.slice(entries.length - limit) : entries;
}

/**
 * The last changes of a space: the newest `limit` ops of the trees given (by counter, then peer
 * id), newest first, with their authors — for a list "who changed what lately".
 */
export function recentActivity(trees: ReadonlyArray<{ readonly treeId: string; readonly ops: Iterable<Op> }>, authorOf: AuthorOf, limit: number): ActivityEntry[] {
  // A bounded selection: keep the newest `limit` seen so far (sorted once per overflow), never every op.
  let kept: Array<{ treeId: string; op: Op }> = [];
  const newestFirst = (a: { op: Op }, b: { op: Op }): number => compareOps(b.op, a.op);
  for (const t of trees) {
    for (const op of t.ops) {
      kept.push({ treeId: t.treeId, op });
      if (kept.length >= limit * 2) kept = kept.sort(newestFirst).slice(0, limit);
    }
  }
  kept.sort(newestFirst);
  return kept.slice(0, limit).map(({ treeId, op }) => {
    const moved = isMoveOp(op);
    const kind: ActivityEntry['kind'] = moved ? (op.parentId === DELETED_PARENT_ID ? 'deleted' : 'place') : (kindOfKey(op.key) ?? 'other');
    return { treeId, itemId: op.targetId, kind, ...(moved ? {} : { key: op.key }), counter: op.id.counter, peerId: op.id.peerId, author: authorOf(op.id.peerId) };
  });
}
