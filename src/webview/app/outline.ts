/**
 * The notes outline editor. It keeps a copy of the tree (items + ordered child lists) that
 * patches update, and reconciles the DOM row by row, so a teammate's edit never rebuilds the
 * rows: the caret, selection and scroll position stay where they are.
 *
 * Keys in an item: Enter splits it (new item below), Tab / Shift+Tab indent / outdent,
 * Alt+Up / Alt+Down move it, Up / Down go to the item above / below, Ctrl+Enter checks it,
 * Backspace or Delete in an empty item (or Ctrl+Shift+K) deletes it (the host asks first when it
 * has sub-items). Escape, then Tab / Shift+Tab, leaves the outline: it is one stop in the Tab
 * order (the item last focused), so the tab strip and "+ Add item" are reachable by keyboard.
 * Undo / Redo are VS Code's. Lines pasted become items (one undo step).
 *
 * The focus survives re-rendering: a row moved by a patch (an undo of a move, a teammate's edit)
 * gets its focus and caret back, and when the focused row goes away the row above takes it.
 */
import type { Caret, NoteRow, TreePatch, TreeView } from '../protocol';
import { caretOffset, el, setCaret, setTextKeepingCaret } from './dom';
import { record, type Host } from './host';

type NotesView = Extract<TreeView, { kind: 'notes' }>;
/** Rows in the first frame of a large outline (more than a screenful), then rows per chunk. */
const FIRST_ROWS = 150;
const CHUNK_ROWS = 1500;
type NotesPatch = Extract<TreePatch, { kind: 'notes' }>;

interface Row {
  readonly row: HTMLElement;
  readonly check: HTMLInputElement;
  readonly text: HTMLElement;
}

export class Outline {
  private readonly items = new Map<string, { parentId: string; text: string; done: boolean }>();
  private readonly children = new Map<string, string[]>();
  private readonly rows = new Map<string, Row>();
  private readonly list: HTMLElement;
  private readonly empty: HTMLElement;
  readonly root: HTMLElement;
  private readonly rootId: string;
  /** "+ Add item": the next Tab stop after the outline. */
  private readonly addButton: HTMLButtonElement;

  constructor(
    private readonly host: Host,
    private readonly treeId: string,
    view: NotesView,
  ) {
    this.rootId = view.rootId;
    for (const r of view.items) this.setItem(r);
    for (const [p, ids] of Object.entries(view.children)) this.children.set(p, ids);
    this.list = el('div', { class: 'outline', role: 'tree', 'aria-label': 'Notes', 'aria-multiselectable': 'false' });
    const add = el('button', { class: 'add-item', type: 'button', title: 'Add an item at the end' }, '+ Add item');
    this.addButton = add;
    add.addEventListener('click', () => this.host.edit(this.treeId, { op: 'add', parentId: this.rootId, text: '' }));
    this.empty = el('p', { class: 'muted empty-hint' }, 'No items yet. Add one, then type; Enter adds the next, Tab indents.');
    this.root = el(
      'div',
      { class: 'outline-editor' },
      this.list,
      this.empty,
      el('div', { class: 'outline-actions' }, add),
      el('p', { class: 'muted key-help' }, 'Enter new item · Tab / Shift+Tab indent · Alt+↑/↓ move · Ctrl+Enter check · Backspace on empty item delete · Ctrl+Z undo · Esc then Tab leave the outline'),
    );
    this.list.addEventListener('keydown', (e) => this.onKey(e));
    this.list.addEventListener('input', (e) => this.onInput(e));
    this.list.addEventListener('change', (e) => this.onCheck(e));
    this.list.addEventListener('paste', (e) => this.onPaste(e));
    this.list.addEventListener('focusin', (e) => {
      const hit = this.rowOf(e);
      if (hit && e.target === hit.r.text) this.setCurrent(hit.id);
    });
    this.renderProgressively();
  }

  /** Rows rendered so far while a large outline is first shown; undefined once all are. */
  private limit: number | undefined;

