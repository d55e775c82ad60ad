/**
 * One undo history per app tree for every source of edits in the window: the space editor's
 * webviews, the Spaces view (delete, rename, check, drag and drop) and the commands. Every edit
 * becomes an EditRecord of the tree's one TreeEditor — so typing in an item stops coalescing
 * when another source edits in between — and is announced on `onDidRecord`; the space editor
 * puts it on the edit stack of the space's document, the one Ctrl+Z in the editor undoes.
 * Without that, Ctrl+Z after a delete in the view would undo an older keystroke instead.
 * Pure (no `vscode`).
 */
import type { AppTree } from '../../spaces/appTree';
import { Emitter, type Disposable, type Event } from '../../spaces/events';
import { TreeEditor, type EditRecord } from './treeEdits';

export interface RecordedEdit {
  readonly spaceId: string;
  readonly record: EditRecord;
}

export class EditHistory implements Disposable {
  private readonly editors = new Map<string, { readonly tree: AppTree; readonly editor: TreeEditor }>();
  private readonly emitter = new Emitter<RecordedEdit>();
  /** Fires with each new undo step, whichever source made it. */
  readonly onDidRecord: Event<RecordedEdit> = this.emitter.event;

  constructor(private readonly now: () => number = Date.now) {}

  /** The one TreeEditor of app tree `tree` in space `spaceId`. */
  editor(spaceId: string, tree: AppTree): TreeEditor {
    const key = `${spaceId}/${tree.id}`;
    let e = this.editors.get(key);
    if (e?.tree !== tree) {
      // First use, or the space was closed and opened again (a new AppTree): its records are gone.
      e = { tree, editor: new TreeEditor(tree, this.now) };
      this.editors.set(key, e);
    }
    return e.editor;
  }

  /** Announces an undo step made with `editor(spaceId, …)` (undefined: the edit changed nothing). */
  push(spaceId: string, record: EditRecord | undefined): void {
    if (record) this.emitter.fire({ spaceId, record });
  }

  /** Makes one edit on `tree` with its TreeEditor and announces its undo step. */
  run(spaceId: string, tree: AppTree, fn: (editor: TreeEditor) => EditRecord | undefined): EditRecord | undefined {
    const record = fn(this.editor(spaceId, tree));
    this.push(spaceId, record);
    return record;
  }

  /** Drops the editors of a closed space. */
  forget(spaceId: string): void {
    for (const key of [...this.editors.keys()]) if (key.startsWith(`${spaceId}/`)) this.editors.delete(key);
  }

  dispose(): void {
    this.editors.clear();
    this.emitter.dispose();
  }
}
