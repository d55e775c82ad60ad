/**
 * The team sync commands. Like the other commands (src/views/commands.ts) every prompt can be
 * answered by an argument, so they can be scripted:
 *
 *   executeCommand('spaces.signIn', { url: 'http://127.0.0.1:8787', token })   → { server, spaces }
 *   executeCommand('spaces.connect', { spaceId, url? })                         → { spaceId, url, created }
 *   executeCommand('spaces.disconnect', { spaceId })                            → { spaceId }
 *   executeCommand('spaces.signOut', { url })                                   → { server, signedOut }
 *   executeCommand('spaces.retrySync', { spaceId })
 *
 * Connect uploads the space when the server does not have it yet (POST /v1/spaces with its id)
 * and writes `spaces.server.connections` in the workspace settings; the connection itself follows
 * the settings (SyncConnections). A scripted call never prompts: a missing token is an error.
 */
import * as vscode from 'vscode';
import type { Space } from '../../spaces/space';
import type { ActiveSpace } from '../activeSpace';
import { argsOf, commandWrapper, isNode, nodeSpaceId, pickSpace } from '../commandHelpers';
import type { SpacesNode } from '../spacesTree';
import { errorMessage, type WorkspaceModel } from '../workspaceModel';
import { progressAfter } from '../progress';
import type { SyncConnections } from './connections';
import { ServerApiError, ensureServerSpace, listServerSpaces } from '../../persistence/server/serverApi';
import { CONNECTIONS_KEY, SETTINGS_SECTION, URL_KEY, normalizeServerUrl, parseConnectionSettings, serverOrigin, serverUrlProblem, updatedConnections } from './settings';
import { TOKEN_ENV, tokenProblem, type ServerToken, type TokenStore } from './tokens';

export interface ConnectArgs {
  readonly spaceId?: string;
  /** The server (default: the space's configured server, else spaces.server.url, else asked). */
  readonly url?: string;
}

export interface SignInArgs {
  readonly url?: string;
  readonly token?: string;
}

export interface SyncCommandDeps {
  readonly model: WorkspaceModel;
  readonly sync: SyncConnections;
  readonly tokens: TokenStore;
  readonly log: vscode.LogOutputChannel;
  readonly treeView: vscode.TreeView<SpacesNode>;
  readonly activeSpace: ActiveSpace;
}

function asObject(x: unknown): Record<string, unknown> {
  return x && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>) : {};
}

/**
 * Writes the connection of one space in the workspace settings: `true` (the default server), a
 * URL, or undefined to disconnect — then the entry is removed, or set to false when the user
 * settings would still connect it.
 */
export async function writeConnectionSetting(spaceId: string, value: true | string | undefined): Promise<void> {
  const cfg = vscode.workspace.getConfiguration(SETTINGS_SECTION);
  const info = cfg.inspect<unknown>(CONNECTIONS_KEY);
  let next = updatedConnections(info?.workspaceValue, spaceId, value);
  if (value === undefined) {
    const rest = parseConnectionSettings(cfg.get<unknown>(URL_KEY), { ...asObject(info?.globalValue), ...next });
    if (rest.connections.has(spaceId)) next = updatedConnections(next, spaceId, false);
  }
  const target = vscode.workspace.workspaceFolders?.length ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  await cfg.update(CONNECTIONS_KEY, Object.keys(next).length ? next : undefined, target);
}

