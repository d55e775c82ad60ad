/**
 * AppTree: one RepTree with typed, validated accessors. The space tree and every app tree
 * (notes, chat, any other app) are AppTrees; app-specific helpers (apps/notes, apps/chat) wrap one.
 *
 * Every local change ends by popping RepTree's local ops and firing `onDidChange` with
 * origin 'local'; the SpaceManager saves those to every layer. Remote ops come in through
 * `applyRemote`, already validated.
 *
 * Child order is deterministic on every replica: by the numeric `order` property when present,
 * then creation time (`_c`, set by RepTree), then vertex id.
 */
import { randomUUID } from 'node:crypto';
import { RepTree, TreeSnapshot, type StateVectorRanges } from '../crdt';
import type { TreeLoad } from '../persistence/treeLoad';
import { Emitter, type Disposable } from './events';
import { DELETED_PARENT_ID, isJsonValue, type JsonValue, type Op } from './ops';
import { derivedVertexId, isHexId } from './ids';

export const ORDER_KEY = 'order';
const CREATED_KEY = '_c';
/** The properties children are ordered by (`childIds`). */
const SORT_KEYS: readonly string[] = [ORDER_KEY, CREATED_KEY];

export type Props = Record<string, JsonValue>;

export interface TreeItem {
  readonly id: string;
  readonly parentId: string;
  readonly props: Props;
}

export interface DumpNode {
  id: string;
  props: Props;
  children: DumpNode[];
}

/** A node to import: dump's shape, ids optional (new ids are made when missing or taken). */
export interface ImportNode {
  id?: string;
  props?: Props;
  children?: ImportNode[];
}

/** Where to put an item among its siblings; default: last. */
export interface Position {
  after?: string;
  before?: string;
}

/** An item's place in its tree: parent (null: deleted) and sibling `order`. */
export interface Placement {
  readonly parentId: string | null;
  readonly order: number | undefined;
}

export interface TreeChange {
  readonly treeId: string;
  readonly ops: readonly Op[];
  readonly origin: 'local' | 'remote';
}

export class TreeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TreeError';
  }
}

/** A new random vertex/tree id: 32 lowercase hex chars, like RepTree's own. */
export function newVertexId(): string {
  return randomUUID().replace(/-/g, '');
}

/**
 * The id of a vertex the next local op creates: derived from that op's id (peer id + counter,
 * `derivedVertexId` in ids.ts), which the codec stores in one byte instead of 16; random when the
 * peer id has another shape or the id is taken (a peer may have made a vertex under it).
 */
function nextVertexId(tree: RepTree): string {
  const id = derivedVertexId(tree.peerId, tree.clock + 1);
  return id !== undefined && !tree.getVertex(id) ? id : newVertexId();
}

export class AppTree implements Disposable {
  private readonly changeEmitter = new Emitter<TreeChange>();
  readonly onDidChange = this.changeEmitter.event;
  private disposed = false;
  /** Largest `order` seen per parent; cleared when remote ops arrive (they may add larger ones). */
  private readonly maxOrder = new Map<string, number>();

  private constructor(
    readonly id: string,
    readonly tree: RepTree,
  ) {}

  /** A new, empty tree whose root vertex id is `treeId`. The creation ops are local ops. */
  static createNew(peerId: string, treeId: string, rootProps: Props = {}): AppTree {
    const tree = new RepTree(peerId);
    tree.moveVertex(treeId, null); // a move under null makes the root
    const t = new AppTree(treeId, tree);
    for (const [k, v] of Object.entries(rootProps)) tree.setVertexProperty(treeId, k, v);
    return t;
  }

