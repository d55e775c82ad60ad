/**
 * Applies the space editor's edit requests to an AppTree and records how to undo and redo each:
 * the places and properties of the items an edit touches, before and after. Undo and redo write
 * those back as new ops, so they reach every layer and teammate like any other edit — each only
 * where the tree is still as the edit left it, so a teammate's later change is never undone.
 * Typing into one item coalesces into a single undo step while it goes on. Pure (no `vscode`).
 */
import { TreeError, type AppTree, type Placement, type Position } from '../../spaces/appTree';
import { Chat } from '../../spaces/apps/chat';
import { Notes } from '../../spaces/apps/notes';
import { isJsonValue, type JsonValue } from '../../spaces/ops';
import { isChatEdit, isInspectorEdit, isNotesEdit, type Caret, type ChatEdit, type InspectorEdit, type NotesEdit, type SelectionAction } from '../../webview/protocol';
import type { EditorKind } from './treeViews';

/** Typing into the same item within this many ms of the last keystroke is one undo step. */
export const COALESCE_MS = 1500;

interface ItemState {
  /** False: the vertex did not exist (undo of an add deletes it). */
  readonly exists: boolean;
  /** Undefined for the root, which never moves. */
  readonly placement?: Placement;
  readonly props: Record<string, JsonValue | undefined>;
}

type Snapshot = Map<string, ItemState>;

function capture(tree: AppTree, ids: Iterable<string>, keys: readonly string[]): Snapshot {
  const out: Snapshot = new Map();
  for (const id of ids) {
    const exists = tree.tree.getVertex(id) !== undefined;
    const props: Record<string, JsonValue | undefined> = {};
    if (exists) for (const k of keys) props[k] = tree.getProp(id, k);
    out.set(id, { exists, placement: exists && id !== tree.rootId ? tree.placement(id) : undefined, props });
  }
  return out;
}

const isGone = (s: ItemState | undefined) => !s?.exists || s.placement?.parentId === null;

