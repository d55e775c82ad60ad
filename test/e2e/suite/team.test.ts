// Working as a team from VS Code, against the real team server scripts/e2e/run.mjs started: a
// teammate makes a space with the CLI and puts it on the server (as they would); here the Team
// Server view lists it, "Join a Team Space" clones it into a new file of the workspace and
// connects it, the Spaces view shows its tree, edits sync both ways, and join links are checked
// (a hostile one changes nothing; a good one joins or connects). Leaves the window as it found it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as vscode from 'vscode';
import type { SpacesApi } from '../../../src/extension';
import type { SpacesNode } from '../../../src/views/spacesTree';
import type { ShownEntry } from '../../../src/views/team/historyCommands';
import type { TeamNode } from '../../../src/views/team/teamView';
import { EXT_ID, loadFixture, runCli, until } from './helpers';

const fixture = loadFixture();
const { url, token } = fixture.server;
const spaces = (...args: string[]): Promise<Record<string, unknown>> => runCli(fixture.cli, ...args);
const run = <T>(command: string, ...args: unknown[]): Promise<T> => Promise.resolve(vscode.commands.executeCommand<T>(command, ...args));

interface DumpNode {
  props: { text?: string };
  children: DumpNode[];
}

suite('Team: join a server space', () => {
  let api: SpacesApi;
  let scratch: string;
  /** The teammate's copy (outside the workspace). */
  let theirs: string;
  let spaceId: string;
  let treeId: string;
  let chatId: string;
  const joined: string[] = [];
  const settings = () => vscode.workspace.getConfiguration('spaces.server');

  async function teammateTexts(): Promise<string[]> {
    await spaces('sync', theirs, '--server', url, '--token', token);
    const dump = (await spaces('dump', theirs, '--tree', treeId)) as unknown as DumpNode;
    return dump.children.map((c) => c.props.text ?? '');
  }

  async function viewTexts(file: string): Promise<string[]> {
    const spaceNode = (await api.tree.getChildren()).find((n) => 'uri' in n && n.uri.fsPath === file);
    if (!spaceNode) return [];
    const plan = (await api.tree.getChildren(spaceNode)).find((n) => api.tree.getTreeItem(n).label === 'Plan');
    if (!plan) return [];
    return (await api.tree.getChildren(plan)).map((n: SpacesNode) => String(api.tree.getTreeItem(n).label));
  }

  suiteSetup(async () => {
    const ext = vscode.extensions.getExtension<SpacesApi>(EXT_ID);
    assert.ok(ext, `extension ${EXT_ID} not found`);
    api = await ext.activate();
    await api.model.ready;
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-e2e-team-'));
    theirs = path.join(scratch, 'theirs.space');
    // The teammate: a space made and filled with the CLI, put on the server by `spaces sync`.
    spaceId = String((await spaces('create', theirs, '--name', 'Team Plan')).spaceId);
    treeId = String((await spaces('app', 'add', theirs, '--app', 'notes', '--name', 'Plan')).treeId);
    await spaces('item', 'add', theirs, '--tree', treeId, '--set', 'text=Call Bob');
    await spaces('item', 'add', theirs, '--tree', treeId, '--set', 'text=Book the room');
    chatId = String((await spaces('app', 'add', theirs, '--app', 'chat', '--name', 'Talk')).treeId);
    await spaces('sync', theirs, '--server', url, '--token', token);
  });

  suiteTeardown(async () => {
    for (const file of joined) {
      const id = api.model.entry(vscode.Uri.file(file))?.state;
      if (id?.kind === 'open' && api.sync.connections.isConnected(id.spaceId)) await run('spaces.disconnect', { spaceId: id.spaceId });
    }
    await settings().update('connections', undefined, vscode.ConfigurationTarget.Workspace);
    await settings().update('url', undefined, vscode.ConfigurationTarget.Workspace);
    for (const file of joined) {
      await api.model.deleteSpaceFile(vscode.Uri.file(file), async () => true);
    }
    await api.sync.tokens.delete(url);
    api.activeSpace.set(undefined);
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  test('the commands are registered, and joining needs a sign-in', async () => {
    const commands = await vscode.commands.getCommands(true);
    for (const c of ['joinTeamSpace', 'team.openInWorkspace', 'team.copyJoinLink', 'team.refresh', 'team.loadMore']) assert.ok(commands.includes(`spaces.${c}`), `spaces.${c}`);
    await assert.rejects(run('spaces.joinTeamSpace', { url, spaceId }), /not signed in/);
  });

  test('the Team Server view lists the spaces the signed-in token may read', async () => {
    await run('spaces.signIn', { url, token });
    await settings().update('url', url, vscode.ConfigurationTarget.Workspace);
    const roots = await until('the server in the view', async () => {
      const r = await api.team.tree.getChildren();
      return r.length > 0 ? r : undefined;
    });
    assert.equal(api.team.tree.getTreeItem(roots[0]).label, new URL(url).origin);
    const children = await until('the teammate\'s space in the view', async () => {
      api.team.tree.refresh();
      const c = await api.team.tree.getChildren(roots[0]);
      return c.some((n) => n.kind === 'teamSpace' && n.space.id === spaceId) ? c : undefined;
    });
    const node = children.find((n): n is Extract<TeamNode, { kind: 'teamSpace' }> => n.kind === 'teamSpace' && n.space.id === spaceId);
    assert.ok(node);
    const item = api.team.tree.getTreeItem(node);
    assert.equal(item.label, 'Team Plan');
    assert.equal(item.contextValue, 'teamSpace');
    assert.match(String(item.description), /^admin · last change #\d+/);
    const link = await run<string>('spaces.team.copyJoinLink', node);
    assert.equal(link, `vscode://${EXT_ID}/join?server=${encodeURIComponent(url)}&space=${spaceId}`);
  });

  test('Join a Team Space clones it into a new file, connects it, and the Spaces view shows its tree', async () => {
    const r = await run<{ spaceId: string; file: string; cloned: boolean }>('spaces.joinTeamSpace', { url, spaceId });
    joined.push(r.file);
    assert.equal(r.spaceId, spaceId);
    assert.equal(r.cloned, true);
    assert.equal(path.basename(r.file), 'Team Plan.space', 'the file is named after the space');
    assert.equal(path.dirname(r.file), fixture.workspace);
    assert.deepEqual(fs.readdirSync(fixture.workspace).filter((n) => n.includes('.partial')), [], 'no staging file is left');
    assert.deepEqual(settings().get('connections'), { [spaceId]: true }, 'connected to the default server in the workspace settings');
    await until('connected', () => api.sync.connections.state(spaceId)?.status === 'connected');
    assert.deepEqual(await until('the tree in the Spaces view', async () => ((await viewTexts(r.file)).length === 2 ? viewTexts(r.file) : undefined)), ['Call Bob', 'Book the room']);
    // The view marks it as here now.
    const root = (await api.team.tree.getChildren())[0];
    const node = (await api.team.tree.getChildren(root)).find((n) => n.kind === 'teamSpace' && n.space.id === spaceId);
    assert.ok(node);
    assert.equal(api.team.tree.getTreeItem(node).contextValue, 'teamSpace.here');
  });

  test('an edit made here reaches the teammate, and theirs shows here', async () => {
    const space = api.manager.get(spaceId);
    assert.ok(space);
    const tree = await space.openAppTree(treeId);
    tree.addItem(tree.rootId, { text: 'Written after joining', done: false });
    await until('acknowledged by the server', () => api.sync.connections.state(spaceId)?.pendingOps === 0 && api.sync.connections.state(spaceId)?.status === 'connected');
    assert.ok((await teammateTexts()).includes('Written after joining'));
    await spaces('item', 'add', theirs, '--tree', treeId, '--set', 'text=From the teammate');
    await spaces('sync', theirs, '--server', url, '--token', token);
    await until('the teammate\'s edit in the view', async () => (await viewTexts(joined[0])).includes('From the teammate'));
  });

  test('Show History lists who changed an item; Restore brings an earlier value back as an undoable edit that syncs', async () => {
    const space = api.manager.get(spaceId);
    assert.ok(space);
    const tree = await space.openAppTree(treeId);
    const item = tree.childIds().find((id) => tree.getProp(id, 'text') === 'Call Bob');
    assert.ok(item);
    // The teammate changes its text (their CLI, their sync); it arrives here.
    await spaces('item', 'set', theirs, '--tree', treeId, '--id', item, '--set', 'text=Call Bob at 10');
    await spaces('sync', theirs, '--server', url, '--token', token);
    await until('the teammate\'s text here', () => tree.getProp(item, 'text') === 'Call Bob at 10');
    const shown = await run<{ entries: ShownEntry[] }>('spaces.showHistory', { spaceId, treeId, itemId: item });
    const texts = shown.entries.filter((e) => e.kind === 'text');
    assert.deepEqual(texts.map((e) => e.value), ['Call Bob', 'Call Bob at 10']);
    // The teammate's edits were made by CLI runs offline and relayed by `spaces sync`: the server
    // binds only a connection's own peer id, so their author is unknown (docs/team.md).
    assert.deepEqual(texts.map((e) => e.author), [undefined, undefined]);
    assert.deepEqual(texts.map((e) => e.current), [false, true]);
    // This window's edits are its signed-in user's.
    const mine = tree.childIds().find((id) => tree.getProp(id, 'text') === 'Written after joining');
    assert.ok(mine);
    const myHistory = await run<{ entries: ShownEntry[] }>('spaces.showHistory', { spaceId, treeId, itemId: mine });
    assert.deepEqual(myHistory.entries.filter((e) => e.kind === 'text').map((e) => e.author), ['e2e']);
    assert.equal(shown.entries[0].kind, 'created');

    await vscode.commands.executeCommand('spaces.openAppTree', { spaceId, treeId });
    await until('an editor of the joined space', () => api.editor.editorsOf(vscode.Uri.file(joined[0]))[0]);
    assert.deepEqual(await run('spaces.showHistory', { spaceId, treeId, itemId: item, restore: texts[0].key }), { restored: true });
    assert.equal(tree.getProp(item, 'text'), 'Call Bob');
    await until('the restore acknowledged', () => api.sync.connections.state(spaceId)?.pendingOps === 0);
    await until('the restore at the teammate', async () => (await teammateTexts()).includes('Call Bob'));
    // One undo step, like any edit.
    await vscode.commands.executeCommand('workbench.action.focusActiveEditorGroup');
    await vscode.commands.executeCommand('undo');
    await until('undo of the restore', () => tree.getProp(item, 'text') === 'Call Bob at 10');
    // The space's activity lists the latest changes first: the undo (its text, and the check state
    // the undo step writes back with it) by this window's user.
    const activity = await run<{ entries: Array<{ itemId: string; kind: string; author?: string }> }>('spaces.showActivity', { spaceId });
    const latest = activity.entries.slice(0, 2);
    assert.ok(latest.every((e) => e.itemId === item && e.author === 'e2e'), JSON.stringify(latest));
    assert.ok(latest.some((e) => e.kind === 'text'), JSON.stringify(latest));
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('identity: the connection knows who writes under each peer id, and chat messages carry the signed-in user', async () => {
    const layer = api.sync.connections.layer(spaceId);
    assert.ok(layer);
    // The fixture's token is user "e2e"; the teammate's CLI runs used the same token.
    assert.equal(layer.identities.self, 'e2e');
    await until('this window\'s own peer id bound', () => layer.identities.user(api.manager.peerId) === 'e2e');
    await vscode.commands.executeCommand('spaces.openAppTree', { spaceId, treeId: chatId });
    const session = await until('an editor of the joined space', () => api.editor.editorsOf(vscode.Uri.file(joined[0]))[0]);
    await until('the chat to be shown', () => session.shows?.type === 'tree' && session.shows.detail === chatId);
    session.handle({ type: 'edit', seq: 1, treeId: chatId, edit: { op: 'post', text: 'hello from the joined window' } });
    const chat = await until('the message in the chat', async () => {
      const tree = await api.manager.get(spaceId)?.openAppTree(chatId);
      const id = tree?.childIds().find((c) => tree.getProp(c, 'text') === 'hello from the joined window');
      return id === undefined ? undefined : tree?.getProp(id, 'author');
    });
    assert.equal(chat, 'e2e', 'the signed-in user, not this machine\'s login');
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('join links: a hostile one changes nothing; a good one connects a space that is here', async () => {
    // Space files only: the open spaces' saves come and go beside them (temp and lock files).
    const spaceFiles = () => fs.readdirSync(fixture.workspace).filter((n) => n.endsWith('.space')).sort();
    const before = spaceFiles();
    const asked: string[] = [];
    const confirm = async (u: string) => {
      asked.push(u);
      return true;
    };
    for (const bad of [`/join?server=${encodeURIComponent('file:///etc/passwd')}&space=${spaceId}`, `/join?server=${encodeURIComponent(url)}&space=../../x`, `/evil?server=${encodeURIComponent(url)}&space=${spaceId}`, `/join?server=${encodeURIComponent(url)}&space=${spaceId}&token=spt_x`]) {
      assert.equal(await api.team.handleUri(vscode.Uri.parse(`vscode://${EXT_ID}${bad}`), { confirm }), undefined, bad);
    }
    assert.deepEqual(asked, [], 'a refused link asks nothing and contacts nothing');
    assert.deepEqual(spaceFiles(), before);
    // Declined: nothing happens.
    const link = vscode.Uri.parse(`vscode://${EXT_ID}/join?server=${encodeURIComponent(url)}&space=${spaceId}`);
    assert.equal(await api.team.handleUri(link, { confirm: async () => false }), undefined);
    // Accepted, for a space that is here already: it is connected, not cloned a second time.
    const r = await api.team.handleUri(link, { confirm });
    assert.deepEqual(r, { spaceId, file: joined[0], cloned: false });
    assert.deepEqual(asked, [url]);
    assert.deepEqual(spaceFiles(), before);
  });

  test('a join link to a space that is not here clones it into the file given', async () => {
    const other = path.join(scratch, 'other.space');
    const otherId = String((await spaces('create', other, '--name', 'Second')).spaceId);
    await spaces('sync', other, '--server', url, '--token', token);
    const file = path.join(fixture.workspace, 'second-joined.space');
    const r = await api.team.handleUri(vscode.Uri.parse(`vscode://${EXT_ID}/join?server=${encodeURIComponent(url)}&space=${otherId}`), { confirm: async () => true, file });
    joined.push(file);
    assert.deepEqual(r, { spaceId: otherId, file, cloned: true });
    await until('the second space open and connected', () => api.sync.connections.state(otherId)?.status === 'connected');
    assert.equal(api.manager.get(otherId)?.name, 'Second');
  });
});
