/**
 * The notes outline editor. It keeps a copy of the tree (items + ordered child lists) that
 * patches update, and reconciles the DOM row by row, so a teammate's edit never rebuilds the
 * rows: the caret, selection and scroll position stay where they are.
 *
 * Keys in an item (docs/editor.md has the full list):
 * - Enter splits it (new item below); Enter in an empty sub-item outdents it instead.
 * - Tab / Shift+Tab indent / outdent, Alt+Up / Alt+Down move (across parents at the ends).
 * - Up / Down go to the item above / below; Shift+Up / Shift+Down (or Shift+click) select items,
 *   and then Tab, Shift+Tab, Alt+Up/Down, Ctrl+Enter, Delete and copy / cut act on all of them.
 * - Ctrl+Enter checks; Backspace at the start joins the item to the one above; Backspace or Delete
 *   in an empty item (or Ctrl+Shift+K) deletes it (the host asks first when it has sub-items).
 * - Ctrl+. folds / unfolds, Ctrl+Up folds, Ctrl+Down unfolds; Alt+Right zooms into the item,
 *   Alt+Left zooms out (the breadcrumb above goes back out too); the bullet is a drag handle.
 * - Escape, then Tab / Shift+Tab, leaves the outline: it is one stop in the Tab order (the item
 *   last focused), so the filter box, the tab strip and "+ Add item" are reachable by keyboard.
 * Undo / Redo are VS Code's. Copy gives the items (with their sub-items) as a Markdown list;
 * a pasted Markdown or indented list becomes a subtree (one undo step).
 *
 * Folds and the zoom are kept per editor (the webview's state). The filter shows the items whose
 * text holds it and their ancestors, the matches highlighted without touching the text's DOM.
 * The focus survives re-rendering: a row moved by a patch (an undo of a move, a teammate's edit)
 * gets its focus and caret back, and when the focused row goes away the row above takes it.
 */
import { isNested, outlineToMarkdown, parseOutline, subtreeLines, type OutlineLimits } from '../../spaces/apps/notesMarkdown';
import { EDITOR_LIMITS, type Caret, type NoteRow, type SelectionAction, type TreePatch, type TreeView } from '../protocol';
import { caretOffset, el, setCaret, setTextKeepingCaret } from './dom';
import { record, type Edit, type Host } from './host';

type NotesView = Extract<TreeView, { kind: 'notes' }>;
/** Rows in the first frame of a large outline (more than a screenful), then rows per chunk. */
const FIRST_ROWS = 150;
const CHUNK_ROWS = 1500;
type NotesPatch = Extract<TreePatch, { kind: 'notes' }>;

/** What a paste may hold (the host checks the same bounds again). */
const PASTE_LIMITS: OutlineLimits = { chars: EDITOR_LIMITS.pasteChars, lines: EDITOR_LIMITS.pasteLines, lineChars: EDITOR_LIMITS.text, depth: EDITOR_LIMITS.pasteDepth };
/** The drag data type of items dragged inside the outline. */
const DRAG_TYPE = 'application/x-spaces-notes';
/** Where a drop lands on a row: the upper or lower part of it, else into it. */
const DROP_EDGE = 0.3;
/** The name of the filter matches' highlight (CSS Custom Highlight API; see editor.css). */
const MATCH_HIGHLIGHT = 'spaces-match';

interface Row {
  /** What the row shows of its place and folding, as last written (-1 / '' before the first render). */
  depth: number;
  state: '' | 'leaf' | 'open' | 'folded';
  readonly row: HTMLElement;
  readonly fold: HTMLButtonElement;
  readonly bullet: HTMLElement;
  readonly check: HTMLInputElement;
  readonly text: HTMLElement;
}

type Drop = { readonly rowId: string | undefined; readonly where: 'before' | 'after' | 'inside' };