  /** A tree rebuilt from stored ops (validated by the caller), in any order. */
  static fromOps(peerId: string, treeId: string, ops: readonly Op[]): AppTree {
    // Checked first so that the error names what is wrong (RepTree's own says "no root vertex").
    if (!ops.some((op) => op.targetId === treeId && 'parentId' in op && op.parentId === null)) {
      throw new TreeError(`tree ${treeId} is incomplete: its ops do not create its root vertex`);
    }
    const tree = new RepTree(peerId, ops);
    if (tree.parentIdOf(treeId) !== null) {
      tree.dispose();
      throw new TreeError(`tree ${treeId}: its ops do not create its root vertex`);
    }
    return new AppTree(treeId, tree);
  }

  /**
   * A tree opened from a snapshot (`snapshot()`) plus the ops stored after it, without replaying
   * history. Throws SnapshotError (src/crdt/snapshot.ts) for a damaged, truncated or newer
   * snapshot, and TreeError when it is not a snapshot of tree `treeId`: rebuild from ops then.
   */
  static fromSnapshot(peerId: string, treeId: string, bytes: Uint8Array, tailOps: readonly Op[] = []): AppTree {
    const tree = RepTree.fromSnapshot(peerId, bytes, tailOps);
    if (tree.parentIdOf(treeId) !== null) {
      tree.dispose();
      throw new TreeError(`the snapshot is not one of tree ${treeId}`);
    }
    return new AppTree(treeId, tree);
  }

  /**
   * A tree opened from what a store handed over (src/persistence/treeLoad.ts): its snapshot plus
   * the ops after it, or every op. A snapshot that does not load, is not one of this tree, or
   * does not hold exactly the ops the store holds goes back to the store (`discard`), and the
   * tree is built from every op the store then returns (checked with `check`): a bad snapshot
   * costs time, never data. `have`: what the store holds, when it came as a snapshot.
   */
  static async fromTreeLoad(peerId: string, treeId: string, load: TreeLoad, check: (ops: Op[]) => void): Promise<{ tree: AppTree; ops: Op[]; have?: StateVectorRanges }> {
    const snap = load.snapshot;
    if (!snap) return { tree: AppTree.fromOps(peerId, treeId, load.ops), ops: load.ops };
    let problem: string;
    try {
      const tree = AppTree.fromSnapshot(peerId, treeId, snap.bytes, load.ops);
      const holds = tree.tree.opCount + tree.tree.parkedCount;
      if (holds === snap.storedOps) return { tree, ops: load.ops, have: tree.tree.getStateVector() };
      tree.dispose();
      problem = `it and the ops after it hold ${holds} ops, the store ${snap.storedOps}`;
    } catch (e) {
      // Whatever a damaged snapshot makes the decoder throw, the ops are still there.
      problem = e instanceof Error ? e.message : String(e);
    }
    const ops = await snap.discard(problem);
    check(ops);
    return { tree: AppTree.fromOps(peerId, treeId, ops), ops };
  }

  /** The tree's state as a snapshot (src/crdt/snapshot.ts). */
  snapshot(): Uint8Array {
    return TreeSnapshot.encode(this.tree);
  }

  get rootId(): string {
    return this.id;
  }

  /** Number of ops the tree holds (moves + property sets). */
  get opCount(): number {
    return this.tree.opCount;
  }

  /** Every op the tree holds (new objects, moves in op-id order, then property ops). */
  allOps(): Op[] {
    return this.tree.getAllOps();
  }

  /** True when the vertex exists and is not deleted (no ancestor is the deleted-items vertex). */
  /** Every op of one item (moves, property ops, superseded ones included): its history's source (history.ts). */
  itemOps(id: string): Op[] {
    return this.tree.getVertexOps(id);
  }

  has(id: string): boolean {
    if (id === this.id) return true;
    // The tree has no cycles (the CRDT skips moves that would make one); the bound is a guard.
    let p = this.tree.parentIdOf(id);
    for (let steps = this.tree.opCount; p !== undefined && steps >= 0; steps--) {
      if (p === this.id) return true;
      if (p === null || p === DELETED_PARENT_ID) return false;
      p = this.tree.parentIdOf(p);
    }
    return false;
  }

