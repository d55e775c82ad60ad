/**
 * The view models the space editor's webview shows, built from an AppTree: a whole view when a
 * tree is opened, then a patch per change holding only what the change touched, so a teammate's
 * keystroke in a 10k-item outline costs a message of a few hundred bytes, not the outline.
 * Pure (no `vscode`): unit-tested on its own.
 */
import type { AppTree } from '../../spaces/appTree';
import { NOTES_APP_ID } from '../../spaces/apps/notes';
import { CHAT_APP_ID, Chat } from '../../spaces/apps/chat';
import type { Op } from '../../spaces/ops';
import { EDITOR_LIMITS, type ChatRow, type InspectorNode, type NoteRow, type TreePatch, type TreeView } from '../../webview/protocol';

export type EditorKind = TreeView['kind'];

export function editorKind(appId: string): EditorKind {
  return appId === NOTES_APP_ID ? 'notes' : appId === CHAT_APP_ID ? 'chat' : 'inspector';
}

function noteRow(tree: AppTree, id: string): NoteRow {
  const text = tree.getProp(id, 'text');
  const parentId = tree.has(id) ? (tree.get(id)?.parentId ?? null) : null;
  return { id, parentId, text: typeof text === 'string' ? text : '', done: tree.getProp(id, 'done') === true };
}

/** Rows and child lists of the subtree under `id` (not `id` itself), depth first. */
function collectNotes(tree: AppTree, id: string, items: NoteRow[], children: Record<string, string[]>): void {
  const stack = [id];
  while (stack.length) {
    const p = stack.pop() as string;
    const ids = tree.childIds(p);
    if (ids.length || p === id) children[p] = ids;
    for (let i = ids.length - 1; i >= 0; i--) {
      items.push(noteRow(tree, ids[i]));
      stack.push(ids[i]);
    }
  }
}

function chatRow(chat: Chat, id: string): ChatRow {
  if (!chat.tree.has(id)) return { id, author: '', text: '', time: 0, deleted: true };
  return chat.message(id);
}

function inspectorNode(tree: AppTree, id: string, budget: { left: number }): InspectorNode {
  budget.left--;
  const children: InspectorNode[] = [];
  for (const c of tree.childIds(id)) {
    if (budget.left <= 0) break;
    children.push(inspectorNode(tree, c, budget));
  }
  return { id, props: tree.propsOf(id), children };
}

function inspectorView(tree: AppTree): { root: InspectorNode; truncated: boolean } {
  const budget = { left: EDITOR_LIMITS.inspectorNodes };
  const root = inspectorNode(tree, tree.rootId, budget);
  return { root, truncated: budget.left <= 0 && tree.countItems() + 1 > EDITOR_LIMITS.inspectorNodes };
}

/** The whole view of a tree. */
export function buildView(kind: EditorKind, tree: AppTree, author: string): TreeView {
  switch (kind) {
    case 'notes': {
      const items: NoteRow[] = [];
      const children: Record<string, string[]> = {};
      collectNotes(tree, tree.rootId, items, children);
      return { kind, rootId: tree.rootId, items, children };
    }
    case 'chat':
      return { kind, rootId: tree.rootId, author, messages: new Chat(tree).messages() };
    case 'inspector':
      return { kind, rootId: tree.rootId, ...inspectorView(tree) };
  }
}

/** What changed for the view after `ops` were applied to `tree` (undefined: nothing visible). */
export function buildPatch(kind: EditorKind, tree: AppTree, ops: readonly Op[]): TreePatch | undefined {
  switch (kind) {
    case 'notes': {
      const items = new Map<string, NoteRow>();
      const children: Record<string, string[]> = {};
      const parents = new Set<string>();
      const moved = new Set<string>();
      for (const op of ops) {
        const t = op.targetId;
        if (t === tree.rootId) continue;
        if ('parentId' in op) moved.add(t);
        else if (op.key === 'order') moved.add(t);
        else if (op.key !== 'text' && op.key !== 'done') continue;
        if (!items.has(t)) items.set(t, noteRow(tree, t));
      }
      for (const t of moved) {
        const row = items.get(t);
        if (!row?.parentId) continue;
        parents.add(row.parentId);
        // A move can bring back a subtree the view never had (an undo of a delete): send it whole.
        const sub: NoteRow[] = [];
        collectNotes(tree, t, sub, children);
        for (const r of sub) items.set(r.id, r);
      }
      for (const p of parents) children[p] = tree.childIds(p);
      if (items.size === 0) return undefined;
      return { kind, items: [...items.values()], children };
    }
    case 'chat': {
      const chat = new Chat(tree);
      const ids = new Set(ops.filter((op) => op.targetId !== tree.rootId).map((op) => op.targetId));
      if (ids.size === 0) return undefined;
      return { kind, messages: [...ids].map((id) => chatRow(chat, id)) };
    }
    case 'inspector':
      return { kind, ...inspectorView(tree) };
  }
}
