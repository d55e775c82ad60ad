/**
 * Fixes for four problems of reptree 0.9.0, applied from outside the library.
 * docs/upstream/reptree-fixes.md describes each one and has the patch we'd send upstream.
 *
 * 1. `installRepTreeFixes()` patches `TreeState.prototype`. Without it, every move builds a
 *    'children' event by mapping the whole child array of the new and old parents, and those
 *    events stay in `batchedEvents` until the 33 ms tick. Inserting into a flat parent therefore
 *    costs O(children) time and memory per insert: 20k children took 10+ s and 1.6 GB. Removal
 *    from the old parent also allocated a filtered copy of the child array. With the patch,
 *    'children' events are built lazily at dispatch, removal splices in place, and each vertex's
 *    queue holds at most one 'move' and one 'children' event. Only the last of each was ever
 *    delivered, so long synchronous runs (undo/redo in merges) no longer pile up events.
 * 2. `mergeBatch(tree, ops)` merges a batch with one undo/redo pass. `RepTree.merge` undoes and
 *    redoes every later move once for each out-of-order op.
 * 3. `disposeTree(tree)` stops the 33 ms interval that every `TreeState` starts.
 * 4. `boundLamportClock(tree, ops)` keeps one hostile counter from taking over the tree's clock.
 *    RepTree moves its Lamport clock to any larger counter it merges, so one op at 2^53-1 made
 *    every later local op 2^53, an invalid id. The bounded clock follows a counter only when it
 *    is at most `MAX_CLOCK_STEP` (1,000,000) above the clock.
 *
 * The module depends on reptree's private members, which the .d.ts hides. We reach them only
 * through the narrow interfaces below. `installRepTreeFixes` throws if the members are missing.
 * `mergeBatch` falls back to `tree.merge` when they are missing. The reptree version is pinned
 * exactly (0.9.0). Re-run test/unit/reptreeFixes.test.ts whenever that version changes.
 */
import {
  TreeState,
  VertexState,
  isAnyPropertyOp,
  isMoveVertexOp,
  opIdToString,
  type MoveVertex,
  type OpId,
  type RepTree,
  type SetVertexProperty,
  type TreeVertexId,
  type VertexChangeEvent,
  type VertexChildrenChangeEvent,
  type VertexMoveEvent,
  type VertexOperation,
} from 'reptree';

// ---------------------------------------------------------------------------------------------
// Narrow views of reptree's private members.
// ---------------------------------------------------------------------------------------------

/**
 * The private members of `TreeState` (reptree 0.9.0, src/TreeState.ts) that the patched methods
 * use. They are `private` in the .d.ts, so the patch reads them through this interface.
 */
interface TreeStateInternals {
  vertices: Map<TreeVertexId, VertexState>;
  batchedEvents: Map<TreeVertexId, VertexChangeEvent[]>;
  notifyChange(event: VertexChangeEvent): void;
  processBatchedEvents(): void;
  getChildrenIds(vertexId: TreeVertexId): string[];
  moveVertex(vertexId: TreeVertexId, newParentId: TreeVertexId | null): VertexState;
  getVertex(id: string): VertexState | undefined;
  dispose(): void;
}

/**
 * The private members of `RepTree` (reptree 0.9.0, src/RepTree.ts) that `mergeBatch` uses. They
 * are `private` in the .d.ts. `mergeBatch` must reproduce `RepTree.merge` exactly, so it runs the
 * same private steps in a different order (see `onePassMerge`). It cannot do that through the
 * public API. `readRepTreeInternals` checks at runtime that the members exist.
 */
interface RepTreeInternals {
  readonly state: TreeStateInternals;
  /** Applied move ops, sorted by op id. `mergeBatch` uses it as a stack while it runs. */
  moveOps: MoveVertex[];
  readonly knownOps: Set<string>;
  readonly pendingMovesWithMissingParent: Map<string, MoveVertex[]>;
  readonly pendingPropertiesWithMissingVertex: Map<string, SetVertexProperty[]>;
  updateLamportClock(op: VertexOperation): void;
  reportOpAsApplied(op: VertexOperation): void;
  tryToMove(op: MoveVertex): void;
  undoMove(op: MoveVertex): void;
  applyProperty(op: SetVertexProperty): void;
}

