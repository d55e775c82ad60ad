/**
 * RepTree: a replicated tree of vertices with properties, from reptree 0.9.0's RepTree.ts and
 * TreeState.ts (see LICENSE in this folder). Two CRDTs:
 * - the structure is Kleppmann et al.'s move op ("A highly-available move operation for
 *   replicated trees", https://martin.kleppmann.com/papers/move-op.pdf): every replica applies
 *   all moves in op-id order, undoing newer moves to apply an older one and redoing them after,
 *   and a move that would make a cycle is skipped;
 * - each property is last-writer-wins by op id.
 *
 * The ops, their ids and these rules are reptree's. What differs (docs/upstream/reptree-fixes.md):
 * - one undo/redo pass per merged batch instead of one per out-of-order op;
 * - merge skips ops that are known, parked (waiting for a parent or vertex) or repeated;
 * - a property op that loses last-writer-wins on arrival enters the state vector;
 * - the Lamport clock follows a counter only within MAX_CLOCK_STEP (clock.ts);
 * - change events are coalesced and delivered on a microtask, recorded only while someone
 *   listens; no timers, and `dispose()` drops them;
 * - the data is held in columns (typed arrays and string tables) rather than one object per op
 *   and per vertex: the move log, the winning properties and the superseded property ops are
 *   rebuilt as op objects only when asked for (`getAllOps`, `getMissingOps`);
 * - children are kept in a linked list per parent (O(1) insert and removal, same order as
 *   reptree's array: appended on arrival, removed in place).
 */
import { randomUUID } from 'node:crypto';
import { followCounter } from './clock';
import { compareIds, opIdToString, type OpId } from './opId';
import {
  isMoveVertexOp,
  newMoveVertexOp,
  newSetVertexPropertyOp,
  type JsonValue,
  type MoveVertex,
  type SetVertexProperty,
  type TreeVertexProperty,
  type VertexOperation,
  type VertexPropertyType,
} from './operations';
import { decodeSnapshot, SnapshotError } from './snapshot';
import { rangesHave, StateVector, type StateVectorRanges } from './stateVector';
import { TreeEvents, type ChangeListener } from './treeEvents';
import { VertexIndex } from './vertexIndex';

/** Parent column: the vertex has no parent (a root, or the deleted-items vertex). */
const NO_PARENT = -1;
/** Parent column: the id is interned but no move has placed the vertex yet. */
const UNCREATED = -2;
/** Undo column: the move created its vertex, so undoing it leaves the vertex where it is. */
const NO_UNDO = -2;
/** Lookup result: no such (created) vertex. */
const MISSING = -3;
/** "No entry" in the linked lists. */
const NONE = -1;

// Vertex columns, packed in one Int32Array, VERTEX_STRIDE slots per vertex.
const V_PARENT = 0;
const V_FIRST_CHILD = 1;
const V_LAST_CHILD = 2;
const V_NEXT = 3;
const V_PREV = 4;
const V_FIRST_PROP = 5;
const VERTEX_STRIDE = 6;

// Winning property entries: [key, next entry of the same vertex, peer] + counter + value.
const P_KEY = 0;
const P_NEXT = 1;
const P_PEER = 2;
const PROP_STRIDE = 3;

// Move log: [peer, target, parent, parent before the move (undo record)] + counter.
const M_PEER = 0;
const M_TARGET = 1;
const M_PARENT = 2;
const M_UNDO = 3;
const MOVE_STRIDE = 4;

// Superseded property ops: [target, key, peer] + counter + value.
const S_TARGET = 0;
const S_KEY = 1;
const S_PEER = 2;
const SUPERSEDED_STRIDE = 3;

const INITIAL_CAPACITY = 16;

/** The columns of a tree, as `toState` exports them and `fromState` takes them (snapshots). */
export interface TreeColumns {
  /** Vertex ids, by vertex index. */
  readonly vertexIds: readonly string[];
  /** Parent index per vertex (-1: none), vertices created only. */
  readonly parents: Int32Array;
  /** Each vertex's children, in order: childStart[v]..childStart[v+1] into childList. */
  readonly childList: Int32Array;
  readonly childStart: Int32Array;
  readonly peers: readonly string[];
  readonly keys: readonly string[];
  /** Winning properties, grouped by vertex in list order: vertex, key, peer, counter, value. */
  readonly propVertex: Int32Array;
  readonly propKey: Int32Array;
  readonly propPeer: Int32Array;
  readonly propCounter: Float64Array;
  readonly propValue: readonly VertexPropertyType[];
  /** The move log, ascending by op id: peer, target, parent (-1: none), undo record (-1 none, -2 no undo). */
  readonly movePeer: Int32Array;
  readonly moveTarget: Int32Array;
  readonly moveParent: Int32Array;
  readonly moveUndo: Int32Array;
  readonly moveCounter: Float64Array;
  /** Property ops that lost last-writer-wins (kept for sync and history). */
  readonly supTarget: Int32Array;
  readonly supKey: Int32Array;
  readonly supPeer: Int32Array;
  readonly supCounter: Float64Array;
  readonly supValue: readonly VertexPropertyType[];
  readonly stateVector: StateVectorRanges;
  readonly clock: number;
  /** Ops waiting for a missing parent or vertex. */
  readonly parked: readonly VertexOperation[];
}

/** A view of one vertex; it reads the tree live. */
export class Vertex {
  constructor(
    private readonly tree: RepTree,
    readonly id: string,
  ) {}

  get parentId(): string | null {
    return this.tree.parentIdOf(this.id) ?? null;
  }

  get childrenIds(): string[] {
    return this.tree.getChildrenIds(this.id);
  }

  getProperty(key: string): VertexPropertyType {
    return this.tree.getVertexProperty(this.id, key);
  }
}

export class RepTree {
  /** The deleted-items vertex: moving a vertex under it deletes the vertex. */
  static readonly NULL_VERTEX_ID = '0';

  readonly peerId: string;
  private rootVertexId: string | undefined;
  private lamportClock = 0;

  // Vertices.
  private vertexIds: string[] = [];
  private vertexIndex = new VertexIndex();
  /**
   * The id and index of the vertex looked up last: local edits and batches touch one vertex with
   * several ops in a row (a move, then its properties). An index never changes once interned.
   */
  private lastVertexId: string | undefined;
  private lastVertex = MISSING;
  private vx: Int32Array = new Int32Array(INITIAL_CAPACITY * VERTEX_STRIDE);
  private vertexCount = 0;