  private requireItem(id: string, what = 'item'): void {
    if (!this.has(id)) throw new TreeError(`no ${what} ${id} in tree ${this.id}`);
  }

  get(id: string): TreeItem | undefined {
    if (!this.has(id)) return undefined;
    return { id, parentId: this.tree.parentIdOf(id) ?? '', props: this.propsOf(id) };
  }

  getProp(id: string, key: string): JsonValue | undefined {
    return this.tree.getVertexProperty(id, key) as JsonValue | undefined;
  }

  /** The vertex's properties without RepTree's internal creation time. */
  propsOf(id: string): Props {
    const out: Props = {};
    for (const p of this.tree.getVertexProperties(id)) {
      if (p.key !== CREATED_KEY && p.value !== undefined) out[p.key] = p.value as JsonValue;
    }
    return out;
  }

  /** Child ids in display order. */
  childIds(parentId: string = this.id): string[] {
    const { ids, values } = this.tree.getChildrenWithProperties(parentId, SORT_KEYS);
    const [orders, created] = values;
    const n = ids.length;
    const o = new Float64Array(n);
    let keyed = false;
    for (let i = 0; i < n; i++) {
      const v = orders[i];
      o[i] = typeof v === 'number' ? v : Number.POSITIVE_INFINITY;
      if (typeof v === 'number' || typeof created[i] === 'string') keyed = true;
    }
    // Children without `order` or `_c` (chat messages) sort by id alone: the native string sort.
    if (!keyed) return ids.sort();
    const c = created.map((v) => (typeof v === 'string' ? v : ''));
    const idx = Array.from({ length: n }, (_, i) => i);
    idx.sort((a, b) => (o[a] !== o[b] ? (o[a] < o[b] ? -1 : 1) : c[a] !== c[b] ? (c[a] < c[b] ? -1 : 1) : ids[a] < ids[b] ? -1 : ids[a] > ids[b] ? 1 : 0));
    return idx.map((i) => ids[i]);
  }

  /** The subtree as nested JSON, children in display order. */
  dump(id: string = this.id): DumpNode {
    this.requireItem(id);
    return { id, props: this.propsOf(id), children: this.childIds(id).map((c) => this.dump(c)) };
  }

  /** Number of live items under `id` (not counting it). */
  countItems(id: string = this.id): number {
    let n = 0;
    const stack = [id];
    while (stack.length) {
      const ids = this.tree.getChildrenIds(stack.pop() as string);
      n += ids.length;
      for (const c of ids) stack.push(c);
    }
    return n;
  }

  // ---- local changes --------------------------------------------------------

  /**
   * Adds an item under `parentId`. With `ordered` (the default) it gets an `order` placing it at
   * `position` (default: last); unordered items (chat messages) sort by their own properties.
   * Items carry no RepTree creation time (`_c`): it would cost an op and memory per item.
   */
  addItem(parentId: string, props: Props = {}, position?: Position, ordered = true): string {
    this.requireItem(parentId, 'parent');
    checkProps(props);
    const order = ordered ? this.orderFor(parentId, undefined, position) : undefined;
    const id = nextVertexId(this.tree);
    this.tree.moveVertex(id, parentId);
    for (const [k, v] of Object.entries(props)) this.tree.setVertexProperty(id, k, v);
    if (order !== undefined) this.tree.setVertexProperty(id, ORDER_KEY, order);
    this.emitLocal();
    return id;
  }

  /** Sets (or with `undefined`, removes) properties. */
  setProps(id: string, props: Record<string, JsonValue | undefined>): void {
    this.requireItem(id);
    checkProps(props);
    for (const [k, v] of Object.entries(props)) this.tree.setVertexProperty(id, k, v);
    this.emitLocal();
  }