function sameValue(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/** Whether item `id` is where `s` says (gone counts as one place). */
function isAt(tree: AppTree, id: string, s: ItemState | undefined): boolean {
  const now = tree.tree.getVertex(id) && id !== tree.rootId ? tree.placement(id) : undefined;
  if (isGone(s)) return !now || now.parentId === null;
  return now?.parentId === s?.placement?.parentId && now?.order === s?.placement?.order;
}

/**
 * Writes `target` back — but only what is still as the edit left it (`expected`): a property or
 * place a teammate (or another window) changed since is theirs now, and undo or redo leaves it.
 */
function restore(tree: AppTree, target: Snapshot, expected: Snapshot): void {
  // Live items first (their parents may be among them), deletions last.
  const entries = [...target.entries()];
  const live = entries.filter(([, s]) => !isGone(s));
  const gone = entries.filter(([, s]) => isGone(s));
  for (const [id, s] of live) {
    if (!tree.tree.getVertex(id)) continue;
    const was = expected.get(id);
    if (s.placement && isAt(tree, id, was)) tree.place(id, s.placement);
    const props: Record<string, JsonValue | undefined> = {};
    for (const [k, v] of Object.entries(s.props)) if (sameValue(tree.getProp(id, k), was?.props[k])) props[k] = v;
    if (Object.keys(props).length) tree.setProps(id, props);
  }
  for (const [id] of gone) {
    if (tree.tree.getVertex(id) && tree.has(id) && isAt(tree, id, expected.get(id))) tree.place(id, { parentId: null, order: undefined });
  }
}

/** One undoable edit. `after` is refreshed while typing coalesces into it. */
export class EditRecord {
  private after: Snapshot;
  private lastTyped: number;

  constructor(
    readonly label: string,
    private readonly tree: AppTree,
    private readonly before: Snapshot,
    after: Snapshot,
    /** The item being typed into, for coalescing; undefined for other edits. */
    readonly typingId: string | undefined,
    now: number,
  ) {
    this.after = after;
    this.lastTyped = now;
  }

  undo(): void {
    restore(this.tree, this.before, this.after);
  }

  redo(): void {
    restore(this.tree, this.after, this.before);
  }

  /** Folds more typing into this record when it is the same item and soon enough. */
  absorb(typingId: string, after: Snapshot, now: number): boolean {
    if (this.typingId !== typingId || now - this.lastTyped > COALESCE_MS) return false;
    this.after = after;
    this.lastTyped = now;
    return true;
  }
}

export interface EditResult {
  /** A new undo step, or undefined when the edit changed nothing or was folded into `last`. */
  readonly record?: EditRecord;
  /** The item to focus next (the new item after Enter, the one above after Delete, else the one below). */
  readonly focus?: { readonly itemId: string; readonly caret: Caret };
}

const NOTE_KEYS = ['text', 'done'] as const;

const SELECTION_LABELS: Record<SelectionAction, string> = {
  indent: 'Indent Items',
  outdent: 'Outdent Items',
  moveUp: 'Move Items Up',
  moveDown: 'Move Items Down',
  delete: 'Delete Items',
  cut: 'Cut',
  check: 'Check Items',
  uncheck: 'Uncheck Items',
};

function siblingsOf(tree: AppTree, id: string): string[] {
  const parentId = tree.get(id)?.parentId;
  return parentId ? tree.childIds(parentId) : [];
}

/** The item shown above `id` in the outline (previous sibling's last descendant, or the parent). */
function itemAbove(tree: AppTree, id: string): string | undefined {
  const sibs = siblingsOf(tree, id);
  const i = sibs.indexOf(id);
  if (i <= 0) {
    const parentId = tree.get(id)?.parentId;
    return parentId && parentId !== tree.rootId ? parentId : undefined;
  }
  let cur = sibs[i - 1];
  for (let kids = tree.childIds(cur); kids.length; kids = tree.childIds(cur)) cur = kids[kids.length - 1];
  return cur;
}

/** The item shown below the subtree of `id` (its next sibling, else the next one of an ancestor). */
function itemBelow(tree: AppTree, id: string): string | undefined {
  for (let cur: string | undefined = id; cur && cur !== tree.rootId; cur = tree.get(cur)?.parentId) {
    const sibs = siblingsOf(tree, cur);
    const next = sibs[sibs.indexOf(cur) + 1];
    if (next) return next;
  }
  return undefined;
}

/** Whether `id` is somewhere under `ancestor`. */
function isUnder(tree: AppTree, id: string, ancestor: string): boolean {
  for (let p = tree.get(id)?.parentId; p; p = p === tree.rootId ? undefined : tree.get(p)?.parentId) if (p === ancestor) return true;
  return false;
}

function parseJson(json: string): JsonValue {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (e) {
    throw new TreeError(`not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!isJsonValue(v)) throw new TreeError('not a JSON value');
  return v;
}

export class TreeEditor {
  private last: EditRecord | undefined;

  constructor(
    private readonly tree: AppTree,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * An edit made elsewhere than the editor's webview (the Spaces view, a command): `fn` changes
   * the properties `keys` (default: a note's text and done state) or the place of the items `ids`
   * (and pushes the ids of items it makes onto `touched`); the result is one undo step in the
   * same history as the editor's own edits.
   */
  edit(label: string, ids: string[], fn: (touched: string[]) => boolean | void, keys: readonly string[] = NOTE_KEYS): EditRecord | undefined {
    return this.record(label, keys, ids, fn);
  }

  /** Runs `fn` on the items `ids` (ids it makes are added by `fn` via `touched`) and records it. */
  private record(label: string, keys: readonly string[], ids: string[], fn: (touched: string[]) => boolean | void, typingId?: string): EditRecord | undefined {
    const before = capture(this.tree, ids, keys);
    const touched = [...ids];
    if (fn(touched) === false) return undefined;
    for (const id of touched) if (!before.has(id)) before.set(id, { exists: false, props: {} });
    const after = capture(this.tree, touched, keys);
    const now = this.now();
    if (typingId && this.last?.absorb(typingId, after, now)) return undefined;
    const rec = new EditRecord(label, this.tree, before, after, typingId, now);
    this.last = rec;
    return rec;
  }

  notes(edit: NotesEdit): EditResult {
    const notes = new Notes(this.tree);
    const t = this.tree;
    switch (edit.op) {
      case 'add': {
        let newId = '';
        const parentId = edit.parentId ?? (edit.afterId ? t.get(edit.afterId)?.parentId : undefined) ?? t.rootId;
        const record = this.record('Add Item', NOTE_KEYS, [], (touched) => {
          newId = notes.add(edit.text, parentId, edit.afterId);
          touched.push(newId);
        });
        return { record, focus: { itemId: newId, caret: 'start' } };
      }
      case 'split': {
        let newId = '';
        const record = this.record('New Item', NOTE_KEYS, [edit.id], (touched) => {
          // An item with children gets the new item as its first child, like other outliners.
          const kids = t.childIds(edit.id);
          if (t.getProp(edit.id, 'text') !== edit.before) notes.setText(edit.id, edit.before);
          newId = kids.length ? t.addItem(edit.id, { text: edit.after, done: false }, { before: kids[0] }) : notes.add(edit.after, t.get(edit.id)?.parentId, edit.id);
          touched.push(newId);
        });
        return { record, focus: { itemId: newId, caret: 'start' } };
      }
      case 'setText':
        if (t.getProp(edit.id, 'text') === edit.text) return {};
        return { record: this.record('Typing', NOTE_KEYS, [edit.id], () => notes.setText(edit.id, edit.text), edit.id) };
      case 'setDone':
        return { record: this.record(edit.done ? 'Check Item' : 'Uncheck Item', NOTE_KEYS, [edit.id], () => notes.setDone(edit.id, edit.done)) };
      case 'indent':
        return { record: this.record('Indent', NOTE_KEYS, [edit.id], () => notes.indent(edit.id)), focus: { itemId: edit.id, caret: 'end' } };
      case 'outdent':
        return { record: this.record('Outdent', NOTE_KEYS, [edit.id], () => notes.outdent(edit.id)), focus: { itemId: edit.id, caret: 'end' } };
      case 'moveUp':
        return { record: this.record('Move Up', NOTE_KEYS, [edit.id], () => notes.moveUp(edit.id)), focus: { itemId: edit.id, caret: 'end' } };
      case 'moveDown':
        return { record: this.record('Move Down', NOTE_KEYS, [edit.id], () => notes.moveDown(edit.id)), focus: { itemId: edit.id, caret: 'end' } };
      case 'delete': {
        const above = itemAbove(t, edit.id);
        const below = above ? undefined : itemBelow(t, edit.id);
        const record = this.record('Delete Item', NOTE_KEYS, [edit.id], () => notes.delete(edit.id));
        return { record, focus: above ? { itemId: above, caret: 'end' } : below ? { itemId: below, caret: 'start' } : undefined };
      }
      case 'paste':
        return this.paste(edit);
      case 'merge':
        return this.merge(edit);
      case 'selection':
        return this.selection(edit);
      case 'moveTo':
        return this.moveTo(edit);
    }
  }

  /**
   * Lines pasted at the caret of an item: one item per line, nested by `depths`, one undo step
   * (see NotesEdit `paste`). A line at depth 0 goes after the item (first among its children when
   * it has some, like Enter); a deeper one goes last under the nearest line above one level up.
   */
  private paste(edit: Extract<NotesEdit, { op: 'paste' }>): EditResult {
    const t = this.tree;
    const notes = new Notes(t);
    const { lines } = edit;
    if (lines.length === 0) return {};
    let lastId = edit.id;
    const record = this.record('Paste', NOTE_KEYS, [edit.id], (touched) => {
      const last = lines.length - 1;
      notes.setText(edit.id, edit.before + lines[0] + (last === 0 ? edit.after : ''));
      const kids = t.childIds(edit.id);
      const topParent = kids.length ? edit.id : (t.get(edit.id)?.parentId ?? t.rootId);
      // The latest item at each depth, and the latest one added under each parent.
      const atDepth: string[] = [edit.id];
      const lastUnder = new Map<string, string>();
      for (let i = 1; i <= last; i++) {
        const depth = Math.min(edit.depths?.[i] ?? 0, atDepth.length);
        const parentId = depth === 0 ? topParent : atDepth[depth - 1];
        const text = lines[i] + (i === last ? edit.after : '');
        const done = edit.done?.[i] ?? false;
        const prev = lastUnder.get(parentId);
        let position: Position | undefined;
        if (prev) position = { after: prev };
        else if (parentId === topParent && !kids.length) position = { after: edit.id };
        else if (parentId === edit.id && kids.length) position = { before: kids[0] };
        lastId = t.addItem(parentId, { text, done }, position);
        lastUnder.set(parentId, lastId);
        atDepth.length = depth;
        atDepth.push(lastId);
        touched.push(lastId);
      }
    });
    return { record, focus: { itemId: lastId, caret: (lines.length === 1 ? edit.before.length : 0) + lines[lines.length - 1].length } };
  }

  /** Backspace at the start of `id`: see NotesEdit `merge`. */
  private merge(edit: Extract<NotesEdit, { op: 'merge' }>): EditResult {
    const t = this.tree;
    const { id, intoId } = edit;
    if (!t.has(id) || !t.has(intoId) || id === t.rootId || intoId === t.rootId) throw new TreeError('no such item to merge');
    if (isUnder(t, intoId, id)) throw new TreeError('cannot merge an item into its own sub-item');
    const intoText = String(t.getProp(intoId, 'text') ?? '');
    const kids = t.childIds(id);
    const record = this.record('Merge Items', NOTE_KEYS, [id, intoId, ...kids], () => {
      t.setProps(intoId, { text: intoText + String(t.getProp(id, 'text') ?? '') });
      // Into its parent, the children take its place; into another item they follow its children.
      let after: string | undefined = t.get(id)?.parentId === intoId ? id : t.childIds(intoId).at(-1);
      for (const k of kids) {
        t.move(k, intoId, after ? { after } : undefined);
        after = k;
      }
      t.delete(id);
    });
    return { record, focus: { itemId: intoId, caret: intoText.length } };
  }

  /** The ids without those under another one of them, in the order given. */
  private roots(ids: readonly string[]): string[] {
    const set = new Set(ids);
    const out: string[] = [];
    const seen = new Set<string>();
    for (const id of ids) {
      if (seen.has(id) || !this.tree.has(id) || id === this.tree.rootId) continue;
      seen.add(id);
      let covered = false;
      for (let p = this.tree.get(id)?.parentId; p && p !== this.tree.rootId; p = this.tree.get(p)?.parentId) {
        if (set.has(p)) {
          covered = true;
          break;
        }
      }
      if (!covered) out.push(id);
    }
    return out;
  }

  /** An action on selected items (see NotesEdit `selection`). */
  private selection(edit: Extract<NotesEdit, { op: 'selection' }>): EditResult {
    const t = this.tree;
    const notes = new Notes(t);
    const roots = this.roots(edit.ids);
    if (!roots.length) return {};
    const label = SELECTION_LABELS[edit.action];
    if (edit.action === 'check' || edit.action === 'uncheck') {
      const all = edit.ids.filter((id) => t.has(id) && id !== t.rootId);
      const done = edit.action === 'check';
      return { record: this.record(label, NOTE_KEYS, all, () => all.forEach((id) => notes.setDone(id, done))) };
    }
    if (edit.action === 'delete' || edit.action === 'cut') {
      const above = itemAbove(t, roots[0]);
      // Roots come in display order: the item below the last one's subtree is not being deleted.
      const below = above ? undefined : itemBelow(t, roots[roots.length - 1]);
      const record = this.record(label, NOTE_KEYS, roots, () => roots.forEach((id) => notes.delete(id)));
      const focus = above ? { itemId: above, caret: 'end' as const } : below ? { itemId: below, caret: 'start' as const } : undefined;
      return { record, focus };
    }
    // Moves go item by item, from the end they move towards, so the block keeps its order; when
    // the first one cannot move, none does (the block would change its shape).
    const forwards = edit.action === 'indent' || edit.action === 'moveUp';
    const list = forwards ? roots : [...roots].reverse();
    const step = (id: string): boolean => (edit.action === 'indent' ? notes.indent(id) : edit.action === 'outdent' ? notes.outdent(id) : edit.action === 'moveUp' ? notes.moveUp(id) : notes.moveDown(id));
    const record = this.record(label, NOTE_KEYS, roots, () => {
      if (edit.action !== 'outdent' && !step(list[0])) return false;
      let moved = edit.action !== 'outdent';
      for (const id of edit.action === 'outdent' ? list : list.slice(1)) moved = step(id) || moved;
      return moved;
    });
    return { record, focus: { itemId: roots[0], caret: 'end' } };
  }

  /** Drag and drop (see NotesEdit `moveTo`). */
  private moveTo(edit: Extract<NotesEdit, { op: 'moveTo' }>): EditResult {
    const t = this.tree;
    const roots = this.roots(edit.ids);
    if (!roots.length) return {};
    if (!t.has(edit.parentId)) throw new TreeError(`no item ${edit.parentId}`);
    for (const id of roots) if (id === edit.parentId || isUnder(t, edit.parentId, id)) throw new TreeError('cannot move items into themselves');
    // The anchor is the nearest sibling at or before `afterId` that is not itself moving.
    const moving = new Set(roots);
    const sibs = t.childIds(edit.parentId);
    let anchor: string | undefined;
    if (edit.afterId !== undefined) {
      const at = sibs.indexOf(edit.afterId);
      if (at < 0) throw new TreeError(`${edit.afterId} is not under ${edit.parentId}`);
      for (let i = at; i >= 0 && anchor === undefined; i--) if (!moving.has(sibs[i])) anchor = sibs[i];
    }
    const first = sibs.find((s) => !moving.has(s));
    const record = this.record('Move Items', NOTE_KEYS, roots, () => {
      let after = anchor;
      for (const id of roots) {
        t.move(id, edit.parentId, after ? { after } : first ? { before: first } : undefined);
        after = id;
      }
    });
    return { record, focus: { itemId: roots[0], caret: 'end' } };
  }

  chat(edit: ChatEdit, author: string): EditResult {
    const chat = new Chat(this.tree);
    const keys = ['text', 'author', 'time'];
    if (edit.op === 'post') {
      if (!edit.text.trim()) throw new TreeError('a message needs some text');
      return { record: this.record('Send Message', keys, [], (touched) => void touched.push(chat.post(author, edit.text))) };
    }
    if (!this.tree.has(edit.id) || edit.id === this.tree.rootId) throw new TreeError(`no message ${edit.id}`);
    // Only one's own messages: the author is the one this window posts as.
    if (chat.message(edit.id).author !== author) throw new TreeError('only your own messages can be edited or deleted');
    if (edit.op === 'deleteMessage') return { record: this.record('Delete Message', keys, [edit.id], () => chat.delete(edit.id)) };
    if (!edit.text.trim()) throw new TreeError('a message needs some text');
    if (chat.message(edit.id).text === edit.text) return {};
    return { record: this.record('Edit Message', keys, [edit.id], () => chat.edit(edit.id, edit.text)) };
  }

  inspector(edit: InspectorEdit): EditResult {
    const t = this.tree;
    switch (edit.op) {
      case 'setProp': {
        const value = parseJson(edit.json);
        return { record: this.record('Set Property', [edit.key], [edit.id], () => t.setProps(edit.id, { [edit.key]: value })) };
      }
      case 'deleteProp':
        return { record: this.record('Delete Property', [edit.key], [edit.id], () => t.setProps(edit.id, { [edit.key]: undefined })) };
      case 'addChild': {
        let id = '';
        const record = this.record('Add Vertex', [], [], (touched) => void touched.push((id = t.addItem(edit.parentId, {}))));
        return { record, focus: { itemId: id, caret: 'start' } };
      }
      case 'deleteVertex':
        return { record: this.record('Delete Vertex', [], [edit.id], () => t.delete(edit.id)) };
    }
  }
}

/** Routes an edit request to the editor of the tree's kind; refuses edits of another kind. */
export function applyEdit(editor: TreeEditor, kind: EditorKind, e: NotesEdit | ChatEdit | InspectorEdit, author: string): EditResult {
  if (kind === 'notes' && isNotesEdit(e)) return editor.notes(e);
  if (kind === 'chat' && isChatEdit(e)) return editor.chat(e, author);
  if (kind === 'inspector' && isInspectorEdit(e)) return editor.inspector(e);
  throw new TreeError(`edit ${e.op} does not apply to a ${kind} tree`);
}
