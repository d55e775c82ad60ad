// Drag and drop of notes in the Spaces view, through the view's TreeDragAndDropController as VS
// Code calls it (handleDrag, then handleDrop with the same DataTransfer). Runs on its own two
// spaces, made here and deleted at the end; the fixture's alpha.space is not touched.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as vscode from 'vscode';
import type { SpacesApi } from '../../../src/extension';
import type { AppTree } from '../../../src/spaces/appTree';
import type { SpacesNode } from '../../../src/views/spacesTree';
import { activateSpaces, runCli, until } from '../util';

/** The view's mime type, by VS Code's convention application/vnd.code.tree.<view id>. */
const TREE_MIME = 'application/vnd.code.tree.spaces.tree';

const fixture = JSON.parse(fs.readFileSync(process.env.SPACES_E2E_FIXTURE ?? '', 'utf8')) as { workspace: string; cli: string };

let api: SpacesApi;

function label(node: SpacesNode): string {
  const l = api.tree.getTreeItem(node).label;
  return typeof l === 'string' ? l : (l?.label ?? '');
}

async function child(parent: SpacesNode, text: string): Promise<SpacesNode> {
  const children = await api.tree.getChildren(parent);
  const found = children.find((n) => label(n) === text);
  assert.ok(found, `no child "${text}" under "${label(parent)}"; children: ${children.map(label).join(', ')}`);
  return found;
}

/** The subtree as the view shows it: `A, B(B1, C)`. */
async function shape(node: SpacesNode): Promise<string> {
  const parts = await Promise.all(
    (await api.tree.getChildren(node)).map(async (n) => {
      const inner = await shape(n);
      return inner ? `${label(n)}(${inner})` : label(n);
    }),
  );
  return parts.join(', ');
}

async function drag(source: SpacesNode[], target: SpacesNode | undefined): Promise<vscode.DataTransfer> {
  const dataTransfer = new vscode.DataTransfer();
  const cts = new vscode.CancellationTokenSource();
  try {
    api.dragAndDrop.handleDrag(source, dataTransfer);
    await api.dragAndDrop.handleDrop(target, dataTransfer, cts.token);
  } finally {
    cts.dispose();
  }
  return dataTransfer;
}

interface Made {
  spaceId: string;
  uri: vscode.Uri;
}

