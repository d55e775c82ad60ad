/**
 * The status bar item of team sync: the state of the active space's server connection —
 * $(cloud) synced, $(sync~spin) syncing, $(cloud-offline) offline, $(error) error or not signed in —
 * with the server, pending ops and the last error in its tooltip. A click retries (or signs in)
 * when offline or in error, and shows the log otherwise. Hidden when the active space has no
 * server connection.
 */
import * as vscode from 'vscode';
import type { SpaceManager } from '../../spaces/spaceManager';
import type { ActiveSpace } from '../activeSpace';
import type { SyncConnections } from './connections';
import { clickRetries, statusBarText, tooltipLines } from './syncStatus';

const RENDER_DELAY_MS = 100;

function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>~]/g, '\\$&');
}

export class SyncStatusBar implements vscode.Disposable {
  readonly item: vscode.StatusBarItem;
  private visible = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly active: ActiveSpace,
    private readonly sync: SyncConnections,
    private readonly manager: SpaceManager,
  ) {
    this.item = vscode.window.createStatusBarItem('spaces.sync', vscode.StatusBarAlignment.Left, 50);
    this.item.name = 'Spaces: Team Sync';
    this.disposables.push(
      this.item,
      active.onDidChange(() => this.render()),
      sync.onDidChange((id) => id === active.spaceId && this.render()),
      // Pending counts change with every edit and ack: re-rendered at most every 100 ms.
      sync.onDidSync((id) => id === active.spaceId && this.schedule()),
      manager.onDidChangeSpace((c) => c.spaceId === active.spaceId && this.schedule()),
      manager.onDidChangeLayerState((c) => c.spaceId === active.spaceId && this.schedule()),
    );
    this.render();
  }

  /** Whether the item is shown (for tests). */
  get shown(): boolean {
    return this.visible;
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.render();
    }, RENDER_DELAY_MS);
  }

  render(): void {
    const spaceId = this.active.spaceId;
    const state = spaceId ? this.sync.state(spaceId) : undefined;
    if (!spaceId || !state) {
      this.item.hide();
      this.visible = false;
      return;
    }
    const name = this.manager.get(spaceId)?.name ?? spaceId;
    this.item.text = statusBarText(state);
    this.item.tooltip = new vscode.MarkdownString(tooltipLines(state, name, escapeMarkdown).join('\n\n'));
    this.item.command = clickRetries(state) ? { command: 'spaces.retrySync', title: 'Retry', arguments: [{ spaceId }] } : { command: 'spaces.showLog', title: 'Show Log' };
    this.item.backgroundColor =
      state.status === 'error' || state.status === 'signed-out'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : state.status === 'offline'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
    this.item.accessibilityInformation = { label: `Spaces team sync: ${this.item.text.replace(/\$\([^)]*\)\s*/g, '')}` };
    this.item.show();
    this.visible = true;
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}