  // String tables.
  private peers: string[] = [];
  private readonly peerIndex = new Map<string, number>();
  private keys: string[] = [];
  private readonly keyIndex = new Map<string, number>();

  // Winning properties.
  private pInt: Int32Array = new Int32Array(INITIAL_CAPACITY * PROP_STRIDE);
  private pCounter: Float64Array = new Float64Array(INITIAL_CAPACITY);
  private pValue: VertexPropertyType[] = [];
  private propCount = 0;

  // Move log, ascending by op id.
  private mInt: Int32Array = new Int32Array(INITIAL_CAPACITY * MOVE_STRIDE);
  private mCounter: Float64Array = new Float64Array(INITIAL_CAPACITY);
  private moveCount = 0;

  // Property ops that lost last-writer-wins.
  private sInt: Int32Array = new Int32Array(0);
  private sCounter: Float64Array = new Float64Array(0);
  private sValue: VertexPropertyType[] = [];
  private supersededCount = 0;

  private readonly stateVector = new StateVector();
  /** The undone moves of the batch being merged (see applyMove): counters, then [peer, target, parent] each. */
  private readonly undoCounter: number[] = [];
  private readonly undoInt: number[] = [];
  /** The last peer id interned and its index: a batch's ops mostly come from one peer. */
  private lastPeerId = '';
  private lastPeer = -1;
  private localOps: VertexOperation[] = [];
  private readonly pendingMoves = new Map<string, MoveVertex[]>();
  private readonly pendingProps = new Map<string, SetVertexProperty[]>();
  /** Ids ("counter@peer") of the ops in pendingMoves and pendingProps. */
  private readonly parkedIds = new Set<string>();
  private readonly events = new TreeEvents((id) => this.getChildrenIds(id));
  /** Set while `fromState` constructs a tree: it must start with nothing, not even the deleted-items vertex. */
  private static restoring = false;

  /**
   * @param ops - ops to build the tree from, in any order (a root vertex must be among them);
   *   without ops the tree starts empty, with its deleted-items vertex.
   */
  constructor(peerId: string, ops?: ReadonlyArray<VertexOperation>) {
    this.peerId = peerId;
    if (RepTree.restoring) return;
    if (ops && ops.length > 0) {
      this.merge(ops);
      // Reserved for every move as a new vertex: trim when many moves were of existing ones.
      if (this.vertexCount * VERTEX_STRIDE < this.vx.length * 0.8 || this.supersededCount * 2 < this.sCounter.length) this.compact();
      if (!this.root) throw new Error('There has to be a root vertex in the operations');
    } else {
      this.ensureNullVertex();
    }
  }

  /** A tree restored from exported columns (see snapshot.ts); the columns are taken, not copied. */
  static fromState(peerId: string, s: TreeColumns): RepTree {
    RepTree.restoring = true;
    let t: RepTree;
    try {
      t = new RepTree(peerId);
    } finally {
      RepTree.restoring = false;
    }
    t.loadState(s);
    return t;
  }

  /**
   * A tree opened from a snapshot (snapshot.ts) without replaying history, then `tailOps` (the
   * ops stored after the snapshot; any order, ones it already holds are skipped) merged in.
   * Throws SnapshotError for a snapshot that is damaged, truncated, newer or has no root.
   */
  static fromSnapshot(peerId: string, bytes: Uint8Array, tailOps: ReadonlyArray<VertexOperation> = []): RepTree {
    const tree = RepTree.fromState(peerId, decodeSnapshot(bytes));
    if (tailOps.length > 0) tree.merge(tailOps);
    if (!tree.root) throw new SnapshotError('corrupt', 'the snapshot has no root vertex');
    return tree;
  }

  // ---- reading ----------------------------------------------------------------------------

  get root(): Vertex | undefined {
    if (this.rootVertexId === undefined) {
      for (let v = 0; v < this.vertexCount; v++) {
        if (this.vx[v * VERTEX_STRIDE + V_PARENT] === NO_PARENT && this.vertexIds[v] !== RepTree.NULL_VERTEX_ID) {
          this.rootVertexId = this.vertexIds[v];
          break;
        }
      }
    }
    return this.rootVertexId === undefined ? undefined : new Vertex(this, this.rootVertexId);
  }

  /** The tree's Lamport clock: its next local op gets this plus one. */
  get clock(): number {
    return this.lamportClock;
  }

  /** Number of ops the tree holds: moves, winning property ops and superseded ones. */
  get opCount(): number {
    return this.moveCount + this.propCount + this.supersededCount;
  }

  /** Number of ops parked until their parent (moves) or vertex (properties) arrives. */
  get parkedCount(): number {
    return this.parkedIds.size;
  }

  replicate(newPeerId: string): RepTree {
    return new RepTree(newPeerId, this.getAllOps());
  }

  /** True when the tree holds the op (applied, or stored after losing last-writer-wins). */
  hasOp(id: OpId): boolean {
    return this.stateVector.has(id.peerId, id.counter);
  }

  getVertex(vertexId: string): Vertex | undefined {
    return this.createdIndex(vertexId) === MISSING ? undefined : new Vertex(this, vertexId);
  }

  getAllVertices(): Vertex[] {
    const out: Vertex[] = [];
    for (let v = 0; v < this.vertexCount; v++) if (this.vx[v * VERTEX_STRIDE + V_PARENT] !== UNCREATED) out.push(new Vertex(this, this.vertexIds[v]));
    return out;
  }

  /** The vertex's parent id (null: none), or undefined when there is no such vertex. */
  parentIdOf(vertexId: string): string | null | undefined {
    const v = this.createdIndex(vertexId);
    if (v === MISSING) return undefined;
    const p = this.vx[v * VERTEX_STRIDE + V_PARENT];
    return p === NO_PARENT ? null : this.vertexIds[p];
  }

  /** The children in the tree's order (arrival; a moved vertex goes last). A new array. */
  getChildrenIds(vertexId: string): string[] {
    const out: string[] = [];
    const v = this.createdIndex(vertexId);
    if (v === MISSING) return out;
    for (let c = this.vx[v * VERTEX_STRIDE + V_FIRST_CHILD]; c !== NONE; c = this.vx[c * VERTEX_STRIDE + V_NEXT]) out.push(this.vertexIds[c]);
    return out;
  }