  move(id: string, parentId: string, position?: Position): void {
    if (id === this.id) throw new TreeError('the root cannot be moved');
    this.requireItem(id);
    this.requireItem(parentId, 'parent');
    if (id === parentId || this.isAncestorOf(id, parentId)) throw new TreeError(`cannot move ${id} into itself or one of its descendants`);
    const order = this.orderFor(parentId, id, position);
    if (this.tree.getVertex(id)?.parentId !== parentId) this.tree.moveVertex(id, parentId);
    this.tree.setVertexProperty(id, ORDER_KEY, order);
    this.emitLocal();
  }

  delete(id: string): void {
    if (id === this.id) throw new TreeError('the root cannot be deleted');
    this.requireItem(id);
    this.tree.deleteVertex(id);
    this.emitLocal();
  }

  /**
   * Where an item is: its parent (null once deleted) and its `order`. With `place` this undoes
   * and redoes structural edits (add, delete, move) as ordinary new ops.
   */
  placement(id: string): Placement {
    const v = this.tree.getVertex(id);
    if (!v || id === this.id) throw new TreeError(`no item ${id} in tree ${this.id}`);
    const order = this.tree.getVertexProperty(id, ORDER_KEY);
    return { parentId: this.has(id) ? (v.parentId ?? null) : null, order: typeof order === 'number' ? order : undefined };
  }

  /** Puts an item (live or deleted) back where `placement` said it was. */
  place(id: string, p: Placement): void {
    const v = this.tree.getVertex(id);
    if (!v || id === this.id) throw new TreeError(`no item ${id} in tree ${this.id}`);
    if (p.parentId === null) {
      if (this.has(id)) this.tree.deleteVertex(id);
    } else {
      this.requireItem(p.parentId, 'parent');
      if (id === p.parentId || this.isAncestorOf(id, p.parentId)) throw new TreeError(`cannot move ${id} into itself or one of its descendants`);
      if (v.parentId !== p.parentId) this.tree.moveVertex(id, p.parentId);
      if (this.tree.getVertexProperty(id, ORDER_KEY) !== p.order) this.tree.setVertexProperty(id, ORDER_KEY, p.order);
      if (p.order !== undefined) this.noteOrder(p.parentId, p.order);
    }
    this.emitLocal();
  }

  /** Adds nested nodes under `parentId` in one batch of ops; returns the new top-level ids. */
  importNodes(parentId: string, nodes: readonly ImportNode[]): string[] {
    this.requireItem(parentId, 'parent');
    const add = (pid: string, list: readonly ImportNode[]): string[] => {
      let order = this.lastOrder(pid);
      return list.map((n) => {
        const props = n.props ?? {};
        checkProps(props);
        const usedOrder = typeof props[ORDER_KEY] === 'number' ? undefined : (order = order + 1);
        const id = n.id !== undefined && !this.tree.getVertex(n.id) && isHexId(n.id) ? n.id : nextVertexId(this.tree);
        this.tree.moveVertex(id, pid);
        for (const [k, v] of Object.entries(props)) this.tree.setVertexProperty(id, k, v);
        if (usedOrder !== undefined) this.tree.setVertexProperty(id, ORDER_KEY, this.noteOrder(pid, usedOrder));
        if (n.children?.length) add(id, n.children);
        return id;
      });
    };
    const ids = add(parentId, nodes);
    this.emitLocal();
    return ids;
  }

  /** Runs `fn` with the raw RepTree and emits whatever local ops it made as one change. */
  transact<T>(fn: (tree: RepTree) => T): T {
    try {
      return fn(this.tree);
    } finally {
      this.emitLocal();
    }
  }

  // ---- remote changes -------------------------------------------------------

  /**
   * Merges validated ops from elsewhere; returns those that were new to this tree
   * (the ones other layers still need). Fires `onDidChange` with origin 'remote' when any.
   */
  applyRemote(ops: readonly Op[]): Op[] {
    const fresh = this.tree.merge(ops);
    if (fresh.length === 0) return fresh;
    this.maxOrder.clear();
    // A remote op never becomes a local one; RepTree keeps localOps for its own changes only.
    this.changeEmitter.fire({ treeId: this.id, ops: fresh, origin: 'remote' });
    return fresh;
  }

