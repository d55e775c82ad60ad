/**
 * Team sync in the extension, wired together: the token store (SecretStorage), the connections
 * that follow the settings, the commands, and the status bar item that follows the active space.
 */
import * as vscode from 'vscode';
import type { ActiveSpace } from '../activeSpace';
import type { SpacesNode } from '../spacesTree';
import type { WorkspaceModel } from '../workspaceModel';
import { SyncConnections, type SyncConnectionsOptions } from './connections';
import { SyncStatusBar } from './statusBar';
import { registerSyncCommands } from './syncCommands';
import { TokenStore } from './tokens';

export class TeamSync implements vscode.Disposable {
  readonly tokens: TokenStore;
  readonly connections: SyncConnections;
  private bar: SyncStatusBar | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly model: WorkspaceModel,
    secrets: vscode.SecretStorage,
    private readonly log: vscode.LogOutputChannel,
    opts: SyncConnectionsOptions,
  ) {
    this.tokens = new TokenStore(secrets);
    this.connections = new SyncConnections(model, this.tokens, log, opts);
    this.disposables.push(this.connections, this.tokens);
  }

  /** The status bar item (after `start`). */
  get statusBar(): SyncStatusBar | undefined {
    return this.bar;
  }

  /** Registers the commands and the status bar item, and connects what the settings say. */
  start(treeView: vscode.TreeView<SpacesNode>, activeSpace: ActiveSpace): void {
    this.bar = new SyncStatusBar(activeSpace, this.connections, this.model.manager);
    this.disposables.push(this.bar);
    for (const d of registerSyncCommands({ model: this.model, sync: this.connections, tokens: this.tokens, log: this.log, treeView, activeSpace })) this.disposables.push(d);
    void this.connections.start();
  }

  dispose(): void {
    for (const d of this.disposables.splice(0).reverse()) d.dispose();
  }
}
