/**
 * Joining a team server's space from VS Code (docs/team.md): the same flow for "Open in
 * Workspace" in the Team Server view, "Join a Team Space" (welcome view, palette) and join links.
 *
 *   server (given, the default server, or asked) → token (stored, else Sign In) → space (given, or
 *   picked from the token's spaces) → a space already in the workspace is only connected; else a
 *   new `*.space` file (given, or asked with the space's name as default) is cloned with progress
 *   and Cancel (cloneSpace.ts: nothing is left on cancel), the connection is written to the
 *   workspace settings, and the file is opened and connected.
 *
 * Scriptable like the other commands: `executeCommand('spaces.joinTeamSpace', { url, spaceId, file })`
 * prompts for nothing (a missing token is an error) and resolves with `{ spaceId, file, cloned }`.
 */
import path from 'node:path';
import * as vscode from 'vscode';
import { isHexId, ID_RULES } from '../../spaces/ids';
import type { ActiveSpace } from '../activeSpace';
import type { FileKeyStore } from '../fileKey';
import type { SyncConnections } from '../sync/connections';
import { normalizeServerUrl, serverOrigin, serverUrlProblem } from '../sync/settings';
import { signedInToken, writeConnectionSetting } from '../sync/syncCommands';
import type { TokenStore } from '../sync/tokens';
import type { WorkspaceModel } from '../workspaceModel';
import { CloneCancelledError, cloneServerSpace } from './cloneSpace';
import { fileStemFor, freeSpaceFile, newFileProblem, SPACE_FILE_EXTENSION } from './spaceFileName';
import { findTeamSpace, listTeamSpacePage, type TeamSpace } from './teamApi';

/** Most spaces offered in the picker of "Join a Team Space" (the Team Server view pages through all). */
const PICK_LIMIT = 500;

export interface JoinArgs {
  readonly url?: string;
  readonly spaceId?: string;
  /** The new file: absolute, or relative to the first workspace folder. */
  readonly file?: string;
}

export interface JoinResult {
  readonly spaceId: string;
  readonly file: string;
  /** False when the space was in the workspace already (it was only connected). */
  readonly cloned: boolean;
}

export interface JoinDeps {
  readonly model: WorkspaceModel;
  readonly sync: SyncConnections;
  readonly tokens: TokenStore;
  readonly keys: FileKeyStore;
  readonly log: vscode.LogOutputChannel;
  readonly activeSpace: ActiveSpace;
  /** Free text the server logs, e.g. "spaces-vscode/0.1.0". */
  readonly client: string;
}

export class JoinFlow {
  constructor(private readonly deps: JoinDeps) {}