  /**
   * The children (in the tree's order) and, for each of `keys`, their values: one lookup for the
   * parent instead of one per child and key. `values[k][i]` is child i's value of `keys[k]`.
   */
  getChildrenWithProperties(vertexId: string, keys: readonly string[]): { ids: string[]; values: VertexPropertyType[][] } {
    const ids: string[] = [];
    const values: VertexPropertyType[][] = keys.map(() => []);
    const v = this.createdIndex(vertexId);
    if (v === MISSING) return { ids, values };
    const ks = keys.map((k) => this.keyIndex.get(k) ?? NONE);
    for (let c = this.vx[v * VERTEX_STRIDE + V_FIRST_CHILD]; c !== NONE; c = this.vx[c * VERTEX_STRIDE + V_NEXT]) {
      ids.push(this.vertexIds[c]);
      for (let k = 0; k < ks.length; k++) {
        const e = ks[k] === NONE ? NONE : this.findProp(c, ks[k]);
        values[k].push(e === NONE ? undefined : this.pValue[e]);
      }
    }
    return { ids, values };
  }

  getVertexProperty(vertexId: string, key: string): VertexPropertyType {
    const v = this.createdIndex(vertexId);
    const k = this.keyIndex.get(key);
    if (v === MISSING || k === undefined) return undefined;
    const e = this.findProp(v, k);
    return e === NONE ? undefined : this.pValue[e];
  }

  /** The properties that have a value, in the order they were first set (a removed and re-set key goes last). */
  getVertexProperties(vertexId: string): TreeVertexProperty[] {
    const out: TreeVertexProperty[] = [];
    const v = this.createdIndex(vertexId);
    if (v === MISSING) return out;
    for (let e = this.vx[v * VERTEX_STRIDE + V_FIRST_PROP]; e !== NONE; e = this.pInt[e * PROP_STRIDE + P_NEXT]) {
      const value = this.pValue[e];
      if (value !== undefined) out.push({ key: this.keys[this.pInt[e * PROP_STRIDE + P_KEY]], value });
    }
    return out;
  }

  /** Every op the tree holds, as new objects: the moves in op-id order, then the property ops. */
  getAllOps(): VertexOperation[] {
    const out: VertexOperation[] = [];
    this.forEachOp((op) => out.push(op));
    return out;
  }

  /**
   * The ops of one vertex, as new objects: its moves (op-id order), its winning property ops and
   * the superseded ones (for its history). Scans the columns without building the other ops, so
   * it costs a pass over integers, not an object per op of the tree.
   */
  getVertexOps(vertexId: string): VertexOperation[] {
    const out: VertexOperation[] = [];
    const v = this.createdIndex(vertexId);
    if (v === MISSING) return out;
    for (let i = 0; i < this.moveCount; i++) if (this.mInt[i * MOVE_STRIDE + M_TARGET] === v) out.push(this.moveOpAt(i));
    for (let e = this.vx[v * VERTEX_STRIDE + V_FIRST_PROP]; e !== NONE; e = this.pInt[e * PROP_STRIDE + P_NEXT]) {
      out.push(newSetVertexPropertyOp(this.pCounter[e], this.peers[this.pInt[e * PROP_STRIDE + P_PEER]], vertexId, this.keys[this.pInt[e * PROP_STRIDE + P_KEY]], this.pValue[e]));
    }
    for (let i = 0; i < this.supersededCount; i++) {
      const b = i * SUPERSEDED_STRIDE;
      if (this.sInt[b + S_TARGET] === v) out.push(newSetVertexPropertyOp(this.sCounter[i], this.peers[this.sInt[b + S_PEER]], vertexId, this.keys[this.sInt[b + S_KEY]], this.sValue[i]));
    }
    return out;
  }

  /** The move log, in op-id order, as new objects. */
  getMoveOps(): MoveVertex[] {
    const out: MoveVertex[] = [];
    for (let i = 0; i < this.moveCount; i++) out.push(this.moveOpAt(i));
    return out;
  }

  /** The ids the tree holds, per peer, as [start, end] ranges. A copy. */
  getStateVector(): StateVectorRanges {
    return this.stateVector.getState();
  }

  /** The ops this tree holds that `theirs` lacks, in op-id order. */
  getMissingOps(theirs: StateVectorRanges): VertexOperation[] {
    const out: VertexOperation[] = [];
    this.forEachOp((op) => {
      if (!rangesHave(theirs, op.id.peerId, op.id.counter)) out.push(op);
    });
    out.sort(compareOps);
    return out;
  }

  /** Returns the local ops made since the last call and forgets them. */
  popLocalOps(): VertexOperation[] {
    const ops = this.localOps;
    this.localOps = [];
    return ops;
  }

  // ---- local changes ----------------------------------------------------------------------

  /** Creates a root vertex with a random id (and a creation time `_c`, as reptree does). */
  createRoot(): Vertex {
    if (this.rootVertexId !== undefined) throw new Error('Root vertex already exists');
    const id = randomVertexId();
    this.newVertexInternal(id, null);
    this.rootVertexId = id;
    return new Vertex(this, id);
  }

  /** Creates a vertex with a random id under `parentId`, with a creation time `_c` and `props`. */
  newVertex(parentId: string, props: Record<string, VertexPropertyType> | null = null): Vertex {
    const id = randomVertexId();
    this.newVertexInternal(id, parentId);
    if (props) this.setVertexProperties(id, props);
    return new Vertex(this, id);
  }

  /** Moves (or, for a new id, creates) a vertex; `null` makes a root. */
  moveVertex(vertexId: string, parentId: string | null): void {
    const op = newMoveVertexOp(++this.lamportClock, this.peerId, vertexId, parentId);
    this.localOps.push(op);
    this.applyMoves([op]);
  }

  deleteVertex(vertexId: string): void {
    this.moveVertex(vertexId, RepTree.NULL_VERTEX_ID);
  }

  /** Sets a property; `undefined` removes it. Throws for a value that is not JSON. */
  setVertexProperty(vertexId: string, key: string, value: VertexPropertyType): void {
    if (!isJsonValue(value)) throw new Error(`Unsupported property value for key "${key}"`);
    const op = newSetVertexPropertyOp(++this.lamportClock, this.peerId, vertexId, key, value);
    this.localOps.push(op);
    this.applyProperty(op);
  }

  setVertexProperties(vertexId: string, props: Record<string, VertexPropertyType>): void {
    for (const [key, value] of Object.entries(props)) this.setVertexProperty(vertexId, key, value);
  }

