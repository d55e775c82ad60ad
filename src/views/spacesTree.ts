/**
 * The Spaces view: space files → app trees (icon per app) → items of notes trees.
 * It re-reads the model on its events only (`WorkspaceModel.onDidChange`, the manager's
 * space/layer events), batched into one refresh per tick.
 */
import * as vscode from 'vscode';
import { CHAT_APP_ID } from '../spaces/apps/chat';
import { NOTES_APP_ID, Notes } from '../spaces/apps/notes';
import type { SpaceManager } from '../spaces/spaceManager';
import { treeDescription, type SyncStateSource } from './sync/syncStatus';
import { inWords } from './sync/statusBar';
import { errorMessage, type WorkspaceModel } from './workspaceModel';

export type SpacesNode =
  | { readonly kind: 'space'; readonly uri: vscode.Uri; readonly spaceId: string }
  | { readonly kind: 'opening'; readonly uri: vscode.Uri }
  | { readonly kind: 'fileError'; readonly uri: vscode.Uri; readonly message: string; readonly code?: string }
  | { readonly kind: 'appTree'; readonly spaceId: string; readonly treeId: string; readonly appId: string; readonly name: string }
  | { readonly kind: 'note'; readonly spaceId: string; readonly treeId: string; readonly itemId: string }
  | { readonly kind: 'loadError'; readonly spaceId: string; readonly treeId: string; readonly message: string };

/** `contextValue` of each node kind, used by the `when` clauses of the menus in package.json. */
export const CONTEXT_VALUES: Record<SpacesNode['kind'], string> = {
  space: 'space',
  opening: 'spaceFileOpening',
  fileError: 'spaceFileError',
  appTree: 'appTree',
  note: 'note',
  loadError: 'appTreeError',
};

/** `contextValue` of a notes app tree (menus: `viewItem =~ /^appTree(\.notes)?$/`; Markdown is for notes). */
export const NOTES_TREE_CONTEXT = 'appTree.notes';

/** `contextValue` of a space with a team server connection (menus: `viewItem =~ /^space(\.connected)?$/`). */
export const CONNECTED_SPACE_CONTEXT = 'space.connected';

export function appIcon(appId: string): vscode.ThemeIcon {
  if (appId === NOTES_APP_ID) return new vscode.ThemeIcon('checklist');
  if (appId === CHAT_APP_ID) return new vscode.ThemeIcon('comment-discussion');
  return new vscode.ThemeIcon('symbol-namespace');
}

export class SpacesTreeProvider implements vscode.TreeDataProvider<SpacesNode>, vscode.Disposable {
  private readonly changeEmitter = new vscode.EventEmitter<SpacesNode | undefined>();
  readonly onDidChangeTreeData = this.changeEmitter.event;
  private readonly disposables: vscode.Disposable[] = [];
  private pending: NodeJS.Timeout | undefined;
  /** Counts refreshes fired (for tests that wait for the view to catch up). */
  refreshCount = 0;

  constructor(
    private readonly model: WorkspaceModel,
    private readonly manager: SpaceManager,
    /** Team sync states (SyncConnections), shown on connected spaces. */
    private readonly sync?: SyncStateSource,
  ) {
    if (sync) this.disposables.push(sync.onDidChange(() => this.scheduleRefresh()));
    this.disposables.push(
      model.onDidChange(() => this.scheduleRefresh()),
      manager.onDidChangeSpace(() => this.scheduleRefresh()),
      manager.onDidOpenSpace(() => this.scheduleRefresh()),
      manager.onDidCloseSpace(() => this.scheduleRefresh()),
      manager.onDidChangeLayerState(() => this.scheduleRefresh()),
    );
  }

