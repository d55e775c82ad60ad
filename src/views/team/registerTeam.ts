/**
 * The team features of the extension, registered together (docs/team.md): the Team Server view,
 * its commands, and the UriHandler of join links.
 *
 *   executeCommand('spaces.joinTeamSpace', { url?, spaceId?, file? })   → { spaceId, file, cloned }
 *   executeCommand('spaces.team.openInWorkspace', teamSpaceNode)        → the same
 *   executeCommand('spaces.team.copyJoinLink', teamSpaceNode)           → the link (also on the clipboard)
 *   executeCommand('spaces.team.refresh')
 */
import * as vscode from 'vscode';
import { commandWrapper } from '../commandHelpers';
import type { EditHistory } from '../editor/editHistory';
import { registerHistoryCommands } from './historyCommands';
import { JoinFlow, type JoinArgs, type JoinDeps, type JoinResult } from './joinFlow';
import { joinLinkFor, parseJoinLink } from './joinLink';
import { useSignedInUsers } from './signedInUser';
import { TEAM_VIEW_ID, TeamTreeProvider, type TeamNode } from './teamView';
import { serverOrigin } from '../sync/settings';

export interface TeamApi {
  readonly tree: TeamTreeProvider;
  readonly join: JoinFlow;
  /**
   * The UriHandler's work: what a link did (undefined when refused or declined). Tests pass
   * `confirm` (instead of the modal question) and `file` (instead of the file name prompt).
   */
  handleUri(uri: vscode.Uri, opts?: LinkOptions): Promise<JoinResult | undefined>;
}

export interface LinkOptions {
  readonly confirm?: (url: string, spaceId: string) => Promise<boolean>;
  readonly file?: string;
}

function isTeamNode(x: unknown): x is TeamNode {
  return typeof x === 'object' && x !== null && typeof (x as { kind?: unknown }).kind === 'string' && String((x as { kind: string }).kind).startsWith('team');
}

/**
 * Registers the view, the commands (history's too: restores go on `history`, the editor's undo
 * history) and the UriHandler; `extensionId` is `<publisher>.<name>`.
 */
export function registerTeam(deps: JoinDeps, history: EditHistory, extensionId: string): { api: TeamApi; disposables: vscode.Disposable[] } {
  const { log } = deps;
  const tree = new TeamTreeProvider(deps.model, deps.sync, deps.tokens);
  const view = vscode.window.createTreeView<TeamNode>(TEAM_VIEW_ID, { treeDataProvider: tree, showCollapseAll: false });
  const join = new JoinFlow(deps);
  const wrap = commandWrapper(log);

  const spaceNode = (arg: unknown): Extract<TeamNode, { kind: 'teamSpace' }> => {
    if (!isTeamNode(arg) || arg.kind !== 'teamSpace') throw new Error('pick a space in the Team Server view');
    return arg;
  };

  const askJoin = async (url: string, spaceId: string): Promise<boolean> => {
    const go = 'Join';
    const answer = await vscode.window.showInformationMessage(
      `Join a team space from ${serverOrigin(url)}?`,
      { modal: true, detail: `A link asks to open space ${spaceId} of the team server ${url} in this workspace. Continue only if you trust that server: your token for it is sent there.` },
      go,
    );
    return answer === go;
  };

  const handleUri = async (uri: vscode.Uri, opts: LinkOptions = {}): Promise<JoinResult | undefined> => {
    const parsed = parseJoinLink(uri.path, uri.query);
    if (!parsed.ok) {
      log.warn(`join link refused: ${parsed.reason}`);
      void vscode.window.showErrorMessage(`Spaces: this join link cannot be used: ${parsed.reason}.`);
      return undefined;
    }
    const { url, spaceId } = parsed.link;
    // A link can come from anyone: nothing is contacted (no token sent) before the user agrees.
    if (!(await (opts.confirm ?? askJoin)(url, spaceId))) {
      log.info(`join link for ${spaceId} on ${serverOrigin(url)}: declined`);
      return undefined;
    }
    log.info(`join link for ${spaceId} on ${serverOrigin(url)}: accepted`);
    return opts.file === undefined ? join.join({ url, spaceId }, false) : join.join({ url, spaceId, file: opts.file }, true);
  };

  const disposables: vscode.Disposable[] = [
    tree,
    view,
    useSignedInUsers(deps.sync),
    ...registerHistoryCommands({ model: deps.model, sync: deps.sync, history, log, activeSpace: deps.activeSpace }),
    vscode.commands.registerCommand(
      'spaces.joinTeamSpace',
      wrap('spaces.joinTeamSpace', async (arg?: JoinArgs | TeamNode) => {
        if (isTeamNode(arg)) return join.join({ url: arg.url, ...(arg.kind === 'teamSpace' ? { spaceId: arg.space.id } : {}) }, false);
        const scripted = arg !== undefined && typeof arg === 'object';
        return join.join(scripted ? arg : {}, scripted);
      }),
    ),
    vscode.commands.registerCommand(
      'spaces.team.openInWorkspace',
      wrap('spaces.team.openInWorkspace', async (arg?: TeamNode) => {
        const n = spaceNode(arg);
        return join.join({ url: n.url, spaceId: n.space.id }, false);
      }),
    ),
    vscode.commands.registerCommand(
      'spaces.team.copyJoinLink',
      wrap('spaces.team.copyJoinLink', async (arg?: TeamNode) => {
        const n = spaceNode(arg);
        const link = joinLinkFor(extensionId, { url: n.url, spaceId: n.space.id });
        await vscode.env.clipboard.writeText(link);
        void vscode.window.showInformationMessage(`Spaces: the join link of "${n.space.name}" is on the clipboard. It gives access to no one: a teammate still needs a token of ${serverOrigin(n.url)}.`);
        return link;
      }),
    ),
    vscode.commands.registerCommand('spaces.team.refresh', () => tree.refresh()),
    vscode.commands.registerCommand(
      'spaces.team.loadMore',
      wrap('spaces.team.loadMore', async (arg?: TeamNode) => {
        if (!isTeamNode(arg)) throw new Error('pick "Load more…" in the Team Server view');
        await tree.loadMore(arg.url);
      }),
    ),
    vscode.window.registerUriHandler({
      handleUri: (uri) => {
        handleUri(uri).catch((e: unknown) => {
          log.error(`join link: ${e instanceof Error ? e.message : String(e)}`);
          void vscode.window.showErrorMessage(`Spaces: ${e instanceof Error ? e.message : String(e)}`);
        });
      },
    }),
  ];
  return { api: { tree, join, handleUri }, disposables };
}
