/**
 * "Show History" of an item and "Show Activity" of a space (docs/team.md, "History"), built from
 * the op log by src/spaces/history.ts, with authors from the space's team server (the live
 * connection's map, else the one its file kept, src/persistence/server/identity.ts). "Restore"
 * brings an earlier value back as a new op — an undo step of the editor's history like any edit.
 *
 * Scriptable like the other commands:
 *
 *   executeCommand('spaces.showHistory', { spaceId, treeId, itemId })                → { entries }
 *   executeCommand('spaces.showHistory', { spaceId, treeId, itemId, restore: 'counter@peer' }) → { restored }
 *   executeCommand('spaces.showActivity', { spaceId })                                → { entries }
 *
 * Without `restore`, an interactive call shows the entries in a quick pick; picking one that is
 * not the value in force asks whether to restore it.
 */
import * as vscode from 'vscode';
import type { AppTree } from '../../spaces/appTree';
import { itemHistory, recentActivity, type HistoryEntry } from '../../spaces/history';
import { isHexId, isVertexId } from '../../spaces/ids';
import type { Op } from '../../spaces/ops';
import type { Space } from '../../spaces/space';
import { argsOf, commandWrapper, isNode, nodeSpaceId, pickSpace } from '../commandHelpers';
import type { ActiveSpace } from '../activeSpace';
import type { EditHistory } from '../editor/editHistory';
import type { SyncConnections } from '../sync/connections';
import type { WorkspaceModel } from '../workspaceModel';

/** Most entries shown of one item (the newest). */
export const HISTORY_SHOWN = 1_000;
/** Changes listed by Show Activity. */
export const ACTIVITY_SHOWN = 200;
/** Longest value shown in a list row. */
const MAX_SHOWN_VALUE = 120;

export interface HistoryDeps {
  readonly model: WorkspaceModel;
  readonly sync: SyncConnections;
  readonly history: EditHistory;
  readonly log: vscode.LogOutputChannel;
  /** The space of the active editor: a row's context menu in the editor names only its tree and item. */
  readonly activeSpace: ActiveSpace;
}

/** What VS Code passes a `webview/context` command: the row's `data-vscode-context` (outline.ts) and the webview's id. */
interface EditorRowContext {
  readonly webview: 'spaces.editor';
  readonly treeId: string;
  readonly itemId: string;
}

function isEditorRow(x: unknown): x is EditorRowContext {
  if (!x || typeof x !== 'object') return false;
  const o = x as Record<string, unknown>;
  return o.webview === 'spaces.editor' && isVertexId(o.treeId) && isVertexId(o.itemId);
}

interface HistoryArgs {
  readonly spaceId?: string;
  readonly treeId?: string;
  readonly itemId?: string;
  readonly restore?: string;
}

/** A history entry as the commands return it: with its key (`counter@peer`) and author's name. */
export interface ShownEntry extends HistoryEntry {
  readonly key: string;
}

function short(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > MAX_SHOWN_VALUE ? `${s.slice(0, MAX_SHOWN_VALUE - 1)}…` : s;
}