function stateOf(tree: RepTree): TreeStateInternals {
  return (tree as unknown as { state: TreeStateInternals }).state;
}

function readRepTreeInternals(tree: RepTree): RepTreeInternals | undefined {
  const t = tree as unknown as Partial<Record<keyof RepTreeInternals, unknown>>;
  const ok =
    Array.isArray(t.moveOps) &&
    t.knownOps instanceof Set &&
    t.pendingMovesWithMissingParent instanceof Map &&
    t.pendingPropertiesWithMissingVertex instanceof Map &&
    typeof t.state === 'object' &&
    t.state !== null &&
    typeof t.updateLamportClock === 'function' &&
    typeof t.reportOpAsApplied === 'function' &&
    typeof t.tryToMove === 'function' &&
    typeof t.undoMove === 'function' &&
    typeof t.applyProperty === 'function';
  return ok ? (tree as unknown as RepTreeInternals) : undefined;
}

// ---------------------------------------------------------------------------------------------
// 1. TreeState patches: lazy children events, coalesced move/children events, in-place removal.
// ---------------------------------------------------------------------------------------------

/**
 * Child arrays that `getChildrenIds` has handed out. In reptree, `getChildrenIds` returns the live
 * `VertexState.children` array. Removal from the old parent replaced that array with a filtered
 * copy, so an array a caller already held never lost elements. Callers may rely on that, e.g.
 * `for (const id of tree.getChildrenIds(p)) tree.deleteVertex(id)`. So an array in this set is
 * still replaced by a copy on removal. Every other array, which covers all undo/redo churn inside
 * merges, is spliced in place.
 */
const handedOut = new WeakSet<string[]>();

/** TreeStates whose batched events are being dispatched right now (see patchedProcessBatchedEvents). */
const dispatching = new WeakSet<TreeStateInternals>();

function childStatesOf(state: TreeStateInternals, parentId: TreeVertexId): VertexState[] {
  const parent = state.vertices.get(parentId);
  if (!parent) return [];
  // Same mapping as reptree: ids whose vertex is missing map to undefined. That cannot happen
  // through RepTree, and we don't filter them out so the result stays identical.
  return parent.children.map((id) => state.vertices.get(id) as VertexState);
}

/** Lazy 'children' events whose `children` array hasn't been built yet. */
const unbuilt = new WeakSet<VertexChangeEvent>();

/**
 * A 'children' event whose `children` array is built only when first read, from the parent's
 * children at that moment. `processBatchedEvents` delivers only the last 'children' event per
 * vertex. The patched version reads that event's `children` just before dispatch. By then the
 * parent's children are exactly what reptree's eager snapshot would have held: every later change
 * to them would have queued a later 'children' event. Events that are never delivered are never
 * built. So a move costs O(1) instead of O(children of both parents).
 */
function lazyChildrenEvent(state: TreeStateInternals, parentId: TreeVertexId): VertexChildrenChangeEvent {
  let memo: VertexState[] | undefined;
  const event: VertexChildrenChangeEvent = {
    type: 'children',
    vertexId: parentId,
    get children(): VertexState[] {
      if (memo === undefined) {
        memo = childStatesOf(state, parentId);
        unbuilt.delete(event);
      }
      return memo;
    },
    set children(value: VertexState[]) {
      memo = value;
      unbuilt.delete(event);
    },
  };
  unbuilt.add(event);
  return event;
}

/**
 * Where the one queued 'move' event and the one queued 'children' event of a vertex sit in its
 * queue (-1: none). `processBatchedEvents` delivers only the last 'move' event and the last
 * 'children' event of each vertex, and their position in the queue has no effect on what it
 * delivers. So the patched `notifyChange` overwrites the older event in its slot instead of
 * appending a new one. Property events are appended as before: their delivery order depends on
 * their position.
 */
interface QueueSlots {
  move: number;
  children: number;
}
const slotsByQueue = new WeakMap<VertexChangeEvent[], QueueSlots>();

