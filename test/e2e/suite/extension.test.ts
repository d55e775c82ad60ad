// Runs inside VS Code's extension host on the fixture workspace made by scripts/e2e/run.mjs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { SpacesApi } from '../../../src/extension';
import type { SpacesNode } from '../../../src/views/spacesTree';
import { EXT_ID, loadFixture, runCli, until } from './helpers';

const fixture = loadFixture();
const spaces = (...args: string[]) => runCli(fixture.cli, ...args);

let api: SpacesApi;

async function roots(): Promise<SpacesNode[]> {
  return api.tree.getChildren();
}

/** A note's checkbox state (the view gives it with a tooltip and an accessible label). */
function checked(node: SpacesNode): vscode.TreeItemCheckboxState | undefined {
  const c = item(node).checkboxState;
  return typeof c === 'object' ? c.state : c;
}

function item(node: SpacesNode): vscode.TreeItem {
  return api.tree.getTreeItem(node);
}

function label(node: SpacesNode): string {
  const l = item(node).label;
  return typeof l === 'string' ? l : (l?.label ?? '');
}

async function labels(parent?: SpacesNode): Promise<string[]> {
  return (await api.tree.getChildren(parent)).map(label);
}

async function rootFor(file: string): Promise<SpacesNode | undefined> {
  return (await roots()).find((n) => 'uri' in n && n.uri.fsPath === file);
}

async function child(parent: SpacesNode, text: string): Promise<SpacesNode> {
  const found = (await api.tree.getChildren(parent)).find((n) => label(n) === text);
  assert.ok(found, `no child "${text}" under "${label(parent)}"; children: ${(await labels(parent)).join(', ')}`);
  return found;
}

/** Waits until no file is still opening. */
async function settled(): Promise<void> {
  await until('every space file to be opened', () => api.model.entries().every((e) => e.state.kind !== 'opening'));
}