export function registerHistoryCommands(deps: HistoryDeps): vscode.Disposable[] {
  const { model, sync, history, log } = deps;
  const wrap = commandWrapper(log);

  /** Who writes under `peerId` in the space: the server's word, "you" for this window. */
  const authorOf = async (spaceId: string): Promise<(peerId: string) => string | undefined> => {
    const live = sync.layer(spaceId)?.identities;
    let stored: Map<string, string> | undefined;
    if (!live) {
      const url = sync.configuredUrl(spaceId);
      const entry = model.entryForSpace(spaceId);
      if (url && entry?.state.kind === 'open') stored = new Map((await entry.state.layer.loadSyncState(`server:${url}`)).peers ?? []);
    }
    return (peerId) => live?.user(peerId) ?? stored?.get(peerId) ?? (peerId === model.manager.peerId ? 'you' : undefined);
  };

  const describe = (e: HistoryEntry, tree: AppTree): string => {
    switch (e.kind) {
      case 'text':
        return `text "${short(e.value)}"`;
      case 'done':
        return e.value === true ? 'checked' : 'unchecked';
      case 'created':
      case 'place': {
        const parent = e.placement?.parentId;
        const under = parent === tree.rootId ? 'top level' : parent ? `under "${short(tree.getProp(parent, 'text') ?? parent)}"` : 'nowhere';
        return `${e.kind === 'created' ? 'created' : 'moved'} (${under}${e.placement?.order !== undefined ? `, order ${e.placement.order}` : ''})`;
      }
      case 'deleted':
        return 'deleted';
    }
  };

  const target = (arg: unknown, a: HistoryArgs): { spaceId: string; treeId: string; itemId: string } => {
    if (isNode(arg) && arg.kind === 'note') return { spaceId: arg.spaceId, treeId: arg.treeId, itemId: arg.itemId };
    if (isEditorRow(arg)) {
      const spaceId = deps.activeSpace.spaceId;
      if (!spaceId) throw new Error('no active space editor');
      return { spaceId, treeId: arg.treeId, itemId: arg.itemId };
    }
    const { spaceId, treeId, itemId } = a;
    if (!isHexId(spaceId) || typeof treeId !== 'string' || typeof itemId !== 'string') throw new Error('Show History needs an item: pick one in the Spaces view (or pass spaceId, treeId and itemId)');
    return { spaceId, treeId, itemId };
  };

  const restoreEntry = (space: Space, tree: AppTree, itemId: string, e: HistoryEntry): void => {
    const label = `Restore ${e.kind === 'text' ? 'Text' : e.kind === 'done' ? 'Check State' : 'Place'}`;
    history.run(space.id, tree, (ed) =>
      ed.edit(label, [itemId], () => {
        if (e.kind === 'text') tree.setProps(itemId, { text: e.value });
        else if (e.kind === 'done') tree.setProps(itemId, { done: e.value });
        else if (e.placement) tree.place(itemId, e.placement);
      }),
    );
    log.info(`space ${space.id}: ${label.toLowerCase()} of item ${itemId} from op ${e.counter}@${e.peerId}`);
  };

  const showHistory = wrap('spaces.showHistory', async (arg?: unknown, extra?: HistoryArgs) => {
    const a = isEditorRow(arg) ? {} : argsOf<HistoryArgs>(arg, extra);
    const { spaceId, treeId, itemId } = target(arg, a);
    const space = model.space(spaceId);
    if (!space) throw new Error(`space ${spaceId} is not open in this window`);
    const tree = await space.openAppTree(treeId);
    if (!tree.has(itemId) && tree.itemOps(itemId).length === 0) throw new Error(`no item ${itemId} in this tree`);
    const author = await authorOf(spaceId);
    const entries: ShownEntry[] = itemHistory(tree.itemOps(itemId), itemId, author, HISTORY_SHOWN).map((e) => ({ ...e, key: `${e.counter}@${e.peerId}` }));
    if (a.restore !== undefined) {
      const e = entries.find((x) => x.key === a.restore);
      if (!e) throw new Error(`no change ${String(a.restore)} in the history of this item`);
      if (e.current) return { restored: false };
      restoreEntry(space, tree, itemId, e);
      return { restored: true };
    }
    const scripted = !isNode(arg) && !isEditorRow(arg) && (arg !== undefined || extra !== undefined);
    if (scripted) return { entries };
    const title = `History of "${short(tree.getProp(itemId, 'text') ?? itemId)}"`;
    const items = [...entries].reverse().map((e) => ({
      label: `${e.current ? '$(check) ' : ''}${describe(e, tree)}`,
      description: e.author ?? `peer ${e.peerId}`,
      detail: e.current ? 'in force now' : 'pick to restore',
      entry: e,
    }));
    const pick = await vscode.window.showQuickPick(items, { title, placeHolder: 'Newest first. Pick an earlier value to restore it (Ctrl+Z undoes a restore).', matchOnDescription: true });
    if (!pick || pick.entry.current) return { entries };
    const go = 'Restore';
    if ((await vscode.window.showInformationMessage(`Restore ${describe(pick.entry, tree)} by ${pick.description}?`, { modal: true }, go)) !== go) return { entries };
    restoreEntry(space, tree, itemId, pick.entry);
    return { entries, restored: pick.entry.key };
  });

  const showActivity = wrap('spaces.showActivity', async (arg?: unknown) => {
    const a = argsOf<{ spaceId?: string }>(arg);
    const given = isNode(arg) ? nodeSpaceId(arg) : a.spaceId;
    const space = await pickSpace(model, given, 'Show the activity of which space?');
    if (!space) return undefined;
    const trees: Array<{ treeId: string; ops: Op[]; name: string; tree: AppTree }> = [];
    for (const ref of space.appTreeRefs()) {
      try {
        const tree = await space.openAppTree(ref.id);
        trees.push({ treeId: ref.id, ops: tree.allOps(), name: ref.name, tree });
      } catch (e) {
        log.warn(`activity of ${space.id}: app tree ${ref.id} not loaded: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    const author = await authorOf(space.id);
    const entries = recentActivity(trees, author, ACTIVITY_SHOWN);
    if (!isNode(arg) && arg !== undefined) return { entries };
    const byTree = new Map(trees.map((t) => [t.treeId, t]));
    const items = entries.map((e) => {
      const t = byTree.get(e.treeId);
      const text = t?.tree.getProp(e.itemId, 'text');
      return {
        label: `${e.author ?? `peer ${e.peerId}`}: ${e.kind === 'other' ? `set ${e.key ?? ''}` : e.kind}`,
        description: `${t?.name ?? e.treeId}${typeof text === 'string' ? ` · "${short(text)}"` : ''}`,
        entry: e,
      };
    });
    const pick = await vscode.window.showQuickPick(items, { title: `Recent changes in "${space.name}"`, placeHolder: 'Newest first. Pick a change to see the history of its item.', matchOnDescription: true });
    if (pick && byTree.get(pick.entry.treeId)?.tree.has(pick.entry.itemId)) {
      await vscode.commands.executeCommand('spaces.showHistory', { kind: 'note', spaceId: space.id, treeId: pick.entry.treeId, itemId: pick.entry.itemId });
    }
    return { entries };
  });

  return [vscode.commands.registerCommand('spaces.showHistory', showHistory), vscode.commands.registerCommand('spaces.showActivity', showActivity)];
}
