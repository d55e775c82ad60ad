/**
 * The extension's entry: one SpaceManager for the window, the workspace model of its `*.space`
 * files, the Spaces view and the commands. Everything is registered on the context, and
 * `deactivate` closes the manager, which flushes every space to its file.
 */
import * as vscode from 'vscode';
import { SpaceManager } from './spaces/spaceManager';
import { registerCommands } from './views/commands';
import { FileKeyStore } from './views/fileKey';
import { SpacesTreeProvider, type SpacesNode } from './views/spacesTree';
import { SpacesDragAndDrop } from './views/treeDragAndDrop';
import { WorkspaceModel } from './views/workspaceModel';

/** What `activate` returns: for other extensions and for the extension's own tests. */
export interface SpacesApi {
  readonly manager: SpaceManager;
  readonly model: WorkspaceModel;
  readonly tree: SpacesTreeProvider;
  readonly dragAndDrop: SpacesDragAndDrop;
}

let model: WorkspaceModel | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<SpacesApi> {
  const log = vscode.window.createOutputChannel('Spaces', { log: true });
  context.subscriptions.push(log);
  const manager = new SpaceManager();
  log.info(`activating (peer ${manager.peerId}, VS Code ${vscode.version})`);

  const m = new WorkspaceModel(manager, new FileKeyStore(context.secrets, log), log);
  model = m;
  const tree = new SpacesTreeProvider(m, manager);
  const dragAndDrop = new SpacesDragAndDrop(manager, log);
  const treeView = vscode.window.createTreeView<SpacesNode>('spaces.tree', { treeDataProvider: tree, showCollapseAll: true, canSelectMany: false, dragAndDropController: dragAndDrop });
  context.subscriptions.push(
    tree,
    dragAndDrop,
    treeView,
    ...registerCommands(m, log, treeView),
    manager.onDidError((e) => log.error(`space ${e.spaceId}${e.layerId ? ` (${e.layerId})` : ''}: ${e.message}`)),
    manager.onDidChangeLayerState((e) => {
      const line = `space ${e.spaceId}: ${e.label} is ${e.state.status}${e.state.error ? ` (${e.state.error})` : ''}`;
      if (e.state.status === 'ready') log.info(line);
      else log.warn(line);
    }),
  );
  // Not awaited: the view shows progress while the workspace is scanned.
  void m.start();
  return { manager, model: m, tree, dragAndDrop };
}

export async function deactivate(): Promise<void> {
  const m = model;
  model = undefined;
  // Flushes every open space to its file and stops the file watcher.
  await m?.close();
}
