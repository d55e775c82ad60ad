/**
 * Markdown export, import and "Copy as Markdown" of a notes tree (or of one note with its
 * sub-items), from the Spaces view's context menu or the palette. Scripts and tests answer the
 * prompts with an argument:
 *
 *   executeCommand('spaces.exportMarkdown', { spaceId, treeId, itemId?, uri })  → { uri, items }
 *   executeCommand('spaces.importMarkdown', { spaceId, treeId, itemId?, uri })  → { ids }
 *   executeCommand('spaces.copyAsMarkdown', { spaceId, treeId, itemId? })       → the Markdown
 *
 * An import is one undo step in the space editor (Ctrl+Z takes the whole import back). A file
 * to import is hostile input: its size is checked before it is read and its text is bounded by
 * IMPORT_LIMITS (notesMarkdown.ts); a refused file changes nothing.
 */
import * as vscode from 'vscode';
import type { AppTree } from '../../spaces/appTree';
import { NOTES_APP_ID } from '../../spaces/apps/notes';
import { IMPORT_LIMITS, linesToNodes, outlineToMarkdown, parseOutline, subtreeLines, type OutlineNode } from '../../spaces/apps/notesMarkdown';
import type { Space } from '../../spaces/space';
import { argsOf, commandWrapper, isNode, pickSpace } from '../commandHelpers';
import type { SpacesNode } from '../spacesTree';
import type { WorkspaceModel } from '../workspaceModel';
import type { EditHistory } from './editHistory';

export interface MarkdownArgs {
  readonly spaceId?: string;
  readonly treeId?: string;
  /** A note: its subtree instead of the whole tree (for import: the parent of what is imported). */
  readonly itemId?: string;
  /** The file to write or read (else asked for). */
  readonly uri?: vscode.Uri | string;
}

/** The files the open and save dialogs offer. */
const MARKDOWN_FILTERS = { Markdown: ['md', 'markdown', 'txt'] };

interface Target {
  readonly space: Space;
  readonly tree: AppTree;
  readonly treeName: string;
  /** The note, or undefined for the whole tree. */
  readonly itemId?: string;
}

function asUri(x: vscode.Uri | string): vscode.Uri {
  return typeof x === 'string' ? vscode.Uri.file(x) : x;
}

