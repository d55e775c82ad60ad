/**
 * The extension's entry: one SpaceManager for the window, the workspace model of its `*.space`
 * files, the Spaces view and the commands. Everything is registered on the context, and
 * `deactivate` closes the manager, which flushes every space to its file.
 */
import * as vscode from 'vscode';
import { SpaceManager } from './spaces/spaceManager';
import { ActiveSpace } from './views/activeSpace';
import { nodeSpaceId } from './views/commandHelpers';
import { registerCommands } from './views/commands';
import { registerSpaceEditor } from './views/editor/registerEditor';
import type { SpaceEditorProvider } from './views/editor/spaceEditorProvider';
import { FileKeyStore } from './views/fileKey';
import { OpeningProgress } from './views/openingProgress';
import { registerSecretsCommands } from './views/secretsCommands';
import { SpacesTreeProvider, type SpacesNode } from './views/spacesTree';
import { TeamSync } from './views/sync/teamSync';
import { registerTeam, type TeamApi } from './views/team/registerTeam';
import { SpacesDragAndDrop } from './views/treeDragAndDrop';
import { WorkspaceModel } from './views/workspaceModel';

/** What `activate` returns: for other extensions and for the extension's own tests. */
export interface SpacesApi {
  readonly manager: SpaceManager;
  readonly model: WorkspaceModel;
  readonly tree: SpacesTreeProvider;
  readonly dragAndDrop: SpacesDragAndDrop;
  /** The space the user works in (the view's selection, the space editor): `activeSpace.set(spaceId | undefined)`. */
  readonly activeSpace: ActiveSpace;
  /** Team sync: tokens, connections (`sync.connections.state(spaceId)`), the status bar item. */
  readonly sync: TeamSync;
  readonly editor: SpaceEditorProvider;
  /** The Team Server view, the join flow and join links. */
  readonly team: TeamApi;
  readonly timings: ActivationTimings;
}

/** How long activation took (ms, `performance.now()` deltas); also written to the log. */
export interface ActivationTimings {
  /** The duration of `activate()` itself. */
  readonly activateMs: number;
  /** From the start of `activate()` until every space file found at startup was opened (or failed); undefined until then. */
  readonly readyMs: number | undefined;
  /** The number of space files found at startup; undefined until then. */
  readonly spaceFiles: number | undefined;
}

let model: WorkspaceModel | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<SpacesApi> {
  const t0 = performance.now();
  const log = vscode.window.createOutputChannel('Spaces', { log: true });
  context.subscriptions.push(log);
  const manager = new SpaceManager();
  log.info(`activating (peer ${manager.peerId}, VS Code ${vscode.version})`);

  const keys = new FileKeyStore(context.secrets, log);
  // Fetched while the workspace is searched for space files rather than after: every file waits
  // for it before it opens, and it is a SecretStorage round trip (three on first use).
  void keys.get();
  const m = new WorkspaceModel(manager, keys, log);
  model = m;
  const version = (context.extension.packageJSON as { version?: unknown }).version;
  const client = `spaces-vscode/${typeof version === 'string' ? version : '0'}`;
  const sync = new TeamSync(m, context.secrets, log, { client });
  const activeSpace = new ActiveSpace();
  const tree = new SpacesTreeProvider(m, manager, sync.connections);
  const editor = registerSpaceEditor(m, context.extensionUri, log);
  const team = registerTeam({ model: m, sync: sync.connections, tokens: sync.tokens, keys, log, activeSpace, client }, editor.history, context.extension.id);
  const dragAndDrop = new SpacesDragAndDrop(manager, log, editor.history);
  const treeView = vscode.window.createTreeView<SpacesNode>('spaces.tree', { treeDataProvider: tree, showCollapseAll: true, canSelectMany: false, dragAndDropController: dragAndDrop });
  const disposables: vscode.Disposable[] = [
    tree,
    dragAndDrop,
    treeView,
    ...registerCommands(m, log, treeView, { history: editor.history, activeSpace }),
    ...registerSecretsCommands(m, keys, log, treeView),
    sync,
    activeSpace,
    new OpeningProgress(m),
    treeView.onDidChangeSelection((e) => {
      if (e.selection.length) activeSpace.set(nodeSpaceId(e.selection[0]));
    }),
    ...editor.disposables,
    ...team.disposables,
    editor.provider.onDidChangeActiveSpace((spaceId) => activeSpace.set(spaceId)),
    manager.onDidError((e) => log.error(`space ${e.spaceId}${e.layerId ? ` (${e.layerId})` : ''}: ${e.message}`)),
    manager.onDidChangeLayerState((e) => {
      const line = `space ${e.spaceId}: ${e.label} is ${e.state.status}${e.state.error ? ` (${e.state.error})` : ''}`;
      if (e.state.status === 'ready') log.info(line);
      else log.warn(line);
    }),
  ];
  for (const d of disposables) context.subscriptions.push(d);
  sync.start(treeView, activeSpace);
  const timings: { -readonly [K in keyof ActivationTimings]: ActivationTimings[K] } = { activateMs: 0, readyMs: undefined, spaceFiles: undefined };
  // Not awaited: the view shows progress while the workspace is scanned.
  void m.start().then(() => {
    timings.readyMs = performance.now() - t0;
    timings.spaceFiles = m.entries().length;
    log.info(`opened ${timings.spaceFiles} space file(s) ${timings.readyMs.toFixed(1)} ms after activation started`);
  });
  timings.activateMs = performance.now() - t0;
  log.info(`activated in ${timings.activateMs.toFixed(1)} ms`);
  return { manager, model: m, tree, dragAndDrop, activeSpace, sync, timings, editor: editor.provider, team: team.api };
}

export async function deactivate(): Promise<void> {
  const m = model;
  model = undefined;
  // Flushes every open space to its file and stops the file watcher.
  await m?.close();
}
