/**
 * The generic inspector for app trees of any other app: every vertex with its properties, each
 * value editable as JSON (Enter or leaving the field saves). A value is checked while it is
 * typed: invalid JSON marks the field (`aria-invalid`, the reason under it) and is not sent.
 *
 * Patches are reconciled into the DOM element by element (vertices by id, fields by key) rather
 * than rebuilt, so the field being typed in keeps its focus, caret and text whatever arrives
 * meanwhile — a teammate's edit, or the patch of the edit just saved — and a property added
 * shows at once. A field the user changed keeps the typed text until it is saved or reverted
 * (Escape). Deleting a vertex with children or a property of the root is confirmed by the host.
 */
import type { InspectorNode, TreePatch, TreeView } from '../protocol';
import { el } from './dom';
import type { Host } from './host';

type InspectorView = Extract<TreeView, { kind: 'inspector' }>;
type InspectorPatch = Extract<TreePatch, { kind: 'inspector' }>;

/** Depths of vertices that start unfolded. */
const OPEN_DEPTH = 2;

interface Field {
  readonly row: HTMLElement;
  readonly input: HTMLInputElement;
  readonly error: HTMLElement;
  /** The value the host last sent, as JSON. */
  saved: string;
  /** The value last sent to the host (Enter, then leaving the field, sends it once). */
  sent?: string;
}

interface Vertex {
  readonly details: HTMLDetailsElement;
  readonly props: HTMLElement;
  readonly newRow: HTMLElement;
  readonly fields: Map<string, Field>;
  readonly newKey: HTMLInputElement;
  readonly newValue: HTMLInputElement;
  readonly newError: HTMLElement;
}

let fieldIds = 0;

/** Why `text` is not a JSON value (undefined: it is one). */
export function jsonProblem(text: string): string | undefined {
  if (!text.trim()) return 'Type a JSON value, e.g. "text", 42, true or [1, 2]';
  try {
    JSON.parse(text);
    return undefined;
  } catch (e) {
    return `Not valid JSON: ${e instanceof Error ? e.message : String(e)}`;
  }
}

