/**
 * Change events of a tree, coalesced per vertex and delivered on a microtask (reptree queued
 * every event and delivered them from a 33 ms interval that nothing cleared; see
 * docs/upstream/reptree-fixes.md, problems 1 and 3).
 *
 * Only the last 'move' event, one 'children' event and the last event per property key of each
 * vertex are kept, so the queue is bounded by the vertices and keys changed, not by the number of
 * changes. A 'children' event lists the children as they are when it is delivered. Nothing is
 * recorded while no one listens, so building or merging a tree nobody observes costs nothing here.
 */
import type { VertexPropertyType } from './operations';

export interface VertexMoveEvent {
  readonly type: 'move';
  readonly vertexId: string;
  /** undefined: the move created the vertex. */
  readonly oldParentId: string | null | undefined;
  readonly newParentId: string | null;
}

export interface VertexChildrenChangeEvent {
  readonly type: 'children';
  readonly vertexId: string;
  /** The vertex's children at delivery, in the tree's order. */
  readonly childrenIds: readonly string[];
}

export interface VertexPropertyChangeEvent {
  readonly type: 'property';
  readonly vertexId: string;
  readonly key: string;
  /** undefined: the property was removed. */
  readonly value: VertexPropertyType;
}

export type VertexChangeEvent = VertexMoveEvent | VertexChildrenChangeEvent | VertexPropertyChangeEvent;
export type ChangeListener = (events: VertexChangeEvent[]) => void;

interface PendingChanges {
  move: VertexMoveEvent | undefined;
  children: boolean;
  /** Last event per key, in order of last change (a re-set key moves to the end). */
  properties: Map<string, VertexPropertyChangeEvent> | undefined;
}

export class TreeEvents {
  private readonly listeners = new Map<string, Set<ChangeListener>>();
  private readonly globalListeners = new Set<ChangeListener>();
  private pending = new Map<string, PendingChanges>();
  private scheduled = false;
  private disposed = false;

  /** `childrenOf` reads a vertex's current children when a 'children' event is delivered. */
  constructor(private readonly childrenOf: (vertexId: string) => string[]) {}

  /** True when someone listens: the tree records changes only then. */
  get active(): boolean {
    return !this.disposed && (this.globalListeners.size > 0 || this.listeners.size > 0);
  }

  observe(vertexId: string, listener: ChangeListener): () => void {
    if (this.disposed) return () => {};
    let set = this.listeners.get(vertexId);
    if (!set) this.listeners.set(vertexId, (set = new Set()));
    set.add(listener);
    return () => {
      const s = this.listeners.get(vertexId);
      if (!s) return;
      s.delete(listener);
      if (s.size === 0) this.listeners.delete(vertexId);
    };
  }

  observeAll(listener: ChangeListener): () => void {
    if (this.disposed) return () => {};
    this.globalListeners.add(listener);
    return () => this.globalListeners.delete(listener);
  }

  moved(vertexId: string, oldParentId: string | null | undefined, newParentId: string | null): void {
    this.changes(vertexId).move = { type: 'move', vertexId, oldParentId, newParentId };
    if (newParentId !== null) this.changes(newParentId).children = true;
    if (oldParentId !== null && oldParentId !== undefined) this.changes(oldParentId).children = true;
  }

  propertyChanged(vertexId: string, key: string, value: VertexPropertyType): void {
    const c = this.changes(vertexId);
    if (!c.properties) c.properties = new Map();
    c.properties.delete(key);
    c.properties.set(key, { type: 'property', vertexId, key, value });
  }

  /**
   * Delivers what is queued now. Listeners run after the tree has finished its change, so they
   * see its final state; changes they make are queued and delivered after this round.
   */
  flush(): void {
    this.scheduled = false;
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    for (const [vertexId, c] of batch) {
      const events: VertexChangeEvent[] = [];
      if (c.move) events.push(c.move);
      if (c.children) events.push({ type: 'children', vertexId, childrenIds: this.childrenOf(vertexId) });
      if (c.properties) for (const e of c.properties.values()) events.push(e);
      for (const l of this.globalListeners) l(events);
      const own = this.listeners.get(vertexId);
      if (own) for (const l of own) l(events);
    }
  }

  /** Drops queued events and listeners; nothing is recorded afterwards. */
  dispose(): void {
    this.disposed = true;
    this.pending.clear();
    this.listeners.clear();
    this.globalListeners.clear();
  }

  private changes(vertexId: string): PendingChanges {
    let c = this.pending.get(vertexId);
    if (!c) {
      c = { move: undefined, children: false, properties: undefined };
      this.pending.set(vertexId, c);
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => {
          if (this.scheduled) this.flush();
        });
      }
    }
    return c;
  }
}