/** reptree's `notifyChange` (src/TreeState.ts:210-221), keeping at most one 'move' and one 'children' event per vertex queue. */
function patchedNotifyChange(this: TreeStateInternals, event: VertexChangeEvent): void {
  let queue = this.batchedEvents.get(event.vertexId);
  if (!queue) {
    queue = [];
    this.batchedEvents.set(event.vertexId, queue);
  }
  if (event.type === 'move' || event.type === 'children') {
    let slots = slotsByQueue.get(queue);
    if (!slots) {
      slots = { move: -1, children: -1 };
      slotsByQueue.set(queue, slots);
    }
    const at = slots[event.type];
    if (at !== -1 && queue[at]?.type === event.type) {
      queue[at] = event;
      return;
    }
    slots[event.type] = queue.length;
  }
  queue.push(event);
}

/** True if the vertex's queued 'children' event is a lazy one not built yet: it will read the children at dispatch anyway. */
function hasUnbuiltChildrenEvent(state: TreeStateInternals, vertexId: TreeVertexId): boolean {
  const queue = state.batchedEvents.get(vertexId);
  if (!queue) return false;
  const slots = slotsByQueue.get(queue);
  return slots !== undefined && slots.children !== -1 && unbuilt.has(queue[slots.children]);
}

/**
 * Queues a 'children' event for `parentId` after a move, as reptree does. If the queued one is an
 * unbuilt lazy event, nothing needs to change: it will read the children at dispatch anyway. So a
 * run of moves in and out of one parent (undo/redo) allocates one event, not one per move. While
 * listeners run, the event is built at once, as reptree's would be: it may be delivered later in
 * the same dispatch loop, after other listeners' changes.
 */
function queueChildrenEvent(state: TreeStateInternals, parentId: TreeVertexId): void {
  if (hasUnbuiltChildrenEvent(state, parentId)) return;
  const event = lazyChildrenEvent(state, parentId);
  if (dispatching.has(state)) void event.children;
  state.notifyChange(event);
}

function removeChild(parent: VertexState, childId: string): void {
  const children = parent.children;
  if (handedOut.has(children)) {
    parent.children = children.filter((c) => c !== childId);
    return;
  }
  // Recently added children are the most likely to move (undo/redo of recent moves, deletes of
  // new vertices), so search from the end. A child id occurs at most once: moveVertex keeps
  // "id in parent.children" equivalent to "vertex.parentId === parent.id".
  const i = children.lastIndexOf(childId);
  if (i !== -1) children.splice(i, 1);
}

/** reptree 0.9.0 `TreeState.moveVertex` (src/TreeState.ts:85-151) with the two fixes applied. */
function patchedMoveVertex(this: TreeStateInternals, vertexId: TreeVertexId, newParentId: TreeVertexId | null): VertexState {
  let vertex = this.vertices.get(vertexId);
  // Undefined if the vertex is new
  const prevParentId = vertex ? vertex.parentId : undefined;
  if (!vertex) {
    vertex = new VertexState(vertexId, newParentId);
    this.vertices.set(vertexId, vertex);
  }
  if (prevParentId === newParentId) return vertex;
  vertex.parentId = newParentId;

  let oldParentChanged = false;
  let newParentChanged = false;
  if (prevParentId) {
    const oldParent = this.vertices.get(prevParentId);
    if (oldParent) {
      removeChild(oldParent, vertexId);
      oldParentChanged = true;
    } else {
      console.error(`Old parent vertex not found for ${prevParentId}`);
    }
  }
  if (newParentId !== null) {
    const newParent = this.vertices.get(newParentId);
    if (newParent) {
      newParent.children.push(vertexId);
      newParentChanged = true;
    } else {
      console.error(`New parent vertex not found for ${newParentId}`);
    }
  }

  // The same events as reptree. queueChildrenEvent skips copies that could never be delivered.
  this.notifyChange({ type: 'move', vertexId, oldParentId: prevParentId, newParentId: newParentId as TreeVertexId } as VertexMoveEvent);
  if (newParentChanged && newParentId !== null) queueChildrenEvent(this, newParentId);
  if (oldParentChanged && prevParentId) queueChildrenEvent(this, prevParentId);
  return vertex;
}

/** reptree's `getChildrenIds`, plus a note that the caller now holds the live array. */
function patchedGetChildrenIds(this: TreeStateInternals, vertexId: TreeVertexId): string[] {
  const vertex = this.vertices.get(vertexId);
  if (!vertex) return [];
  handedOut.add(vertex.children);
  return vertex.children;
}