  // ---- merging ----------------------------------------------------------------------------

  /**
   * Merges ops from other replicas, in any order; returns the ones that were new to the tree,
   * sorted by op id. Ops the tree already has are skipped: known ones, parked ones (waiting for
   * their parent or vertex) and repeats within `ops`. The moves are applied in op-id order with
   * one undo/redo pass for the whole batch (`applyMoves`), then the property ops.
   */
  merge(ops: ReadonlyArray<VertexOperation>): VertexOperation[] {
    const sorted = isSortedById(ops) ? ops : ops.slice().sort(compareOps);
    const fresh: VertexOperation[] = [];
    // A tree that holds nothing yet (being built from ops) need not look anything up.
    const checkKnown = this.moveCount + this.propCount > 0;
    const checkParked = this.parkedIds.size > 0;
    let moves = 0;
    let prev: VertexOperation | undefined;
    for (const op of sorted) {
      // Sorting is stable, so of repeated ids the first copy is kept.
      if (prev !== undefined && prev.id.counter === op.id.counter && prev.id.peerId === op.id.peerId) continue;
      prev = op;
      if (isMoveVertexOp(op)) moves++;
      else if (op.transient) throw new Error(`op ${opIdToString(op.id)}: transient property ops are not supported`);
      if (checkKnown && this.stateVector.has(op.id.peerId, op.id.counter)) continue;
      if (checkParked && this.parkedIds.has(opIdToString(op.id))) continue;
      fresh.push(op);
    }
    if (fresh.length === 0) return fresh;
    this.reserve(moves, fresh.length - moves);
    // The clock follows every new counter in increasing order, as the server computes it.
    for (const op of fresh) this.lamportClock = followCounter(this.lamportClock, op.id.counter);
    // Moves and property ops in op-id order: a property op depends only on its vertex existing,
    // and a vertex, once created, exists whatever is undone; one waiting for its vertex is parked.
    this.applyMoves(fresh);
    return fresh;
  }

  // ---- events and lifetime ------------------------------------------------------------------

  /**
   * Calls `listener` with a vertex's coalesced changes (its last move, a 'children' event when its
   * children changed, the last value of each changed property), on a microtask after the change.
   * Returns the function that stops it.
   */
  observe(vertexId: string, listener: ChangeListener): () => void {
    return this.events.observe(vertexId, listener);
  }

  /** Like `observe`, for every vertex. */
  observeAll(listener: ChangeListener): () => void {
    return this.events.observeAll(listener);
  }

  /** Delivers queued change events now instead of on the next microtask. */
  flushEvents(): void {
    this.events.flush();
  }

  /** Drops listeners and queued events. The tree holds no timers; it stays usable as data. */
  dispose(): void {
    this.events.dispose();
  }

  // ---- export / import of columns (snapshots) ----------------------------------------------

  /** The tree's state as columns (copies), for snapshot.ts. */
  toState(): TreeColumns {
    const n = this.vertexCount;
    const created: number[] = [];
    const remap = new Int32Array(n).fill(-1);
    for (let v = 0; v < n; v++) if (this.vx[v * VERTEX_STRIDE + V_PARENT] !== UNCREATED) created.push(v);
    // Sorted by id: the tree that loads it can then find ids by binary search (vertexIndex.ts).
    const ids = this.vertexIds;
    created.sort((a, b) => (ids[a] < ids[b] ? -1 : ids[a] > ids[b] ? 1 : 0));
    for (let i = 0; i < created.length; i++) remap[created[i]] = i;
    const m = created.length;
    const vertexIds: string[] = new Array<string>(m);
    const parents = new Int32Array(m);
    const childStart = new Int32Array(m + 1);
    const childList = new Int32Array(m);
    let children = 0;
    const pc = this.propCount;
    const propVertex = new Int32Array(pc);
    const propKey = new Int32Array(pc);
    const propPeer = new Int32Array(pc);
    const propCounter = new Float64Array(pc);
    const propValue: VertexPropertyType[] = new Array<VertexPropertyType>(pc);
    let props = 0;
    for (let i = 0; i < m; i++) {
      const v = created[i];
      const b = v * VERTEX_STRIDE;
      vertexIds[i] = this.vertexIds[v];
      const p = this.vx[b + V_PARENT];
      parents[i] = p === NO_PARENT ? NO_PARENT : remap[p];
      childStart[i] = children;
      for (let c = this.vx[b + V_FIRST_CHILD]; c !== NONE; c = this.vx[c * VERTEX_STRIDE + V_NEXT]) childList[children++] = remap[c];
      for (let e = this.vx[b + V_FIRST_PROP]; e !== NONE; e = this.pInt[e * PROP_STRIDE + P_NEXT]) {
        propVertex[props] = i;
        propKey[props] = this.pInt[e * PROP_STRIDE + P_KEY];
        propPeer[props] = this.pInt[e * PROP_STRIDE + P_PEER];
        propCounter[props] = this.pCounter[e];
        propValue[props++] = this.pValue[e];
      }
    }
    childStart[m] = children;
    const k = this.moveCount;
    const movePeer = new Int32Array(k);
    const moveTarget = new Int32Array(k);
    const moveParent = new Int32Array(k);
    const moveUndo = new Int32Array(k);
    for (let i = 0; i < k; i++) {
      const b = i * MOVE_STRIDE;
      movePeer[i] = this.mInt[b + M_PEER];
      moveTarget[i] = remap[this.mInt[b + M_TARGET]];
      const par = this.mInt[b + M_PARENT];
      moveParent[i] = par === NO_PARENT ? NO_PARENT : remap[par];
      const u = this.mInt[b + M_UNDO];
      moveUndo[i] = u < 0 ? u : remap[u];
    }
    const s = this.supersededCount;
    const supTarget = new Int32Array(s);
    const supKey = new Int32Array(s);
    const supPeer = new Int32Array(s);
    for (let i = 0; i < s; i++) {
      supTarget[i] = remap[this.sInt[i * SUPERSEDED_STRIDE + S_TARGET]];
      supKey[i] = this.sInt[i * SUPERSEDED_STRIDE + S_KEY];
      supPeer[i] = this.sInt[i * SUPERSEDED_STRIDE + S_PEER];
    }
    const parked: VertexOperation[] = [];
    for (const list of this.pendingMoves.values()) for (const op of list) parked.push(op);
    for (const list of this.pendingProps.values()) for (const op of list) parked.push(op);
    return {
      vertexIds,
      parents,
      childList: childList.slice(0, children),
      childStart,
      peers: this.peers.slice(),
      keys: this.keys.slice(),
      propVertex,
      propKey,
      propPeer,
      propCounter,
      propValue,
      movePeer,
      moveTarget,
      moveParent,
      moveUndo,
      moveCounter: this.mCounter.slice(0, k),
      supTarget,
      supKey,
      supPeer,
      supCounter: this.sCounter.slice(0, s),
      supValue: this.sValue.slice(0, s),
      stateVector: this.stateVector.getState(),
      clock: this.lamportClock,
      parked,
    };
  }

