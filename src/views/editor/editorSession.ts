/**
 * One webview of the space editor: tells the webview what the space holds, loads the app tree it
 * selects, turns its edit requests (checked by `parseWebviewMessage`) into tree edits with undo
 * records, and forwards every change of the shown tree — ours, another window's, a teammate's —
 * as a patch. The webview keeps its caret and scroll position across patches.
 */
import os from 'node:os';
import * as vscode from 'vscode';
import type { AppTree } from '../../spaces/appTree';
import type { SpaceChange } from '../../spaces/spaceManager';
import type { Space } from '../../spaces/space';
import { BadMessageError, parseWebviewMessage, type HostMessage, type WebviewMessage } from '../../webview/protocol';
import { errorMessage, type WorkspaceModel } from '../workspaceModel';
import { editorHtml } from './html';
import { applyEdit } from './treeEdits';
import type { EditHistory } from './editHistory';
import type { SpaceDocument } from './spaceEditorProvider';
import { buildPatch, buildView, editorKind, type EditorKind } from './treeViews';
import { signedInUser } from '../team/signedInUser';

export interface FirstPaint {
  readonly treeId: string;
  readonly items: number;
  /** From the request to show the tree until the webview painted it. */
  readonly ms: number;
  /** The webview's part: from receiving the view until painted. */
  readonly renderMs: number;
}

export interface EditorFigures {
  readonly firstPaint: FirstPaint[];
}

const MAX_FIGURES = 10_000;

export interface SessionDeps {
  readonly model: WorkspaceModel;
  readonly extensionUri: vscode.Uri;
  readonly log: vscode.LogOutputChannel;
  readonly figures: EditorFigures;
  /** Where the edits' undo steps go (shared with the Spaces view and the commands). */
  readonly history: EditHistory;
  readonly onActive: (spaceId: string | undefined) => void;
  /** The tree to show first, and when it was asked for (`performance.now()`). */
  readonly initialTree?: { readonly treeId: string; readonly at: number; readonly itemId?: string };
}

/** The author of chat messages: `spaces.chat.author`, else the user signed in to the space's server, else this machine's login. */
export function chatAuthor(spaceId?: string): string {
  const configured = vscode.workspace.getConfiguration('spaces').get<unknown>('chat.author');
  if (typeof configured === 'string' && configured.trim()) return configured.trim().slice(0, 200);
  const signedIn = signedInUser(spaceId);
  if (signedIn) return signedIn;
  try {
    return os.userInfo().username || 'me';
  } catch {
    return 'me';
  }
}

