/**
 * Drag and drop in the Spaces view: notes items move within their own notes tree.
 *
 * - Dropped onto another note of the same tree, an item becomes that note's last child.
 * - Dropped onto its notes tree's node, it becomes the tree's last top-level item.
 * - Dropped onto itself or one of its own descendants, nothing happens (no message: VS Code
 *   offers that drop while the pointer passes over the item's own subtree).
 * - Dropped into another app tree or another space, it is refused with a message: an item's
 *   identity (its vertex id, its history) belongs to one tree, and a silent copy would leave two
 *   diverging items behind. Copying between trees would be a separate, explicit command.
 *
 * Moves go through `AppTree.move`, so they are ordinary ops: saved to every layer of the space
 * and refreshed in the view by the manager's change event. Each drop is one undo step of the
 * space editor's history (EditHistory).
 */
import * as vscode from 'vscode';
import type { AppTree } from '../spaces/appTree';
import { NOTES_APP_ID, Notes } from '../spaces/apps/notes';
import type { SpaceManager } from '../spaces/spaceManager';
import type { SpacesNode } from './spacesTree';
import type { EditHistory } from './editor/editHistory';
import { errorMessage } from './workspaceModel';

/** The mime type of the view `spaces.tree` (VS Code's convention: application/vnd.code.tree.<view id>). */
export const SPACES_TREE_MIME = 'application/vnd.code.tree.spaces.tree';

type NoteNode = Extract<SpacesNode, { kind: 'note' }>;

/** Why a drop did nothing visible; `onDidRefuseDrop` fires with it after the message is shown. */
export interface DropRefusal {
  readonly message: string;
}

function isNoteNode(x: unknown): x is NoteNode {
  if (typeof x !== 'object' || x === null) return false;
  const n = x as Record<string, unknown>;
  return n.kind === 'note' && typeof n.spaceId === 'string' && typeof n.treeId === 'string' && typeof n.itemId === 'string';
}

export class SpacesDragAndDrop implements vscode.TreeDragAndDropController<SpacesNode>, vscode.Disposable {
  readonly dropMimeTypes = [SPACES_TREE_MIME];
  /** Plain text (the dragged notes' texts, one a line) so a note can be dropped into an editor. */
  readonly dragMimeTypes = ['text/plain'];
  private readonly refusalEmitter = new vscode.EventEmitter<DropRefusal>();
  readonly onDidRefuseDrop = this.refusalEmitter.event;

  constructor(
    private readonly manager: SpaceManager,
    private readonly log: vscode.LogOutputChannel,
    /** Moves are undo steps of the space editor's history (Ctrl+Z there undoes them). */
    private readonly history: EditHistory,
  ) {}

  handleDrag(source: readonly SpacesNode[], dataTransfer: vscode.DataTransfer): void {
    const notes = source.filter(isNoteNode);
    if (notes.length === 0) return;
    dataTransfer.set(SPACES_TREE_MIME, new vscode.DataTransferItem(notes));
    const texts = notes.map((n) => {
      const tree = this.manager.get(n.spaceId)?.loadedAppTree(n.treeId);
      return tree && tree.has(n.itemId) ? new Notes(tree).item(n.itemId).text : '';
    });
    dataTransfer.set('text/plain', new vscode.DataTransferItem(texts.join('\n')));
  }

  async handleDrop(target: SpacesNode | undefined, dataTransfer: vscode.DataTransfer, token: vscode.CancellationToken): Promise<void> {
    const value: unknown = dataTransfer.get(SPACES_TREE_MIME)?.value;
    if (!Array.isArray(value)) return;
    const dragged = value.filter(isNoteNode);
    if (dragged.length === 0) return;

    let parentId: string | undefined;
    if (target?.kind === 'note') parentId = target.itemId;
    else if (target?.kind !== 'appTree' || target.appId !== NOTES_APP_ID) {
      return this.refuse('Drop notes onto another note (to nest them) or onto their notes tree (to make them top-level items).');
    }
    const foreign = dragged.find((n) => n.spaceId !== target.spaceId || n.treeId !== target.treeId);
    if (foreign) {
      const where = foreign.spaceId !== target.spaceId ? 'another space' : 'another app tree';
      return this.refuse(`Notes can only be moved within their own notes tree; this drop is into ${where}. Nothing was moved.`);
    }

    const space = this.manager.get(target.spaceId);
    if (!space) return this.refuse(`The space ${target.spaceId} is no longer open.`);
    let tree: AppTree;
    try {
      tree = await space.openAppTree(target.treeId);
    } catch (e) {
      return this.refuse(`The notes tree cannot be loaded: ${errorMessage(e)}`);
    }
    if (token.isCancellationRequested) return;
    const to = parentId ?? tree.rootId;
    if (!tree.has(to)) return this.refuse('The note it was dropped onto is gone.');

    const ids = new Set(dragged.map((n) => n.itemId));
    const isInside = (id: string, ancestor: string): boolean => {
      for (let p = tree.get(id)?.parentId; p && p !== tree.rootId; p = tree.get(p)?.parentId) if (p === ancestor) return true;
      return false;
    };
    // Only the topmost of the dragged items move (their dragged descendants go along), and never
    // onto themselves or into their own subtree.
    const moving = [...ids].filter((id) => tree.has(id) && ![...ids].some((other) => other !== id && isInside(id, other)) && id !== to && !isInside(to, id));
    try {
      if (moving.length) this.history.run(target.spaceId, tree, (ed) => ed.edit(moving.length === 1 ? 'Move Item' : 'Move Items', moving, () => void moving.forEach((id) => tree.move(id, to))));
    } catch (e) {
      return this.refuse(`The note cannot be moved: ${errorMessage(e)}`);
    }
    if (moving.length) this.log.info(`moved ${moving.length} note(s) in tree ${tree.id} under ${to === tree.rootId ? 'the top level' : to}`);
  }

  private refuse(message: string): void {
    this.log.info(`drop refused: ${message}`);
    void vscode.window.showWarningMessage(message);
    this.refusalEmitter.fire({ message });
  }

  dispose(): void {
    this.refusalEmitter.dispose();
  }
}