  private loadState(s: TreeColumns): void {
    const n = s.vertexIds.length;
    this.vertexIds = s.vertexIds as string[]; // taken, not copied (see fromState)
    this.vertexCount = n;
    this.vx = new Int32Array(Math.max(n, 1) * VERTEX_STRIDE).fill(NONE);
    const sorted = VertexIndex.sortedOrFalse(this.vertexIds);
    if (sorted) this.vertexIndex = sorted;
    for (let v = 0; v < n; v++) {
      if (!sorted) {
        this.vertexIndex.add(this.vertexIds[v], v);
        if (this.vertexIndex.size !== v + 1) throw new SnapshotError('corrupt', `vertex id ${this.vertexIds[v]} appears twice`);
      }
      this.vx[v * VERTEX_STRIDE + V_PARENT] = s.parents[v];
      let prev = NONE;
      for (let j = s.childStart[v]; j < s.childStart[v + 1]; j++) {
        const c = s.childList[j];
        const cb = c * VERTEX_STRIDE;
        this.vx[cb + V_PREV] = prev;
        if (prev === NONE) this.vx[v * VERTEX_STRIDE + V_FIRST_CHILD] = c;
        else this.vx[prev * VERTEX_STRIDE + V_NEXT] = c;
        prev = c;
      }
      this.vx[v * VERTEX_STRIDE + V_LAST_CHILD] = prev;
    }
    this.peers = s.peers.slice();
    this.peers.forEach((p, i) => this.peerIndex.set(p, i));
    this.keys = s.keys.slice();
    this.keys.forEach((k, i) => this.keyIndex.set(k, i));
    const pc = s.propVertex.length;
    this.propCount = pc;
    this.pInt = new Int32Array(Math.max(pc, 1) * PROP_STRIDE);
    this.pCounter = s.propCounter.length > 0 ? s.propCounter : new Float64Array(1);
    this.pValue = s.propValue as VertexPropertyType[];
    let lastOfVertex = NONE;
    for (let e = 0; e < pc; e++) {
      const v = s.propVertex[e];
      this.pInt[e * PROP_STRIDE + P_KEY] = s.propKey[e];
      this.pInt[e * PROP_STRIDE + P_PEER] = s.propPeer[e];
      this.pInt[e * PROP_STRIDE + P_NEXT] = NONE;
      if (e > 0 && s.propVertex[e - 1] === v) this.pInt[lastOfVertex * PROP_STRIDE + P_NEXT] = e;
      else this.vx[v * VERTEX_STRIDE + V_FIRST_PROP] = e;
      lastOfVertex = e;
    }
    const k = s.moveCounter.length;
    this.moveCount = k;
    this.mInt = new Int32Array(Math.max(k, 1) * MOVE_STRIDE);
    this.mCounter = k > 0 ? s.moveCounter : new Float64Array(1);
    for (let i = 0; i < k; i++) {
      const b = i * MOVE_STRIDE;
      this.mInt[b + M_PEER] = s.movePeer[i];
      this.mInt[b + M_TARGET] = s.moveTarget[i];
      this.mInt[b + M_PARENT] = s.moveParent[i];
      this.mInt[b + M_UNDO] = s.moveUndo[i];
    }
    const sc = s.supCounter.length;
    this.supersededCount = sc;
    this.sInt = new Int32Array(sc * SUPERSEDED_STRIDE);
    this.sCounter = s.supCounter;
    this.sValue = s.supValue as VertexPropertyType[];
    for (let i = 0; i < sc; i++) {
      this.sInt[i * SUPERSEDED_STRIDE + S_TARGET] = s.supTarget[i];
      this.sInt[i * SUPERSEDED_STRIDE + S_KEY] = s.supKey[i];
      this.sInt[i * SUPERSEDED_STRIDE + S_PEER] = s.supPeer[i];
    }
    for (const [peer, ranges] of Object.entries(s.stateVector)) for (const [a, b] of ranges) this.stateVector.addRange(peer, a, b);
    this.lamportClock = s.clock;
    this.rootVertexId = undefined;
    this.lastPeerId = '';
    for (const op of s.parked) this.park(op);
  }

  // ---- internals --------------------------------------------------------------------------

  private newVertexInternal(vertexId: string, parentId: string | null): void {
    this.moveVertex(vertexId, parentId);
    this.setVertexProperty(vertexId, '_c', new Date().toISOString());
  }

  private ensureNullVertex(): void {
    if (this.createdIndex(RepTree.NULL_VERTEX_ID) === MISSING) this.newVertexInternal(RepTree.NULL_VERTEX_ID, null);
  }

  /** The vertex's index, or MISSING when no move has created it. */
  private createdIndex(vertexId: string): number {
    const v = this.indexOf(vertexId);
    return v === undefined || this.vx[v * VERTEX_STRIDE + V_PARENT] === UNCREATED ? MISSING : v;
  }

  private indexOf(vertexId: string): number | undefined {
    if (vertexId === this.lastVertexId) return this.lastVertex;
    const v = this.vertexIndex.get(vertexId);
    if (v !== undefined) {
      this.lastVertexId = vertexId;
      this.lastVertex = v;
    }
    return v;
  }

  private intern(vertexId: string): number {
    const known = this.indexOf(vertexId);
    if (known !== undefined) return known;
    const v = this.vertexCount++;
    if ((v + 1) * VERTEX_STRIDE > this.vx.length) this.vx = growInt32(this.vx, (v + 1) * VERTEX_STRIDE);
    const b = v * VERTEX_STRIDE;
    this.vx[b + V_PARENT] = UNCREATED;
    this.vx[b + V_FIRST_CHILD] = NONE;
    this.vx[b + V_LAST_CHILD] = NONE;
    this.vx[b + V_NEXT] = NONE;
    this.vx[b + V_PREV] = NONE;
    this.vx[b + V_FIRST_PROP] = NONE;
    this.vertexIds.push(vertexId);
    this.vertexIndex.add(vertexId, v);
    this.lastVertexId = vertexId;
    this.lastVertex = v;
    return v;
  }