export class EditorSession implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private selected: string | undefined;
  private shown: { readonly treeId: string; readonly tree: AppTree; readonly kind: EditorKind } | undefined;
  private webviewReady = false;
  private lastEntryKind: string | undefined;
  private readonly openStarted = new Map<string, number>();
  private disposed = false;
  /** An item to focus once its tree is shown (opened from a note in the Spaces view). */
  private focusAfterShow: string | undefined;
  private readonly createdAt = performance.now();
  /** Whether the panel is the active editor: read from its events, since a disposed panel throws on `active`. */
  private active: boolean;

  constructor(
    readonly document: SpaceDocument,
    private readonly panel: vscode.WebviewPanel,
    private readonly deps: SessionDeps,
  ) {
    this.selected = deps.initialTree?.treeId;
    this.focusAfterShow = deps.initialTree?.itemId;
    // The first paint of the tree asked for counts from the request: webview start-up included.
    if (deps.initialTree) {
      this.openStarted.set(deps.initialTree.treeId, deps.initialTree.at);
      // Loaded while the webview starts (shared with the load `select` makes later).
      void this.space?.openAppTree(deps.initialTree.treeId).catch(() => undefined);
    }
    const webview = panel.webview;
    webview.options = {
      enableScripts: true,
      localResourceRoots: [vscode.Uri.joinPath(deps.extensionUri, 'dist'), vscode.Uri.joinPath(deps.extensionUri, 'media')],
    };
    webview.html = editorHtml(webview, deps.extensionUri, vscode.workspace.asRelativePath(document.uri));
    this.disposables.push(
      webview.onDidReceiveMessage((m: unknown) => this.receive(m)),
      deps.model.onDidChange(() => this.entryChanged()),
      deps.model.manager.onDidChangeSpace((c) => this.spaceChanged(c)),
      panel.onDidChangeViewState((e) => {
        this.active = e.webviewPanel.active;
        if (this.active) deps.onActive(this.spaceId);
      }),
    );
    this.active = panel.active;
    if (this.active) deps.onActive(this.spaceId);
  }

  get spaceId(): string | undefined {
    const e = this.deps.model.entry(this.document.uri);
    return e?.state.kind === 'open' ? e.state.spaceId : undefined;
  }

  private get space(): Space | undefined {
    const id = this.spaceId;
    return id ? this.deps.model.manager.get(id) : undefined;
  }

  reveal(): void {
    if (!this.disposed) this.panel.reveal();
  }

  /** What the webview was last told to show (for tests and diagnostics). */
  shows: { readonly type: 'space' | 'fileError' | 'tree'; readonly detail: string } | undefined;

  private post(m: HostMessage): void {
    if (this.disposed) return;
    if (m.type === 'space') this.shows = { type: 'space', detail: m.selected ?? '' };
    else if (m.type === 'fileError') this.shows = { type: 'fileError', detail: m.message };
    else if (m.type === 'tree') this.shows = { type: 'tree', detail: m.treeId };
    void this.panel.webview.postMessage(m);
  }

  /** Handles a message as if the webview had sent it (the same checks apply). */
  handle(raw: unknown): void {
    this.receive(raw);
  }

  /** Shows app tree `treeId` (null: the space's overview), with the caret in `itemId` if given. */
  select(treeId: string | null, itemId?: string): void {
    this.selected = treeId ?? undefined;
    if (itemId) this.focusAfterShow = itemId;
    this.sendSpace();
    if (treeId) void this.showTree(treeId);
    else this.shown = undefined;
  }

  private entryChanged(): void {
    const kind = this.deps.model.entry(this.document.uri)?.state.kind ?? 'none';
    if (kind === this.lastEntryKind) return;
    this.lastEntryKind = kind;
    if (this.webviewReady) this.select(this.selected ?? null);
  }

  /** Sends the space summary, or why the file cannot be shown. */
  private sendSpace(): void {
    if (!this.webviewReady) return;
    const entry = this.deps.model.entry(this.document.uri);
    const file = vscode.workspace.asRelativePath(this.document.uri);
    if (!entry) {
      this.shown = undefined;
      this.post({ type: 'fileError', file, message: 'the file was deleted or moved; its space is closed in this window' });
      return;
    }
    if (entry.state.kind === 'opening') return;
    if (entry.state.kind === 'error') {
      this.post({ type: 'fileError', file, message: entry.state.message });
      return;
    }
    const space = this.space;
    if (!space) {
      this.post({ type: 'fileError', file, message: 'the space is not open' });
      return;
    }
    const trees = space.appTreeRefs().map((r) => ({ treeId: r.id, appId: r.appId, name: r.name }));
    if (this.selected && !trees.some((t) => t.treeId === this.selected)) {
      this.selected = undefined;
      this.shown = undefined;
    }
    this.post({ type: 'space', spaceId: space.id, name: space.name, trees, selected: this.selected });
  }

  private async showTree(treeId: string): Promise<void> {
    const space = this.space;
    const ref = space?.appTreeRef(treeId);
    if (!space || !ref) return;
    if (!this.openStarted.has(treeId)) this.openStarted.set(treeId, performance.now());
    this.post({ type: 'loading', treeId });
    let tree: AppTree;
    const t0 = performance.now();
    try {
      tree = await space.openAppTree(treeId);
    } catch (e) {
      this.deps.log.warn(`cannot load app tree ${treeId}: ${errorMessage(e)}`);
      this.post({ type: 'fileError', file: `${ref.name} (${ref.appId})`, message: `cannot load this app tree: ${errorMessage(e)}` });
      return;
    }
    if (this.selected !== treeId || this.disposed) return;
    const kind = editorKind(ref.appId);
    this.shown = { treeId, tree, kind };
    const t1 = performance.now();
    const view = buildView(kind, tree, chatAuthor(this.space?.id));
    const t2 = performance.now();
    this.post({ type: 'tree', treeId, view });
    const focus = this.focusAfterShow;
    this.focusAfterShow = undefined;
    if (focus && tree.has(focus)) this.post({ type: 'focus', treeId, itemId: focus, caret: 'end' });
    this.deps.log.debug(`app tree ${treeId}: loaded in ${(t1 - t0).toFixed(0)} ms, view built in ${(t2 - t1).toFixed(0)} ms, posted in ${(performance.now() - t2).toFixed(0)} ms`);
  }

  private spaceChanged(c: SpaceChange): void {
    if (!this.webviewReady || c.spaceId !== this.spaceId) return;
    if (c.treeId === c.spaceId) {
      this.sendSpace();
      return;
    }
    const shown = this.shown;
    if (!shown || c.treeId !== shown.treeId) return;
    const patch = buildPatch(shown.kind, shown.tree, c.ops);
    if (patch) this.post({ type: 'patch', treeId: shown.treeId, patch });
  }

  private receive(raw: unknown): void {
    let m: WebviewMessage;
    try {
      m = parseWebviewMessage(raw);
    } catch (e) {
      this.deps.log.warn(errorMessage(e));
      const seq = typeof raw === 'object' && raw !== null ? (raw as { seq?: unknown }).seq : undefined;
      if (typeof seq === 'number') this.post({ type: 'ack', seq, error: errorMessage(e) });
      return;
    }
    switch (m.type) {
      case 'ready':
        this.deps.log.debug(`editor webview ready ${(performance.now() - this.createdAt).toFixed(0)} ms after it was made`);
        this.webviewReady = true;
        this.lastEntryKind = this.deps.model.entry(this.document.uri)?.state.kind;
        this.select(this.selected ?? null);
        return;
      case 'select':
        this.select(m.treeId);
        return;
      case 'addAppTree':
        void this.addAppTree();
        return;
      case 'openAsText':
        void vscode.commands.executeCommand('vscode.openWith', this.document.uri, 'default');
        return;
      case 'openLink':
        // The scheme was checked with the message (http, https, mailto); VS Code asks before
        // opening a site the user has not trusted yet.
        void vscode.env.openExternal(vscode.Uri.parse(m.url, true));
        return;
      case 'painted':
        this.painted(m.treeId, m.items, m.ms);
        return;
      case 'edit':
        this.edit(m);
        return;
    }
  }

  private painted(treeId: string, items: number, renderMs: number): void {
    const t0 = this.openStarted.get(treeId);
    this.openStarted.delete(treeId);
    if (t0 === undefined) return;
    const ms = performance.now() - t0;
    push(this.deps.figures.firstPaint, { treeId, items, ms, renderMs });
    this.deps.log.info(`showed app tree ${treeId} (${items} items) in ${ms.toFixed(0)} ms (webview render ${renderMs.toFixed(0)} ms)`);
  }

  private edit(m: Extract<WebviewMessage, { type: 'edit' }>): void {
    const question = this.shown?.treeId === m.treeId ? this.destructive(this.shown.tree, m.edit) : undefined;
    if (!question) {
      this.apply(m);
      return;
    }
    // Asked in VS Code (a webview cannot show a modal); the webview waits for the ack meanwhile.
    void vscode.window.showWarningMessage(question.message, { modal: true, detail: question.detail }, question.button).then((pick) => {
      if (this.disposed) return;
      if (pick === question.button) {
        this.apply(m);
        return;
      }
      this.post({ type: 'ack', seq: m.seq });
      if (question.focus) this.post({ type: 'focus', treeId: m.treeId, itemId: question.focus, caret: 'end' });
    });
  }

  /**
   * The question to ask before an edit that removes more than the user can see at the caret: a
   * note with sub-items, a vertex with children, a property of the tree's root (its `appId` decides
   * which editor opens it). Undefined: apply at once.
   */
  private destructive(tree: AppTree, e: Extract<WebviewMessage, { type: 'edit' }>['edit']): { message: string; detail: string; button: string; focus?: string } | undefined {
    const undoHint = 'Undo (Ctrl+Z) in this editor brings it back.';
    if ((e.op === 'delete' || e.op === 'deleteVertex') && tree.has(e.id)) {
      const n = tree.countItems(e.id);
      if (n === 0) return undefined;
      const text = tree.getProp(e.id, 'text');
      const what = e.op === 'delete' ? `"${typeof text === 'string' && text ? truncate(text) : '(empty)'}"` : 'this vertex';
      return { message: `Delete ${what} and its ${n} sub-item${n === 1 ? '' : 's'}?`, detail: undoHint, button: 'Delete', focus: e.op === 'delete' ? e.id : undefined };
    }
    if (e.op === 'deleteMessage' && tree.has(e.id)) {
      const text = tree.getProp(e.id, 'text');
      return { message: `Delete your message "${truncate(typeof text === 'string' ? text : '')}"?`, detail: 'It is removed for everyone the space syncs with. Undo (Ctrl+Z) in this editor brings it back.', button: 'Delete' };
    }
    if (e.op === 'selection' && e.action === 'delete') {
      const live = e.ids.filter((id) => tree.has(id));
      if (live.length < 2 && !live.some((id) => tree.countItems(id) > 0)) return undefined;
      return { message: `Delete the ${live.length} selected item${live.length === 1 ? '' : 's'} and their sub-items?`, detail: undoHint, button: 'Delete', focus: live[0] };
    }
    if (e.op === 'deleteProp' && e.id === tree.rootId && tree.getProp(e.id, e.key) !== undefined) {
      const appDetail = e.key === 'appId' ? ` Without its appId this tree no longer opens in the ${String(tree.getProp(e.id, 'appId'))} editor.` : '';
      return { message: `Delete the property "${truncate(e.key)}" of the app tree's root?`, detail: `${appDetail} ${undoHint}`.trim(), button: 'Delete Property' };
    }
    return undefined;
  }

  private apply(m: Extract<WebviewMessage, { type: 'edit' }>): void {
    try {
      const space = this.space;
      const tree = space?.loadedAppTree(m.treeId);
      if (!space || !tree || this.shown?.treeId !== m.treeId) throw new BadMessageError(`app tree ${m.treeId} is not shown`);
      const result = applyEdit(this.deps.history.editor(space.id, tree), this.shown.kind, m.edit, chatAuthor(space.id));
      this.deps.history.push(space.id, result.record);
      if (result.focus) this.post({ type: 'focus', treeId: m.treeId, itemId: result.focus.itemId, caret: result.focus.caret });
      this.post({ type: 'ack', seq: m.seq });
    } catch (e) {
      this.deps.log.warn(`edit ${m.edit.op} in ${m.treeId} failed: ${errorMessage(e)}`);
      this.post({ type: 'ack', seq: m.seq, error: errorMessage(e) });
    }
  }

  private async addAppTree(): Promise<void> {
    const spaceId = this.spaceId;
    if (!spaceId) return;
    try {
      const r = await vscode.commands.executeCommand<{ treeId?: string } | undefined>('spaces.addAppTree', { spaceId });
      if (r?.treeId) this.select(r.treeId);
    } catch {
      // Shown to the user by the command.
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const d of this.disposables.splice(0)) d.dispose();
    // Not `panel.active`: the panel may be disposed already ("Webview is disposed").
    if (this.active) this.deps.onActive(undefined);
  }
}

const QUESTION_TEXT = 60;

function truncate(text: string): string {
  return text.length > QUESTION_TEXT ? `${text.slice(0, QUESTION_TEXT)}…` : text;
}

function push<T>(list: T[], v: T): void {
  list.push(v);
  if (list.length > MAX_FIGURES) list.splice(0, list.length - MAX_FIGURES);
}
