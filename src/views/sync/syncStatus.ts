/**
 * The sync state of one connected space as the UI shows it (status bar, tree, log), derived from
 * its ServerLayer. Pure: no `vscode`, so the wording is unit-tested.
 */
import type { LayerConnectionState } from '../../persistence/contract';
import type { Event } from '../../spaces/events';
import { isAuthStop, type StopReason } from '../../protocol/stopReasons';

/**
 * connecting: the first attempt is under way; syncing: catching up or sending; connected: caught
 * up; offline: the server cannot be reached (retrying by itself); error: what retrying cannot fix
 * (a refused token, an unknown space, a read-only token with edits waiting); signed-out: no token.
 */
export type SyncStatus = 'connecting' | 'syncing' | 'connected' | 'offline' | 'error' | 'signed-out';

export interface SpaceSyncState {
  readonly spaceId: string;
  /** The server's base URL. */
  readonly url: string;
  readonly status: SyncStatus;
  /** Why it is offline or in error. */
  readonly reason?: string;
  /** Local ops the server has not acknowledged yet. */
  readonly pendingOps: number;
  /** The last error seen on this connection (kept after it recovers), for the tooltip. */
  readonly lastError?: string;
  /** The server refused the token or the space to this token (stop reasons `unauthorized`, `forbidden`). */
  readonly auth?: 'unauthorized' | 'forbidden';
}

/** Where views read sync states (SyncConnections): `onDidChange` fires with a space id. */
export interface SyncStateSource {
  state(spaceId: string): SpaceSyncState | undefined;
  readonly onDidChange: Event<string>;
}

/** The UI status of a layer state it reported (before its first report, a connection is `connecting`). */
export function statusOf(state: LayerConnectionState): { status: SyncStatus; reason?: string } {
  switch (state.status) {
    case 'connected':
    case 'syncing':
      return { status: state.status };
    case 'offline':
      return { status: 'offline', reason: state.reason };
    case 'error':
      return { status: 'error', reason: state.reason };
  }
}

/** What kind of auth failure a stop reason (ServerLayer.stopReason) is. */
export function authFailureOf(reason: StopReason | undefined): SpaceSyncState['auth'] {
  return isAuthStop(reason) ? reason : undefined;
}

const WORDS: Record<SyncStatus, string> = {
  connecting: 'connecting…',
  syncing: 'syncing…',
  connected: 'synced',
  offline: 'offline',
  error: 'sync error',
  'signed-out': 'not signed in',
};

const ICONS: Record<SyncStatus, string> = {
  connecting: '$(sync~spin)',
  syncing: '$(sync~spin)',
  connected: '$(cloud)',
  offline: '$(cloud-offline)',
  error: '$(error)',
  'signed-out': '$(error)',
};

export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** Short text for the tree's description of a connected space, e.g. "synced with host:8787". */
export function treeDescription(s: SpaceSyncState): string {
  const host = hostOf(s.url);
  switch (s.status) {
    case 'connected':
      return `synced with ${host}`;
    case 'connecting':
    case 'syncing':
      return `${WORDS[s.status]} ${host}`;
    default:
      return `${WORDS[s.status]} (${host})`;
  }
}

/** The status bar text: an icon and a word. */
export function statusBarText(s: SpaceSyncState): string {
  const word = WORDS[s.status];
  return `${ICONS[s.status]} ${word[0].toUpperCase()}${word.slice(1)}`;
}

/** True when a click on the status bar item should retry (else it shows the log). */
export function clickRetries(s: SpaceSyncState): boolean {
  return s.status === 'offline' || s.status === 'error' || s.status === 'signed-out';
}

/** The lines of the tooltip, as Markdown; `md` escapes plain text (names, URLs, reasons). */
export function tooltipLines(s: SpaceSyncState, spaceName: string, md: (text: string) => string = (t) => t): string[] {
  const lines = [`**${md(spaceName)}** — ${WORDS[s.status]}`, `Server: ${md(s.url)}`, `Pending ops: ${s.pendingOps}`];
  if (s.reason) lines.push(`Reason: ${md(s.reason)}`);
  if (s.lastError && s.lastError !== s.reason) lines.push(`Last error: ${md(s.lastError)}`);
  lines.push(clickRetries(s) ? (s.status === 'signed-out' || s.auth ? 'Click to sign in' : 'Click to retry now') : 'Click to show the log');
  return lines;
}
