/**
 * The generic inspector for app trees of any other app: every vertex with its properties, each
 * value editable as JSON (Enter or leaving the field saves; the host checks it). A patch while a
 * field has focus waits until the focus leaves, so nothing typed is lost.
 */
import type { InspectorNode, TreePatch, TreeView } from '../protocol';
import { el } from './dom';
import type { Host } from './host';

type InspectorView = Extract<TreeView, { kind: 'inspector' }>;
type InspectorPatch = Extract<TreePatch, { kind: 'inspector' }>;

export class Inspector {
  readonly root: HTMLElement;
  private deferred: InspectorPatch | undefined;
  private count = 0;

  constructor(
    private readonly host: Host,
    private readonly treeId: string,
    view: InspectorView,
  ) {
    this.root = el('div', { class: 'inspector', role: 'tree', 'aria-label': 'Vertices' });
    this.root.addEventListener('focusout', () => {
      queueMicrotask(() => {
        if (this.deferred && !this.root.contains(document.activeElement)) {
          const p = this.deferred;
          this.deferred = undefined;
          this.applyPatch(p);
        }
      });
    });
    this.show(view.root, view.truncated);
  }

  get size(): number {
    return this.count;
  }

  applyPatch(p: InspectorPatch): void {
    if (this.root.contains(document.activeElement) && document.activeElement instanceof HTMLInputElement) {
      this.deferred = p;
      return;
    }
    this.show(p.root, p.truncated);
  }

  private show(root: InspectorNode, truncated: boolean): void {
    const open = new Set([...this.root.querySelectorAll('details[open]')].map((d) => d.getAttribute('data-id')));
    const first = this.count === 0;
    this.count = 0;
    this.root.replaceChildren(this.vertex(root, 0, open, first));
    if (truncated) this.root.append(el('p', { class: 'muted' }, 'Only the first vertices are shown; this tree is large.'));
  }

  private vertex(n: InspectorNode, depth: number, open: Set<string | null>, first: boolean): HTMLElement {
    this.count++;
    const addChild = el('button', { type: 'button', class: 'small', title: 'Add a child vertex' }, '+ child');
    addChild.addEventListener('click', () => this.host.edit(this.treeId, { op: 'addChild', parentId: n.id }));
    const summary = el('summary', { role: 'treeitem', 'aria-level': depth + 1 }, el('code', { class: 'vid', title: n.id }, depth === 0 ? 'root' : n.id.slice(0, 8)), ' ', addChild);
    if (depth > 0) {
      const del = el('button', { type: 'button', class: 'small danger', title: 'Delete this vertex and its children' }, 'delete');
      del.addEventListener('click', () => this.host.edit(this.treeId, { op: 'deleteVertex', id: n.id }));
      summary.append(' ', del);
    }
    const props = el('div', { class: 'props' });
    for (const [k, v] of Object.entries(n.props)) props.append(this.propRow(n.id, k, v));
    props.append(this.newPropRow(n.id));
    const d = el('details', { 'data-id': n.id, open: first ? depth < 2 : open.has(n.id) }, summary, props);
    for (const c of n.children) d.append(this.vertex(c, depth + 1, open, first));
    return d;
  }

  private propRow(id: string, key: string, value: unknown): HTMLElement {
    const input = el('input', { type: 'text', class: 'json', value: JSON.stringify(value), 'aria-label': `${key} (JSON)`, spellcheck: 'false' });
    const commit = () => {
      if (input.value !== JSON.stringify(value)) this.host.edit(this.treeId, { op: 'setProp', id, key, json: input.value });
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') commit();
      if (e.key === 'Escape') input.value = JSON.stringify(value);
    });
    input.addEventListener('change', commit);
    const del = el('button', { type: 'button', class: 'small', title: `Delete ${key}`, 'aria-label': `Delete ${key}` }, '×');
    del.addEventListener('click', () => this.host.edit(this.treeId, { op: 'deleteProp', id, key }));
    return el('div', { class: 'prop' }, el('label', { class: 'key' }, key), input, del);
  }

  private newPropRow(id: string): HTMLElement {
    const key = el('input', { type: 'text', class: 'key-input', placeholder: 'new property', 'aria-label': 'New property name' });
    const value = el('input', { type: 'text', class: 'json', placeholder: 'JSON value, e.g. "text" or 42', 'aria-label': 'New property value (JSON)', spellcheck: 'false' });
    const add = () => {
      if (key.value.trim() && value.value.trim()) this.host.edit(this.treeId, { op: 'setProp', id, key: key.value.trim(), json: value.value });
    };
    value.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') add();
    });
    return el('div', { class: 'prop new' }, key, value);
  }
}
