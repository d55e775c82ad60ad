/**
 * The status bar item of team sync: the state of the active space's server connection —
 * $(cloud) synced, $(sync~spin) syncing, $(debug-disconnect) offline, $(error) error or not signed
 * in — with the server, pending ops and the last error in its tooltip (a socket error said in
 * words: "cannot reach host:port — retrying"). A click retries (or signs in) when offline or in
 * error, and shows the log otherwise. Hidden when the active space has no server connection.
 */
import * as vscode from 'vscode';
import type { SpaceManager } from '../../spaces/spaceManager';
import type { ActiveSpace } from '../activeSpace';
import type { SyncConnections } from './connections';
import { clickRetries, hostOf, statusBarText, tooltipLines, type SpaceSyncState, type SyncStatus } from './syncStatus';

const RENDER_DELAY_MS = 100;

/**
 * The icon per state: codicons this VS Code has (`cloud-offline` is not one, it showed nothing).
 * The words stay syncStatus.ts's.
 */
const ICONS: Record<SyncStatus, string> = {
  connecting: '$(sync~spin)',
  syncing: '$(sync~spin)',
  connected: '$(cloud)',
  offline: '$(debug-disconnect)',
  error: '$(error)',
  'signed-out': '$(error)',
};

/** Node's socket error codes that mean "the server cannot be reached now" (retrying may help). */
const UNREACHABLE: Record<string, string> = {
  ECONNREFUSED: 'cannot reach',
  ECONNRESET: 'lost the connection to',
  ETIMEDOUT: 'no answer from',
  EHOSTUNREACH: 'cannot reach',
  ENETUNREACH: 'no network route to',
  ENOTFOUND: 'cannot find',
  EAI_AGAIN: 'cannot look up',
  EPIPE: 'lost the connection to',
};

/**
 * A connection error in words for people: "connect ECONNREFUSED 127.0.0.1:40987" → "cannot reach
 * 127.0.0.1:40987 — retrying" (retrying only while offline). Other reasons are kept as they are.
 */
export function reasonInWords(reason: string, url: string, retrying: boolean): string {
  const code = /\b(E[A-Z_]{3,})\b/.exec(reason)?.[1];
  const what = code ? UNREACHABLE[code] : undefined;
  if (!what) return reason;
  return `${what} ${hostOf(url)}${retrying ? ' — retrying' : ''}`;
}

/** The state with its reason and last error in words. */
export function inWords(s: SpaceSyncState): SpaceSyncState {
  const retrying = s.status === 'offline';
  return {
    ...s,
    reason: s.reason === undefined ? undefined : reasonInWords(s.reason, s.url, retrying),
    lastError: s.lastError === undefined ? undefined : reasonInWords(s.lastError, s.url, false),
  };
}

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
    const words = inWords(state);
    this.item.text = `${ICONS[state.status]} ${statusBarText(state).replace(/^\$\([^)]*\)\s*/, '')}`;
    this.item.tooltip = new vscode.MarkdownString(tooltipLines(words, name, escapeMarkdown).join('\n\n'));
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