  /**
   * A large outline is rendered a screenful first, then in chunks between frames, so it shows
   * at once and typing is never blocked for long. A patch meanwhile just takes the new data.
   */
  private renderProgressively(): void {
    this.limit = FIRST_ROWS;
    this.render();
    const more = () => {
      if (this.limit === undefined) return;
      this.limit += CHUNK_ROWS;
      if (this.limit >= this.items.size) this.limit = undefined;
      this.render();
      if (this.limit !== undefined) setTimeout(more, 0);
    };
    if (this.limit < this.items.size) requestAnimationFrame(() => setTimeout(more, 0));
    else this.limit = undefined;
  }


  /** Number of live items (for the first-paint figure). */
  get size(): number {
    return this.items.size;
  }

  private setItem(r: NoteRow): void {
    if (r.parentId === null) {
      this.items.delete(r.id);
      return;
    }
    const cur = this.items.get(r.id);
    // While our own typing is on its way, the DOM (and this copy) is newer than the patch's text.
    const text = cur && this.host.typingAhead(r.id) ? cur.text : r.text;
    this.items.set(r.id, { parentId: r.parentId, text, done: r.done });
  }

  applyPatch(p: NotesPatch): void {
    for (const r of p.items) this.setItem(r);
    for (const [parent, ids] of Object.entries(p.children)) this.children.set(parent, ids);
    this.render();
  }

  /** Items in display order with their depth; a child list entry whose item moved away is skipped. */
  private order(): { id: string; depth: number }[] {
    const out: { id: string; depth: number }[] = [];
    const stack: { id: string; depth: number }[] = [];
    const push = (parent: string, depth: number) => {
      const ids = this.children.get(parent) ?? [];
      for (let i = ids.length - 1; i >= 0; i--) {
        if (this.items.get(ids[i])?.parentId === parent) stack.push({ id: ids[i], depth });
      }
    };
    push(this.rootId, 0);
    const seen = new Set<string>();
    while (stack.length) {
      const n = stack.pop() as { id: string; depth: number };
      if (seen.has(n.id)) continue;
      seen.add(n.id);
      out.push(n);
      push(n.id, n.depth + 1);
    }
    return out;
  }

  /** The item that is the outline's one stop in the Tab order (roving tabindex). */
  private current: string | undefined;
  /** Escape was the last key: the next Tab / Shift+Tab moves the focus out instead of indenting. */
  private leaving = false;

  private setCurrent(id: string | undefined): void {
    if (id === this.current) return;
    const old = this.current ? this.rows.get(this.current) : undefined;
    if (old) old.text.tabIndex = -1;
    this.current = id;
    const r = id ? this.rows.get(id) : undefined;
    if (r) r.text.tabIndex = 0;
  }

  private makeRow(id: string): Row {
    const check = el('input', { type: 'checkbox', class: 'check', 'aria-label': 'Done', tabindex: -1 });
    const text = el('div', { class: 'text', contenteditable: 'plaintext-only', spellcheck: 'true', role: 'textbox', 'aria-multiline': 'false', tabindex: -1 });
    // data-vscode-context: what VS Code hands the row's context menu commands (Show History).
    const row = el('div', { class: 'row', role: 'treeitem', 'data-id': id, 'data-vscode-context': JSON.stringify({ treeId: this.treeId, itemId: id }) }, check, text);
    return { row, check, text };
  }

