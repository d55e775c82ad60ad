/**
 * The `spaces.*` commands. Each works from the view (its first argument is the node clicked)
 * and from scripts and tests: every prompt can be answered by an argument instead, e.g.
 *
 *   executeCommand('spaces.newSpace', { name: 'Team', folder: uri })              → { spaceId, uri }
 *   executeCommand('spaces.addAppTree', { spaceId, appId: 'notes', name: 'Todo' }) → { spaceId, treeId }
 *   executeCommand('spaces.rename', node, { name: 'New name' })
 *   executeCommand('spaces.delete', node, { confirm: false })
 *
 * A command returns its result, or undefined when the user cancelled; failures are shown as an
 * error message (and logged) and rethrown to a scripted caller.
 */
import * as vscode from 'vscode';
import { NOTES_APP_ID, Notes } from '../spaces/apps/notes';
import { CHAT_APP_ID } from '../spaces/apps/chat';
import type { Space } from '../spaces/space';
import type { SpacesNode } from './spacesTree';
import type { ActiveSpace } from './activeSpace';
import type { EditHistory } from './editor/editHistory';
import { registerMarkdownCommands } from './editor/markdownCommands';
import { commandWrapper, isNode, nodeSpaceId, pickSpace as pickOpenSpace } from './commandHelpers';
import { errorMessage, type WorkspaceModel } from './workspaceModel';
import { isAppId } from '../spaces/ids';

export interface CommandDeps {
  /** The undo history the space editor shares: edits of notes made here are undoable there. */
  readonly history: EditHistory;
  /** The space the user works in: offered first when a command asks which space. */
  readonly activeSpace: ActiveSpace;
}


export interface NewSpaceArgs {
  readonly name?: string;
  /** Folder for the file (default: the first workspace folder); a Uri or an absolute path. */
  readonly folder?: vscode.Uri | string;
  /** File name (default: from the name); `.space` is added when missing. */
  readonly fileName?: string;
}

export interface AddAppTreeArgs {
  readonly spaceId?: string;
  readonly appId?: string;
  readonly name?: string;
}

/** The properties of a space's own tree that its edits here change (the space's name, an app tree's entry). */
const APP_TREE_REF_KEYS = ['name', 'appId'] as const;

/** Turns a space name into a file name: letters, digits, `-` and `_`, plus `.space`. */
export function spaceFileName(name: string): string {
  const base = name
    .normalize('NFKD')
    .replace(/[^\w\s-]/g, '')
    .trim()
    .replace(/\s+/g, '-')
    .toLowerCase()
    .slice(0, 80);
  return `${base || 'space'}.space`;
}

function asUri(x: vscode.Uri | string): vscode.Uri {
  return typeof x === 'string' ? vscode.Uri.file(x) : x;
}

async function exists(uri: vscode.Uri): Promise<boolean> {
  try {
    await vscode.workspace.fs.stat(uri);
    return true;
  } catch {
    return false;
  }
}

