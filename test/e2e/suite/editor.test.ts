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
