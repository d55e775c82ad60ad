/**
 * The built-in `notes` app: an outline. Each item has `text` and `done`; nesting is the tree;
 * sibling order is the numeric `order` property (see AppTree).
 */
import { TreeError, type AppTree } from '../appTree';

export const NOTES_APP_ID = 'notes';

export interface NoteItem {
  readonly id: string;
  readonly text: string;
  readonly done: boolean;
  readonly children: NoteItem[];
}

export class Notes {
  constructor(readonly tree: AppTree) {}

  get rootId(): string {
    return this.tree.rootId;
  }

  /** The outline (or the subtree under `parentId`) as nested items. */
  items(parentId: string = this.tree.rootId): NoteItem[] {
    return this.tree.childIds(parentId).map((id) => this.item(id));
  }

  item(id: string): NoteItem {
    const text = this.tree.getProp(id, 'text');
    return { id, text: typeof text === 'string' ? text : '', done: this.tree.getProp(id, 'done') === true, children: this.items(id) };
  }

  /** Adds an item under `parentId` (default: top level), after `afterId` or last. */
  add(text: string, parentId: string = this.tree.rootId, afterId?: string): string {
    return this.tree.addItem(parentId, { text, done: false }, afterId ? { after: afterId } : undefined);
  }

  setText(id: string, text: string): void {
    this.tree.setProps(id, { text });
  }

  setDone(id: string, done: boolean): void {
    this.tree.setProps(id, { done });
  }

  delete(id: string): void {
    this.tree.delete(id);
  }

  private siblings(id: string): { parentId: string; list: string[]; index: number } {
    const item = this.tree.get(id);
    if (!item || id === this.tree.rootId) throw new TreeError(`no note ${id}`);
    const list = this.tree.childIds(item.parentId);
    return { parentId: item.parentId, list, index: list.indexOf(id) };
  }

  /** Makes the item the last child of its previous sibling; false when it has none. */
  indent(id: string): boolean {
    const { list, index } = this.siblings(id);
    if (index <= 0) return false;
    this.tree.move(id, list[index - 1]);
    return true;
  }

  /** Moves the item out of its parent, right after the parent; false at top level. */
  outdent(id: string): boolean {
    const { parentId } = this.siblings(id);
    if (parentId === this.tree.rootId) return false;
    const parent = this.tree.get(parentId);
    if (!parent) return false;
    this.tree.move(id, parent.parentId, { after: parentId });
    return true;
  }

  /**
   * Moves the item above its previous sibling. The first child of a parent moves across: to the
   * end of the parent's previous sibling's children (its depth stays), or, when the parent has
   * none, to just before the parent. False at the top of the top level.
   */
  moveUp(id: string): boolean {
    const { parentId, list, index } = this.siblings(id);
    if (index > 0) {
      this.tree.move(id, parentId, { before: list[index - 1] });
      return true;
    }
    if (parentId === this.tree.rootId) return false;
    const up = this.siblings(parentId);
    const prev = up.list[up.index - 1];
    if (prev) this.tree.move(id, prev);
    else this.tree.move(id, up.parentId, { before: parentId });
    return true;
  }

  /** Moves the item below its next sibling; the last child moves across, as `moveUp` does upwards. */
  moveDown(id: string): boolean {
    const { parentId, list, index } = this.siblings(id);
    if (index >= 0 && index < list.length - 1) {
      this.tree.move(id, parentId, { after: list[index + 1] });
      return true;
    }
    if (parentId === this.tree.rootId) return false;
    const up = this.siblings(parentId);
    const next = up.list[up.index + 1];
    if (next) {
      const first = this.tree.childIds(next)[0];
      this.tree.move(id, next, first ? { before: first } : undefined);
    } else {
      this.tree.move(id, up.parentId, { after: parentId });
    }
    return true;
  }
}