suite('Drag and drop in the Spaces view', () => {
  const refusals: string[] = [];
  let subscription: vscode.Disposable | undefined;
  let first: Made;
  let second: Made;
  let outlineId: string;
  let outlineTree: AppTree;
  /** Nodes as the view hands them out. */
  let space: SpacesNode;
  let outline: SpacesNode;
  let other: SpacesNode;
  let elsewhere: SpacesNode;

  suiteSetup(async () => {
    api = await activateSpaces();
    subscription = api.dragAndDrop.onDidRefuseDrop((r) => refusals.push(r.message));

    first = (await vscode.commands.executeCommand<Made>('spaces.newSpace', { name: 'Drag test', fileName: 'drag-test' })) as Made;
    const o = await vscode.commands.executeCommand<{ treeId: string }>('spaces.addAppTree', { spaceId: first.spaceId, appId: 'notes', name: 'Outline' });
    await vscode.commands.executeCommand('spaces.addAppTree', { spaceId: first.spaceId, appId: 'notes', name: 'Other' });
    second = (await vscode.commands.executeCommand<Made>('spaces.newSpace', { name: 'Drag test 2', fileName: 'drag-test-2' })) as Made;
    const e = await vscode.commands.executeCommand<{ treeId: string }>('spaces.addAppTree', { spaceId: second.spaceId, appId: 'notes', name: 'Elsewhere' });
    assert.ok(first?.spaceId && second?.spaceId && o?.treeId && e?.treeId, 'the spaces and app trees were made');
    outlineId = o.treeId;

    const s1 = api.manager.get(first.spaceId);
    const s2 = api.manager.get(second.spaceId);
    assert.ok(s1 && s2);
    outlineTree = await s1.openAppTree(outlineId);
    const t2 = await s2.openAppTree(e.treeId);
    t2.addItem(t2.rootId, { text: 'X', done: false });

    const rootOf = async (m: Made) => until(`the space ${m.uri.fsPath} in the view`, async () => (await api.tree.getChildren()).find((n) => n.kind === 'space' && n.spaceId === m.spaceId));
    space = await rootOf(first);
    outline = await child(space, 'Outline');
    other = await child(space, 'Other');
    elsewhere = await child(await rootOf(second), 'Elsewhere');
    assert.equal(await shape(elsewhere), 'X');
  });

  suiteTeardown(async () => {
    subscription?.dispose();
    for (const m of [first, second]) {
      if (m && fs.existsSync(m.uri.fsPath)) await vscode.commands.executeCommand('spaces.delete', { kind: 'space', uri: m.uri, spaceId: m.spaceId }, { confirm: false });
    }
  });

  // Every test starts from the outline A, B(B1), C.
  setup(async () => {
    refusals.length = 0;
    const t = outlineTree;
    for (const id of t.childIds()) t.delete(id);
    t.addItem(t.rootId, { text: 'A', done: false });
    const b = t.addItem(t.rootId, { text: 'B', done: false });
    t.addItem(b, { text: 'B1', done: false });
    t.addItem(t.rootId, { text: 'C', done: false });
    assert.equal(await shape(outline), 'A, B(B1), C');
  });

  test('dragging a note carries the note and its text; other nodes carry nothing', async () => {
    const a = await child(outline, 'A');
    const dt = new vscode.DataTransfer();
    api.dragAndDrop.handleDrag([a], dt);
    assert.deepEqual(dt.get(TREE_MIME)?.value, [a]);
    assert.equal(await dt.get('text/plain')?.asString(), 'A');

    const none = new vscode.DataTransfer();
    api.dragAndDrop.handleDrag([outline, space], none);
    assert.equal(none.get(TREE_MIME), undefined);
    assert.ok(api.dragAndDrop.dropMimeTypes.includes(TREE_MIME));
  });

  test('a note dropped onto another note of its tree becomes that note\'s last child', async () => {
    await drag([await child(outline, 'C')], await child(outline, 'B'));
    assert.equal(await shape(outline), 'A, B(B1, C)');
    assert.equal(api.tree.getTreeItem(await child(outline, 'B')).description, '2', 'child count');
    assert.deepEqual(refusals, []);
  });

  test('a note dropped onto its notes tree becomes its last top-level item', async () => {
    await drag([await child(await child(outline, 'B'), 'B1')], outline);
    assert.equal(await shape(outline), 'A, B, C, B1');
    await drag([await child(outline, 'A')], outline);
    assert.equal(await shape(outline), 'B, C, B1, A');
    assert.deepEqual(refusals, []);
  });

  test('a note dropped onto itself or into its own subtree stays where it is, without a message', async () => {
    const b = await child(outline, 'B');
    await drag([b], b);
    await drag([b], await child(b, 'B1'));
    assert.equal(await shape(outline), 'A, B(B1), C');
    assert.deepEqual(refusals, []);
  });

  test('a drop into another app tree, another space or outside any notes tree is refused with a message', async () => {
    const a = await child(outline, 'A');
    await drag([a], other);
    await drag([a], await child(elsewhere, 'X'));
    await drag([a], elsewhere);
    await drag([a], space);
    await drag([a], undefined);
    assert.equal(refusals.length, 5, refusals.join('\n'));
    assert.match(refusals[0], /only be moved within their own notes tree.*another app tree/);
    assert.match(refusals[1], /only be moved within their own notes tree.*another space/);
    assert.match(refusals[2], /another space/);
    assert.match(refusals[3], /onto another note .* or onto their notes tree/);
    assert.match(refusals[4], /onto another note .* or onto their notes tree/);
    assert.equal(await shape(outline), 'A, B(B1), C');
    assert.equal(await shape(other), '');
    assert.equal(await shape(elsewhere), 'X');
  });

  test('the moves are saved to the space file', async () => {
    await drag([await child(outline, 'C')], await child(outline, 'A'));
    await drag([await child(await child(outline, 'B'), 'B1')], outline);
    assert.equal(await shape(outline), 'A(C), B, B1');
    await api.manager.flush(first.spaceId);
    interface Dumped {
      props: { text?: string };
      children: Dumped[];
    }
    const dump = (await runCli(fixture.cli, 'dump', first.uri.fsPath, '--tree', outlineId)) as unknown as Dumped;
    const render = (n: Dumped): string => n.children.map((c) => (c.children.length ? `${c.props.text}(${render(c)})` : String(c.props.text))).join(', ');
    assert.equal(render(dump), 'A(C), B, B1');
  });
});