interface Originals {
  moveVertex: TreeStateInternals['moveVertex'];
  notifyChange: TreeStateInternals['notifyChange'];
  getChildrenIds: TreeStateInternals['getChildrenIds'];
  processBatchedEvents: TreeStateInternals['processBatchedEvents'];
}

/**
 * Where the original methods are kept, on the prototype itself. `Symbol.for` makes the key global,
 * so a second copy of this module (a bundle plus the tests, say) sees that the patch is in place.
 */
const ORIGINALS = Symbol.for('spaces-vscode.reptreeFixes.originals');

type PatchableTreeStatePrototype = TreeStateInternals & { [ORIGINALS]?: Originals };

function treeStatePrototype(): PatchableTreeStatePrototype {
  return TreeState.prototype as unknown as PatchableTreeStatePrototype;
}

/**
 * Patches reptree's `TreeState.prototype` (moveVertex, notifyChange, getChildrenIds,
 * processBatchedEvents), which affects every tree, existing ones included. Calling it again does
 * nothing. Visible behaviour doesn't change: the same `getChildren` / `getChildrenIds` order, the
 * same delivered events with the same `children`, the same aliasing of arrays returned by
 * `getChildrenIds`. Throws if reptree's internals don't look like 0.9.0's.
 */
export function installRepTreeFixes(): void {
  const proto = treeStatePrototype();
  if (proto[ORIGINALS]) return;
  for (const name of ['moveVertex', 'getChildrenIds', 'processBatchedEvents', 'notifyChange'] as const) {
    if (typeof proto[name] !== 'function') {
      throw new Error(`reptree TreeState.${name} not found: reptreeFixes supports reptree 0.9.0's internals only`);
    }
  }
  const originals: Originals = {
    moveVertex: proto.moveVertex,
    notifyChange: proto.notifyChange,
    getChildrenIds: proto.getChildrenIds,
    processBatchedEvents: proto.processBatchedEvents,
  };
  const originalDispatch = originals.processBatchedEvents;
  proto.processBatchedEvents = function patchedProcessBatchedEvents(this: TreeStateInternals): void {
    // Build the last 'children' event of every vertex before any listener runs. Each one then
    // holds the children as they are at the start of dispatch, like reptree's eager snapshots.
    for (const events of this.batchedEvents.values()) {
      for (let i = events.length - 1; i >= 0; i--) {
        const event = events[i];
        if (event.type === 'children') {
          void (event as VertexChildrenChangeEvent).children;
          break;
        }
      }
    }
    dispatching.add(this);
    try {
      originalDispatch.call(this);
    } finally {
      dispatching.delete(this);
    }
  };
  proto.moveVertex = patchedMoveVertex;
  proto.notifyChange = patchedNotifyChange;
  proto.getChildrenIds = patchedGetChildrenIds;
  Object.defineProperty(proto, ORIGINALS, { value: originals, configurable: true, enumerable: false, writable: false });
}

/** Restores reptree's original methods. Meant for tests and benchmarks that compare with raw reptree. */
export function uninstallRepTreeFixes(): void {
  const proto = treeStatePrototype();
  const originals = proto[ORIGINALS];
  if (!originals) return;
  proto.moveVertex = originals.moveVertex;
  proto.notifyChange = originals.notifyChange;
  proto.getChildrenIds = originals.getChildrenIds;
  proto.processBatchedEvents = originals.processBatchedEvents;
  delete proto[ORIGINALS];
}

export function repTreeFixesInstalled(): boolean {
  return treeStatePrototype()[ORIGINALS] !== undefined;
}

// ---------------------------------------------------------------------------------------------
// 3. Disposal and explicit event flushing.
// ---------------------------------------------------------------------------------------------

/**
 * Stops the tree's 33 ms event interval, which otherwise keeps the process alive and the tree
 * reachable forever. Also drops queued events. The tree still works as a data structure, but it
 * stops recording events, because nothing would ever deliver them. Calling it twice is harmless.
 */
export function disposeTree(tree: RepTree): void {
  const state = stateOf(tree);
  state.dispose();
  state.batchedEvents.clear();
  // An own property shadows the prototype method, so this tree alone stops queueing events.
  state.notifyChange = (): void => {};
}