  private recordApplied(peerId: string, counter: number): void {
    this.stateVector.add(peerId, counter);
  }

  private peerOf(peerId: string): number {
    if (peerId === this.lastPeerId) return this.lastPeer;
    let p = this.peerIndex.get(peerId);
    if (p === undefined) {
      p = this.peers.length;
      this.peers.push(peerId);
      this.peerIndex.set(peerId, p);
    }
    this.lastPeerId = peerId;
    this.lastPeer = p;
    return p;
  }

  private keyOf(key: string): number {
    let k = this.keyIndex.get(key);
    if (k === undefined) {
      k = this.keys.length;
      this.keys.push(key);
      this.keyIndex.set(key, k);
    }
    return k;
  }

  private park(op: VertexOperation): void {
    const map: Map<string, VertexOperation[]> = isMoveVertexOp(op) ? this.pendingMoves : this.pendingProps;
    const waitFor = isMoveVertexOp(op) ? (op.parentId as string) : op.targetId;
    const list = map.get(waitFor);
    if (list) list.push(op);
    else map.set(waitFor, [op]);
    this.parkedIds.add(opIdToString(op.id));
  }

  /** Compares move log entry `i` with the id (counter, peer index). */
  private compareLog(i: number, counter: number, peer: number): number {
    const c = this.mCounter[i];
    if (c !== counter) return c > counter ? 1 : -1;
    const p = this.mInt[i * MOVE_STRIDE + M_PEER];
    return p === peer ? 0 : compareIds(0, this.peers[p], 0, this.peers[peer]);
  }

  private appendLog(counter: number, peer: number, target: number, parent: number): number {
    const i = this.moveCount++;
    if (i >= this.mCounter.length) this.mCounter = growFloat64(this.mCounter, i + 1);
    if ((i + 1) * MOVE_STRIDE > this.mInt.length) this.mInt = growInt32(this.mInt, (i + 1) * MOVE_STRIDE);
    this.mCounter[i] = counter;
    const b = i * MOVE_STRIDE;
    this.mInt[b + M_PEER] = peer;
    this.mInt[b + M_TARGET] = target;
    this.mInt[b + M_PARENT] = parent;
    this.mInt[b + M_UNDO] = NO_UNDO;
    return i;
  }

  /**
   * The core of the move-op algorithm (Kleppmann et al.): a move is applied after undoing all
   * logged moves newer than it, and those are redone after it, so every replica applies all moves
   * in the same order; `tryToMove` skips a move that would make a cycle.
   *
   * Instead of redoing the newer moves right after each op (reptree), they stay undone until an
   * op needs them: the log is two stacks, the applied moves (the log, ascending) and the undone
   * ones (`undoCounter`/`undoInt`, smallest on top), and `redoAll` empties the second at the end
   * of a batch. For a batch sorted by op id every logged move is undone and redone at most once,
   * instead of once per older op in the batch. The result is the same, because a redo records the
   * parent it moves a vertex away from and the undo restores it. An op older than every logged
   * move goes first (reptree 0.9.0 inserted it after the first one and never redid that one).
   */
  private applyMove(op: MoveVertex): void {
    const parent = op.parentId === null ? NO_PARENT : this.createdIndex(op.parentId);
    if (parent === MISSING) {
      this.park(op);
      return;
    }
    const counter = op.id.counter;
    const peer = this.peerOf(op.id.peerId);
    while (this.moveCount > 0 && this.compareLog(this.moveCount - 1, counter, peer) >= 0) {
      const i = --this.moveCount;
      this.undoMove(i);
      const b = i * MOVE_STRIDE;
      this.undoCounter.push(this.mCounter[i]);
      this.undoInt.push(this.mInt[b + M_PEER], this.mInt[b + M_TARGET], this.mInt[b + M_PARENT]);
    }
    while (this.undoCounter.length > 0) {
      const top = this.undoCounter.length - 1;
      const c = this.undoCounter[top];
      const p = this.undoInt[top * 3];
      if (c > counter || (c === counter && compareIds(0, this.peers[p], 0, op.id.peerId) > 0)) break;
      this.tryToMove(this.appendLog(c, p, this.undoInt[top * 3 + 1], this.undoInt[top * 3 + 2]));
      this.undoCounter.pop();
      this.undoInt.length -= 3;
    }
    const target = this.intern(op.targetId);
    const i = this.appendLog(counter, peer, target, parent);
    this.recordApplied(op.id.peerId, counter);
    this.tryToMove(i);
    // The vertex may be the missing parent of parked moves.
    if (this.pendingMoves.size > 0 && this.vx[target * VERTEX_STRIDE + V_PARENT] !== UNCREATED) {
      const parked = this.pendingMoves.get(op.targetId);
      if (parked) {
        this.pendingMoves.delete(op.targetId);
        for (const p of parked) {
          this.parkedIds.delete(opIdToString(p.id));
          this.applyMove(p);
        }
      }
    }
  }

  /**
   * Redoes the moves still undone (oldest first) at the end of a batch. After a throw (`redo`
   * false) they are only put back in the log, so the op set stays complete.
   */
  private redoAll(redo = true): void {
    for (let top = this.undoCounter.length - 1; top >= 0; top--) {
      const i = this.appendLog(this.undoCounter[top], this.undoInt[top * 3], this.undoInt[top * 3 + 1], this.undoInt[top * 3 + 2]);
      if (redo) this.tryToMove(i);
    }
    this.undoCounter.length = 0;
    this.undoInt.length = 0;
  }

  /** Applies ops (sorted by op id) with one undo/redo pass; property ops in between, as they come. */
  private applyMoves(ops: ReadonlyArray<VertexOperation>): void {
    let completed = false;
    try {
      for (const op of ops) {
        if (isMoveVertexOp(op)) this.applyMove(op);
        else this.applyProperty(op);
      }
      completed = true;
    } finally {
      if (this.undoCounter.length > 0) this.redoAll(completed);
    }
  }