  // ---- helpers ---------------------------------------------------------------

  private emitLocal(): void {
    const ops = this.tree.popLocalOps();
    if (ops.length) this.changeEmitter.fire({ treeId: this.id, ops, origin: 'local' });
  }

  private isAncestorOf(ancestor: string, id: string): boolean {
    let cur = this.tree.getVertex(id)?.parentId ?? null;
    const seen = new Set<string>();
    while (cur !== null && !seen.has(cur)) {
      if (cur === ancestor) return true;
      seen.add(cur);
      cur = this.tree.getVertex(cur)?.parentId ?? null;
    }
    return false;
  }

  /** An `order` value that puts a new child after every existing child of `parentId`. */
  appendOrder(parentId: string): number {
    return this.noteOrder(parentId, this.lastOrder(parentId) + 1);
  }

  private lastOrder(parentId: string): number {
    const cached = this.maxOrder.get(parentId);
    if (cached !== undefined) return cached;
    let max = 0;
    for (const id of this.tree.getChildrenIds(parentId)) {
      const o = this.tree.getVertexProperty(id, ORDER_KEY);
      if (typeof o === 'number' && o > max) max = o;
    }
    this.maxOrder.set(parentId, max);
    return max;
  }

  /**
   * The `order` value for an item placed at `position` under `parentId` (excluding `movingId`
   * from the siblings). Between two siblings it is their midpoint; when doubles run out of room
   * the siblings are renumbered (rare; each renumbering is ordinary property ops).
   */
  private orderFor(parentId: string, movingId: string | undefined, position?: Position): number {
    if (position?.after === undefined && position?.before === undefined) return this.noteOrder(parentId, this.lastOrder(parentId) + 1);
    const siblings = this.childIds(parentId).filter((id) => id !== movingId);
    const orderOf = (id: string): number => {
      const o = this.tree.getVertexProperty(id, ORDER_KEY);
      return typeof o === 'number' ? o : NaN;
    };
    let index: number;
    if (position.after !== undefined) {
      const i = siblings.indexOf(position.after);
      if (i < 0) throw new TreeError(`${position.after} is not a child of ${parentId}`);
      index = i + 1;
    } else {
      const i = siblings.indexOf(position.before as string);
      if (i < 0) throw new TreeError(`${position.before} is not a child of ${parentId}`);
      index = i;
    }
    if (index === siblings.length) return this.noteOrder(parentId, this.lastOrder(parentId) + 1);
    const lo = index > 0 ? orderOf(siblings[index - 1]) : orderOf(siblings[0]) - 2;
    const hi = orderOf(siblings[index]);
    const mid = (lo + hi) / 2;
    if (Number.isFinite(lo) && Number.isFinite(hi) && mid > lo && mid < hi) return mid;
    // No room (or unordered siblings): renumber all siblings, leaving a gap at `index`.
    siblings.forEach((id, i) => this.tree.setVertexProperty(id, ORDER_KEY, i < index ? i + 1 : i + 2));
    return this.noteOrder(parentId, index + 1, siblings.length + 1);
  }

  /** Records the largest `order` used under a parent, so appends stay O(1). Returns `order`. */
  private noteOrder(parentId: string, order: number, max = order): number {
    this.maxOrder.set(parentId, Math.max(max, this.maxOrder.get(parentId) ?? max));
    return order;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.changeEmitter.dispose();
    this.tree.dispose();
  }
}

function checkProps(props: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(props)) {
    if (k.length === 0 || k.length > 256 || k === '__proto__' || k === CREATED_KEY) throw new TreeError(`bad property name ${JSON.stringify(k)}`);
    if (v !== undefined && !isJsonValue(v)) throw new TreeError(`property ${k}: value is not JSON`);
  }
}