/**
 * Delivers the tree's queued change events now, without waiting for the 33 ms tick. Useful in
 * tests and in code that must observe its own changes synchronously.
 */
export function flushTreeEvents(tree: RepTree): void {
  stateOf(tree).processBatchedEvents();
}

// ---------------------------------------------------------------------------------------------
// 4. A bounded Lamport clock.
// ---------------------------------------------------------------------------------------------

/**
 * How far above a tree's clock a counter may be for the clock to follow it: 1,000,000. A replica's
 * clock is the largest counter it has followed, and a counter is made by a replica whose clock
 * was one below it, so in a tree's op set, taken in counter order, each counter is at most one
 * above one already there (transient ops, never stored, leave gaps of a few). Only ops one has
 * not received yet make a larger jump: a million of them is a very long offline session. An op
 * that jumps further keeps its place in the tree (last-writer-wins still orders it by id) but
 * does not move the clock, so the tree's own ops stay far below 2^53-1: climbing there one step
 * at a time takes 9 billion ops. The server admits no larger jump either (its default
 * `maxCounterGap`, src/server/admission.ts), and it computes a tree's clock with this same rule,
 * so what one replica's clock follows, the server's does too, and the server admits its ops.
 */
export const MAX_CLOCK_STEP = 1_000_000;

/** The clock after `counter` arrives: `clock`, or `counter` when it is above and within the step. */
export function followCounter(clock: number, counter: number): number {
  return counter > clock && counter - clock <= MAX_CLOCK_STEP ? counter : clock;
}

/** The clock a replica reaches from these counters taken in increasing order. Sorts `counters`. */
export function clockOfCounters(counters: number[]): number {
  counters.sort((a, b) => a - b);
  let clock = 0;
  for (const c of counters) clock = followCounter(clock, c);
  return clock;
}

interface LamportInternals {
  lamportClock: number;
  updateLamportClock(op: VertexOperation): void;
}

/**
 * Makes `tree` follow counters with `followCounter` from now on, and sets its clock to what the
 * bounded clock reaches from `ops` (the ops it was built from; RepTree's constructor has already
 * followed every one of them). Throws if reptree's internals don't look like 0.9.0's.
 */
export function boundLamportClock(tree: RepTree, ops: readonly VertexOperation[] = []): void {
  const t = tree as unknown as Partial<LamportInternals>;
  if (typeof t.lamportClock !== 'number' || typeof t.updateLamportClock !== 'function') {
    throw new Error('reptree RepTree.lamportClock / updateLamportClock not found: reptreeFixes supports reptree 0.9.0 only');
  }
  const internals = tree as unknown as LamportInternals;
  if (ops.length > 0) internals.lamportClock = clockOfCounters(ops.map((op) => op.id.counter));
  // An own property shadows the prototype method: RepTree's merge paths and mergeBatch all call it.
  internals.updateLamportClock = function boundedUpdateLamportClock(this: LamportInternals, op: VertexOperation): void {
    this.lamportClock = followCounter(this.lamportClock, op.id.counter);
  };
}

/** The tree's Lamport clock: its next local op gets this plus one. */
export function lamportClockOf(tree: RepTree): number {
  return (tree as unknown as LamportInternals).lamportClock;
}

// ---------------------------------------------------------------------------------------------
// 2. One-pass batch merge.
// ---------------------------------------------------------------------------------------------

const SIMPLE_PEER_ID = /^[0-9a-z]*$/;

/**
 * RepTree's op order (`compareOpId`): counter, then `peerId.localeCompare`. It is reproduced
 * exactly for any peer id. For [0-9a-z] ids, which is all ids in this project (see peerId.ts),
 * `localeCompare` equals code-point order, so we skip the slow ICU comparison.
 */