  private render(): void {
    const all = this.order();
    const order = this.limit === undefined ? all : all.slice(0, this.limit);
    const visible = new Set<string>();
    // Moving or removing the focused row drops the focus: noted here, given back below.
    const focused = this.focusedRow();
    const above = focused?.r.row.previousElementSibling?.getAttribute('data-id') ?? undefined;
    const caret = focused ? caretOffset(focused.r.text) : undefined;
    let prev: Element | null = null;
    for (const { id, depth } of order) {
      visible.add(id);
      const item = this.items.get(id);
      if (!item) continue;
      let r = this.rows.get(id);
      if (!r) {
        r = this.makeRow(id);
        this.rows.set(id, r);
      }
      r.row.style.setProperty('--depth', String(depth));
      r.row.setAttribute('aria-level', String(depth + 1));
      r.row.classList.toggle('done', item.done);
      if (r.check.checked !== item.done) r.check.checked = item.done;
      setTextKeepingCaret(r.text, item.text);
      const expected: Element | null = prev ? prev.nextElementSibling : this.list.firstElementChild;
      if (expected !== r.row) this.list.insertBefore(r.row, expected);
      prev = r.row;
    }
    for (const [id, r] of this.rows) {
      if (!visible.has(id)) {
        r.row.remove();
        this.rows.delete(id);
      }
    }
    this.empty.hidden = all.length > 0;
    if (this.current && !this.rows.has(this.current)) this.current = undefined;
    if (!this.current && order.length) this.setCurrent(order[0].id);
    if (focused && document.activeElement !== focused.r.text) {
      const kept = this.rows.get(focused.id);
      if (kept) {
        kept.text.focus();
        setCaret(kept.text, caret ?? (kept.text.textContent ?? '').length);
      } else {
        // The focused item went away (deleted, an add undone): the row above it takes the focus.
        const next = above && this.rows.has(above) ? above : (this.list.firstElementChild?.getAttribute('data-id') ?? undefined);
        if (next) this.focusItem(next, 'end');
      }
    }
  }

  private focusedRow(): { id: string; r: Row } | undefined {
    const a = document.activeElement;
    if (!(a instanceof HTMLElement) || !this.list.contains(a)) return undefined;
    const id = a.closest('.row')?.getAttribute('data-id');
    const r = id ? this.rows.get(id) : undefined;
    return id && r && r.text === a ? { id, r } : undefined;
  }

  focusItem(id: string, caret: Caret = 'end'): void {
    const r = this.rows.get(id);
    if (!r) return;
    this.setCurrent(id);
    r.text.focus();
    setCaret(r.text, caret === 'start' ? 0 : caret === 'end' ? (r.text.textContent ?? '').length : caret);
    r.row.scrollIntoView({ block: 'nearest' });
  }

  private rowOf(e: Event): { id: string; r: Row } | undefined {
    const row = (e.target as HTMLElement | null)?.closest('.row');
    const id = row?.getAttribute('data-id');
    const r = id ? this.rows.get(id) : undefined;
    return id && r ? { id, r } : undefined;
  }

  private keyAt: number | undefined;

  private onInput(e: Event): void {
    const hit = this.rowOf(e);
    if (!hit || e.target !== hit.r.text) return;
    const keyAt = this.keyAt;
    this.keyAt = undefined;
    if (keyAt !== undefined) requestAnimationFrame(() => record(this.host.typing.keyToFrame, performance.now() - keyAt));
    const text = (hit.r.text.textContent ?? '').replace(/\n/g, ' ');
    const item = this.items.get(hit.id);
    if (item) item.text = text;
    this.host.edit(this.treeId, { op: 'setText', id: hit.id, text });
  }

  private onCheck(e: Event): void {
    const hit = this.rowOf(e);
    if (!hit || e.target !== hit.r.check) return;
    this.host.edit(this.treeId, { op: 'setDone', id: hit.id, done: hit.r.check.checked });
  }

  private onPaste(e: ClipboardEvent): void {
    const hit = this.rowOf(e);
    if (!hit) return;
    e.preventDefault();
    // One item per line; blank lines (and the line break a copy often ends with) make none.
    const lines = (e.clipboardData?.getData('text/plain') ?? '').split(/\r\n|\r|\n/).filter((l) => l.trim() !== '');
    if (lines.length <= 1) {
      document.execCommand('insertText', false, lines[0] ?? '');
      return;
    }
    const text = hit.r.text.textContent ?? '';
    const { start, end } = selectionIn(hit.r.text) ?? { start: text.length, end: text.length };
    this.host.edit(this.treeId, { op: 'paste', id: hit.id, before: text.slice(0, start), lines, after: text.slice(end) });
  }

