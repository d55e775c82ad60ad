/**
 * SyncConnections: which open spaces sync with a team server, and their ServerLayers.
 *
 * The settings decide (`spaces.server.connections`, see settings.ts); this class makes the open
 * spaces match them, and again whenever the settings change, a space file is (re)opened, or the
 * token of a server changes (sign-in and sign-out, here or in another window):
 *
 * - connect: a ServerLayer whose sync state lives in the space's FileLayer (as `spaces sync`
 *   does) is added to the space's session with `manager.addLayer`. No token → state
 *   `signed-out` and a "Sign In" prompt.
 * - disconnect: `manager.removeLayer` (what was queued is handed over, the layer closes; unsent
 *   ops stay in the file's outbox for the next connection).
 *
 * Every state change is logged. A first sync that takes longer than a second shows a progress
 * notification; a refused token or space (stop reasons `unauthorized`, `forbidden`) shows an error with "Sign In".
 * Tokens are never logged.
 */
import * as vscode from 'vscode';
import { ServerLayer, type ServerLayerTimings, type SyncEvent } from '../../persistence/server/serverLayer';
import { errorMessage, type WorkspaceModel } from '../workspaceModel';
import { PROGRESS_DELAY_MS, progressAfter, type DelayedProgress } from '../progress';
import { CONNECTIONS_KEY, SETTINGS_SECTION, URL_KEY, parseConnectionSettings, serverOrigin, type ConnectionSettings } from './settings';
import { authFailureOf, hostOf, statusOf, type SpaceSyncState, type SyncStatus } from './syncStatus';
import type { TokenStore } from './tokens';
import type { StopReason } from '../../protocol/stopReasons';

export interface SyncConnectionsOptions {
  /** Sent to the server in `hello`, e.g. "spaces-vscode/0.1.0". */
  readonly client: string;
  readonly progressDelayMs?: number;
  readonly timings?: Partial<ServerLayerTimings>;
}

interface Connection {
  readonly spaceId: string;
  readonly url: string;
  /** The token this connection was made with (memory only), undefined when signed out. */
  readonly token: string | undefined;
  readonly layer: ServerLayer | undefined;
  /** Resolves once `manager.addLayer` is done (or failed). */
  attached: Promise<void>;
  status: SyncStatus;
  reason?: string;
  lastError?: string;
  auth?: SpaceSyncState['auth'];
  /** Set when the server's token changed (or a retry while signed out): the next pass reads the token again and reconnects if it differs. */
  recheckToken: boolean;
  /** Disconnected: its listeners are gone and its events are ignored. */
  closed: boolean;
  readonly subs: vscode.Disposable[];
  progress?: DelayedProgress;
}

export class SyncConnections implements vscode.Disposable {
  private readonly conns = new Map<string, Connection>();
  private readonly changeEmitter = new vscode.EventEmitter<string>();
  /** The sync state of a space changed (or it was connected / disconnected): its id. */
  readonly onDidChange = this.changeEmitter.event;
  private readonly activityEmitter = new vscode.EventEmitter<string>();
  /** Something was received or acknowledged for a space (its pending count may have changed). */
  readonly onDidSync = this.activityEmitter.event;
  private readonly disposables: vscode.Disposable[] = [];
  private settings: ConnectionSettings = { defaultUrl: undefined, connections: new Map(), problems: [] };
  private loggedProblems = '';
  /** `origin|kind` of notifications shown, so many spaces of one server prompt once. */
  private readonly notified = new Set<string>();
  private running: Promise<void> | undefined;
  private dirty = false;
  private disposed = false;

  constructor(
    private readonly model: WorkspaceModel,
    private readonly tokens: TokenStore,
    private readonly log: vscode.LogOutputChannel,
    private readonly opts: SyncConnectionsOptions,
  ) {}

  private get manager() {
    return this.model.manager;
  }