export function registerSyncCommands(deps: SyncCommandDeps): vscode.Disposable[] {
  const { model, sync, tokens, log, activeSpace } = deps;
  const signInButton = 'Sign In';
  const wrap = commandWrapper(log, (_id, e) => {
    if (e instanceof ServerApiError && e.unauthorized) {
      void vscode.window.showErrorMessage(`Spaces: ${e.message}`, signInButton).then((pick) => {
        if (pick === signInButton) void vscode.commands.executeCommand('spaces.signIn');
      });
    } else {
      void vscode.window.showErrorMessage(`Spaces: ${errorMessage(e)}`);
    }
  });

  const askUrl = async (title: string): Promise<string | undefined> => {
    const input = await vscode.window.showInputBox({
      title,
      prompt: 'The team server, e.g. http://127.0.0.1:8787 or https://spaces.example.com (set "spaces.server.url" to skip this question)',
      placeHolder: 'http://127.0.0.1:8787',
      ignoreFocusOut: true,
      validateInput: (v) => serverUrlProblem(v),
    });
    return input === undefined ? undefined : normalizeServerUrl(input);
  };

  /**
   * Asks for the token of `url` and checks it with the server before the box closes: a token the
   * server refuses (or a server that cannot be reached) keeps the box open with the reason, so
   * the user can retype it. Undefined when the user cancelled.
   */
  const askToken = (url: string, origin: string): Promise<{ token: string; count: number } | undefined> =>
    new Promise((resolve) => {
      const box = vscode.window.createInputBox();
      box.title = `Sign in to ${origin}`;
      box.prompt = 'Your token for this server (spt_…). Its admin makes one with "spaces-server token create". It is kept in VS Code\'s secret storage.';
      box.password = true;
      box.ignoreFocusOut = true;
      let done = false;
      const finish = (v: { token: string; count: number } | undefined) => {
        if (done) return;
        done = true;
        resolve(v);
        box.dispose();
      };
      box.onDidChangeValue((v) => {
        box.validationMessage = v.trim() ? tokenProblem(v.trim()) : undefined;
      });
      box.onDidAccept(async () => {
        const token = box.value.trim();
        const problem = tokenProblem(token);
        if (problem) {
          box.validationMessage = problem;
          return;
        }
        box.busy = true;
        box.enabled = false;
        try {
          const count = (await listServerSpaces(url, token)).length;
          finish({ token, count });
        } catch (e) {
          log.warn(`sign-in to ${origin}: ${errorMessage(e)}`);
          box.validationMessage =
            e instanceof ServerApiError && e.unauthorized ? `${origin} refused this token: check it (or ask its admin for a new one) and try again` : `The token could not be checked: ${errorMessage(e)}`;
        } finally {
          box.busy = false;
          box.enabled = true;
        }
      });
      box.onDidHide(() => finish(undefined));
      box.show();
    });

  const spaceOf = async (arg: unknown, a: { spaceId?: unknown }, title: string, filter?: (s: Space) => boolean, none?: string): Promise<Space | undefined> => {
    const node = isNode(arg) ? arg : undefined;
    const given = a.spaceId;
    if (given !== undefined && typeof given !== 'string') throw new Error('spaceId must be a string');
    // Only a node clicked names the space; from the palette the user picks (the active space first).
    return pickSpace(model, given ?? nodeSpaceId(node), title, filter, none, activeSpace.spaceId);
  };

  const signIn = wrap('spaces.signIn', async (args?: SignInArgs) => {
    const a = argsOf<SignInArgs>(args);
    if (a.url !== undefined && typeof a.url !== 'string') throw new Error('url must be a string');
    if (a.token !== undefined && typeof a.token !== 'string') throw new Error('token must be a string');
    const url = a.url !== undefined ? normalizeServerUrl(a.url) : (sync.defaultUrl() ?? (await askUrl('Sign in to a team server')));
    if (!url) return undefined;
    const origin = serverOrigin(url);
    let token: string;
    let count: number;
    if (a.token === undefined) {
      // Typed: checked with the server while the box stays open; a refusal is said in the box.
      const checked = await askToken(url, origin);
      if (!checked) return undefined;
      ({ token, count } = checked);
    } else {
      token = a.token.trim();
      const problem = tokenProblem(token);
      if (problem) throw new Error(problem);
      const check = listServerSpaces(url, token);
      const progress = progressAfter(`Spaces: checking the token with ${origin}`, check);
      try {
        count = (await check).length;
      } finally {
        progress.dispose();
      }
    }
    await tokens.store(url, token);
    log.info(`signed in to ${origin} (the token sees ${count} space(s))`);
    await sync.reconnectServer(url);
    if (a.token === undefined) void vscode.window.showInformationMessage(`Spaces: signed in to ${origin}.`);
    return { server: origin, spaces: count };
  });

  const signOut = wrap('spaces.signOut', async (args?: { url?: string }) => {
    const a = argsOf<{ url?: string }>(args);
    if (a.url !== undefined && typeof a.url !== 'string') throw new Error('url must be a string');
    let url = a.url !== undefined ? normalizeServerUrl(a.url) : undefined;
    if (!url) {
      const known = [...new Set([...sync.servers(), ...(sync.defaultUrl() ? [sync.defaultUrl() as string] : [])])];
      if (known.length === 1) url = known[0];
      else if (known.length > 1) url = (await vscode.window.showQuickPick(known, { title: 'Sign out of which server?' })) ?? undefined;
      else url = await askUrl('Sign out of a team server');
    }
    if (!url) return undefined;
    const origin = serverOrigin(url);
    const had = await tokens.delete(url);
    log.info(`signed out of ${origin}${had ? '' : ' (no token was stored)'}`);
    await sync.reconnectServer(url);
    if (a.url === undefined) void vscode.window.showInformationMessage(`Spaces: signed out of ${origin}.`);
    return { server: origin, signedOut: had };
  });

  const connect = wrap('spaces.connect', async (arg?: SpacesNode | ConnectArgs, extra?: ConnectArgs) => {
    const a = argsOf<ConnectArgs>(arg, extra);
    const scripted = (arg !== undefined && !isNode(arg)) || extra !== undefined;
    if (a.url !== undefined && typeof a.url !== 'string') throw new Error('url must be a string');
    const space = await spaceOf(arg, a, 'Connect which space to the team server?');
    if (!space) return undefined;
    const url = a.url !== undefined ? normalizeServerUrl(a.url) : (sync.configuredUrl(space.id) ?? sync.defaultUrl() ?? (scripted ? undefined : await askUrl(`Connect "${space.name}" to a team server`)));
    if (!url) {
      if (scripted) throw new Error('no server: pass url, or set "spaces.server.url"');
      return undefined;
    }
    const origin = serverOrigin(url);
    const cred = await signedInToken(tokens, url, scripted);
    if (!cred) return undefined;
    const ensuring = ensureServerSpace(url, cred.token, space.id, space.name);
    const progress = progressAfter(`Spaces: connecting "${space.name}" to ${origin}`, ensuring);
    let created: boolean;
    try {
      created = (await ensuring) === 'created';
    } finally {
      progress.dispose();
    }
    if (created) log.info(`space ${space.id} ("${space.name}") was created on ${url}; its ops are uploaded as it syncs`);
    await writeConnectionSetting(space.id, url === sync.defaultUrl() ? true : url);
    log.info(`space ${space.id} ("${space.name}"): connection to ${url} saved in the ${vscode.workspace.workspaceFolders?.length ? 'workspace' : 'user'} settings`);
    await sync.reconcile();
    await sync.whenAttached(space.id);
    // Already connected but stopped (e.g. the space was not on the server until now): retry.
    if (sync.layer(space.id)?.stopped) sync.retry(space.id);
    return { spaceId: space.id, url, created };
  });

  const disconnect = wrap('spaces.disconnect', async (arg?: SpacesNode | { spaceId?: string }) => {
    const a = argsOf<{ spaceId?: string }>(arg);
    const space = await spaceOf(arg, a, 'Disconnect which space from its team server?', (s) => sync.isConnected(s.id), 'no open space is connected to a team server');
    if (!space) return undefined;
    await writeConnectionSetting(space.id, undefined);
    log.info(`space ${space.id} ("${space.name}"): connection removed from the settings`);
    await sync.reconcile();
    return { spaceId: space.id };
  });

  const retry = wrap('spaces.retrySync', async (arg?: SpacesNode | { spaceId?: string }) => {
    const a = argsOf<{ spaceId?: string }>(arg);
    const spaceId = (isNode(arg) ? nodeSpaceId(arg) : undefined) ?? (typeof a.spaceId === 'string' ? a.spaceId : activeSpace.spaceId);
    const state = spaceId ? sync.state(spaceId) : undefined;
    if (!spaceId || !state) throw new Error('the active space is not connected to a team server');
    if (state.status === 'signed-out' || state.auth) {
      await vscode.commands.executeCommand('spaces.signIn', { url: state.url });
      return;
    }
    sync.retry(spaceId);
  });

  return [
    vscode.commands.registerCommand('spaces.signIn', signIn),
    vscode.commands.registerCommand('spaces.signOut', signOut),
    vscode.commands.registerCommand('spaces.connect', connect),
    vscode.commands.registerCommand('spaces.disconnect', disconnect),
    vscode.commands.registerCommand('spaces.retrySync', retry),
  ];
}

/**
 * The token for `url`; when there is none, asks the user to sign in (not when `scripted`).
 * Undefined: the user cancelled the sign-in. Throws when a scripted call has no token.
 */
export async function signedInToken(tokens: TokenStore, url: string, scripted: boolean): Promise<ServerToken | undefined> {
  let cred = await tokens.get(url);
  if (!cred && !scripted) {
    if (!(await vscode.commands.executeCommand<unknown>('spaces.signIn', { url }))) return undefined;
    cred = await tokens.get(url);
  }
  if (!cred) throw new Error(`not signed in to ${serverOrigin(url)}: run "Spaces: Sign In to Team Server" (or set $${TOKEN_ENV})`);
  return cred;
}