export class Outline {
  private readonly items = new Map<string, { parentId: string; text: string; done: boolean }>();
  private readonly children = new Map<string, string[]>();
  private readonly rows = new Map<string, Row>();
  private readonly list: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly crumbs: HTMLElement;
  private readonly filterBox: HTMLInputElement;
  private readonly matchCount: HTMLElement;
  readonly root: HTMLElement;
  private readonly rootId: string;
  /** "+ Add item": the next Tab stop after the outline. */
  private readonly addButton: HTMLButtonElement;
  /** Folded items (their children hidden). */
  private readonly folded = new Set<string>();
  /** The item zoomed into (its children are the outline's top level); undefined: the whole tree. */
  private zoomId: string | undefined;
  /** The filter, lower case ('' = none). */
  private filter = '';
  /** The selection: the rows shown from `anchor` to `focus` (none while they are the same). */
  private anchor: string | undefined;
  private selFocus: string | undefined;
  /** The rows shown, in order (the last render's). */
  private shown: string[] = [];
  private dragging: string[] | undefined;
  private dropAt: { row: HTMLElement; cls: string } | undefined;

  constructor(
    private readonly host: Host,
    private readonly treeId: string,
    view: NotesView,
    private readonly treeName: string,
    /** Tells the user something (the status line). */
    private readonly say: (text: string, isError?: boolean) => void,
  ) {
    this.rootId = view.rootId;
    for (const r of view.items) this.setItem(r);
    for (const [p, ids] of Object.entries(view.children)) this.children.set(p, ids);
    this.restoreViewState();
    this.list = el('div', { class: 'outline', role: 'tree', 'aria-label': 'Notes', 'aria-multiselectable': 'true' });
    const add = el('button', { class: 'add-item', type: 'button', title: 'Add an item at the end' }, '+ Add item');
    this.addButton = add;
    add.addEventListener('click', () => this.host.edit(this.treeId, { op: 'add', parentId: this.zoomId ?? this.rootId, text: '' }));
    this.empty = el('p', { class: 'muted empty-hint' }, 'No items yet. Add one, then type; Enter adds the next, Tab indents.');
    this.crumbs = el('nav', { class: 'breadcrumb', 'aria-label': 'Zoomed into' });
    this.filterBox = el('input', { type: 'search', class: 'filter', placeholder: 'Filter items', 'aria-label': 'Filter items', spellcheck: 'false' });
    this.matchCount = el('span', { class: 'muted match-count', role: 'status', 'aria-live': 'polite' });
    this.filterBox.addEventListener('input', () => this.setFilter(this.filterBox.value));
    this.filterBox.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.filterBox.value) {
        e.preventDefault();
        this.filterBox.value = '';
        this.setFilter('');
      } else if (e.key === 'Enter' || e.key === 'ArrowDown') {
        e.preventDefault();
        if (this.shown[0]) this.focusItem(this.shown[0], 'end');
      }
    });
    this.root = el(
      'div',
      { class: 'outline-editor' },
      el('div', { class: 'outline-tools' }, this.crumbs, this.filterBox, this.matchCount),
      this.list,
      this.empty,
      el('div', { class: 'outline-actions' }, add),
      el(
        'p',
        { class: 'muted key-help' },
        'Enter new item · Tab / Shift+Tab indent · Alt+↑/↓ move · Shift+↑/↓ select · Ctrl+Enter check · Ctrl+. fold · Alt+→ / Alt+← zoom in / out · Backspace at the start joins the item above · Ctrl+Z undo · Esc then Tab leave the outline',
      ),
    );
    this.list.addEventListener('keydown', (e) => this.onKey(e));
    // Alt+Left zooms out from anywhere in the editor (a zoomed item may have no rows to type in).
    this.root.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowLeft' || !e.altKey || e.ctrlKey || e.metaKey || e.shiftKey || e.isComposing || !this.zoomId) return;
      e.preventDefault();
      const p = this.items.get(this.zoomId)?.parentId;
      this.zoomTo(p && p !== this.rootId ? p : undefined, this.zoomId);
    });
    this.list.addEventListener('input', (e) => this.onInput(e));
    this.list.addEventListener('change', (e) => this.onCheck(e));
    this.list.addEventListener('paste', (e) => this.onPaste(e));
    this.list.addEventListener('copy', (e) => this.onCopy(e, false));
    this.list.addEventListener('cut', (e) => this.onCopy(e, true));
    this.list.addEventListener('mousedown', (e) => this.onMouseDown(e));
    this.list.addEventListener('click', (e) => this.onClick(e));
    this.list.addEventListener('dragstart', (e) => this.onDragStart(e));
    this.list.addEventListener('dragover', (e) => this.onDragOver(e));
    this.list.addEventListener('dragleave', () => this.showDrop(undefined));
    this.list.addEventListener('drop', (e) => this.onDrop(e));
    this.list.addEventListener('dragend', () => this.endDrag());
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
    if (this.zoomId && !this.items.has(this.zoomId)) this.zoomTo(undefined);
    else this.render();
  }

  // ---- view state: folds, zoom, filter ----------------------------------------------------------

  private restoreViewState(): void {
    const folds = this.host.state[`fold:${this.treeId}`];
    if (Array.isArray(folds)) for (const f of folds) if (typeof f === 'string' && this.items.has(f)) this.folded.add(f);
    const zoom = this.host.state[`zoom:${this.treeId}`];
    if (typeof zoom === 'string' && this.items.has(zoom)) this.zoomId = zoom;
  }

  private saveViewState(): void {
    this.host.saveState({ [`fold:${this.treeId}`]: [...this.folded].filter((f) => this.items.has(f)), [`zoom:${this.treeId}`]: this.zoomId ?? null });
  }

  /** The live children of `id` in order (a child list entry whose item moved away is skipped). */
  private kids(id: string): string[] {
    return (this.children.get(id) ?? []).filter((c) => this.items.get(c)?.parentId === id);
  }

  private hasKids(id: string): boolean {
    return (this.children.get(id) ?? []).some((c) => this.items.get(c)?.parentId === id);
  }

  /** Folds (true), unfolds (false) or toggles (undefined) item `id`; false when it has no children. */
  setFolded(id: string, fold?: boolean): boolean {
    if (!this.hasKids(id)) return false;
    const now = fold ?? !this.folded.has(id);
    if (now === this.folded.has(id)) return true;
    if (now) this.folded.add(id);
    else this.folded.delete(id);
    this.saveViewState();
    this.render();
    return true;
  }

  /** Shows only the subtree of `id` (undefined: the whole tree) and puts the caret in it. */
  zoomTo(id: string | undefined, focus?: string): void {
    this.zoomId = id && this.items.has(id) ? id : undefined;
    this.clearSelection();
    this.saveViewState();
    this.render();
    const to = focus && this.rows.has(focus) ? focus : this.shown[0];
    if (to) this.focusItem(to, 'end');
    else this.addButton.focus();
  }

  private setFilter(text: string): void {
    this.filter = text.trim().toLowerCase();
    this.clearSelection();
    this.render();
  }

  /** Makes item `id` shown: unfolds its ancestors, zooms out or clears the filter where they hide it. */
  private reveal(id: string): void {
    if (!this.items.has(id)) return;
    let inZoom = this.zoomId === undefined;
    let changed = false;
    for (let p = this.items.get(id)?.parentId; p && p !== this.rootId; p = this.items.get(p)?.parentId) {
      if (p === this.zoomId) inZoom = true;
      if (this.folded.delete(p)) changed = true;
    }
    if (!inZoom || id === this.zoomId) {
      this.zoomId = undefined;
      changed = true;
    }
    if (this.filter && !this.shown.includes(id)) {
      this.filter = '';
      this.filterBox.value = '';
    }
    if (changed) this.saveViewState();
    this.render();
  }

  /** Items in display order with their depth, under the zoom, without folded or filtered-out ones. */
  private order(): { id: string; depth: number }[] {
    const start = this.zoomId ?? this.rootId;
    const keep = this.filter ? this.filterMatches(start) : undefined;
    const out: { id: string; depth: number }[] = [];
    const stack: { id: string; depth: number }[] = [];
    const push = (parent: string, depth: number) => {
      const ids = this.children.get(parent) ?? [];
      for (let i = ids.length - 1; i >= 0; i--) {
        if (this.items.get(ids[i])?.parentId === parent && (!keep || keep.has(ids[i]))) stack.push({ id: ids[i], depth });
      }
    };
    push(start, 0);
    const seen = new Set<string>();
    while (stack.length) {
      const n = stack.pop() as { id: string; depth: number };
      if (seen.has(n.id)) continue;
      seen.add(n.id);
      out.push(n);
      // A filter shows its matches inside folded items too.
      if (keep || !this.folded.has(n.id)) push(n.id, n.depth + 1);
    }
    return out;
  }

  /** Matches of the filter under `start` with their ancestors (up to `start`). */
  private filterMatches(start: string): Set<string> {
    const keep = new Set<string>();
    for (const [id, it] of this.items) {
      if (!it.text.toLowerCase().includes(this.filter)) continue;
      const path: string[] = [];
      let under = start === this.rootId;
      for (let cur: string | undefined = id; cur && cur !== this.rootId; cur = this.items.get(cur)?.parentId) {
        if (cur === start) {
          under = true;
          break;
        }
        if (keep.has(cur)) {
          under = true;
          break;
        }
        path.push(cur);
      }
      if (under) for (const p of path) keep.add(p);
    }
    return keep;
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
    const fold = el('button', { type: 'button', class: 'fold', tabindex: -1 });
    const bullet = el('span', { class: 'bullet', draggable: 'true', title: 'Drag to move · click to zoom in', 'aria-hidden': 'true' });
    const check = el('input', { type: 'checkbox', class: 'check', 'aria-label': 'Done', tabindex: -1 });
    const text = el('div', { class: 'text', contenteditable: 'plaintext-only', spellcheck: 'true', role: 'textbox', 'aria-multiline': 'false', tabindex: -1 });
    // data-vscode-context: what VS Code hands the row's context menu commands (Show History).
    const row = el('div', { class: 'row', role: 'treeitem', 'data-id': id, 'aria-selected': 'false', 'data-vscode-context': JSON.stringify({ treeId: this.treeId, itemId: id }) }, fold, bullet, check, text);
    return { depth: -1, state: '', row, fold, bullet, check, text };
  }

  private render(): void {
    // Live ranges of the old highlight would be updated on every DOM change below: dropped first.
    if (typeof CSS !== 'undefined') CSS.highlights?.delete(MATCH_HIGHLIGHT);
    const all = this.order();
    const order = this.limit === undefined ? all : all.slice(0, this.limit);
    const visible = new Set<string>();
    // Moving or removing the focused row drops the focus: noted here, given back below.
    const focused = this.focusedRow();
    const above = focused?.r.row.previousElementSibling?.getAttribute('data-id') ?? undefined;
    const caret = focused ? caretOffset(focused.r.text) : undefined;
    this.shown = order.map((o) => o.id);
    if ((this.anchor && !this.items.has(this.anchor)) || (this.selFocus && !this.items.has(this.selFocus))) {
      this.anchor = undefined;
      this.selFocus = undefined;
    }
    const selected = new Set(this.selectedIds());
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
      // Only what changed is written: a render of 10k rows must not restyle every one of them.
      if (r.depth !== depth) {
        r.depth = depth;
        r.row.style.setProperty('--depth', String(depth));
        r.row.setAttribute('aria-level', String(depth + 1));
      }
      r.row.classList.toggle('done', item.done);
      const kids = this.hasKids(id);
      const open = kids && (!this.folded.has(id) || this.filter !== '');
      const state = kids ? (open ? 'open' : 'folded') : 'leaf';
      if (r.state !== state) {
        r.state = state;
        if (kids) r.row.setAttribute('aria-expanded', String(open));
        else r.row.removeAttribute('aria-expanded');
        r.fold.classList.toggle('has-kids', kids);
        r.fold.classList.toggle('open', open);
        r.fold.setAttribute('aria-label', kids ? (open ? 'Fold' : 'Unfold') : 'No sub-items');
        r.fold.disabled = !kids;
      }
      const sel = selected.has(id);
      if (r.row.classList.contains('selected') !== sel) {
        r.row.classList.toggle('selected', sel);
        r.row.setAttribute('aria-selected', String(sel));
      }
      r.row.classList.toggle('match', this.filter !== '' && item.text.toLowerCase().includes(this.filter));
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
    this.empty.textContent = this.filter ? 'No items match the filter.' : this.zoomId ? 'No sub-items yet: "+ Add item" adds one here.' : 'No items yet. Add one, then type; Enter adds the next, Tab indents.';
    this.renderCrumbs();
    this.highlight();
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

  private renderCrumbs(): void {
    this.crumbs.hidden = this.zoomId === undefined;
    if (this.zoomId === undefined) {
      if (this.crumbs.firstChild) this.crumbs.replaceChildren();
      return;
    }
    const path: string[] = [];
    for (let p = this.items.get(this.zoomId)?.parentId; p && p !== this.rootId; p = this.items.get(p)?.parentId) path.unshift(p);
    const crumb = (label: string, to: string | undefined) => {
      const b = el('button', { type: 'button', class: 'link crumb', title: `Zoom out to ${label}` }, label);
      b.addEventListener('click', () => this.zoomTo(to, this.zoomId));
      return b;
    };
    const parts = document.createDocumentFragment();
    parts.append(crumb(this.treeName, undefined));
    for (const p of path) parts.append(' › ', crumb(this.items.get(p)?.text || '(empty)', p));
    parts.append(' › ', el('span', { class: 'crumb-here', 'aria-current': 'page' }, this.items.get(this.zoomId)?.text || '(empty)'));
    this.crumbs.replaceChildren(parts);
  }

  /** Highlights the filter's matches in the rows shown (no DOM change: the caret is safe). */
  private highlight(): void {
    const registry = typeof CSS !== 'undefined' ? CSS.highlights : undefined;
    if (!this.filter) {
      registry?.delete(MATCH_HIGHLIGHT);
      this.matchCount.textContent = '';
      return;
    }
    let n = 0;
    const marks = typeof Highlight !== 'undefined' ? new Highlight() : undefined;
    for (const [, r] of this.rows) {
      const node = r.text.firstChild;
      if (!r.row.classList.contains('match') || !node || node.nodeType !== Node.TEXT_NODE) continue;
      n++;
      const lower = (node.textContent ?? '').toLowerCase();
      for (let at = lower.indexOf(this.filter); at >= 0; at = lower.indexOf(this.filter, at + this.filter.length)) {
        // Static ranges: the browser does not have to keep them up to date as rows change.
        marks?.add(new StaticRange({ startContainer: node, startOffset: at, endContainer: node, endOffset: at + this.filter.length }));
      }
    }
    if (registry && marks) registry.set(MATCH_HIGHLIGHT, marks);
    this.matchCount.textContent = n === 1 ? '1 match' : `${n} matches`;
  }

  private focusedRow(): { id: string; r: Row } | undefined {
    const a = document.activeElement;
    if (!(a instanceof HTMLElement) || !this.list.contains(a)) return undefined;
    const id = a.closest('.row')?.getAttribute('data-id');
    const r = id ? this.rows.get(id) : undefined;
    return id && r && r.text === a ? { id, r } : undefined;
  }

  focusItem(id: string, caret: Caret = 'end'): void {
    if (!this.rows.has(id)) this.reveal(id);
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

  // ---- selection --------------------------------------------------------------------------------

  /** The selected items in display order (none when fewer than two rows are selected). */
  private selectedIds(): string[] {
    if (!this.anchor || !this.selFocus || this.anchor === this.selFocus) return [];
    const a = this.shown.indexOf(this.anchor);
    const b = this.shown.indexOf(this.selFocus);
    if (a < 0 || b < 0) return [];
    return this.shown.slice(Math.min(a, b), Math.max(a, b) + 1);
  }

  private clearSelection(): void {
    if (!this.anchor && !this.selFocus) return;
    const had = this.selectedIds().length > 0;
    this.anchor = undefined;
    this.selFocus = undefined;
    if (had) for (const r of this.rows.values()) if (r.row.classList.contains('selected')) {
      r.row.classList.remove('selected');
      r.row.setAttribute('aria-selected', 'false');
    }
  }

  /** Extends the selection from the current item (or the anchor) to `id`. */
  private selectTo(id: string): void {
    this.anchor ??= this.current ?? id;
    this.selFocus = id;
    const sel = new Set(this.selectedIds());
    for (const [rid, r] of this.rows) {
      const on = sel.has(rid);
      if (r.row.classList.contains('selected') !== on) {
        r.row.classList.toggle('selected', on);
        r.row.setAttribute('aria-selected', String(on));
      }
    }
  }

  /** The selected items without those under another selected one, in display order. */
  private selectedRoots(ids: readonly string[]): string[] {
    const set = new Set(ids);
    return ids.filter((id) => {
      for (let p = this.items.get(id)?.parentId; p && p !== this.rootId; p = this.items.get(p)?.parentId) if (set.has(p)) return false;
      return true;
    });
  }

  private markdownOf(roots: readonly string[]): string {
    return outlineToMarkdown(subtreeLines(roots, (id) => this.kids(id), (id) => this.items.get(id)));
  }

  // ---- events -----------------------------------------------------------------------------------

  private keyAt: number | undefined;

  private onInput(e: Event): void {
    const hit = this.rowOf(e);
    if (!hit || e.target !== hit.r.text) return;
    this.clearSelection();
    const keyAt = this.keyAt;
    this.keyAt = undefined;
    if (keyAt !== undefined) requestAnimationFrame(() => record(this.host.typing.keyToFrame, performance.now() - keyAt));
    const text = (hit.r.text.textContent ?? '').replace(/\n/g, ' ');
    const item = this.items.get(hit.id);
    if (item) item.text = text;
    if (this.filter) this.highlight();
    this.host.edit(this.treeId, { op: 'setText', id: hit.id, text });
  }

  private onCheck(e: Event): void {
    const hit = this.rowOf(e);
    if (!hit || e.target !== hit.r.check) return;
    this.host.edit(this.treeId, { op: 'setDone', id: hit.id, done: hit.r.check.checked });
  }

  private onMouseDown(e: MouseEvent): void {
    const hit = this.rowOf(e);
    if (!hit || e.button !== 0) return;
    // The fold button acts without taking the focus from the text.
    if (e.target === hit.r.fold) e.preventDefault();
    if (e.shiftKey && (e.target === hit.r.text || e.target === hit.r.row)) {
      // Shift+click selects rows, not text.
      e.preventDefault();
      this.selectTo(hit.id);
      hit.r.text.focus();
    } else if (!e.shiftKey && e.target !== hit.r.bullet) {
      this.clearSelection();
    }
  }

  private onClick(e: MouseEvent): void {
    const hit = this.rowOf(e);
    if (!hit) return;
    if (e.target === hit.r.fold) this.setFolded(hit.id);
    else if (e.target === hit.r.bullet) this.zoomTo(hit.id);
  }

  private onPaste(e: ClipboardEvent): void {
    const hit = this.rowOf(e);
    if (!hit) return;
    e.preventDefault();
    const raw = e.clipboardData?.getData('text/plain') ?? '';
    let lines;
    try {
      lines = parseOutline(raw, PASTE_LIMITS);
    } catch (err) {
      this.say(`Not pasted: ${err instanceof Error ? err.message : String(err)}`, true);
      return;
    }
    // One line is text at the caret; blank lines (and the line break a copy often ends with) make no item.
    if (lines.length <= 1) {
      document.execCommand('insertText', false, lines.length ? raw.trim() : '');
      return;
    }
    const text = hit.r.text.textContent ?? '';
    const { start, end } = selectionIn(hit.r.text) ?? { start: text.length, end: text.length };
    const nested = isNested(lines);
    const anyDone = lines.some((l) => l.done);
    this.host.edit(this.treeId, {
      op: 'paste',
      id: hit.id,
      before: text.slice(0, start),
      lines: lines.map((l) => l.text),
      after: text.slice(end),
      ...(nested ? { depths: lines.map((l) => l.depth) } : {}),
      ...(anyDone ? { done: lines.map((l) => l.done) } : {}),
    });
  }

  /**
   * Copy / cut of selected items, or of the item at the caret when no text is selected in it: the
   * items with their sub-items as a Markdown list (which pastes back here as the same subtree).
   */
  private onCopy(e: ClipboardEvent, cut: boolean): void {
    const hit = this.rowOf(e);
    if (!hit || !e.clipboardData) return;
    let ids = this.selectedIds();
    if (!ids.length) {
      const s = selectionIn(hit.r.text);
      if (s && s.start !== s.end) return;
      ids = [hit.id];
    }
    const roots = this.selectedRoots(ids);
    e.preventDefault();
    e.clipboardData.setData('text/plain', this.markdownOf(roots));
    if (cut) {
      this.clearSelection();
      this.host.edit(this.treeId, { op: 'selection', action: 'cut', ids: roots });
    }
  }

  private neighbour(id: string, step: 1 | -1): string | undefined {
    const i = this.shown.indexOf(id);
    return i < 0 ? undefined : this.shown[i + step];
  }

  // ---- drag and drop ----------------------------------------------------------------------------

  private onDragStart(e: DragEvent): void {
    const hit = this.rowOf(e);
    if (!hit || e.target !== hit.r.bullet || !e.dataTransfer) return;
    const sel = this.selectedIds();
    const ids = sel.includes(hit.id) ? this.selectedRoots(sel) : [hit.id];
    this.dragging = ids;
    e.dataTransfer.effectAllowed = 'move';
    e.dataTransfer.setData(DRAG_TYPE, JSON.stringify(ids));
    e.dataTransfer.setData('text/plain', this.markdownOf(ids));
    e.dataTransfer.setDragImage(hit.r.row, 0, 0);
    for (const id of ids) this.rows.get(id)?.row.classList.add('dragging');
  }

  /** Whether `id` is one of the dragged items or under one. */
  private inDragged(id: string): boolean {
    const set = new Set(this.dragging);
    for (let cur: string | undefined = id; cur && cur !== this.rootId; cur = this.items.get(cur)?.parentId) if (set.has(cur)) return true;
    return false;
  }

  private dropOf(e: DragEvent): Drop | undefined {
    const hit = this.rowOf(e);
    if (!hit) return e.target === this.list ? { rowId: undefined, where: 'inside' } : undefined;
    if (this.inDragged(hit.id)) return undefined;
    const box = hit.r.row.getBoundingClientRect();
    const y = (e.clientY - box.top) / Math.max(1, box.height);
    return { rowId: hit.id, where: y < DROP_EDGE ? 'before' : y > 1 - DROP_EDGE ? 'after' : 'inside' };
  }

  private showDrop(d: Drop | undefined): void {
    if (this.dropAt) this.dropAt.row.classList.remove(this.dropAt.cls);
    this.dropAt = undefined;
    const row = d?.rowId ? this.rows.get(d.rowId)?.row : undefined;
    if (row && d) {
      this.dropAt = { row, cls: `drop-${d.where}` };
      row.classList.add(this.dropAt.cls);
    }
  }

  private onDragOver(e: DragEvent): void {
    if (!this.dragging || !e.dataTransfer) return;
    const d = this.dropOf(e);
    e.preventDefault();
    e.dataTransfer.dropEffect = d ? 'move' : 'none';
    this.showDrop(d);
  }

  private onDrop(e: DragEvent): void {
    const ids = this.dragging;
    const d = ids ? this.dropOf(e) : undefined;
    this.endDrag();
    if (!ids || !d) return;
    e.preventDefault();
    const start = this.zoomId ?? this.rootId;
    let parentId: string;
    let afterId: string | undefined;
    const row = d.rowId ? this.items.get(d.rowId) : undefined;
    if (!d.rowId || !row) {
      parentId = start;
      afterId = this.kids(start).at(-1);
    } else if (d.where === 'inside' || (d.where === 'after' && this.hasKids(d.rowId) && !this.folded.has(d.rowId))) {
      // Into an item: last among its children; just below an unfolded parent: its first child.
      parentId = d.rowId;
      afterId = d.where === 'inside' ? this.kids(d.rowId).at(-1) : undefined;
    } else {
      parentId = row.parentId;
      const sibs = this.kids(row.parentId);
      afterId = d.where === 'after' ? d.rowId : sibs[sibs.indexOf(d.rowId) - 1];
    }
    this.host.edit(this.treeId, { op: 'moveTo', ids, parentId, ...(afterId ? { afterId } : {}) });
  }

  private endDrag(): void {
    for (const id of this.dragging ?? []) this.rows.get(id)?.row.classList.remove('dragging');
    this.dragging = undefined;
    this.showDrop(undefined);
  }

  // ---- keys -------------------------------------------------------------------------------------

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
    const send = (edit: Edit) => {
      e.preventDefault();
      this.host.edit(this.treeId, edit);
    };
    const ctrl = e.ctrlKey || e.metaKey;
    const plain = !ctrl && !e.altKey && !e.shiftKey;
    const vertical = e.key === 'ArrowUp' || e.key === 'ArrowDown';
    if (e.key === 'Escape') {
      this.clearSelection();
      return;
    }
    if (e.shiftKey && !ctrl && !e.altKey && vertical) {
      const next = this.neighbour(this.selFocus ?? id, e.key === 'ArrowUp' ? -1 : 1);
      e.preventDefault();
      if (next) {
        this.selectTo(next);
        this.focusItem(next, 'end');
      }
      return;
    }
    const sel = this.selectedIds();
    if (sel.length) {
      const act = (action: SelectionAction) => send({ op: 'selection', action, ids: sel });
      if (e.key === 'Tab') return act(e.shiftKey ? 'outdent' : 'indent');
      if (e.altKey && vertical) return act(e.key === 'ArrowUp' ? 'moveUp' : 'moveDown');
      if (e.key === 'Enter' && ctrl) return act(sel.every((s) => this.items.get(s)?.done) ? 'uncheck' : 'check');
      if (e.key === 'Backspace' || e.key === 'Delete' || (ctrl && e.shiftKey && e.key.toLowerCase() === 'k')) return act('delete');
      // Copy, cut, undo… keep it; a key that edits the text ends it.
      if (!ctrl && !e.altKey) this.clearSelection();
    }
    if (e.key === 'Enter' && ctrl) {
      send({ op: 'setDone', id, done: !r.check.checked });
    } else if (e.key === 'Enter' && !e.shiftKey && !e.altKey) {
      const parent = this.items.get(id)?.parentId;
      // Enter in an empty sub-item takes it one level out, as outliners do.
      if (text === '' && parent && parent !== (this.zoomId ?? this.rootId)) {
        send({ op: 'outdent', id });
        return;
      }
      const at = caretOffset(r.text) ?? text.length;
      send({ op: 'split', id, before: text.slice(0, at), after: text.slice(at) });
    } else if (e.key === 'Tab') {
      send({ op: e.shiftKey ? 'outdent' : 'indent', id });
    } else if (e.altKey && !ctrl && vertical) {
      send({ op: e.key === 'ArrowUp' ? 'moveUp' : 'moveDown', id });
    } else if (e.altKey && !ctrl && !e.shiftKey && e.key === 'ArrowRight') {
      e.preventDefault();
      this.zoomTo(id);
    } else if (ctrl && !e.altKey && (e.key === '.' || (!e.shiftKey && vertical))) {
      e.preventDefault();
      this.setFolded(id, e.key === '.' ? undefined : e.key === 'ArrowUp');
    } else if (plain && vertical) {
      const next = this.neighbour(id, e.key === 'ArrowUp' ? -1 : 1);
      if (next) {
        e.preventDefault();
        this.focusItem(next, 'end');
      }
    } else if ((e.key === 'Backspace' || e.key === 'Delete') && text === '' && !ctrl) {
      send({ op: 'delete', id });
    } else if (e.key === 'Backspace' && plain && isCaretAtStart(r.text)) {
      const above = this.neighbour(id, -1);
      if (above) send({ op: 'merge', id, intoId: above });
    } else if (ctrl && e.shiftKey && e.key.toLowerCase() === 'k') {
      send({ op: 'delete', id });
    }
  }
}

/** True when the caret is at the very start of `e` with no text selected. */
function isCaretAtStart(e: HTMLElement): boolean {
  const s = selectionIn(e);
  return s !== undefined && s.start === 0 && s.end === 0;
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