  /** Starts following the settings, the workspace's files and the tokens; connects what is configured. */
  start(): Promise<void> {
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration(SETTINGS_SECTION)) void this.reconcile();
      }),
      this.model.onDidChange(() => void this.reconcile()),
      this.manager.onDidCloseSpace((spaceId) => this.spaceClosed(spaceId)),
      this.tokens.onDidChange((origin) => this.tokenChanged(origin)),
    );
    return this.reconcile();
  }

  /** The configured server of a space (whether or not it is open), from the settings. */
  configuredUrl(spaceId: string): string | undefined {
    return this.readSettings().connections.get(spaceId);
  }

  /** The default server (`spaces.server.url`), normalized, or undefined. */
  defaultUrl(): string | undefined {
    return this.readSettings().defaultUrl;
  }

  /** Whether the open space has a server connection (in any state). */
  isConnected(spaceId: string): boolean {
    return this.conns.has(spaceId);
  }

  /** The sync state of a connected space, undefined when it has no server connection. */
  state(spaceId: string): SpaceSyncState | undefined {
    const c = this.conns.get(spaceId);
    if (!c) return undefined;
    let queued = 0;
    if (c.layer) {
      try {
        queued = this.manager.layerStates(spaceId).find((l) => l.layerId === c.layer?.id)?.state.pendingOps ?? 0;
      } catch {
        // closed meanwhile
      }
    }
    return {
      spaceId,
      url: c.url,
      status: c.status,
      reason: c.reason,
      pendingOps: (c.layer?.outboxSize ?? 0) + queued,
      lastError: c.lastError,
      auth: c.auth,
    };
  }

  /** The ServerLayer of a connected space (for tests and tools). */
  layer(spaceId: string): ServerLayer | undefined {
    return this.conns.get(spaceId)?.layer;
  }

  /** Resolves once the connection of `spaceId` (if any) is attached to its space. */
  async whenAttached(spaceId: string): Promise<void> {
    await this.conns.get(spaceId)?.attached;
  }

  /** The server base URLs of the current connections. */
  servers(): string[] {
    return [...new Set([...this.conns.values()].map((c) => c.url))];
  }

  /**
   * Makes the open spaces match the settings. Passes never overlap; a call during a pass makes
   * one more pass afterwards, which the returned promise includes.
   */
  reconcile(): Promise<void> {
    this.dirty = true;
    this.running ??= this.loop().finally(() => (this.running = undefined));
    return this.running;
  }

  private async loop(): Promise<void> {
    while (this.dirty && !this.disposed) {
      this.dirty = false;
      this.settings = this.readSettings();
      const open = new Set(this.model.entries().flatMap((e) => (e.state.kind === 'open' ? [e.state.spaceId] : [])));
      const ids = new Set([...open, ...this.conns.keys()]);
      await Promise.all(
        [...ids].map((id) =>
          this.apply(id, open.has(id)).catch((e: unknown) => {
            this.log.error(`space ${id}: team sync: ${errorMessage(e)}`);
          }),
        ),
      );
    }
  }

  private readSettings(): ConnectionSettings {
    const cfg = vscode.workspace.getConfiguration(SETTINGS_SECTION);
    const s = parseConnectionSettings(cfg.get<unknown>(URL_KEY), cfg.get<unknown>(CONNECTIONS_KEY));
    const problems = s.problems.join('\n');
    if (problems && problems !== this.loggedProblems) for (const p of s.problems) this.log.warn(`settings: ${p} (ignored)`);
    this.loggedProblems = problems;
    return s;
  }

  private async apply(spaceId: string, isOpen: boolean): Promise<void> {
    const want = isOpen ? this.settings.connections.get(spaceId) : undefined;
    const cur = this.conns.get(spaceId);
    if (cur && cur.url === want) {
      if (!cur.recheckToken) return;
      cur.recheckToken = false;
      const now = await this.tokens.get(want);
      if (now?.token === cur.token) {
        // The same token again (e.g. signed in after the server's admin fixed it): try it now.
        if (cur.layer?.stopped) cur.layer.retry();
        return;
      }
    }
    if (cur) await this.disconnect(cur, want ? 'reconnecting' : isOpen ? 'disconnected in the settings' : 'space closed');
    if (want && !this.disposed) await this.connect(spaceId, want);
  }

  private name(spaceId: string): string {
    return this.manager.get(spaceId)?.name ?? spaceId;
  }

  private describe(c: Connection): string {
    return `space ${c.spaceId} ("${this.name(c.spaceId)}") on ${c.url}`;
  }

  private async connect(spaceId: string, url: string): Promise<void> {
    const entry = this.model.entryForSpace(spaceId);
    if (!entry || entry.state.kind !== 'open') return;
    const fileLayer = entry.state.layer;
    let cred: Awaited<ReturnType<TokenStore['get']>>;
    try {
      cred = await this.tokens.get(url);
    } catch (e) {
      cred = undefined;
      this.log.error(`cannot read the token of ${serverOrigin(url)} from SecretStorage: ${errorMessage(e)}`);
    }
    if (this.disposed || this.conns.has(spaceId)) return;
    if (!cred) {
      const c = this.record(spaceId, url, undefined, undefined);
      c.status = 'signed-out';
      c.reason = `not signed in to ${serverOrigin(url)}`;
      this.log.warn(`${this.describe(c)}: not signed in (run "Spaces: Sign In to Team Server", or set $SPACES_SERVER_TOKEN)`);
      this.notifySignIn(url, `Spaces: sign in to ${serverOrigin(url)} to sync "${this.name(spaceId)}".`, 'signed-out');
      this.changeEmitter.fire(spaceId);
      return;
    }
    let layer: ServerLayer;
    try {
      layer = new ServerLayer({ url, token: cred.token, peerId: this.manager.peerId, spaceId, syncState: fileLayer, client: this.opts.client, timings: this.opts.timings });
    } catch (e) {
      this.log.error(`space ${spaceId}: cannot connect to ${url}: ${errorMessage(e)}`);
      return;
    }
    const c = this.record(spaceId, url, cred.token, layer);
    this.log.info(`${this.describe(c)}: connecting (token from ${cred.source === 'environment' ? '$SPACES_SERVER_TOKEN' : 'SecretStorage'})`);
    c.subs.push(
      layer.onStateChange(() => this.layerStateChanged(c)),
      layer.onSyncEvent((e) => this.syncEvent(c, e)),
    );
    this.startFirstSyncProgress(c);
    this.changeEmitter.fire(spaceId);
    c.attached = this.manager.addLayer(spaceId, layer).then(
      () => undefined,
      async (e: unknown) => {
        if (!c.closed) this.log.error(`${this.describe(c)}: cannot attach the server to the space: ${errorMessage(e)}`);
        c.lastError = errorMessage(e);
        c.status = 'error';
        c.reason = errorMessage(e);
        await layer.close().catch(() => undefined);
        this.changeEmitter.fire(spaceId);
      },
    );
    await c.attached;
  }

  private record(spaceId: string, url: string, token: string | undefined, layer: ServerLayer | undefined): Connection {
    const c: Connection = { spaceId, url, token, layer, attached: Promise.resolve(), status: 'connecting', recheckToken: false, closed: false, subs: [] };
    this.conns.set(spaceId, c);
    return c;
  }

  private async disconnect(c: Connection, why: string): Promise<void> {
    if (this.conns.get(c.spaceId) === c) this.conns.delete(c.spaceId);
    c.closed = true;
    c.progress?.dispose();
    for (const d of c.subs.splice(0)) d.dispose();
    await c.attached;
    if (c.layer && this.manager.get(c.spaceId)) {
      try {
        const unsaved = await this.manager.removeLayer(c.spaceId, c.layer.id);
        if (unsaved) this.log.warn(`${this.describe(c)}: ${unsaved.pendingOps} op(s) were not handed to the server layer${unsaved.error ? ` (${unsaved.error})` : ''}; they are sent at the next connection`);
      } catch (e) {
        this.log.warn(`${this.describe(c)}: removing the server layer: ${errorMessage(e)}`);
      }
    }
    const left = c.layer?.outboxSize ?? 0;
    this.log.info(`${this.describe(c)}: disconnected (${why})${left ? `; ${left} op(s) not acknowledged yet stay in the file's outbox` : ''}`);
    this.changeEmitter.fire(c.spaceId);
  }

  /** The manager closed the space (its file was closed or deleted): its layers are closed already. */
  private spaceClosed(spaceId: string): void {
    const c = this.conns.get(spaceId);
    if (!c) return;
    this.conns.delete(spaceId);
    c.closed = true;
    c.progress?.dispose();
    for (const d of c.subs.splice(0)) d.dispose();
    this.log.info(`${this.describe(c)}: disconnected (space closed)`);
    this.changeEmitter.fire(spaceId);
  }

  private tokenChanged(origin: string): void {
    for (const k of [...this.notified]) if (k.startsWith(`${origin}|`)) this.notified.delete(k);
    let any = false;
    for (const c of this.conns.values()) {
      if (serverOrigin(c.url) !== origin) continue;
      c.recheckToken = true;
      any = true;
    }
    if (any) void this.reconcile();
  }

  /** Reconnects now the connections of the server at `url` whose token changed (after sign-in/out). */
  reconnectServer(url: string): Promise<void> {
    this.tokenChanged(serverOrigin(url));
    return this.reconcile();
  }

  /** Retry now: the connection (skipping its backoff) and any degraded layer of the space. */
  retry(spaceId: string): void {
    const c = this.conns.get(spaceId);
    if (!c) return;
    this.log.info(`${this.describe(c)}: retrying now`);
    c.layer?.retry();
    if (!c.layer) c.recheckToken = true;
    try {
      this.manager.retryLayers(spaceId);
    } catch {
      // closed meanwhile
    }
    if (!c.layer) void this.reconcile();
  }

  private layerStateChanged(c: Connection): void {
    if (c.closed || !c.layer) return;
    const layer = c.layer;
    const { status, reason } = statusOf(layer.state);
    c.status = status;
    c.reason = reason;
    c.auth = status === 'error' && layer.stopped ? authFailureOf(layer.stopReason) : undefined;
    if (reason && (status === 'error' || status === 'offline')) c.lastError = reason;
    const line = `${this.describe(c)}: ${status}${reason ? ` (${reason})` : ''}`;
    if (status === 'error') this.log.error(line);
    else if (status === 'offline') this.log.warn(line);
    else this.log.info(line);
    if (status === 'error' && layer.stopped) this.notifyStopped(c, layer.stopReason);
    this.changeEmitter.fire(c.spaceId);
  }

  private syncEvent(c: Connection, e: SyncEvent): void {
    if (c.closed) return;
    const who = this.describe(c);
    switch (e.type) {
      case 'welcome':
        this.log.info(`${who}: welcome as ${e.user} (server ${e.serverId}, ${e.peerIds.length} peer id(s) announced)`);
        break;
      case 'synced':
        this.log.info(`${who}: caught up at seq ${e.seq} (role ${e.role}; ${e.received} op(s) received, ${e.outbox} waiting to be sent)`);
        break;
      case 'received':
        this.log.debug(`${who}: received ${e.ops} op(s) of tree ${e.treeId} (seq ${e.seq})`);
        break;
      case 'acked':
        this.log.debug(`${who}: ${e.ops} op(s) of tree ${e.treeId} acknowledged (seq ${e.seq})`);
        break;
      case 'secrets-received':
      case 'secrets-acked':
        this.log.debug(`${who}: ${e.type === 'secrets-received' ? 'received' : 'sent'} ${e.count} secret record(s)`);
        break;
      case 'refused':
        c.lastError = `the server refused ${e.ops ? `${e.ops} op(s)` : 'a request'} (${e.code}): ${e.message}`;
        this.log.warn(`${who}: ${c.lastError}`);
        this.changeEmitter.fire(c.spaceId);
        break;
      case 'store-error':
        c.lastError = `cannot store sync state in the file: ${e.message}`;
        this.log.error(`${who}: ${c.lastError}`);
        this.changeEmitter.fire(c.spaceId);
        break;
    }
    this.activityEmitter.fire(c.spaceId);
  }

  /** A progress notification while the first sync takes longer than a moment. */
  private startFirstSyncProgress(c: Connection): void {
    const layer = c.layer;
    if (!layer) return;
    const done = new Promise<void>((resolve) => {
      layer.whenReady().then(resolve, resolve);
      c.subs.push(
        layer.onStateChange((s) => {
          // A dropped or busy connection the layer rides out keeps the notification up.
          if ((s.status === 'offline' || s.status === 'error') && !layer.firstSyncPending) resolve();
        }),
        layer.onLoadProgress((p) => c.progress?.report(p.message)),
      );
    });
    c.progress = progressAfter(`Spaces: syncing "${this.name(c.spaceId)}" with ${hostOf(c.url)}`, done, this.opts.progressDelayMs ?? PROGRESS_DELAY_MS);
  }

  private notifyStopped(c: Connection, reason: StopReason | undefined): void {
    const name = this.name(c.spaceId);
    const origin = serverOrigin(c.url);
    const auth = authFailureOf(reason);
    if (auth === 'unauthorized') {
      this.notifySignIn(c.url, `Spaces: ${origin} refused the token (${c.reason ?? 'unauthorized'}). Sign in again to sync "${name}".`, 'unauthorized');
      return;
    }
    if (auth === 'forbidden') {
      this.notifySignIn(c.url, `Spaces: the token for ${origin} has no access to "${name}" (${c.reason ?? 'forbidden'}). Sign in with another token, or ask the server's admin.`, `forbidden:${c.spaceId}`);
      return;
    }
    const key = `${origin}|stopped:${c.spaceId}`;
    if (this.notified.has(key)) return;
    this.notified.add(key);
    const retry = 'Retry';
    const connect = 'Upload Space';
    const actions = reason === 'unknown-space' ? [connect, retry] : [retry];
    // eslint-disable-next-line no-restricted-syntax -- one or two buttons
    void vscode.window.showErrorMessage(`Spaces: cannot sync "${name}" with ${origin}: ${c.reason ?? 'stopped'}`, ...actions).then((pick) => {
      this.notified.delete(key);
      if (pick === retry) this.retry(c.spaceId);
      if (pick === connect) void vscode.commands.executeCommand('spaces.connect', { spaceId: c.spaceId, url: c.url });
    });
  }

  private notifySignIn(url: string, message: string, kind: string): void {
    const key = `${serverOrigin(url)}|${kind}`;
    if (this.notified.has(key)) return;
    this.notified.add(key);
    const signIn = 'Sign In';
    void vscode.window.showErrorMessage(message, signIn).then((pick) => {
      if (pick === signIn) void vscode.commands.executeCommand('spaces.signIn', { url });
    });
  }

  dispose(): void {
    this.disposed = true;
    for (const d of this.disposables.splice(0)) d.dispose();
    for (const c of this.conns.values()) {
      c.closed = true;
      c.progress?.dispose();
      for (const d of c.subs.splice(0)) d.dispose();
    }
    this.changeEmitter.dispose();
    this.activityEmitter.dispose();
  }
}