  private scheduleRefresh(): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.refreshCount++;
      this.changeEmitter.fire(undefined);
    }, 0);
  }

  async getChildren(node?: SpacesNode): Promise<SpacesNode[]> {
    if (!node) {
      await this.model.ready;
      return this.model.entries().map((e): SpacesNode => {
        switch (e.state.kind) {
          case 'open':
            return { kind: 'space', uri: e.uri, spaceId: e.state.spaceId };
          case 'opening':
            return { kind: 'opening', uri: e.uri };
          case 'error':
            return { kind: 'fileError', uri: e.uri, message: e.state.message, code: e.state.code };
        }
      });
    }
    if (node.kind === 'space') {
      const space = this.manager.get(node.spaceId);
      if (!space) return [];
      return space.appTreeRefs().map((r) => ({ kind: 'appTree', spaceId: node.spaceId, treeId: r.id, appId: r.appId, name: r.name }));
    }
    if (node.kind === 'appTree' && node.appId === NOTES_APP_ID) {
      const space = this.manager.get(node.spaceId);
      if (!space) return [];
      try {
        const tree = await space.openAppTree(node.treeId);
        return tree.childIds().map((itemId) => ({ kind: 'note', spaceId: node.spaceId, treeId: node.treeId, itemId }));
      } catch (e) {
        return [{ kind: 'loadError', spaceId: node.spaceId, treeId: node.treeId, message: errorMessage(e) }];
      }
    }
    if (node.kind === 'note') {
      const tree = this.manager.get(node.spaceId)?.loadedAppTree(node.treeId);
      if (!tree || !tree.has(node.itemId)) return [];
      return tree.childIds(node.itemId).map((itemId) => ({ kind: 'note', spaceId: node.spaceId, treeId: node.treeId, itemId }));
    }
    return [];
  }

  getTreeItem(node: SpacesNode): vscode.TreeItem {
    const item = this.buildItem(node);
    item.contextValue =
      node.kind === 'space' && this.sync?.state(node.spaceId) ? CONNECTED_SPACE_CONTEXT : node.kind === 'appTree' && node.appId === NOTES_APP_ID ? NOTES_TREE_CONTEXT : CONTEXT_VALUES[node.kind];
    return item;
  }

  private buildItem(node: SpacesNode): vscode.TreeItem {
    const rel = (uri: vscode.Uri) => vscode.workspace.asRelativePath(uri);
    switch (node.kind) {
      case 'space': {
        const space = this.manager.get(node.spaceId);
        const item = new vscode.TreeItem(space?.name || rel(node.uri), vscode.TreeItemCollapsibleState.Expanded);
        item.id = `space:${node.uri.fsPath}`;
        item.iconPath = new vscode.ThemeIcon('folder-library');
        item.resourceUri = node.uri;
        let states: ReturnType<SpaceManager['layerStates']> = [];
        try {
          states = this.manager.layerStates(node.spaceId);
        } catch {
          // closed meanwhile
        }
        const bad = states.filter((s) => s.state.status !== 'ready' || s.state.secretsError);
        const problem = (s: (typeof states)[number]) =>
          s.state.status !== 'ready' ? `${s.state.status}${s.state.error ? `: ${s.state.error}` : ''}` : `secrets unavailable: ${s.state.secretsError}`;
        const sync = this.sync?.state(node.spaceId);
        const entry = this.model.entry(node.uri)?.state;
        const readOnly = entry?.kind === 'open' && entry.layer.readOnly ? ['read-only'] : [];
        const notes = [...readOnly, ...(sync ? [treeDescription(sync)] : []), ...bad.map(problem)];
        item.description = notes.length ? `${rel(node.uri)} — ${notes.join('; ')}` : rel(node.uri);
        const problems = bad.length ? `\n\n${bad.map((s) => `⚠ ${s.label}: ${problem(s)}`).join('\n\n')}` : '';
        const reason = sync?.reason ? inWords(sync).reason : undefined;
        const server = sync ? `\n\nteam server \`${sync.url}\`: ${treeDescription(sync)}${reason ? ` (${reason.replace(/[`*_[\]<>]/g, ' ')})` : ''}` : '';
        item.tooltip = new vscode.MarkdownString(`**${space?.name ?? ''}**\n\n${rel(node.uri)}\n\nspace id \`${node.spaceId}\`${server}${problems}`);
        if (bad.length) item.iconPath = new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'));
        return item;
      }
      case 'opening': {
        const item = new vscode.TreeItem(rel(node.uri), vscode.TreeItemCollapsibleState.None);
        item.id = `space:${node.uri.fsPath}`;
        item.iconPath = new vscode.ThemeIcon('loading~spin');
        item.description = 'opening…';
        return item;
      }
      case 'fileError': {
        const item = new vscode.TreeItem(rel(node.uri), vscode.TreeItemCollapsibleState.None);
        item.id = `space:${node.uri.fsPath}`;
        item.iconPath = new vscode.ThemeIcon('error', new vscode.ThemeColor('problemsErrorIcon.foreground'));
        item.description = node.message;
        item.tooltip = node.message;
        item.resourceUri = node.uri;
        return item;
      }
      case 'appTree': {
        const isNotes = node.appId === NOTES_APP_ID;
        const loaded = this.manager.get(node.spaceId)?.loadedAppTree(node.treeId);
        const count = loaded ? loaded.childIds().length : undefined;
        // A notes tree known to be empty has nothing to expand: no twistie.
        const expandable = isNotes && count !== 0;
        const item = new vscode.TreeItem(node.name, expandable ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
        item.id = `tree:${node.spaceId}:${node.treeId}`;
        item.iconPath = appIcon(node.appId);
        item.description = count === undefined ? node.appId : `${node.appId} · ${count}`;
        const what = node.appId === CHAT_APP_ID ? 'message' : 'item';
        const counted = count === undefined ? '' : `\n${count} ${what}${count === 1 ? '' : 's'}${isNotes ? ' at the top level' : ''}`;
        item.tooltip = `${node.name} (${node.appId})${counted}\ntree id ${node.treeId}`;
        item.command = { command: 'spaces.openAppTree', title: 'Open in Editor', arguments: [{ spaceId: node.spaceId, treeId: node.treeId }] };
        return item;
      }
      case 'note': {
        const tree = this.manager.get(node.spaceId)?.loadedAppTree(node.treeId);
        const note = tree && tree.has(node.itemId) ? new Notes(tree).item(node.itemId) : undefined;
        const children = note?.children.length ?? 0;
        const item = new vscode.TreeItem(note?.text || '(empty)', children ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None);
        item.id = `note:${node.spaceId}:${node.treeId}:${node.itemId}`;
        const label = note?.text || '(empty)';
        item.checkboxState = {
          state: note?.done ? vscode.TreeItemCheckboxState.Checked : vscode.TreeItemCheckboxState.Unchecked,
          tooltip: note?.done ? 'Done (Space unchecks)' : 'Not done (Space checks)',
          accessibilityInformation: { label: `${note?.done ? 'Done' : 'Not done'}: ${label}`, role: 'checkbox' },
        };
        item.command = { command: 'spaces.openAppTree', title: 'Open in Editor', arguments: [{ spaceId: node.spaceId, treeId: node.treeId, itemId: node.itemId }] };
        const subs = `${children} sub-item${children === 1 ? '' : 's'}`;
        if (children) item.description = String(children);
        item.tooltip = children ? `${label}\n${subs}` : label;
        item.accessibilityInformation = { label: children ? `${label}, ${note?.done ? 'done' : 'not done'}, ${subs}` : `${label}, ${note?.done ? 'done' : 'not done'}` };
        return item;
      }
      case 'loadError': {
        const item = new vscode.TreeItem('cannot load this app tree', vscode.TreeItemCollapsibleState.None);
        item.iconPath = new vscode.ThemeIcon('error', new vscode.ThemeColor('problemsErrorIcon.foreground'));
        item.description = node.message;
        item.tooltip = node.message;
        return item;
      }
    }
  }

  getParent(node: SpacesNode): SpacesNode | undefined {
    if (node.kind === 'appTree') {
      const e = this.model.entryForSpace(node.spaceId);
      return e ? { kind: 'space', uri: e.uri, spaceId: node.spaceId } : undefined;
    }
    if (node.kind === 'note') {
      const tree = this.manager.get(node.spaceId)?.loadedAppTree(node.treeId);
      const parentId = tree?.get(node.itemId)?.parentId;
      if (!tree || !parentId) return undefined;
      if (parentId === tree.rootId) {
        const ref = this.manager.get(node.spaceId)?.appTreeRef(node.treeId);
        return ref ? { kind: 'appTree', spaceId: node.spaceId, treeId: node.treeId, appId: ref.appId, name: ref.name } : undefined;
      }
      return { kind: 'note', spaceId: node.spaceId, treeId: node.treeId, itemId: parentId };
    }
    return undefined;
  }

  dispose(): void {
    if (this.pending) clearTimeout(this.pending);
    for (const d of this.disposables.splice(0)) d.dispose();
    this.changeEmitter.dispose();
  }
}