suite('Spaces extension', () => {
  suiteSetup(async () => {
    const ext = vscode.extensions.getExtension<SpacesApi>(EXT_ID);
    assert.ok(ext, `extension ${EXT_ID} not found`);
    api = await ext.activate();
    await api.model.ready;
    await settled();
  });

  test('activates, registers its commands and finds the workspace', async () => {
    const ext = vscode.extensions.getExtension(EXT_ID);
    assert.equal(ext?.isActive, true);
    const commands = await vscode.commands.getCommands(true);
    for (const c of ['newSpace', 'addAppTree', 'rename', 'delete', 'revealFile', 'copySpaceId', 'refresh', 'showLog']) {
      assert.ok(commands.includes(`spaces.${c}`), `command spaces.${c} is registered`);
    }
    assert.equal(vscode.workspace.workspaceFolders?.[0]?.uri.fsPath, fixture.workspace);
  });

  test('the tree shows both spaces, and the file that is not a space as an error', async () => {
    const top = await roots();
    const alpha = await rootFor(fixture.alpha.file);
    const beta = await rootFor(fixture.beta.file);
    const broken = await rootFor(fixture.broken.file);
    assert.ok(alpha && beta && broken, `roots: ${top.map(label).join(', ')}`);
    assert.equal(label(alpha), 'Alpha');
    assert.equal(item(alpha).contextValue, 'space');
    assert.equal(item(alpha).description, 'alpha.space');
    assert.equal(label(beta), 'Beta');
    assert.equal(item(beta).description, path.join('sub', 'beta.space'));
    assert.deepEqual(await labels(beta), []);

    assert.equal(item(broken).contextValue, 'spaceFileError');
    assert.match(String(item(broken).description), /not a Spaces file/);
    assert.equal((item(broken).iconPath as vscode.ThemeIcon).id, 'error');
    assert.equal(fs.readFileSync(fixture.broken.file, 'utf8'), 'this is not a space file\n', 'the broken file is untouched');
  });

  test('app trees have an icon per app, notes trees list their items', async () => {
    const alpha = (await rootFor(fixture.alpha.file)) as SpacesNode;
    assert.deepEqual(await labels(alpha), ['Todo', 'Team chat', 'Board']);
    const [todo, chat, board] = await api.tree.getChildren(alpha);
    assert.deepEqual(
      [todo, chat, board].map((n) => (item(n).iconPath as vscode.ThemeIcon).id),
      ['checklist', 'comment-discussion', 'symbol-namespace'],
    );
    assert.equal(item(todo).contextValue, 'appTree.notes');
    assert.equal(item(board).contextValue, 'appTree');
    assert.equal(item(todo).collapsibleState, vscode.TreeItemCollapsibleState.Collapsed);
    assert.equal(item(chat).collapsibleState, vscode.TreeItemCollapsibleState.None);

    assert.deepEqual(await labels(todo), ['Buy milk', 'Call Bob']);
    const milk = await child(todo, 'Buy milk');
    const bob = await child(todo, 'Call Bob');
    assert.match(String(item(todo).tooltip), /\n2 items at the top level/, 'the tooltip says what the number is');
    assert.equal(checked(milk), vscode.TreeItemCheckboxState.Unchecked);
    assert.equal((item(milk).checkboxState as { accessibilityInformation?: vscode.AccessibilityInformation }).accessibilityInformation?.label, 'Not done: Buy milk');
    assert.match(String(item(milk).tooltip), /1 sub-item/);
    assert.equal(item(milk).description, '1', 'child count');
    assert.equal(checked(bob), vscode.TreeItemCheckboxState.Checked);
    assert.equal(item(bob).description, undefined);
    assert.deepEqual(await labels(milk), ['Oat milk']);
    assert.equal(item(todo).description, 'notes · 2', 'loaded notes tree shows its item count');
  });

  test('New Space creates a file in the first workspace folder; Add App Tree adds to it', async () => {
    const created = await vscode.commands.executeCommand<{ spaceId: string; uri: vscode.Uri }>('spaces.newSpace', { name: 'Gamma Project' });
    assert.ok(created?.spaceId);
    const file = path.join(fixture.workspace, 'gamma-project.space');
    assert.equal(created.uri.fsPath, file);
    assert.ok(fs.existsSync(file));
    const gamma = await until('the new space in the tree', () => rootFor(file));
    assert.equal(label(gamma), 'Gamma Project');

    const added = await vscode.commands.executeCommand<{ spaceId: string; treeId: string }>('spaces.addAppTree', { spaceId: created.spaceId, appId: 'notes', name: 'Ideas' });
    assert.equal(added?.spaceId, created.spaceId);
    await until('the app tree in the tree', async () => (await labels(gamma)).includes('Ideas'));
    // From a tree node (as the context menu calls it), with the answers as the second argument.
    await vscode.commands.executeCommand('spaces.addAppTree', gamma, { appId: 'chat', name: 'Talk' });
    await until('the second app tree', async () => (await labels(gamma)).join() === 'Ideas,Talk');

    // On disk, as another process sees it.
    await api.manager.flush(created.spaceId);
    const info = await spaces('info', file);
    assert.equal(info.name, 'Gamma Project');
    assert.deepEqual(
      (info.appTrees as Array<{ appId: string; name: string }>).map((t) => `${t.appId}:${t.name}`),
      ['notes:Ideas', 'chat:Talk'],
    );

    await assert.rejects(Promise.resolve(vscode.commands.executeCommand('spaces.newSpace', { name: 'Gamma Project' })), /already exists/);
  });

  test('Rename, Copy Space Id and Delete work on tree nodes', async () => {
    const file = path.join(fixture.workspace, 'gamma-project.space');
    const gamma = (await rootFor(file)) as SpacesNode;
    await vscode.commands.executeCommand('spaces.rename', gamma, { name: 'Gamma' });
    await until('the renamed space', async () => label((await rootFor(file)) as SpacesNode) === 'Gamma');
    const talk = await child(gamma, 'Talk');
    await vscode.commands.executeCommand('spaces.rename', talk, { name: 'Chat room' });
    await until('the renamed app tree', async () => (await labels(gamma)).join() === 'Ideas,Chat room');

    const id = await vscode.commands.executeCommand<string>('spaces.copySpaceId', gamma);
    assert.equal(id, gamma.kind === 'space' ? gamma.spaceId : '');

    await vscode.commands.executeCommand('spaces.delete', await child(gamma, 'Chat room'), { confirm: false });
    await until('the deleted app tree to go', async () => (await labels(gamma)).join() === 'Ideas');

    await vscode.commands.executeCommand('spaces.delete', gamma, { confirm: false });
    assert.ok(!fs.existsSync(file), 'the space file is gone');
    await until('the deleted space to leave the tree', async () => !(await rootFor(file)));
  });

  test('a change another process makes to a .space file shows up in the tree', async () => {
    const before = api.tree.refreshCount;
    const { id } = await spaces('item', 'add', fixture.alpha.file, '--tree', fixture.alpha.todoId, '--set', 'text=From the CLI');
    const alpha = (await rootFor(fixture.alpha.file)) as SpacesNode;
    const todo = await child(alpha, 'Todo');
    await until('the CLI item in the tree', async () => (await labels(todo)).includes('From the CLI'));
    // The model changed; the view's refresh (batched to the next tick) follows from its event.
    await until('the view to be refreshed by an event', () => api.tree.refreshCount > before);

    await spaces('item', 'set', fixture.alpha.file, '--tree', fixture.alpha.todoId, '--id', String(id), '--set', 'done=true');
    await until('the item checked', async () => checked(await child(todo, 'From the CLI')) === vscode.TreeItemCheckboxState.Checked);

    await spaces('app', 'rename', fixture.alpha.file, '--tree', fixture.alpha.boardId, '--name', 'Kanban board');
    await until('the renamed app tree', async () => (await labels(alpha)).includes('Kanban board'));
  });

  test('space files created and deleted outside VS Code come and go', async () => {
    const file = path.join(fixture.workspace, 'sub', 'delta.space');
    await spaces('create', file, '--name', 'Delta');
    const delta = await until('the new file in the tree', async () => {
      const n = await rootFor(file);
      return n && n.kind === 'space' ? n : undefined;
    });
    assert.equal(label(delta), 'Delta');
    fs.rmSync(file);
    await until('the deleted file to leave the tree', async () => !(await rootFor(file)));
  });

  test('a file that becomes a valid space is opened', async () => {
    const file = path.join(fixture.workspace, 'later.space');
    fs.writeFileSync(file, 'not yet\n');
    await until('the error node', async () => (await rootFor(file))?.kind === 'fileError');
    fs.rmSync(file);
    await spaces('create', file, '--name', 'Later');
    await until('the space to open', async () => (await rootFor(file))?.kind === 'space');
  });

  test('a read-only space file opens marked read-only; an edit is not saved to it, and the view says why', async () => {
    // Made read-only outside the workspace and moved in, so that it is read-only when it opens.
    const staged = path.join(path.dirname(fixture.workspace), 'frozen.space.staged');
    const file = path.join(fixture.workspace, 'frozen.space');
    const { spaceId } = (await spaces('create', staged, '--name', 'Frozen')) as { spaceId: string };
    fs.chmodSync(staged, 0o444);
    const before = fs.readFileSync(staged);
    fs.renameSync(staged, file);
    const frozen = await until('the read-only space in the tree', async () => {
      const n = await rootFor(file);
      return n && n.kind === 'space' ? n : undefined;
    });
    assert.match(String(item(frozen).description), /read-only/);

    await vscode.commands.executeCommand('spaces.addAppTree', { spaceId, appId: 'notes', name: 'Not saved' });
    await until('the refused save in the view', async () => /is read-only/.test(String(item((await rootFor(file)) as SpacesNode).description)));
    assert.ok(fs.readFileSync(file).equals(before), 'the read-only file was changed');
    assert.equal(fs.statSync(file).mode & 0o777, 0o444);

    // Made writable again, the edit that waited is saved (the layer retries): nothing was lost.
    fs.chmodSync(file, 0o644);
    await until('the waiting edit saved once the file is writable', async () => {
      const info = (await spaces('info', file)) as { appTrees: Array<{ name: string }> };
      return info.appTrees.some((t) => t.name === 'Not saved');
    });
    fs.rmSync(file);
    await until('the deleted file to leave the tree', async () => !(await rootFor(file)));
  });

  // Last: it closes everything.
  test('deactivate flushes every open space to its file', async () => {
    const space = api.manager.get(fixture.alpha.spaceId);
    assert.ok(space);
    const todo = await space.openAppTree(fixture.alpha.todoId);
    todo.addItem(todo.rootId, { text: 'Written before deactivate', done: false });
    // The module VS Code loaded (same require cache): its deactivate, as on window close.
    const ext = vscode.extensions.getExtension(EXT_ID) as vscode.Extension<SpacesApi>;
    const main = (await import(path.join(ext.extensionPath, 'dist', 'extension.js'))) as { deactivate(): Promise<void> };
    await main.deactivate();
    assert.equal(api.manager.list().length, 0, 'every space is closed');
    const dump = (await spaces('dump', fixture.alpha.file, '--tree', fixture.alpha.todoId)) as { children: Array<{ props: { text?: string } }> };
    assert.ok(dump.children.some((c) => c.props.text === 'Written before deactivate'), JSON.stringify(dump));
  });
});
