// The space editor (custom editor + webview) inside VS Code: it opens for *.space files, shows
// app trees, applies the webview's edits through the same message checks, puts them on VS Code's
// undo stack, and shows a file that is not a space as an error without touching it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { SpacesApi } from '../../../src/extension';
import type { EditorSession } from '../../../src/views/editor/editorSession';
import { Notes } from '../../../src/spaces/apps/notes';
import { Chat } from '../../../src/spaces/apps/chat';
import { activateSpaces } from '../util';
import { loadFixture, runCli, until } from './helpers';

const fixture = loadFixture();
const spaces = (...args: string[]) => runCli(fixture.cli, ...args);

/** Undo / Redo as the Edit menu runs them, on the focused editor. */
async function undo(): Promise<void> {
  await vscode.commands.executeCommand('workbench.action.focusActiveEditorGroup');
  await vscode.commands.executeCommand('undo');
}

async function redo(): Promise<void> {
  await vscode.commands.executeCommand('workbench.action.focusActiveEditorGroup');
  await vscode.commands.executeCommand('redo');
}

suite('Space editor', () => {
  let api: SpacesApi;
  const file = path.join(fixture.workspace, 'editor-test.space');
  let spaceId = '';
  let planId = '';
  let chatId = '';
  let boardId = '';
  let seq = 1000;

  const session = (): Promise<EditorSession> => until('an editor for editor-test.space', () => api.editor.editorsOf(vscode.Uri.file(file))[0]);
  const notes = () => new Notes(api.manager.get(spaceId)?.loadedAppTree(planId) ?? assert.fail('Plan is not loaded'));
  const texts = () => notes().items().map((i) => i.text);
  /** The outline as nested text, e.g. "first(second)". */
  const shape = (parent?: string): string =>
    notes()
      .items(parent)
      .map((i) => (i.children.length ? `${i.text}(${shape(i.id)})` : i.text))
      .join(',');
  const untilShape = (what: string, want: string) => until(`${what} (outline: ${want})`, () => shape() === want || (void (lastShape = shape()), false)).catch((e: Error) => assert.fail(`${e.message}; it is ${lastShape}`));
  let lastShape = '';

  suiteSetup(async () => {
    api = await activateSpaces();
    ({ spaceId } = (await spaces('create', file, '--name', 'Editor test')) as { spaceId: string });
    ({ treeId: planId } = (await spaces('app', 'add', file, '--app', 'notes', '--name', 'Plan')) as { treeId: string });
    await spaces('item', 'add', file, '--tree', planId, '--set', 'text=first');
    ({ treeId: chatId } = (await spaces('app', 'add', file, '--app', 'chat', '--name', 'Talk')) as { treeId: string });
    ({ treeId: boardId } = (await spaces('app', 'add', file, '--app', 'kanban', '--name', 'Board')) as { treeId: string });
    await until('the new space to open', () => api.manager.get(spaceId)?.appTreeRefs().length === 3);
  });

  suiteTeardown(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('opens from the Spaces view command on the chosen app tree and paints it', async () => {
    const before = api.editor.figures.firstPaint.length;
    await vscode.commands.executeCommand('spaces.openAppTree', { spaceId, treeId: planId });
    const s = await session();
    await until('the Plan tree to be shown', () => s.shows?.type === 'tree' && s.shows.detail === planId);
    const paint = await until('the webview to report its first paint', () => api.editor.figures.firstPaint.slice(before).find((p) => p.treeId === planId));
    assert.equal(paint.items, 1, 'the webview rendered the one item');
    assert.equal(vscode.window.tabGroups.activeTabGroup.activeTab?.input instanceof vscode.TabInputCustom, true);
    assert.equal((vscode.window.tabGroups.activeTabGroup.activeTab?.input as vscode.TabInputCustom).viewType, 'spaces.editor');
  });

  test('edits from the webview change the tree; Undo and Redo go through VS Code', async () => {
    const s = await session();
    const firstId = notes().items()[0].id;
    s.handle({ type: 'edit', seq: seq++, treeId: planId, edit: { op: 'split', id: firstId, before: 'first', after: 'second' } });
    assert.deepEqual(texts(), ['first', 'second']);
    const secondId = notes().items()[1].id;
    s.handle({ type: 'edit', seq: seq++, treeId: planId, edit: { op: 'indent', id: secondId } });
    assert.deepEqual(notes().item(firstId).children.map((c) => c.text), ['second']);

    await undo();
    await untilShape('undo of the indent', 'first,second');
    await undo();
    await untilShape('undo of the new item', 'first');
    await redo();
    await untilShape('redo of the new item', 'first,second');
    await redo();
    await untilShape('redo of the indent', 'first(second)');
  });

  test('typing in one item is one undo step; the document is saved, not left dirty', async () => {
    const s = await session();
    const firstId = notes().items()[0].id;
    for (const t of ['first!', 'first!!', 'first!!!']) s.handle({ type: 'edit', seq: seq++, treeId: planId, edit: { op: 'setText', id: firstId, text: t } });
    assert.equal(notes().item(firstId).text, 'first!!!');
    await until('the editor to save itself', () => vscode.window.tabGroups.activeTabGroup.activeTab?.isDirty === false);
    await undo();
    await until('undo of the typing', () => notes().item(firstId).text === 'first');
    await redo();
    await until('redo of the typing', () => notes().item(firstId).text === 'first!!!');
    // Read back by another process: the edits are in the file.
    await until('the file to hold the typing', async () => JSON.stringify(await spaces('dump', file, '--tree', planId)).includes('first!!!'));
  });

  test('bad messages from the webview are refused and change nothing', async () => {
    const s = await session();
    const before = JSON.stringify(notes().items());
    s.handle({ type: 'edit', seq: seq++, treeId: planId, edit: { op: 'setText', id: '../../etc', text: 'x' } });
    s.handle({ type: 'edit', seq: seq++, treeId: planId, edit: { op: 'post', text: 'wrong kind' } });
    s.handle({ type: 'edit', seq: seq++, treeId: planId, edit: { op: 'delete', id: 'f'.repeat(32) } });
    s.handle({ type: 'nonsense' });
    s.handle('not even an object');
    assert.equal(JSON.stringify(notes().items()), before);
  });

  test('chat and inspector trees take their own edits', async () => {
    const s = await session();
    s.handle({ type: 'select', treeId: chatId });
    await until('the chat to be shown', () => s.shows?.type === 'tree' && s.shows.detail === chatId);
    s.handle({ type: 'edit', seq: seq++, treeId: chatId, edit: { op: 'post', text: 'hello team' } });
    const chat = new Chat(api.manager.get(spaceId)?.loadedAppTree(chatId) ?? assert.fail('chat not loaded'));
    assert.deepEqual(chat.messages().map((m) => m.text), ['hello team']);
    assert.ok(chat.messages()[0].author.length > 0, 'the message has an author');

    s.handle({ type: 'select', treeId: boardId });
    await until('the inspector to be shown', () => s.shows?.type === 'tree' && s.shows.detail === boardId);
    const board = api.manager.get(spaceId)?.loadedAppTree(boardId) ?? assert.fail('board not loaded');
    s.handle({ type: 'edit', seq: seq++, treeId: boardId, edit: { op: 'setProp', id: boardId, key: 'columns', json: '["todo","done"]' } });
    assert.deepEqual(board.getProp(boardId, 'columns'), ['todo', 'done']);
    s.handle({ type: 'edit', seq: seq++, treeId: boardId, edit: { op: 'setProp', id: boardId, key: 'columns', json: '{not json' } });
    assert.deepEqual(board.getProp(boardId, 'columns'), ['todo', 'done'], 'bad JSON changes nothing');
  });

  /** The Plan tree's item whose text is `text`. */
  const itemId = (text: string) => notes().items().find((i) => i.text === text)?.id;
  const noteNode = (id: string) => ({ kind: 'note' as const, spaceId, treeId: planId, itemId: id });

  test('an edit from the Spaces view is the next step Undo takes in the editor, never an older keystroke', async () => {
    await vscode.commands.executeCommand('spaces.openAppTree', { spaceId, treeId: planId });
    const s = await session();
    await until('the Plan tree to be shown', () => s.shows?.type === 'tree' && s.shows.detail === planId);
    s.handle({ type: 'edit', seq: seq++, treeId: planId, edit: { op: 'add', text: 'victim' } });
    const victim = itemId('victim') ?? assert.fail('the item was not added');
    s.handle({ type: 'edit', seq: seq++, treeId: planId, edit: { op: 'setText', id: victim, text: 'victim typed' } });
    // The view's context menu: Delete (confirmed), then Rename of another item.
    assert.equal(await vscode.commands.executeCommand('spaces.delete', noteNode(victim), { confirm: false }), true);
    assert.equal(itemId('victim typed'), undefined, 'deleted');
    await undo();
    await until('undo to bring the deleted item back, with its typing', () => itemId('victim typed') === victim);
    await undo();
    await until('the next undo to undo the typing', () => itemId('victim') === victim);
    await redo();
    await redo();
    await until('redo to delete it again', () => itemId('victim typed') === undefined && itemId('victim') === undefined);

    const firstId = notes().items()[0].id;
    const firstText = notes().item(firstId).text;
    await vscode.commands.executeCommand('spaces.rename', noteNode(firstId), { name: 'renamed in the view' });
    await undo();
    await until('undo of the rename from the view', () => notes().item(firstId).text === firstText);
    assert.equal(itemId('victim typed') ?? itemId('victim'), undefined, 'the undo took the rename, not the older delete');

    // Renames of the space and of an app tree (the space's own tree) are undo steps as well.
    await vscode.commands.executeCommand('spaces.rename', { kind: 'space', uri: vscode.Uri.file(file), spaceId }, { name: 'Renamed space' });
    await vscode.commands.executeCommand('spaces.rename', { kind: 'appTree', spaceId, treeId: planId, appId: 'notes', name: 'Plan' }, { name: 'Renamed plan' });
    assert.equal(api.manager.get(spaceId)?.name, 'Renamed space');
    await undo();
    await until('undo of the app tree rename', () => api.manager.get(spaceId)?.appTreeRef(planId)?.name === 'Plan');
    assert.equal(api.manager.get(spaceId)?.name, 'Renamed space');
    await undo();
    await until('undo of the space rename', () => api.manager.get(spaceId)?.name === 'Editor test');

    // Adding and deleting an app tree from the view: undone, the tree comes back with its content.
    const space = () => api.manager.get(spaceId) ?? assert.fail('the space is closed');
    const added = await vscode.commands.executeCommand<{ treeId: string }>('spaces.addAppTree', { spaceId, appId: 'notes', name: 'Added' });
    assert.ok(space().appTreeRef(added.treeId));
    await undo();
    await until('undo of Add App Tree', () => space().appTreeRef(added.treeId) === undefined);
    await redo();
    await until('redo of Add App Tree', () => space().appTreeRef(added.treeId)?.name === 'Added');
    const messages = new Chat(await space().openAppTree(chatId)).messages().map((m) => m.text);
    assert.ok(messages.length > 0, 'the chat has messages');
    assert.equal(await vscode.commands.executeCommand('spaces.delete', { kind: 'appTree', spaceId, treeId: chatId, appId: 'chat', name: 'Talk' }, { confirm: false }), true);
    assert.equal(space().appTreeRef(chatId), undefined);
    await undo();
    await until('undo of the app tree delete', () => space().appTreeRef(chatId)?.name === 'Talk');
    assert.deepEqual(new Chat(await space().openAppTree(chatId)).messages().map((m) => m.text), messages, 'the tree is back with its messages');
  });

  test('an edit from the view while no editor is open is undone in the editor opened next', async () => {
    const s = await session();
    s.handle({ type: 'edit', seq: seq++, treeId: planId, edit: { op: 'add', text: 'deleted while closed' } });
    const id = itemId('deleted while closed') ?? assert.fail('not added');
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await until('the editor to close', () => api.editor.editorsOf(vscode.Uri.file(file)).length === 0);
    await vscode.commands.executeCommand('spaces.delete', noteNode(id), { confirm: false });
    assert.equal(itemId('deleted while closed'), undefined);
    await vscode.commands.executeCommand('spaces.openAppTree', { spaceId, treeId: planId });
    const s2 = await session();
    await until('the Plan tree to be shown', () => s2.shows?.type === 'tree' && s2.shows.detail === planId);
    await undo();
    await until('undo in the new editor to bring the item back', () => itemId('deleted while closed') === id);
  });

  test('several lines pasted into an item become items, one undo step', async () => {
    const s = await session();
    s.handle({ type: 'edit', seq: seq++, treeId: planId, edit: { op: 'add', text: 'paste here' } });
    const id = itemId('paste here') ?? assert.fail('not added');
    s.handle({ type: 'edit', seq: seq++, treeId: planId, edit: { op: 'paste', id, before: 'paste ', lines: ['one', 'two', 'three'], after: 'here' } });
    const after = texts();
    assert.deepEqual(after.slice(after.indexOf('paste one')), ['paste one', 'two', 'threehere']);
    await undo();
    await until('one undo to take the whole paste back', () => itemId('paste here') === id && !texts().includes('two'));
  });

  test('Markdown: export writes a task list, import adds it back as a subtree (one undo step), Copy as Markdown fills the clipboard; a bad file changes nothing', async () => {
    const s = await session();
    s.handle({ type: 'edit', seq: seq++, treeId: planId, edit: { op: 'add', text: 'md parent' } });
    const parent = itemId('md parent') ?? assert.fail('not added');
    s.handle({ type: 'edit', seq: seq++, treeId: planId, edit: { op: 'add', parentId: parent, text: '- looks like a list' } });
    const child = notes().item(parent).children[0]?.id ?? assert.fail('not added');
    s.handle({ type: 'edit', seq: seq++, treeId: planId, edit: { op: 'setDone', id: child, done: true } });
    const out = path.join(fixture.workspace, 'md-export.md');
    const r = await vscode.commands.executeCommand<{ items: number }>('spaces.exportMarkdown', { spaceId, treeId: planId, itemId: parent, uri: out });
    assert.equal(r.items, 2);
    assert.equal(fs.readFileSync(out, 'utf8'), '- [ ] md parent\n  - [x] \\- looks like a list\n');
    const copied = await vscode.commands.executeCommand<string>('spaces.copyAsMarkdown', { spaceId, treeId: planId, itemId: parent });
    assert.equal(await vscode.env.clipboard.readText(), copied);
    assert.equal(copied, fs.readFileSync(out, 'utf8'));
    // Import under the parent: the same subtree again, as a child of it.
    const before = shape();
    const { ids } = await vscode.commands.executeCommand<{ ids: string[] }>('spaces.importMarkdown', { spaceId, treeId: planId, itemId: parent, uri: out });
    assert.equal(ids.length, 1);
    const imported = notes().item(ids[0]);
    assert.deepEqual([imported.text, imported.children.map((c) => [c.text, c.done])], ['md parent', [['- looks like a list', true]]]);
    await undo();
    await until('one undo to take the import back', () => shape() === before);
    // Hostile files: too deep is capped, too long a line refused with the reason, not valid UTF-8 refused.
    const bad = path.join(fixture.workspace, 'md-bad.md');
    fs.writeFileSync(bad, `- ok\n- ${'x'.repeat(100_001)}\n`);
    await assert.rejects(Promise.resolve(vscode.commands.executeCommand('spaces.importMarkdown', { spaceId, treeId: planId, uri: bad })), /longer than/);
    fs.writeFileSync(bad, Buffer.from([0x2d, 0x20, 0xff, 0xfe, 0x0a]));
    await assert.rejects(Promise.resolve(vscode.commands.executeCommand('spaces.importMarkdown', { spaceId, treeId: planId, uri: bad })));
    assert.equal(shape(), before, 'a refused file added nothing');
    await assert.rejects(Promise.resolve(vscode.commands.executeCommand('spaces.exportMarkdown', { spaceId, treeId: chatId, uri: out })), /notes trees/);
  });

  test('closing the active editor clears the active space (the panel is not read once disposed)', async () => {
    await vscode.commands.executeCommand('spaces.openAppTree', { spaceId, treeId: planId });
    await until('the editor to make its space active', () => api.activeSpace.spaceId === spaceId);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await until('the active space to be cleared when the editor closed', () => api.activeSpace.spaceId === undefined);
    await vscode.commands.executeCommand('spaces.openAppTree', { spaceId, treeId: planId });
    await session();
  });

  test('a file that is not a space opens with an error and stays untouched', async () => {
    const before = fs.readFileSync(fixture.broken.file);
    await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(fixture.broken.file), 'spaces.editor');
    const s = await until('an editor for broken.space', () => api.editor.editorsOf(vscode.Uri.file(fixture.broken.file))[0]);
    await until('the error to be shown', () => s.shows?.type === 'fileError');
    assert.match(s.shows?.detail ?? '', /not a Spaces file/);
    assert.deepEqual(fs.readFileSync(fixture.broken.file), before);
  });

  test('an editor whose file is deleted says so', async () => {
    const s = await session();
    fs.rmSync(file);
    await until('the editor to show that the file is gone', () => s.shows?.type === 'fileError' && /deleted or moved/.test(s.shows.detail), 20_000);
    assert.equal(api.manager.get(spaceId), undefined, 'the space is closed');
  });
});
