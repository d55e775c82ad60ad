/**
 * The "Team Server" view (`spaces.team`, docs/team.md): per team server the window knows (the
 * default `spaces.server.url` and the servers of the current connections), the spaces its token
 * may read — name, the token's role, whether the space is in this workspace, and its last change
 * (the server's sequence of its newest change) — a page at a time (`GET /v1/spaces/page`), with
 * "Load more" when the server has more. "Open in Workspace" on a space runs the join flow.
 *
 * Listings are fetched when a server node is expanded and kept until Refresh, a token change
 * (sign-in/out) or a settings change; a failed listing is a node saying why (with Sign In when the
 * token was refused), never an empty list.
 */
import * as vscode from 'vscode';
import { ServerApiError } from '../../persistence/server/serverApi';
import type { SyncConnections } from '../sync/connections';
import { serverOrigin, SETTINGS_SECTION } from '../sync/settings';
import type { TokenStore } from '../sync/tokens';
import { errorMessage, type WorkspaceModel } from '../workspaceModel';
import { listTeamSpacePage, type TeamSpace } from './teamApi';

export const TEAM_VIEW_ID = 'spaces.team';

export type TeamNode =
  | { readonly kind: 'teamServer'; readonly url: string }
  | { readonly kind: 'teamSpace'; readonly url: string; readonly space: TeamSpace }
  | { readonly kind: 'teamMore'; readonly url: string }
  | { readonly kind: 'teamMessage'; readonly url: string; readonly message: string; readonly signIn: boolean };

/** What is known of one server's spaces. */
interface Listing {
  readonly spaces: TeamSpace[];
  next: string | undefined;
  error: { message: string; signIn: boolean } | undefined;
  /** A page request in flight (one at a time per server). */
  loading: Promise<void> | undefined;
}