  private neighbour(id: string, step: 1 | -1): string | undefined {
    const rows = [...this.list.children];
    const i = rows.findIndex((r) => r.getAttribute('data-id') === id);
    return rows[i + step]?.getAttribute('data-id') ?? undefined;
  }

  private onKey(e: KeyboardEvent): void {
    const hit = this.rowOf(e);
    // Keys that finish an IME composition belong to the composition.
    if (!hit || e.target !== hit.r.text || e.isComposing) return;
    if (e.key.length === 1) this.keyAt = performance.now();
    // A modifier pressed on its own (the Shift of Shift+Tab) keeps the state.
    if (MODIFIER_KEYS.has(e.key)) return;
    const leaving = this.leaving;
    this.leaving = e.key === 'Escape';
    // Escape then Tab / Shift+Tab: the focus leaves the outline, to what follows or precedes it.
    if (leaving && e.key === 'Tab') {
      const to = e.shiftKey ? tabStopBefore(this.list) : this.addButton;
      if (to) {
        e.preventDefault();
        to.focus();
      }
      return;
    }
    const { id, r } = hit;
    const text = r.text.textContent ?? '';
    const send = (edit: Parameters<Host['edit']>[1]) => {
      e.preventDefault();
      this.host.edit(this.treeId, edit);
    };
    const ctrl = e.ctrlKey || e.metaKey;
    if (e.key === 'Enter' && ctrl) {
      send({ op: 'setDone', id, done: !r.check.checked });
    } else if (e.key === 'Enter' && !e.shiftKey && !e.altKey) {
      const at = caretOffset(r.text) ?? text.length;
      send({ op: 'split', id, before: text.slice(0, at), after: text.slice(at) });
    } else if (e.key === 'Tab') {
      send({ op: e.shiftKey ? 'outdent' : 'indent', id });
    } else if (e.altKey && (e.key === 'ArrowUp' || e.key === 'ArrowDown')) {
      send({ op: e.key === 'ArrowUp' ? 'moveUp' : 'moveDown', id });
    } else if (!e.altKey && !ctrl && !e.shiftKey && (e.key === 'ArrowUp' || e.key === 'ArrowDown')) {
      const next = this.neighbour(id, e.key === 'ArrowUp' ? -1 : 1);
      if (next) {
        e.preventDefault();
        this.focusItem(next, 'end');
      }
    } else if ((e.key === 'Backspace' || e.key === 'Delete') && text === '' && !ctrl) {
      send({ op: 'delete', id });
    } else if (ctrl && e.shiftKey && e.key.toLowerCase() === 'k') {
      send({ op: 'delete', id });
    }
  }
}

const MODIFIER_KEYS: ReadonlySet<string> = new Set(['Shift', 'Control', 'Alt', 'Meta', 'AltGraph', 'CapsLock']);

const TABBABLE = 'button, input, textarea, select, a[href], [tabindex], [contenteditable]';

/** The last element before `e` in the Tab order of the page (outside `e`). */
function tabStopBefore(e: HTMLElement): HTMLElement | undefined {
  let found: HTMLElement | undefined;
  for (const c of document.querySelectorAll<HTMLElement>(TABBABLE)) {
    if (e.contains(c) || !(e.compareDocumentPosition(c) & Node.DOCUMENT_POSITION_PRECEDING)) continue;
    if (c.tabIndex < 0 || (c as HTMLButtonElement).disabled || c.hidden) continue;
    found = c;
  }
  return found;
}

/** The selection in `e` as text offsets (undefined when it is elsewhere). */
function selectionIn(e: HTMLElement): { start: number; end: number } | undefined {
  const sel = window.getSelection();
  if (!sel || sel.rangeCount === 0 || !e.contains(sel.anchorNode)) return undefined;
  const r = sel.getRangeAt(0);
  const at = (node: Node, offset: number) => {
    const pre = document.createRange();
    pre.selectNodeContents(e);
    pre.setEnd(node, offset);
    return pre.toString().length;
  };
  return { start: at(r.startContainer, r.startOffset), end: at(r.endContainer, r.endOffset) };
}