export function compareOpIdsLikeRepTree(a: OpId, b: OpId): -1 | 0 | 1 {
  if (a.counter !== b.counter) return a.counter > b.counter ? 1 : -1;
  const pa = a.peerId;
  const pb = b.peerId;
  if (pa === pb) return 0;
  if (SIMPLE_PEER_ID.test(pa) && SIMPLE_PEER_ID.test(pb)) return pa < pb ? -1 : 1;
  const c = pa.localeCompare(pb);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

export interface MergeBatchResult {
  /** Ops the tree hadn't seen: not known, not already parked, not repeated within the batch. */
  readonly fresh: number;
  /**
   * 'none': nothing fresh. 'merge': handed to `tree.merge`, either because the moves were already
   * in order or because the case isn't covered by the one-pass path. 'onePass': merged here.
   */
  readonly path: 'none' | 'merge' | 'onePass';
  /** Undo steps the one-pass merge ran. */
  readonly undone: number;
}

function collectPendingIds(t: RepTreeInternals): Set<string> {
  const ids = new Set<string>();
  for (const list of t.pendingMovesWithMissingParent.values()) for (const op of list) ids.add(opIdToString(op.id));
  for (const list of t.pendingPropertiesWithMissingVertex.values()) for (const op of list) ids.add(opIdToString(op.id));
  return ids;
}

/**
 * Merges a batch of ops from other replicas. The result (tree structure, properties, known ops,
 * state vector, Lamport clock, ops parked for missing parents or vertices, op log) is identical to
 * `tree.merge(batch)` with the batch sorted by op id and without the ops the tree has already seen.
 * The work is different: `merge` undoes and redoes every later move once per out-of-order op, while
 * this undoes each existing move at most once per batch.
 *
 * The tree skips ops it has seen: ops it knows, ops repeated within the batch, and ops it already
 * parked because their parent (or, for properties, their vertex) is missing. `RepTree.merge` skips
 * only known ops. It parks a parked op a second time and later applies both copies, which leaves
 * duplicates in its op log.
 *
 * Differences from `merge` that don't touch tree state:
 * - `observeOpApplied` callbacks fire in op-id order, moves first and then properties. While they
 *   run, `getMoveOps()` / `getAllOps()` may lack moves that are temporarily undone, so callbacks
 *   must not read the op log or change the tree. RepTree's callbacks also see intermediate states.
 * - Change events carry fewer intermediate moves, because each undone move is redone only once.
 *   The delivered events still describe the final state.
 * - The order of ids inside a parent's `children` array may differ when the moves were
 *   concurrent. `getChildren()` sorts by creation time, so it only differs for vertices with the
 *   same `_c`.
 */
export function mergeBatch(tree: RepTree, ops: readonly VertexOperation[]): MergeBatchResult {
  const t = readRepTreeInternals(tree);
  if (!t) {
    const sorted = [...ops].sort((a, b) => compareOpIdsLikeRepTree(a.id, b.id));
    tree.merge(sorted);
    return { fresh: sorted.length, path: 'merge', undone: 0 };
  }

  const pendingIds = t.pendingMovesWithMissingParent.size + t.pendingPropertiesWithMissingVertex.size > 0 ? collectPendingIds(t) : undefined;
  const seen = new Set<string>();
  const fresh: VertexOperation[] = [];
  let hasTransient = false;
  for (const op of ops) {
    const key = opIdToString(op.id);
    if (t.knownOps.has(key) || seen.has(key) || pendingIds?.has(key)) continue;
    seen.add(key);
    fresh.push(op);
    if (isAnyPropertyOp(op) && op.transient) hasTransient = true;
  }
  if (fresh.length === 0) return { fresh: 0, path: 'none', undone: 0 };
  fresh.sort((a, b) => compareOpIdsLikeRepTree(a.id, b.id));

  const moves: MoveVertex[] = [];
  const props: SetVertexProperty[] = [];
  for (const op of fresh) {
    if (isMoveVertexOp(op)) moves.push(op);
    else if (isAnyPropertyOp(op)) props.push(op);
  }

  const log = t.moveOps;
  const last = log[log.length - 1];
  if (
    // In order: merge only appends. Also when there are no moves, or the tree has none yet.
    moves.length === 0 ||
    last === undefined ||
    compareOpIdsLikeRepTree(moves[0].id, last.id) > 0 ||
    // Transient property ops depend on the order in which they meet the moves that create their
    // vertex (a transient op for a missing vertex is dropped). We never send them; merge handles them.
    hasTransient ||
    needsMergeQuirk(t, moves[0])
  ) {
    tree.merge(fresh);
    return { fresh: fresh.length, path: 'merge', undone: 0 };
  }

  const undone = onePassMerge(t, moves, props);
  return { fresh: fresh.length, path: 'onePass', undone };
}

/**
 * `RepTree.applyMove` has a quirk (src/RepTree.ts:640-658). When an op is smaller than every
 * logged move, it undoes all of them, inserts the op after the first one instead of before it,
 * and never redoes that first one. This happens to an op from another peer with counter 1 and a
 * smaller peer id. To stay identical, we let merge handle any batch where that can happen: the
 * batch's smallest move, or any parked move that the batch could release, is not greater than
 * the first logged move.
 */
function needsMergeQuirk(t: RepTreeInternals, smallestNewMove: MoveVertex): boolean {
  const first = t.moveOps[0];
  if (compareOpIdsLikeRepTree(smallestNewMove.id, first.id) <= 0) return true;
  for (const list of t.pendingMovesWithMissingParent.values()) {
    for (const op of list) if (compareOpIdsLikeRepTree(op.id, first.id) <= 0) return true;
  }
  return false;
}

/**
 * The one-pass merge. The move log is split into two stacks:
 * - `applied` (the tree's own `moveOps` array): moves that are in effect, ascending;
 * - `undone`: moves that have been undone and not yet redone, top = smallest.
 * Every applied move is smaller than every undone one. To apply a move we first undo the applied
 * moves that are greater than it (newest first), then redo the undone moves that are smaller than
 * it (oldest first), then apply it. Undone moves stay undone until a later op needs them.
 *
 * This matches `RepTree.applyMove`, which redoes the whole tail after every op. Undo and redo are
 * exact inverses on tree structure: a redo (`tryToMove`) always records the parent it moves the
 * vertex away from, and the undo restores that parent. So "redo the tail, later undo it again" is
 * a no-op, and skipping it changes nothing. The rest is copied from reptree: parking moves whose
 * parent is missing, releasing parked moves once their parent exists (recursively, in the same
 * order), the Lamport clock, and reporting. Property ops come after the moves. Non-transient
 * property ops don't depend on order (last writer wins by op id). They end up applied or parked
 * exactly as with merge, because a vertex that exists once keeps existing.
 * Returns the number of undo steps.
 */
function onePassMerge(t: RepTreeInternals, moves: readonly MoveVertex[], props: readonly SetVertexProperty[]): number {
  const applied = t.moveOps;
  const undone: MoveVertex[] = [];
  let undoSteps = 0;

  const applyMove = (op: MoveVertex): void => {
    if (op.parentId !== null && !t.state.getVertex(op.parentId)) {
      let parked = t.pendingMovesWithMissingParent.get(op.parentId);
      if (!parked) {
        parked = [];
        t.pendingMovesWithMissingParent.set(op.parentId, parked);
      }
      parked.push(op);
      return;
    }
    t.updateLamportClock(op);
    // Same insert position as RepTree.applyMove: after the last logged move smaller than op.
    while (applied.length > 0 && compareOpIdsLikeRepTree(applied[applied.length - 1].id, op.id) >= 0) {
      const u = applied.pop() as MoveVertex;
      t.undoMove(u);
      undone.push(u);
      undoSteps++;
    }
    while (undone.length > 0 && compareOpIdsLikeRepTree(undone[undone.length - 1].id, op.id) < 0) {
      const r = undone.pop() as MoveVertex;
      t.tryToMove(r);
      applied.push(r);
    }
    applied.push(op);
    t.reportOpAsApplied(op);
    t.tryToMove(op);
    releaseParkedMoves(op.targetId);
  };

  const releaseParkedMoves = (parentId: string): void => {
    if (!t.state.getVertex(parentId)) return;
    const parked = t.pendingMovesWithMissingParent.get(parentId);
    if (!parked) return;
    t.pendingMovesWithMissingParent.delete(parentId);
    for (const op of parked) applyMove(op);
  };

  let completed = false;
  try {
    for (const op of moves) applyMove(op);
    while (undone.length > 0) {
      const r = undone.pop() as MoveVertex;
      t.tryToMove(r);
      applied.push(r);
    }
    completed = true;
  } finally {
    if (!completed) {
      // Something threw (reptree itself never does). Keep the op log complete so the tree can be
      // rebuilt from getAllOps(). The structure may be half-merged.
      while (undone.length > 0) applied.push(undone.pop() as MoveVertex);
    }
  }

  for (const op of props) t.applyProperty(op);
  return undoSteps;
}