function setProblem(input: HTMLInputElement, error: HTMLElement, problem: string | undefined): void {
  error.textContent = problem ?? '';
  error.hidden = !problem;
  if (problem) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

export class Inspector {
  readonly root: HTMLElement;
  private readonly vertices = new Map<string, Vertex>();
  private readonly note: HTMLElement;
  private count = 0;

  constructor(
    private readonly host: Host,
    private readonly treeId: string,
    view: InspectorView,
  ) {
    this.note = el('p', { class: 'muted' }, 'Only the first vertices are shown; this tree is large.');
    this.root = el('div', { class: 'inspector', role: 'tree', 'aria-label': 'Vertices' });
    this.show(view.root, view.truncated);
  }

  get size(): number {
    return this.count;
  }

  applyPatch(p: InspectorPatch): void {
    this.show(p.root, p.truncated);
  }

  /** The host refused a value (e.g. not a JSON value it takes): marks the field it came from. */
  refused(id: string, key: string, message: string): void {
    const f = this.vertices.get(id)?.fields.get(key);
    if (f) setProblem(f.input, f.error, message);
  }

  private show(root: InspectorNode, truncated: boolean): void {
    const seen = new Set<string>();
    this.count = 0;
    const top = this.vertex(root, 0, seen);
    if (this.root.firstElementChild !== top) this.root.prepend(top);
    for (const [id, v] of this.vertices) {
      if (!seen.has(id)) {
        v.details.remove();
        this.vertices.delete(id);
      }
    }
    if (truncated) this.root.append(this.note);
    else this.note.remove();
  }

  /** Reconciles one vertex (and its subtree) with its element, made on first sight. */
  private vertex(n: InspectorNode, depth: number, seen: Set<string>): HTMLElement {
    this.count++;
    seen.add(n.id);
    const v = this.vertices.get(n.id) ?? this.makeVertex(n.id, depth);
    this.vertices.set(n.id, v);
    // Fields: in the host's order, kept elements reused, the new-property row last.
    let prev: Element | null = null;
    const keys = new Set(Object.keys(n.props));
    for (const [key, value] of Object.entries(n.props)) {
      const json = JSON.stringify(value) ?? 'null';
      let f = v.fields.get(key);
      if (!f) {
        f = this.makeField(n.id, key, json);
        v.fields.set(key, f);
      } else if (f.saved !== json) {
        const edited = f.input.value !== f.saved;
        f.saved = json;
        f.sent = undefined;
        // Text the user typed and has not saved stays; a saved field takes the new value.
        if (!edited || f.input.value === json) {
          f.input.value = json;
          setProblem(f.input, f.error, undefined);
        }
      }
      const expected: Element | null = prev ? prev.nextElementSibling : v.props.firstElementChild;
      if (expected !== f.row) v.props.insertBefore(f.row, expected);
      prev = f.row;
    }
    for (const [key, f] of v.fields) {
      if (!keys.has(key)) {
        f.row.remove();
        v.fields.delete(key);
      }
    }
    // Children after the new-property row, in order.
    prev = v.newRow;
    for (const c of n.children) {
      const d = this.vertex(c, depth + 1, seen);
      if (prev.nextElementSibling !== d) prev.after(d);
      prev = d;
    }
    return v.details;
  }

  private makeVertex(id: string, depth: number): Vertex {
    const addChild = el('button', { type: 'button', class: 'small', title: 'Add a child vertex', 'aria-label': 'Add a child vertex' }, '+ child');
    addChild.addEventListener('click', () => this.host.edit(this.treeId, { op: 'addChild', parentId: id }));
    const label = depth === 0 ? 'root' : id.slice(0, 8);
    const summary = el('summary', { role: 'treeitem', 'aria-level': depth + 1, 'aria-label': depth === 0 ? 'Root vertex' : `Vertex ${id}` }, el('code', { class: 'vid', title: id }, label), ' ', addChild);
    if (depth > 0) {
      const del = el('button', { type: 'button', class: 'small danger', title: 'Delete this vertex and its children', 'aria-label': `Delete vertex ${label}` }, 'delete');
      del.addEventListener('click', () => this.host.edit(this.treeId, { op: 'deleteVertex', id }));
      summary.append(' ', del);
    }
    const props = el('div', { class: 'props' });
    const newKey = el('input', { type: 'text', class: 'key-input', placeholder: 'new property', 'aria-label': 'New property name', spellcheck: 'false' });
    const errId = `field-error-${++fieldIds}`;
    const newValue = el('input', { type: 'text', class: 'json', placeholder: 'JSON value, e.g. "text" or 42', 'aria-label': 'New property value (JSON)', 'aria-describedby': errId, spellcheck: 'false' });
    const newError = el('p', { class: 'field-error', id: errId, role: 'alert', hidden: true });
    const add = () => {
      const key = newKey.value.trim();
      if (!key) {
        newKey.focus();
        return;
      }
      const problem = jsonProblem(newValue.value);
      setProblem(newValue, newError, problem);
      if (problem) return;
      this.host.edit(this.treeId, { op: 'setProp', id, key, json: newValue.value });
      // Ready for the next property; the one just added shows above when the host has it.
      newKey.value = '';
      newValue.value = '';
      newKey.focus();
    };
    const addButton = el('button', { type: 'button', class: 'small', title: 'Add the property', 'aria-label': 'Add the property' }, 'Add');
    addButton.addEventListener('click', add);
    for (const i of [newKey, newValue]) {
      i.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') {
          e.preventDefault();
          add();
        }
      });
    }
    newValue.addEventListener('input', () => setProblem(newValue, newError, newValue.value.trim() ? jsonProblem(newValue.value) : undefined));
    const newRow = el('div', { class: 'prop new' }, newKey, newValue, addButton, newError);
    const details = el('details', { 'data-id': id, open: depth < OPEN_DEPTH }, summary, props, newRow);
    return { details, props, newRow, fields: new Map(), newKey, newValue, newError };
  }

  private makeField(id: string, key: string, json: string): Field {
    const errId = `field-error-${++fieldIds}`;
    const input = el('input', { type: 'text', class: 'json', 'aria-label': `${key} (JSON)`, 'aria-describedby': errId, spellcheck: 'false', 'data-key': key });
    input.value = json;
    const error = el('p', { class: 'field-error', id: errId, role: 'alert', hidden: true });
    input.id = `${errId}-input`;
    const field: Field = { row: el('div', { class: 'prop', 'data-key': key }), input, error, saved: json };
    const commit = () => {
      if (input.value === field.saved) {
        setProblem(input, error, undefined);
        return;
      }
      const problem = jsonProblem(input.value);
      setProblem(input, error, problem);
      if (problem || input.value === field.sent) return;
      field.sent = input.value;
      this.host.edit(this.treeId, { op: 'setProp', id, key, json: input.value });
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        commit();
      } else if (e.key === 'Escape') {
        input.value = field.saved;
        setProblem(input, error, undefined);
      }
    });
    input.addEventListener('change', commit);
    input.addEventListener('input', () => setProblem(input, error, jsonProblem(input.value)));
    const del = el('button', { type: 'button', class: 'small', title: `Delete ${key}`, 'aria-label': `Delete ${key}` }, '×');
    del.addEventListener('click', () => this.host.edit(this.treeId, { op: 'deleteProp', id, key }));
    field.row.append(el('label', { class: 'key', for: input.id }, key), input, del, error);
    return field;
  }
}
