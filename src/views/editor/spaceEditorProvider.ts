/**
 * The space editor: a custom editor for `*.space` files. One document per file (the space in
 * the window's SpaceManager, opened through the WorkspaceModel), one EditorSession per webview.
 *
 * Edits are saved as they happen (every op goes to the space's layers), yet each one is also
 * given to VS Code's edit stack so Undo/Redo (Ctrl+Z, Edit menu) work; VS Code then marks the
 * document dirty, and a short moment later the editor saves it (a flush), which clears the mark.
 * Edits made elsewhere (the Spaces view, commands) are recorded in the same EditHistory and go on
 * the stack of the space's document too: Ctrl+Z in the editor undoes the latest edit, whoever
 * made it. Made while no editor of the space is open, they wait (the last MAX_WAITING) for the
 * first one to open.
 */
import * as vscode from 'vscode';
import { EditorSession, type EditorFigures } from './editorSession';
import type { EditRecord } from './treeEdits';
import type { EditHistory, RecordedEdit } from './editHistory';
import { errorMessage, type WorkspaceModel } from '../workspaceModel';

export const SPACE_EDITOR_VIEW_TYPE = 'spaces.editor';
const SAVE_DELAY_MS = 300;
/** Undo steps kept per space for an editor that is not open yet. */
const MAX_WAITING = 100;

export class SpaceDocument implements vscode.CustomDocument {
  private saveTimer: NodeJS.Timeout | undefined;
  private readonly disposeEmitter = new vscode.EventEmitter<void>();
  readonly onDidDispose = this.disposeEmitter.event;
  /** Set once the first editor of this document is resolved (edits can go on its stack). */
  attached = false;

  constructor(readonly uri: vscode.Uri) {}

  scheduleSave(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      void vscode.workspace.save(this.uri);
    }, SAVE_DELAY_MS);
  }

  dispose(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.disposeEmitter.fire();
    this.disposeEmitter.dispose();
  }
}