  /** Grows the columns once for a batch of up to `moves` moves (new vertices) and `props` property ops. */
  private reserve(moves: number, props: number): void {
    const v = (this.vertexCount + moves) * VERTEX_STRIDE;
    if (v > this.vx.length) this.vx = growInt32(this.vx, v, true);
    const m = this.moveCount + moves;
    if (m > this.mCounter.length) this.mCounter = growFloat64(this.mCounter, m, true);
    if (m * MOVE_STRIDE > this.mInt.length) this.mInt = growInt32(this.mInt, m * MOVE_STRIDE, true);
    const p = this.propCount + props;
    if (p > this.pCounter.length) this.pCounter = growFloat64(this.pCounter, p, true);
    if (p * PROP_STRIDE > this.pInt.length) this.pInt = growInt32(this.pInt, p * PROP_STRIDE, true);
  }

  /** Applies log entry `i` unless it would put a vertex under itself or a descendant. */
  private tryToMove(i: number): void {
    const b = i * MOVE_STRIDE;
    const target = this.mInt[b + M_TARGET];
    const parent = this.mInt[b + M_PARENT];
    const current = this.vx[target * VERTEX_STRIDE + V_PARENT];
    const existed = current !== UNCREATED;
    // The undo record: where the vertex was before this move.
    this.mInt[b + M_UNDO] = existed ? current : NO_UNDO;
    if (target === parent) return;
    if (parent !== NO_PARENT && this.isAncestor(parent, target)) return;
    this.place(target, parent);
    if (!existed && this.pendingProps.size > 0) {
      const id = this.vertexIds[target];
      const parked = this.pendingProps.get(id);
      if (parked) {
        this.pendingProps.delete(id);
        for (const op of parked) {
          this.parkedIds.delete(opIdToString(op.id));
          this.applyProperty(op);
        }
      }
    }
  }

  private undoMove(i: number): void {
    const b = i * MOVE_STRIDE;
    const before = this.mInt[b + M_UNDO];
    if (before === NO_UNDO) return;
    const target = this.mInt[b + M_TARGET];
    // An undo restores an earlier (acyclic) state, so this never skips on a tree built by merges;
    // it keeps a crafted snapshot's undo records from making a cycle.
    if (before !== NO_PARENT && (before === target || this.isAncestor(before, target))) return;
    this.place(target, before);
  }

  /** True when `ancestor` is above `child` (walking parents from `child`). */
  private isAncestor(child: number, ancestor: number): boolean {
    let v = child;
    // The tree has no cycles; the bound only guards against a bug turning this into a hang.
    for (let steps = this.vertexCount; steps >= 0; steps--) {
      const p = this.vx[v * VERTEX_STRIDE + V_PARENT];
      if (p === ancestor) return true;
      if (p < 0) return false;
      v = p;
    }
    return false;
  }

  /** Puts `v` last among the children of `parent` (NO_PARENT: makes it a root). */
  private place(v: number, parent: number): void {
    const vb = v * VERTEX_STRIDE;
    const old = this.vx[vb + V_PARENT];
    if (old === parent) return;
    if (old >= 0) {
      const prev = this.vx[vb + V_PREV];
      const next = this.vx[vb + V_NEXT];
      if (prev === NONE) this.vx[old * VERTEX_STRIDE + V_FIRST_CHILD] = next;
      else this.vx[prev * VERTEX_STRIDE + V_NEXT] = next;
      if (next === NONE) this.vx[old * VERTEX_STRIDE + V_LAST_CHILD] = prev;
      else this.vx[next * VERTEX_STRIDE + V_PREV] = prev;
    }
    this.vx[vb + V_PARENT] = parent;
    this.vx[vb + V_NEXT] = NONE;
    this.vx[vb + V_PREV] = NONE;
    if (parent >= 0) {
      const pb = parent * VERTEX_STRIDE;
      const last = this.vx[pb + V_LAST_CHILD];
      this.vx[vb + V_PREV] = last;
      if (last === NONE) this.vx[pb + V_FIRST_CHILD] = v;
      else this.vx[last * VERTEX_STRIDE + V_NEXT] = v;
      this.vx[pb + V_LAST_CHILD] = v;
    }
    if (this.events.active) {
      const idOf = (x: number): string | null => (x === NO_PARENT ? null : this.vertexIds[x]);
      this.events.moved(this.vertexIds[v], old === UNCREATED ? undefined : idOf(old), idOf(parent));
    }
  }

  private findProp(v: number, key: number): number {
    let e = this.vx[v * VERTEX_STRIDE + V_FIRST_PROP];
    while (e !== NONE && this.pInt[e * PROP_STRIDE + P_KEY] !== key) e = this.pInt[e * PROP_STRIDE + P_NEXT];
    return e;
  }

  /** Last-writer-wins by op id; a losing op is kept (superseded) and enters the state vector too. */
  private applyProperty(op: SetVertexProperty): void {
    const v = this.createdIndex(op.targetId);
    if (v === MISSING) {
      this.park(op);
      return;
    }
    const key = this.keyOf(op.key);
    const peer = this.peerOf(op.id.peerId);
    const counter = op.id.counter;
    this.recordApplied(op.id.peerId, counter);
    const e = this.findProp(v, key);
    if (e === NONE) {
      this.appendProp(v, this.newProp(key, peer, counter, op.value));
    } else {
      const wc = this.pCounter[e];
      const wp = this.pInt[e * PROP_STRIDE + P_PEER];
      if (compareIds(counter, op.id.peerId, wc, this.peers[wp]) <= 0) {
        this.supersede(v, key, peer, counter, op.value);
        return;
      }
      this.supersede(v, key, wp, wc, this.pValue[e]);
      const wasRemoved = this.pValue[e] === undefined;
      this.pInt[e * PROP_STRIDE + P_PEER] = peer;
      this.pCounter[e] = counter;
      this.pValue[e] = op.value;
      // A removed key that is set again goes last, as in reptree (removal dropped its entry).
      if (wasRemoved && op.value !== undefined) {
        this.unlinkProp(v, e);
        this.appendProp(v, e);
      }
    }
    if (this.events.active) this.events.propertyChanged(op.targetId, op.key, op.value);
  }

  private newProp(key: number, peer: number, counter: number, value: VertexPropertyType): number {
    const e = this.propCount++;
    if (e >= this.pCounter.length) this.pCounter = growFloat64(this.pCounter, e + 1);
    if ((e + 1) * PROP_STRIDE > this.pInt.length) this.pInt = growInt32(this.pInt, (e + 1) * PROP_STRIDE);
    this.pInt[e * PROP_STRIDE + P_KEY] = key;
    this.pInt[e * PROP_STRIDE + P_PEER] = peer;
    this.pInt[e * PROP_STRIDE + P_NEXT] = NONE;
    this.pCounter[e] = counter;
    this.pValue[e] = value;
    return e;
  }

