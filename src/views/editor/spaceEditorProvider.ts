/**
 * The space editor: a custom editor for `*.space` files. One document per file (the space in
 * the window's SpaceManager, opened through the WorkspaceModel), one EditorSession per webview.
 *
 * Edits are saved as they happen (every op goes to the space's layers), yet each one is also
 * given to VS Code's edit stack so Undo/Redo (Ctrl+Z, Edit menu) work; VS Code then marks the
 * document dirty, and a short moment later the editor saves it (a flush), which clears the mark.
 */
import * as vscode from 'vscode';
import { EditorSession, type EditorFigures } from './editorSession';
import type { EditRecord } from './treeEdits';
import { TreeEditor } from './treeEdits';
import type { AppTree } from '../../spaces/appTree';
import { errorMessage, type WorkspaceModel } from '../workspaceModel';

export const SPACE_EDITOR_VIEW_TYPE = 'spaces.editor';
const SAVE_DELAY_MS = 300;

export class SpaceDocument implements vscode.CustomDocument {
  private readonly editors = new Map<string, { readonly tree: AppTree; readonly editor: TreeEditor }>();
  private saveTimer: NodeJS.Timeout | undefined;

  constructor(readonly uri: vscode.Uri) {}

  /** The undo recorder of one app tree, shared by every webview of this document. */
  treeEditor(tree: AppTree): TreeEditor {
    let e = this.editors.get(tree.id);
    if (e?.tree !== tree) {
      // First use, or the space was closed and opened again (a new AppTree).
      e = { tree, editor: new TreeEditor(tree) };
      this.editors.set(tree.id, e);
    }
    return e.editor;
  }

  scheduleSave(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      void vscode.workspace.save(this.uri);
    }, SAVE_DELAY_MS);
  }

  dispose(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.editors.clear();
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

  constructor(
    private readonly model: WorkspaceModel,
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  static register(provider: SpaceEditorProvider): vscode.Disposable {
    return vscode.window.registerCustomEditorProvider(SPACE_EDITOR_VIEW_TYPE, provider, {
      webviewOptions: { retainContextWhenHidden: true, enableFindWidget: true },
      supportsMultipleEditorsPerDocument: true,
    });
  }

  async openCustomDocument(uri: vscode.Uri): Promise<SpaceDocument> {
    // A file outside the workspace (or not found yet) is opened on demand; errors show in the editor.
    if (!this.model.entry(uri)) await this.model.openFile(uri);
    return new SpaceDocument(uri);
  }

  async resolveCustomEditor(document: SpaceDocument, panel: vscode.WebviewPanel): Promise<void> {
    const session = new EditorSession(document, panel, {
      model: this.model,
      extensionUri: this.extensionUri,
      log: this.log,
      figures: this.figures,
      onEdit: (rec) => this.fireEdit(document, rec),
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
    for (const s of this.sessions) s.dispose();
    this.sessions.clear();
    this.editEmitter.dispose();
    this.activeEmitter.dispose();
  }
}