export class TeamTreeProvider implements vscode.TreeDataProvider<TeamNode>, vscode.Disposable {
  private readonly changeEmitter = new vscode.EventEmitter<TeamNode | undefined>();
  readonly onDidChangeTreeData = this.changeEmitter.event;
  private readonly listings = new Map<string, Listing>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly model: WorkspaceModel,
    private readonly sync: SyncConnections,
    private readonly tokens: TokenStore,
  ) {
    this.disposables.push(
      this.changeEmitter,
      tokens.onDidChange((origin) => this.forget(origin)),
      vscode.workspace.onDidChangeConfiguration((e) => e.affectsConfiguration(SETTINGS_SECTION) && this.refresh()),
      // "in this workspace" follows the files.
      model.onDidChange(() => this.changeEmitter.fire(undefined)),
    );
  }

  /** The servers shown: the default one first, then those of current connections. */
  servers(): string[] {
    const d = this.sync.defaultUrl();
    return [...new Set([...(d ? [d] : []), ...this.sync.servers()])];
  }

  /** Drops every listing: the next expansion fetches again. */
  refresh(): void {
    this.listings.clear();
    this.changeEmitter.fire(undefined);
  }

  private forget(origin: string): void {
    for (const url of [...this.listings.keys()]) if (serverOrigin(url) === origin) this.listings.delete(url);
    this.changeEmitter.fire(undefined);
  }

  /** Fetches the next page of `url`'s spaces (the first when none was fetched). */
  loadMore(url: string): Promise<void> {
    let l = this.listings.get(url);
    if (!l) this.listings.set(url, (l = { spaces: [], next: undefined, error: undefined, loading: undefined }));
    const listing = l;
    if (listing.loading) return listing.loading;
    const first = listing.spaces.length === 0;
    listing.loading = (async () => {
      try {
        const cred = await this.tokens.get(url);
        if (!cred) {
          listing.error = { message: `not signed in to ${serverOrigin(url)}`, signIn: true };
          return;
        }
        const page = await listTeamSpacePage(url, cred.token, first ? undefined : listing.next);
        for (const s of page.spaces) listing.spaces.push(s);
        listing.next = page.next;
        listing.error = undefined;
      } catch (e) {
        listing.error = { message: errorMessage(e), signIn: e instanceof ServerApiError && e.unauthorized };
      } finally {
        listing.loading = undefined;
        this.changeEmitter.fire(undefined);
      }
    })();
    return listing.loading;
  }

  /** The spaces listed so far for `url` (for tests and the join flow). */
  listed(url: string): readonly TeamSpace[] {
    return this.listings.get(url)?.spaces ?? [];
  }

  async getChildren(node?: TeamNode): Promise<TeamNode[]> {
    if (!node) return this.servers().map((url) => ({ kind: 'teamServer', url }));
    if (node.kind !== 'teamServer') return [];
    const { url } = node;
    if (!this.listings.has(url)) await this.loadMore(url);
    const l = this.listings.get(url);
    if (!l) return [];
    const out: TeamNode[] = l.spaces.map((space) => ({ kind: 'teamSpace', url, space }));
    if (l.error) out.push({ kind: 'teamMessage', url, message: l.error.message, signIn: l.error.signIn });
    else if (l.spaces.length === 0) out.push({ kind: 'teamMessage', url, message: 'this token may read no space here', signIn: false });
    if (l.next && !l.error) out.push({ kind: 'teamMore', url });
    return out;
  }

  getTreeItem(node: TeamNode): vscode.TreeItem {
    switch (node.kind) {
      case 'teamServer': {
        const item = new vscode.TreeItem(serverOrigin(node.url), vscode.TreeItemCollapsibleState.Expanded);
        item.id = `teamServer:${node.url}`;
        item.iconPath = new vscode.ThemeIcon('server');
        item.contextValue = 'teamServer';
        item.tooltip = `Team server ${node.url}`;
        return item;
      }
      case 'teamSpace': {
        const { space } = node;
        const here = this.model.entryForSpace(space.id);
        const item = new vscode.TreeItem(space.name || space.id, vscode.TreeItemCollapsibleState.None);
        item.id = `teamSpace:${node.url}:${space.id}`;
        item.iconPath = new vscode.ThemeIcon(here ? 'folder-opened' : 'cloud');
        item.description = [space.role, here ? 'in this workspace' : undefined, space.lastSeq ? `last change #${space.lastSeq}` : 'no changes yet'].filter(Boolean).join(' · ');
        const tip = new vscode.MarkdownString();
        tip.appendText(`${space.name}\nid ${space.id}\nrole: ${space.role}\n`);
        if (space.created) tip.appendText(`created ${new Date(space.created).toLocaleString()}\n`);
        tip.appendText(space.lastSeq ? `last change: #${space.lastSeq} of the server's sequence` : 'no changes yet');
        if (here) tip.appendText(`\nin this workspace: ${vscode.workspace.asRelativePath(here.uri)}`);
        item.tooltip = tip;
        item.contextValue = here ? 'teamSpace.here' : 'teamSpace';
        return item;
      }
      case 'teamMore': {
        const item = new vscode.TreeItem('Load more…', vscode.TreeItemCollapsibleState.None);
        item.id = `teamMore:${node.url}`;
        item.command = { command: 'spaces.team.loadMore', title: 'Load more', arguments: [node] };
        item.contextValue = 'teamMore';
        return item;
      }
      case 'teamMessage': {
        const item = new vscode.TreeItem(node.message, vscode.TreeItemCollapsibleState.None);
        item.id = `teamMessage:${node.url}`;
        item.iconPath = new vscode.ThemeIcon(node.signIn ? 'account' : 'info');
        item.tooltip = node.message;
        if (node.signIn) item.command = { command: 'spaces.signIn', title: 'Sign In', arguments: [{ url: node.url }] };
        item.contextValue = 'teamMessage';
        return item;
      }
    }
  }

  dispose(): void {
    for (const d of this.disposables.splice(0).reverse()) d.dispose();
  }
}