  private appendProp(v: number, e: number): void {
    this.pInt[e * PROP_STRIDE + P_NEXT] = NONE;
    let x = this.vx[v * VERTEX_STRIDE + V_FIRST_PROP];
    if (x === NONE) {
      this.vx[v * VERTEX_STRIDE + V_FIRST_PROP] = e;
      return;
    }
    while (this.pInt[x * PROP_STRIDE + P_NEXT] !== NONE) x = this.pInt[x * PROP_STRIDE + P_NEXT];
    this.pInt[x * PROP_STRIDE + P_NEXT] = e;
  }

  private unlinkProp(v: number, e: number): void {
    const first = this.vx[v * VERTEX_STRIDE + V_FIRST_PROP];
    if (first === e) {
      this.vx[v * VERTEX_STRIDE + V_FIRST_PROP] = this.pInt[e * PROP_STRIDE + P_NEXT];
      return;
    }
    let x = first;
    while (this.pInt[x * PROP_STRIDE + P_NEXT] !== e) x = this.pInt[x * PROP_STRIDE + P_NEXT];
    this.pInt[x * PROP_STRIDE + P_NEXT] = this.pInt[e * PROP_STRIDE + P_NEXT];
  }

  private supersede(v: number, key: number, peer: number, counter: number, value: VertexPropertyType): void {
    const i = this.supersededCount++;
    if (i >= this.sCounter.length) this.sCounter = growFloat64(this.sCounter, i + 1);
    if ((i + 1) * SUPERSEDED_STRIDE > this.sInt.length) this.sInt = growInt32(this.sInt, (i + 1) * SUPERSEDED_STRIDE);
    const b = i * SUPERSEDED_STRIDE;
    this.sInt[b + S_TARGET] = v;
    this.sInt[b + S_KEY] = key;
    this.sInt[b + S_PEER] = peer;
    this.sCounter[i] = counter;
    this.sValue[i] = value;
  }

  private moveOpAt(i: number): MoveVertex {
    const b = i * MOVE_STRIDE;
    const parent = this.mInt[b + M_PARENT];
    return newMoveVertexOp(this.mCounter[i], this.peers[this.mInt[b + M_PEER]], this.vertexIds[this.mInt[b + M_TARGET]], parent === NO_PARENT ? null : this.vertexIds[parent]);
  }

  private forEachOp(fn: (op: VertexOperation) => void): void {
    for (let i = 0; i < this.moveCount; i++) fn(this.moveOpAt(i));
    for (let v = 0; v < this.vertexCount; v++) {
      for (let e = this.vx[v * VERTEX_STRIDE + V_FIRST_PROP]; e !== NONE; e = this.pInt[e * PROP_STRIDE + P_NEXT]) {
        fn(newSetVertexPropertyOp(this.pCounter[e], this.peers[this.pInt[e * PROP_STRIDE + P_PEER]], this.vertexIds[v], this.keys[this.pInt[e * PROP_STRIDE + P_KEY]], this.pValue[e]));
      }
    }
    for (let i = 0; i < this.supersededCount; i++) {
      const b = i * SUPERSEDED_STRIDE;
      fn(newSetVertexPropertyOp(this.sCounter[i], this.peers[this.sInt[b + S_PEER]], this.vertexIds[this.sInt[b + S_TARGET]], this.keys[this.sInt[b + S_KEY]], this.sValue[i]));
    }
  }

  /** Trims the columns to their length (they grow by doubling). */
  private compact(): void {
    this.vx = this.vx.slice(0, Math.max(this.vertexCount, 1) * VERTEX_STRIDE);
    this.vertexIds = this.vertexIds.slice();
    this.pInt = this.pInt.slice(0, Math.max(this.propCount, 1) * PROP_STRIDE);
    this.pCounter = this.pCounter.slice(0, Math.max(this.propCount, 1));
    this.pValue = this.pValue.slice(0, this.propCount);
    this.mInt = this.mInt.slice(0, Math.max(this.moveCount, 1) * MOVE_STRIDE);
    this.mCounter = this.mCounter.slice(0, Math.max(this.moveCount, 1));
    this.sInt = this.sInt.slice(0, this.supersededCount * SUPERSEDED_STRIDE);
    this.sCounter = this.sCounter.slice(0, this.supersededCount);
    this.sValue = this.sValue.slice(0, this.supersededCount);
  }
}

function compareOps(a: VertexOperation, b: VertexOperation): number {
  return compareIds(a.id.counter, a.id.peerId, b.id.counter, b.id.peerId);
}

function isSortedById(ops: ReadonlyArray<VertexOperation>): boolean {
  for (let i = 1; i < ops.length; i++) if (compareOps(ops[i - 1], ops[i]) > 0) return false;
  return true;
}

/**
 * A copy of `a` with room for `need`: doubling, so that many small batches cost amortised O(1)
 * each; with `fit`, exactly `need` when that is more than double (one big batch, such as the ops
 * a tree is built from, leaves no slack).
 */
function growInt32(a: Int32Array, need: number, fit = false): Int32Array {
  const b = new Int32Array(fit && need > a.length * 2 ? need : Math.max(need, a.length * 2, INITIAL_CAPACITY));
  b.set(a);
  return b;
}

function growFloat64(a: Float64Array, need: number, fit = false): Float64Array {
  const b = new Float64Array(fit && need > a.length * 2 ? need : Math.max(need, a.length * 2, INITIAL_CAPACITY));
  b.set(a);
  return b;
}

/** A random vertex id: 32 lowercase hex chars (reptree's uuid without dashes). */
function randomVertexId(): string {
  return randomUUID().replace(/-/g, '');
}

/** JSON values, and `undefined` (removal). */
function isJsonValue(v: unknown): v is JsonValue | undefined {
  if (v === undefined || v === null) return true;
  const t = typeof v;
  if (t === 'string' || t === 'boolean') return true;
  if (t === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) return v.every((x) => x !== undefined && isJsonValue(x));
  if (t !== 'object') return false;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(v as Record<string, unknown>).every((x) => x !== undefined && isJsonValue(x));
}