export function registerMarkdownCommands(
  model: WorkspaceModel,
  log: vscode.LogOutputChannel,
  treeView: vscode.TreeView<SpacesNode>,
  history: EditHistory,
  activeSpaceId: () => string | undefined,
): vscode.Disposable[] {
  const wrap = commandWrapper(log);

  /** The notes tree (and note) a command is for: the node clicked, the arguments, else asked for. */
  const target = async (arg: unknown, extra: unknown): Promise<Target | undefined> => {
    const node = isNode(arg) ? arg : treeView.selection[0];
    const args = argsOf<MarkdownArgs>(arg, extra);
    let spaceId = args.spaceId;
    let treeId = args.treeId;
    let itemId = args.itemId;
    if (!treeId && node && (node.kind === 'appTree' || node.kind === 'note')) {
      spaceId = node.spaceId;
      treeId = node.treeId;
      itemId = node.kind === 'note' ? node.itemId : undefined;
    }
    const space = await pickSpace(model, spaceId, 'Choose a space', (s) => s.appTreeRefs().some((r) => r.appId === NOTES_APP_ID), 'there is no open space with a notes tree', activeSpaceId());
    if (!space) return undefined;
    if (!treeId) {
      const trees = space.appTreeRefs().filter((r) => r.appId === NOTES_APP_ID);
      const pick = trees.length === 1 ? trees[0] : (await vscode.window.showQuickPick(trees.map((r) => ({ label: r.name, ref: r })), { title: 'Choose a notes tree' }))?.ref;
      if (!pick) return undefined;
      treeId = pick.id;
    }
    const ref = space.appTreeRef(treeId);
    if (!ref) throw new Error(`no app tree ${treeId} in the space "${space.name}"`);
    if (ref.appId !== NOTES_APP_ID) throw new Error(`"${ref.name}" is a ${ref.appId} tree; Markdown is for notes trees`);
    const tree = await space.openAppTree(treeId);
    if (itemId !== undefined && !tree.has(itemId)) throw new Error(`no note ${itemId} in "${ref.name}"`);
    return { space, tree, treeName: ref.name, itemId };
  };

  const markdownOf = (t: Target): { text: string; items: number } => {
    const roots = t.itemId ? [t.itemId] : t.tree.childIds();
    const lines = subtreeLines(roots, (id) => t.tree.childIds(id), (id) => {
      const p = t.tree.has(id) ? t.tree.propsOf(id) : undefined;
      return p ? { text: typeof p.text === 'string' ? p.text : '', done: p.done === true } : undefined;
    });
    return { text: outlineToMarkdown(lines), items: lines.length };
  };

  const exportMarkdown = wrap('spaces.exportMarkdown', async (arg?: unknown, extra?: unknown) => {
    const t = await target(arg, extra);
    if (!t) return undefined;
    const args = argsOf<MarkdownArgs>(arg, extra);
    const base = (t.itemId ? String(t.tree.getProp(t.itemId, 'text') ?? 'note') : t.treeName).replace(/[^\w\s-]/g, '').trim() || 'notes';
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const uri = args.uri ? asUri(args.uri) : await vscode.window.showSaveDialog({ title: 'Export as Markdown', filters: MARKDOWN_FILTERS, defaultUri: folder ? vscode.Uri.joinPath(folder, `${base}.md`) : undefined });
    if (!uri) return undefined;
    const { text, items } = markdownOf(t);
    await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(text));
    vscode.window.setStatusBarMessage(`Exported ${items} item${items === 1 ? '' : 's'} to ${vscode.workspace.asRelativePath(uri)}`, 3000);
    return { uri, items };
  });

  const copyAsMarkdown = wrap('spaces.copyAsMarkdown', async (arg?: unknown, extra?: unknown) => {
    const t = await target(arg, extra);
    if (!t) return undefined;
    const { text, items } = markdownOf(t);
    await vscode.env.clipboard.writeText(text);
    vscode.window.setStatusBarMessage(`Copied ${items} item${items === 1 ? '' : 's'} as Markdown`, 3000);
    return text;
  });

  const importMarkdown = wrap('spaces.importMarkdown', async (arg?: unknown, extra?: unknown) => {
    const t = await target(arg, extra);
    if (!t) return undefined;
    const args = argsOf<MarkdownArgs>(arg, extra);
    const uri = args.uri ? asUri(args.uri) : (await vscode.window.showOpenDialog({ title: 'Import Markdown', filters: MARKDOWN_FILTERS, canSelectMany: false }))?.[0];
    if (!uri) return undefined;
    // Checked before reading: a huge file is refused without being loaded.
    const stat = await vscode.workspace.fs.stat(uri);
    if (stat.size > IMPORT_LIMITS.chars * 4) throw new Error(`${vscode.workspace.asRelativePath(uri)} is too large to import (${stat.size} bytes)`);
    const text = new TextDecoder('utf-8', { fatal: true }).decode(await vscode.workspace.fs.readFile(uri));
    const nodes = linesToNodes(parseOutline(text, IMPORT_LIMITS));
    if (!nodes.length) throw new Error(`${vscode.workspace.asRelativePath(uri)} holds no list items`);
    const parentId = t.itemId ?? t.tree.rootId;
    let ids: string[] = [];
    history.run(t.space.id, t.tree, (e) =>
      e.edit('Import Markdown', [], (touched) => {
        ids = t.tree.importNodes(parentId, nodes.map(toImport));
        for (const id of ids) touched.push(id);
      }),
    );
    vscode.window.setStatusBarMessage(`Imported ${ids.length} top-level item${ids.length === 1 ? '' : 's'} into "${t.treeName}"`, 3000);
    return { ids };
  });

  return [
    vscode.commands.registerCommand('spaces.exportMarkdown', exportMarkdown),
    vscode.commands.registerCommand('spaces.importMarkdown', importMarkdown),
    vscode.commands.registerCommand('spaces.copyAsMarkdown', copyAsMarkdown),
  ];
}

/** An outline node as AppTree import nodes (depth is capped by the parser, so this stays shallow). */
function toImport(n: OutlineNode): { props: { text: string; done: boolean }; children: ReturnType<typeof toImport>[] } {
  return { props: { text: n.text, done: n.done }, children: n.children.map(toImport) };
}