  /** Runs the flow (see the header). Undefined when the user cancelled a prompt. */
  async join(args: JoinArgs, scripted: boolean): Promise<JoinResult | undefined> {
    const { sync, tokens, log } = this.deps;
    if (args.url !== undefined && typeof args.url !== 'string') throw new Error('url must be a string');
    if (args.spaceId !== undefined && !isHexId(args.spaceId)) throw new Error(`spaceId must be a space id (${ID_RULES.hex})`);
    if (args.file !== undefined && typeof args.file !== 'string') throw new Error('file must be a string');
    const url = args.url !== undefined ? normalizeServerUrl(args.url) : (sync.defaultUrl() ?? (scripted ? undefined : await this.askUrl()));
    if (!url) {
      if (scripted) throw new Error('no server: pass url, or set "spaces.server.url"');
      return undefined;
    }
    const origin = serverOrigin(url);
    const cred = await signedInToken(tokens, url, scripted);
    if (!cred) return undefined;
    const token = cred.token;

    const space = args.spaceId !== undefined ? await this.lookUp(url, token, args.spaceId) : scripted ? undefined : await this.pick(url, token);
    if (!space) {
      if (scripted) throw new Error('no space: pass spaceId');
      return undefined;
    }

    const present = this.deps.model.entryForSpace(space.id);
    if (present) {
      // Already here: connect it (a second file of one space would be refused as a copy).
      if (sync.configuredUrl(space.id) !== url) await writeConnectionSetting(space.id, url === sync.defaultUrl() ? true : url);
      await sync.reconcile();
      this.deps.activeSpace.set(space.id);
      log.info(`join ${space.id} ("${space.name}") on ${origin}: already in the workspace as ${present.uri.fsPath}; connected`);
      return { spaceId: space.id, file: present.uri.fsPath, cloned: false };
    }

    const file = args.file !== undefined ? this.givenFile(args.file) : await this.chooseFile(space, scripted);
    if (!file) return undefined;
    const problem = newFileProblem(file);
    if (problem) throw new Error(problem);

    const secretKey = await this.deps.keys.get();
    log.info(`join ${space.id} ("${space.name}") on ${origin}: cloning into ${file}`);
    try {
      await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Spaces: joining "${space.name}" from ${origin}`, cancellable: true },
        async (progress, cancel) => {
          const abort = new AbortController();
          const sub = cancel.onCancellationRequested(() => abort.abort());
          try {
            const r = await cloneServerSpace({ url, token, spaceId: space.id, file, secretKey, client: this.deps.client, signal: abort.signal, onProgress: (p) => progress.report({ message: p.message }) });
            log.info(`join ${space.id}: ${r.received} ops received, synced to seq ${r.seq}`);
          } finally {
            sub.dispose();
          }
        },
      );
    } catch (e) {
      if (e instanceof CloneCancelledError) {
        log.info(`join ${space.id}: ${e.message}`);
        if (scripted) throw e;
        return undefined;
      }
      throw e;
    }
    // The connection first: when the file opens, SyncConnections connects it at once.
    await writeConnectionSetting(space.id, url === sync.defaultUrl() ? true : url);
    const uri = vscode.Uri.file(file);
    await this.deps.model.openFile(uri);
    await sync.reconcile();
    await sync.whenAttached(space.id);
    this.deps.activeSpace.set(space.id);
    if (!scripted) void vscode.window.showInformationMessage(`Spaces: joined "${space.name}" (${vscode.workspace.asRelativePath(uri)}), synced with ${origin}.`);
    return { spaceId: space.id, file, cloned: true };
  }

  private async lookUp(url: string, token: string, spaceId: string): Promise<TeamSpace> {
    const found = await findTeamSpace(url, token, spaceId);
    if (!found) throw new Error(`${serverOrigin(url)} has no space ${spaceId} this token may read: ask its admin for access`);
    return found;
  }

  private async pick(url: string, token: string): Promise<TeamSpace | undefined> {
    const spaces: TeamSpace[] = [];
    let after: string | undefined;
    do {
      const page = await listTeamSpacePage(url, token, after);
      for (const s of page.spaces) spaces.push(s);
      after = page.next;
    } while (after && spaces.length < PICK_LIMIT);
    if (spaces.length === 0) throw new Error(`this token may read no space on ${serverOrigin(url)}`);
    const items = spaces.map((s) => ({ label: s.name, description: `${s.role}${this.deps.model.entryForSpace(s.id) ? ' · in this workspace' : ''}`, detail: s.id, space: s }));
    return (await vscode.window.showQuickPick(items, { title: `Join a space of ${serverOrigin(url)}`, matchOnDetail: true }))?.space;
  }

  private folder(): string {
    const f = vscode.workspace.workspaceFolders?.find((w) => w.uri.scheme === 'file');
    if (!f) throw new Error('open a folder first: a joined space is kept in a *.space file of the workspace');
    return f.uri.fsPath;
  }

  private givenFile(file: string): string {
    return path.isAbsolute(file) ? file : path.join(this.folder(), file);
  }

  private async chooseFile(space: TeamSpace, scripted: boolean): Promise<string | undefined> {
    const dir = this.folder();
    const proposed = freeSpaceFile(dir, fileStemFor(space.name));
    if (scripted) return proposed;
    const name = await vscode.window.showInputBox({
      title: `Join "${space.name}": the new space file`,
      prompt: `A file in ${vscode.workspace.asRelativePath(dir)} that will hold the space`,
      value: path.basename(proposed),
      valueSelection: [0, path.basename(proposed).length - SPACE_FILE_EXTENSION.length],
      ignoreFocusOut: true,
      validateInput: (v) => (/[\\/]/.test(v) || v.trim() !== v || !v ? 'a file name, without folders' : newFileProblem(path.join(dir, v))),
    });
    return name === undefined ? undefined : path.join(dir, name);
  }

  private async askUrl(): Promise<string | undefined> {
    const input = await vscode.window.showInputBox({
      title: 'Join a team space',
      prompt: 'The team server, e.g. http://127.0.0.1:8787 or https://spaces.example.com (set "spaces.server.url" to skip this question)',
      placeHolder: 'http://127.0.0.1:8787',
      ignoreFocusOut: true,
      validateInput: (v) => serverUrlProblem(v),
    });
    return input === undefined ? undefined : normalizeServerUrl(input);
  }
}