export class SpaceEditorProvider implements vscode.CustomEditorProvider<SpaceDocument>, vscode.Disposable {
  private readonly editEmitter = new vscode.EventEmitter<vscode.CustomDocumentEditEvent<SpaceDocument>>();
  readonly onDidChangeCustomDocument = this.editEmitter.event;
  private readonly activeEmitter = new vscode.EventEmitter<string | undefined>();
  /** The space of the editor that became active (undefined: an editor of no space closed while active). */
  readonly onDidChangeActiveSpace = this.activeEmitter.event;
  private readonly sessions = new Set<EditorSession>();
  /** Trees to show when an editor for the file opens (from "Open" in the Spaces view). */
  private readonly pendingSelection = new Map<string, { readonly treeId: string; readonly at: number; readonly itemId?: string }>();
  /** First-paint figures reported by the webviews (for the log and benchmarks). */
  readonly figures: EditorFigures = { firstPaint: [] };
  /** The open documents, by file URI. */
  private readonly documents = new Map<string, SpaceDocument>();
  /** Undo steps made while no editor of their space was open, by space id (oldest first). */
  private readonly waiting = new Map<string, EditRecord[]>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly model: WorkspaceModel,
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
    readonly history: EditHistory,
  ) {
    const recorded = history.onDidRecord((e) => this.recorded(e));
    this.disposables.push(
      { dispose: () => recorded.dispose() },
      model.manager.onDidCloseSpace((spaceId) => {
        history.forget(spaceId);
        this.waiting.delete(spaceId);
      }),
    );
  }

  static register(provider: SpaceEditorProvider): vscode.Disposable {
    return vscode.window.registerCustomEditorProvider(SPACE_EDITOR_VIEW_TYPE, provider, {
      webviewOptions: { retainContextWhenHidden: true, enableFindWidget: true },
      supportsMultipleEditorsPerDocument: true,
    });
  }

  async openCustomDocument(uri: vscode.Uri): Promise<SpaceDocument> {
    // A file outside the workspace (or not found yet) is opened on demand; errors show in the editor.
    if (!this.model.entry(uri)) await this.model.openFile(uri);
    const document = new SpaceDocument(uri);
    const key = uri.toString();
    this.documents.set(key, document);
    document.onDidDispose(() => {
      if (this.documents.get(key) === document) this.documents.delete(key);
    });
    return document;
  }

  async resolveCustomEditor(document: SpaceDocument, panel: vscode.WebviewPanel): Promise<void> {
    if (!document.attached) {
      document.attached = true;
      const spaceId = this.spaceIdOf(document);
      const waiting = spaceId ? this.waiting.get(spaceId) : undefined;
      if (spaceId && waiting) {
        this.waiting.delete(spaceId);
        for (const rec of waiting) this.fireEdit(document, rec);
      }
    }
    const session = new EditorSession(document, panel, {
      model: this.model,
      extensionUri: this.extensionUri,
      log: this.log,
      figures: this.figures,
      history: this.history,
      onActive: (spaceId) => this.activeEmitter.fire(spaceId),
      initialTree: this.pendingSelection.get(document.uri.toString()),
    });
    this.pendingSelection.delete(document.uri.toString());
    this.sessions.add(session);
    panel.onDidDispose(() => {
      this.sessions.delete(session);
      session.dispose();
    });
  }

  /** Opens the file's editor showing app tree `treeId` (with the caret in `itemId` if given). */
  async openAppTree(uri: vscode.Uri, treeId: string, itemId?: string): Promise<void> {
    const open = this.editorsOf(uri);
    if (open.length) {
      open[0].select(treeId, itemId);
      open[0].reveal();
      return;
    }
    this.pendingSelection.set(uri.toString(), { treeId, at: performance.now(), itemId });
    await vscode.commands.executeCommand('vscode.openWith', uri, SPACE_EDITOR_VIEW_TYPE);
  }

  /** The open editors of a file (for the Spaces view, tests and scripts). */
  editorsOf(uri: vscode.Uri): EditorSession[] {
    return [...this.sessions].filter((s) => s.document.uri.toString() === uri.toString());
  }

  private spaceIdOf(document: SpaceDocument): string | undefined {
    const e = this.model.entry(document.uri);
    return e?.state.kind === 'open' ? e.state.spaceId : undefined;
  }

  /** An undo step from any source: onto the edit stack of its space's document. */
  private recorded({ spaceId, record }: RecordedEdit): void {
    const uri = this.model.entryForSpace(spaceId)?.uri;
    const document = uri ? this.documents.get(uri.toString()) : undefined;
    if (document?.attached) {
      this.fireEdit(document, record);
      return;
    }
    const list = this.waiting.get(spaceId) ?? [];
    list.push(record);
    if (list.length > MAX_WAITING) list.splice(0, list.length - MAX_WAITING);
    this.waiting.set(spaceId, list);
  }

  private fireEdit(document: SpaceDocument, rec: EditRecord): void {
    const guarded = (what: string, fn: () => void) => () => {
      this.log.debug(`${what.toLowerCase()} "${rec.label}" in ${vscode.workspace.asRelativePath(document.uri)}`);
      try {
        fn();
      } catch (e) {
        this.log.warn(`${what} "${rec.label}" failed: ${errorMessage(e)}`);
        void vscode.window.showWarningMessage(`Spaces: cannot ${what.toLowerCase()} "${rec.label}": ${errorMessage(e)}`);
      }
      document.scheduleSave();
    };
    this.editEmitter.fire({ document, label: rec.label, undo: guarded('Undo', () => rec.undo()), redo: guarded('Redo', () => rec.redo()) });
    document.scheduleSave();
  }

  private async flush(document: SpaceDocument): Promise<void> {
    const e = this.model.entry(document.uri);
    if (e?.state.kind !== 'open') return;
    const fileLayerId = e.state.layer.id;
    const unsaved = await this.model.manager.flush(e.state.spaceId);
    // Only the file counts: a team server that is offline gets the ops when it is back.
    const bad = unsaved.filter((u) => u.layerId === fileLayerId && (u.error || u.pendingOps > 0));
    if (bad.length) throw new Error(bad.map((u) => `${u.label}: ${u.error ?? `${u.pendingOps} ops not saved yet`}`).join('; '));
  }

  saveCustomDocument(document: SpaceDocument): Thenable<void> {
    return this.flush(document);
  }

  async saveCustomDocumentAs(document: SpaceDocument, destination: vscode.Uri): Promise<void> {
    void document;
    throw new Error(`a space cannot be saved as another file (${vscode.workspace.asRelativePath(destination)}): the copy would be the same space; create a new space instead`);
  }

  async revertCustomDocument(): Promise<void> {
    // Nothing to revert: every edit is already in the space (and maybe with teammates).
  }

  async backupCustomDocument(document: SpaceDocument, context: vscode.CustomDocumentBackupContext): Promise<vscode.CustomDocumentBackup> {
    // The space file is its own backup once flushed.
    await this.flush(document);
    return { id: context.destination.toString(), delete: () => undefined };
  }

  dispose(): void {
    for (const d of this.disposables.splice(0)) d.dispose();
    for (const s of this.sessions) s.dispose();
    this.sessions.clear();
    this.waiting.clear();
    this.editEmitter.dispose();
    this.activeEmitter.dispose();
  }
}