export function registerCommands(model: WorkspaceModel, log: vscode.LogOutputChannel, treeView: vscode.TreeView<SpacesNode>, deps: CommandDeps): vscode.Disposable[] {
  const manager = model.manager;
  const { history, activeSpace } = deps;

  const wrap = commandWrapper(log);
  /** The space given (a node clicked, an argument), else asked for: the active space first. */
  const pickSpace = (spaceId: string | undefined): Promise<Space | undefined> =>
    pickOpenSpace(model, spaceId || undefined, 'Choose a space', undefined, 'there is no open space: create one with "Spaces: New Space"', activeSpace.spaceId);

  const selectedOr = (arg: unknown): SpacesNode | undefined => (isNode(arg) ? arg : treeView.selection[0]);

  const newSpace = wrap('spaces.newSpace', async (args?: NewSpaceArgs) => {
    const a: NewSpaceArgs = args && !isNode(args) ? args : {};
    const folder = a.folder ? asUri(a.folder) : vscode.workspace.workspaceFolders?.[0]?.uri;
    if (!folder) throw new Error('open a folder first: a space is stored as a *.space file in the workspace');
    const name =
      a.name ??
      (await vscode.window.showInputBox({
        title: 'New Space',
        prompt: `Name of the space (stored as a .space file in ${vscode.workspace.asRelativePath(folder)})`,
        placeHolder: 'Team notes',
        validateInput: (v) => (v.trim() ? undefined : 'A space needs a name'),
      }));
    if (name === undefined) return undefined;
    if (!name.trim()) throw new Error('a space needs a name');
    const fileName = a.fileName ? (a.fileName.endsWith('.space') ? a.fileName : `${a.fileName}.space`) : spaceFileName(name);
    const uri = vscode.Uri.joinPath(folder, fileName);
    if (await exists(uri)) throw new Error(`${vscode.workspace.asRelativePath(uri)} already exists; choose another name`);
    const space = await model.createSpace(uri, name.trim());
    // The space just made is the one the user works in next (Add App Tree offers it first).
    activeSpace.set(space.id);
    return { spaceId: space.id, uri };
  });

  const addAppTree = wrap('spaces.addAppTree', async (arg?: SpacesNode | AddAppTreeArgs, extra?: AddAppTreeArgs) => {
    const a: AddAppTreeArgs = { ...(arg && !isNode(arg) ? arg : {}), ...(extra ?? {}) };
    // Only a node clicked names the space: from the palette the view's selection may be stale.
    const space = await pickSpace(a.spaceId ?? (isNode(arg) ? nodeSpaceId(arg) : undefined));
    if (!space) return undefined;
    let appId = a.appId;
    if (appId === undefined) {
      const picked = await vscode.window.showQuickPick(
        [
          { label: 'Notes', description: 'an outline with checkboxes', appId: NOTES_APP_ID, iconPath: new vscode.ThemeIcon('checklist') },
          { label: 'Chat', description: 'a thread of messages', appId: CHAT_APP_ID, iconPath: new vscode.ThemeIcon('comment-discussion') },
          { label: 'Other…', description: 'any app id', appId: '', iconPath: new vscode.ThemeIcon('symbol-namespace') },
        ],
        { title: `Add an app tree to ${space.name}` },
      );
      if (!picked) return undefined;
      appId =
        picked.appId ||
        (await vscode.window.showInputBox({
          title: 'App id',
          prompt: 'Lowercase letters, digits, . _ -',
          validateInput: (v) => (isAppId(v) ? undefined : 'Lowercase letters, digits, . _ - (starting with a letter)'),
        }));
      if (!appId) return undefined;
    }
    const name =
      a.name ??
      (await vscode.window.showInputBox({
        title: `Name of the new ${appId} tree`,
        value: appId === NOTES_APP_ID ? 'Notes' : appId === CHAT_APP_ID ? 'Chat' : appId,
        validateInput: (v) => (v.trim() ? undefined : 'A name is needed'),
      }));
    if (name === undefined) return undefined;
    const kind = appId;
    let treeId = '';
    // An undo step of the space's own tree: undone, the tree's entry goes (its ops stay stored).
    history.run(space.id, space.tree, (e) =>
      e.edit('Add App Tree', [], (touched) => void touched.push((treeId = space.createAppTree(kind, name.trim()).id)), APP_TREE_REF_KEYS),
    );
    log.info(`added ${appId} tree "${name.trim()}" (${treeId}) to space ${space.id}`);
    return { spaceId: space.id, treeId };
  });

  const rename = wrap('spaces.rename', async (arg?: SpacesNode, args?: { name?: string }) => {
    const node = selectedOr(arg);
    if (!node) throw new Error('select a space, an app tree or a note to rename');
    const space = 'spaceId' in node ? manager.get(node.spaceId) : undefined;
    if (!space) throw new Error('this item cannot be renamed');
    const ask = (value: string, title: string) =>
      args?.name !== undefined ? Promise.resolve(args.name) : vscode.window.showInputBox({ title, value, validateInput: (v) => (v.trim() || node.kind === 'note' ? undefined : 'A name is needed') });
    switch (node.kind) {
      // Renames are undo steps too: of the space's own tree (Ctrl+Z in the space's editor).
      case 'space': {
        const name = await ask(space.name, 'Rename space');
        if (name === undefined) return undefined;
        history.run(space.id, space.tree, (e) => e.edit('Rename Space', [space.id], () => space.rename(name.trim()), APP_TREE_REF_KEYS));
        return { name: name.trim() };
      }
      case 'appTree': {
        const name = await ask(space.appTreeRef(node.treeId)?.name ?? node.name, 'Rename app tree');
        if (name === undefined) return undefined;
        history.run(space.id, space.tree, (e) => e.edit('Rename App Tree', [node.treeId], () => space.renameAppTree(node.treeId, name.trim()), APP_TREE_REF_KEYS));
        return { name: name.trim() };
      }
      case 'note': {
        const tree = await space.openAppTree(node.treeId);
        const notes = new Notes(tree);
        const text = await ask(notes.item(node.itemId).text, 'Edit note');
        if (text === undefined) return undefined;
        history.run(space.id, tree, (e) => e.edit('Edit Note', [node.itemId], () => notes.setText(node.itemId, text)));
        return { name: text };
      }
      default:
        throw new Error('this item cannot be renamed');
    }
  });

  const del = wrap('spaces.delete', async (arg?: SpacesNode, args?: { confirm?: boolean }) => {
    const node = selectedOr(arg);
    if (!node) throw new Error('select a space, an app tree or a note to delete');
    const confirm = async (message: string, detail: string, button: string): Promise<boolean> =>
      args?.confirm === false || (await vscode.window.showWarningMessage(message, { modal: true, detail }, button)) === button;
    switch (node.kind) {
      case 'space': {
        const name = manager.get(node.spaceId)?.name ?? '';
        const file = vscode.workspace.asRelativePath(node.uri);
        if (!(await confirm(`Delete the space "${name}"?`, `Its file ${file} is moved to the trash. Other copies of the space (other machines, a team server) keep it.`, 'Move to Trash'))) return false;
        return model.deleteSpaceFile(node.uri, (why) => confirm(`${file} cannot be moved to the trash (${why}). Delete it permanently?`, 'This cannot be undone.', 'Delete Permanently'));
      }
      case 'appTree': {
        const space = manager.get(node.spaceId);
        if (!space) throw new Error(`space ${node.spaceId} is not open`);
        if (!(await confirm(`Delete "${node.name}" from the space "${space.name}"?`, 'The app tree is removed for everyone the space syncs with. Undo (Ctrl+Z) in the space editor brings it back.', 'Delete'))) return false;
        history.run(space.id, space.tree, (e) => e.edit('Delete App Tree', [node.treeId], () => space.deleteAppTree(node.treeId), APP_TREE_REF_KEYS));
        return true;
      }
      case 'note': {
        const space = manager.get(node.spaceId);
        if (!space) throw new Error(`space ${node.spaceId} is not open`);
        const tree = await space.openAppTree(node.treeId);
        const item = new Notes(tree).item(node.itemId);
        const sub = item.children.length ? ` and its ${item.children.length} sub-item(s)` : '';
        if (!(await confirm(`Delete "${item.text || '(empty)'}"${sub}?`, 'The note is removed for everyone the space syncs with. Undo (Ctrl+Z) in the space editor brings it back.', 'Delete'))) return false;
        history.run(space.id, tree, (e) => e.notes({ op: 'delete', id: node.itemId }).record);
        return true;
      }
      default:
        throw new Error('this item cannot be deleted');
    }
  });

  const fileOf = (node: SpacesNode | undefined): vscode.Uri | undefined => {
    if (!node) return undefined;
    if ('uri' in node) return node.uri;
    return model.entryForSpace(node.spaceId)?.uri;
  };

  const revealFile = wrap('spaces.revealFile', async (arg?: SpacesNode) => {
    const uri = fileOf(selectedOr(arg));
    if (!uri) throw new Error('select a space to reveal its file');
    await vscode.commands.executeCommand('revealInExplorer', uri);
    return uri;
  });

  const copySpaceId = wrap('spaces.copySpaceId', async (arg?: SpacesNode | { spaceId?: string }) => {
    const given = arg && !isNode(arg) ? arg.spaceId : undefined;
    const space = await pickSpace(given ?? (isNode(arg) ? nodeSpaceId(arg) : undefined));
    if (!space) return undefined;
    await vscode.env.clipboard.writeText(space.id);
    vscode.window.setStatusBarMessage(`Copied the id of space "${space.name}"`, 3000);
    return space.id;
  });

  /** Space in the Spaces view: checks or unchecks the selected note (one undo step, like the checkbox). */
  const toggleDone = wrap('spaces.toggleDone', async (arg?: SpacesNode) => {
    const node = selectedOr(arg);
    if (node?.kind !== 'note') return undefined;
    const space = manager.get(node.spaceId);
    if (!space) throw new Error(`space ${node.spaceId} is not open`);
    const tree = await space.openAppTree(node.treeId);
    if (!tree.has(node.itemId)) throw new Error('the note is gone');
    const done = tree.getProp(node.itemId, 'done') !== true;
    history.run(space.id, tree, (e) => e.notes({ op: 'setDone', id: node.itemId, done }).record);
    return done;
  });

  const refresh = wrap('spaces.refresh', async () => {
    await model.rescan();
  });

  return [
    vscode.commands.registerCommand('spaces.newSpace', newSpace),
    vscode.commands.registerCommand('spaces.addAppTree', addAppTree),
    vscode.commands.registerCommand('spaces.rename', rename),
    vscode.commands.registerCommand('spaces.delete', del),
    vscode.commands.registerCommand('spaces.revealFile', revealFile),
    vscode.commands.registerCommand('spaces.copySpaceId', copySpaceId),
    vscode.commands.registerCommand('spaces.refresh', refresh),
    vscode.commands.registerCommand('spaces.toggleDone', toggleDone),
    vscode.commands.registerCommand('spaces.showLog', () => log.show()),
    ...registerMarkdownCommands(model, log, treeView, history, () => activeSpace.spaceId),
    treeView.onDidChangeCheckboxState((e) => {
      for (const [node, state] of e.items) {
        if (node.kind !== 'note') continue;
        const tree = manager.get(node.spaceId)?.loadedAppTree(node.treeId);
        if (!tree || !tree.has(node.itemId)) continue;
        try {
          history.run(node.spaceId, tree, (ed) => ed.notes({ op: 'setDone', id: node.itemId, done: state === vscode.TreeItemCheckboxState.Checked }).record);
        } catch (err) {
          log.error(`cannot mark the note done: ${errorMessage(err)}`);
          void vscode.window.showErrorMessage(`Spaces: ${errorMessage(err)}`);
        }
      }
    }),
  ];
}
