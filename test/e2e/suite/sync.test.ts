// Team sync from VS Code, against the real team server scripts/e2e/run.mjs started: sign-in,
// connecting a space (its ops reach the server), ops from a second client (the CLI), the status
// bar and the tree, auth failures, the settings, secrets and the file key shared with the CLI.
// Works on its own space file ("Synced"), so the fixture's spaces stay as extension.test.ts expects.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as vscode from 'vscode';
import type { SpacesApi } from '../../../src/extension';
import type { SpacesNode } from '../../../src/views/spacesTree';
import { EXT_ID, loadFixture, runCli, until } from './helpers';

const fixture = loadFixture();
const { url, token } = fixture.server;
const spaces = (...args: string[]): Promise<Record<string, unknown>> => runCli(fixture.cli, ...args);
const run = <T>(command: string, ...args: unknown[]): Promise<T> => Promise.resolve(vscode.commands.executeCommand<T>(command, ...args));

interface DumpNode {
  props: { text?: string };
  children: DumpNode[];
}

suite('Team sync', () => {
  let api: SpacesApi;
  let spaceId: string;
  let file: string;
  let treeId: string;
  /** Outside the workspace: the second client's copy of the space. */
  let scratch: string;
  let clone: string;

  const state = () => api.sync.connections.state(spaceId);
  const bar = () => {
    const b = api.sync.statusBar;
    assert.ok(b, 'the status bar item exists');
    return b;
  };
  const serverLayerId = `server:${url}`;
  const settings = () => vscode.workspace.getConfiguration('spaces.server');

  async function spaceNode(): Promise<SpacesNode> {
    const n = (await api.tree.getChildren()).find((x) => 'uri' in x && x.uri.fsPath === file);
    assert.ok(n, 'the space is in the tree');
    return n;
  }

  async function texts(): Promise<string[]> {
    const space = api.manager.get(spaceId);
    assert.ok(space);
    const tree = await space.openAppTree(treeId);
    return tree.childIds().map((id) => String(tree.getProp(id, 'text') ?? ''));
  }

  async function addItem(text: string): Promise<void> {
    const space = api.manager.get(spaceId);
    assert.ok(space);
    const tree = await space.openAppTree(treeId);
    tree.addItem(tree.rootId, { text, done: false });
  }

  /** Connected, and every local op acknowledged by the server. */
  async function allSent(): Promise<void> {
    await until('every op acknowledged by the server', () => state()?.status === 'connected' && state()?.pendingOps === 0);
  }

  /** The texts of the shared notes tree in the second client's copy, after it synced. */
  async function cloneTexts(): Promise<string[]> {
    await spaces('sync', clone, '--server', url, '--token', token);
    const dump = (await spaces('dump', clone, '--tree', treeId)) as unknown as DumpNode;
    return dump.children.map((c) => c.props.text ?? '');
  }

  suiteSetup(async () => {
    const ext = vscode.extensions.getExtension<SpacesApi>(EXT_ID);
    assert.ok(ext, `extension ${EXT_ID} not found`);
    api = await ext.activate();
    await api.model.ready;
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-e2e-sync-'));
    clone = path.join(scratch, 'clone.space');
    const created = await run<{ spaceId: string; uri: vscode.Uri }>('spaces.newSpace', { name: 'Synced', fileName: 'synced' });
    spaceId = created.spaceId;
    file = created.uri.fsPath;
    treeId = (await run<{ treeId: string }>('spaces.addAppTree', { spaceId, appId: 'notes', name: 'Shared' })).treeId;
    await addItem('Written before connecting');
    await until('the new space in the model', () => api.model.entryForSpace(spaceId)?.state.kind === 'open');
  });

  suiteTeardown(async () => {
    // Leaves the window as the other suites expect it: nothing connected, no sync settings.
    if (api.sync.connections.isConnected(spaceId)) await run('spaces.disconnect', { spaceId });
    await settings().update('connections', undefined, vscode.ConfigurationTarget.Workspace);
    await settings().update('url', undefined, vscode.ConfigurationTarget.Workspace);
    await api.sync.tokens.delete(url);
    api.activeSpace.set(undefined);
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  test('the commands are registered; a space without a connection has no status bar item', async () => {
    const commands = await vscode.commands.getCommands(true);
    for (const c of ['signIn', 'signOut', 'connect', 'disconnect', 'retrySync', 'setSecret', 'listSecrets', 'deleteSecret', 'exportFileKey']) {
      assert.ok(commands.includes(`spaces.${c}`), `command spaces.${c} is registered`);
    }
    api.activeSpace.set(spaceId);
    assert.equal(api.activeSpace.spaceId, spaceId);
    assert.throws(() => api.activeSpace.set('not a space id'), /not a space id/);
    assert.equal(state(), undefined);
    assert.equal(bar().shown, false);
    assert.equal(await api.sync.tokens.get(url), undefined, 'no token yet (and no $SPACES_SERVER_TOKEN)');
    await assert.rejects(run('spaces.connect', { spaceId, url }), /not signed in to http:\/\/127\.0\.0\.1:\d+/);
  });

  test('sign-in checks the token with the server and keeps it in SecretStorage', async () => {
    await assert.rejects(run('spaces.signIn', { url, token: 'spt_not-a-token-of-this-server' }), /refused the token/);
    assert.equal(await api.sync.tokens.get(url), undefined, 'a refused token is not stored');
    await assert.rejects(run('spaces.signIn', { url: 'ftp://example.com', token }), /must start with http/);
    const r = await run<{ server: string; spaces: number }>('spaces.signIn', { url, token });
    assert.equal(r.server, new URL(url).origin);
    assert.equal(typeof r.spaces, 'number');
    assert.deepEqual(await api.sync.tokens.get(url), { token, source: 'secret-storage' });
  });

  test('connect uploads the space; the state, the status bar and the tree follow; the server gets its ops', async () => {
    const r = await run<{ spaceId: string; url: string; created: boolean }>('spaces.connect', { spaceId, url });
    assert.deepEqual(r, { spaceId, url, created: true });
    assert.deepEqual(settings().get('connections'), { [spaceId]: url }, 'the connection is in the workspace settings');
    await allSent();
    assert.equal(api.manager.layerStates(spaceId).find((l) => l.layerId === serverLayerId)?.state.status, 'ready');

    // The item follows the layer's state as acknowledgements come in: wait for the last one.
    const tooltipText = () => {
      const t = bar().item.tooltip;
      return t instanceof vscode.MarkdownString ? t.value : String(t ?? '');
    };
    await until('the status bar item', () => bar().shown && bar().item.text === '$(cloud) Synced' && /Pending ops: 0/.test(tooltipText()));
    const tooltip = bar().item.tooltip;
    assert.ok(tooltip instanceof vscode.MarkdownString);
    assert.ok(tooltip.value.replace(/\\/g, '').includes(url), tooltip.value);
    assert.equal((bar().item.command as vscode.Command).command, 'spaces.showLog');

    await until('the tree to show the connection', async () => api.tree.getTreeItem(await spaceNode()).contextValue === 'space.connected');
    assert.match(String(api.tree.getTreeItem(await spaceNode()).description), /^synced\.space — synced with 127\.0\.0\.1:\d+$/);

    // A second client clones it from the server.
    const cloned = await spaces('sync', clone, '--server', url, '--space', spaceId, '--token', token);
    assert.ok(Number(cloned.received) > 0, JSON.stringify(cloned));
    assert.deepEqual(await cloneTexts(), ['Written before connecting']);

    await addItem('Written while connected');
    await allSent();
    assert.deepEqual(await cloneTexts(), ['Written before connecting', 'Written while connected']);
  });

  test('an op another client puts on the server appears in the extension and in its file', async () => {
    await spaces('item', 'add', clone, '--tree', treeId, '--set', 'text=From another client');
    const pushed = await spaces('sync', clone, '--server', url, '--token', token);
    assert.ok(Number(pushed.sent) > 0, JSON.stringify(pushed));
    await until('the other client’s item in the extension', async () => (await texts()).includes('From another client'));
    await api.manager.flush(spaceId);
    const dump = (await spaces('dump', file, '--tree', treeId)) as unknown as DumpNode;
    assert.ok(
      dump.children.some((c) => c.props.text === 'From another client'),
      JSON.stringify(dump),
    );
  });

  test('secrets: set, list and delete by command; the CLI reads them with the key it shares with the extension', async () => {
    assert.deepEqual(await run('spaces.setSecret', { spaceId, name: 'api.key', value: 's3cret-value' }), { spaceId, name: 'api.key' });
    assert.deepEqual(await run('spaces.listSecrets', { spaceId }), ['api.key']);
    await assert.rejects(run('spaces.setSecret', { spaceId, name: 'no spaces allowed', value: 'x' }), /bad secret name/);

    // In the file, encrypted with the key the extension adopted from the CLI key file.
    await api.manager.flush(spaceId);
    assert.equal((await spaces('secret', 'get', file, 'api.key')).value, 's3cret-value');
    // On the server.
    await until('the secret to reach the server', () => state()?.pendingOps === 0);
    await until('the secret in the second client', async () => {
      await spaces('sync', clone, '--server', url, '--token', token);
      return String((await spaces('secret', 'list', clone)).keys) === 'api.key';
    });
    assert.equal((await spaces('secret', 'get', clone, 'api.key')).value, 's3cret-value');

    assert.equal(await run('spaces.deleteSecret', { spaceId, name: 'api.key', confirm: false }), true);
    assert.deepEqual(await run('spaces.listSecrets', { spaceId }), []);
    await assert.rejects(run('spaces.deleteSecret', { spaceId, name: 'api.key', confirm: false }), /no secret named/);
  });

  test('Export File Key writes the extension’s key for the CLI (0600), and replaces a different key only when told to', async () => {
    const saved = process.env.SPACES_KEY_FILE;
    const target = path.join(scratch, 'config', 'spaces', 'file.key');
    process.env.SPACES_KEY_FILE = target;
    try {
      const r = await run<{ file: string; written: boolean; replaced: boolean }>('spaces.exportFileKey', { confirm: false });
      assert.deepEqual(r, { file: target, written: true, replaced: false, backup: undefined });
      assert.equal(fs.statSync(target).mode & 0o777, 0o600);
      // The key the extension adopted from the fixture's CLI key file at its first start.
      assert.equal(fs.readFileSync(target, 'utf8').trim(), fs.readFileSync(fixture.keyFile, 'utf8').trim());
      assert.deepEqual(await run('spaces.exportFileKey', { confirm: false }), { file: target, written: false, replaced: false });

      fs.writeFileSync(target, `${'ab'.repeat(32)}\n`, { mode: 0o600 });
      await assert.rejects(run('spaces.exportFileKey', { confirm: false }), /already holds a different key/);
      assert.equal(fs.readFileSync(target, 'utf8').trim(), 'ab'.repeat(32), 'untouched');
      const replaced = await run<{ written: boolean; replaced: boolean; backup: string }>('spaces.exportFileKey', { confirm: false, replace: true });
      assert.equal(replaced.replaced, true);
      assert.equal(fs.readFileSync(replaced.backup, 'utf8').trim(), 'ab'.repeat(32), 'the old key is kept');
      assert.equal(fs.readFileSync(target, 'utf8').trim(), fs.readFileSync(fixture.keyFile, 'utf8').trim());
    } finally {
      if (saved === undefined) delete process.env.SPACES_KEY_FILE;
      else process.env.SPACES_KEY_FILE = saved;
    }
  });

  test('a token the server refuses: error state (unauthorized), then signing in again reconnects', async () => {
    await api.sync.tokens.store(url, 'spt_revoked-or-mistyped');
    await api.sync.connections.reconnectServer(url);
    await until('the error state', () => state()?.status === 'error' && state()?.auth === 'unauthorized');
    await until('the status bar to show the error', () => bar().item.text === '$(error) Sync error');
    assert.deepEqual((bar().item.command as vscode.Command).arguments, [{ spaceId }]);
    assert.equal((bar().item.command as vscode.Command).command, 'spaces.retrySync');
    assert.match(String(api.tree.getTreeItem(await spaceNode()).description), /sync error/);

    await run('spaces.signIn', { url, token });
    await allSent();
  });

  test('sign-out: not signed in; $SPACES_SERVER_TOKEN is used when SecretStorage has no token', async () => {
    assert.deepEqual(await run('spaces.signOut', { url }), { server: new URL(url).origin, signedOut: true });
    await until('the signed-out state', () => state()?.status === 'signed-out');
    await until('the status bar to say so', () => bar().item.text === '$(error) Not signed in');
    process.env.SPACES_SERVER_TOKEN = token;
    try {
      api.sync.connections.retry(spaceId);
      await allSent();
      assert.deepEqual(await api.sync.tokens.get(url), { token, source: 'environment' });
    } finally {
      delete process.env.SPACES_SERVER_TOKEN;
    }
    await run('spaces.signIn', { url, token });
  });

  test('a space the server does not have: an error until Connect uploads it', async () => {
    const other = await run<{ spaceId: string }>('spaces.newSpace', { name: 'Not on the server', fileName: 'not-on-server' });
    const st = () => api.sync.connections.state(other.spaceId);
    const level = settings().inspect<Record<string, unknown>>('connections')?.workspaceValue ?? {};
    await settings().update('connections', { ...level, [other.spaceId]: url }, vscode.ConfigurationTarget.Workspace);
    await until('the error state', () => st()?.status === 'error');
    assert.match(st()?.reason ?? '', /no space [0-9a-f]{32} on this server/);
    assert.equal(st()?.auth, undefined);
    const r = await run<{ created: boolean }>('spaces.connect', { spaceId: other.spaceId, url });
    assert.equal(r.created, true);
    await until('connected once uploaded', () => st()?.status === 'connected' && st()?.pendingOps === 0);
    await run('spaces.disconnect', { spaceId: other.spaceId });
    assert.equal(st(), undefined);
    assert.deepEqual(Object.keys(settings().get<Record<string, unknown>>('connections') ?? {}), [spaceId]);
    // New Space made the new space the active one; the status bar follows "Synced" again.
    assert.equal(api.activeSpace.spaceId, other.spaceId);
    api.activeSpace.set(spaceId);
  });

  test('disconnect, and connecting through the settings: edits made meanwhile are sent on reconnect', async () => {
    assert.deepEqual(await run('spaces.disconnect', { spaceId }), { spaceId });
    assert.equal(state(), undefined);
    assert.equal(settings().get<Record<string, unknown>>('connections')?.[spaceId], undefined);
    assert.equal(
      api.manager.layerStates(spaceId).some((l) => l.layerId === serverLayerId),
      false,
      'the server layer is removed',
    );
    await until('the status bar item to hide', () => !bar().shown);
    await until('the tree to drop the connection', async () => api.tree.getTreeItem(await spaceNode()).contextValue === 'space');
    await addItem('Written while disconnected');
    await api.manager.flush(spaceId);
    assert.ok(!(await cloneTexts()).includes('Written while disconnected'));

    // Live from the settings: the default server, and `true` for this space.
    await settings().update('url', url, vscode.ConfigurationTarget.Workspace);
    await settings().update('connections', { [spaceId]: true }, vscode.ConfigurationTarget.Workspace);
    await allSent();
    assert.ok((await cloneTexts()).includes('Written while disconnected'));
    await until('the status bar item', () => bar().shown);

    await settings().update('connections', { [spaceId]: false }, vscode.ConfigurationTarget.Workspace);
    await until('disconnected by the settings', () => state() === undefined);
    api.activeSpace.set(undefined);
    assert.equal(bar().shown, false);
  });

  test('a server that cannot be reached: offline with an icon this VS Code has, and the reason in words', async () => {
    // A port nothing listens on: taken from the OS, then closed.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const deadUrl = `http://127.0.0.1:${port}`;
    await api.sync.tokens.store(deadUrl, token);
    try {
      api.activeSpace.set(spaceId);
      await settings().update('connections', { [spaceId]: deadUrl }, vscode.ConfigurationTarget.Workspace);
      await until('the connection to be offline', () => state()?.status === 'offline' && /ECONNREFUSED/.test(state()?.reason ?? ''));
      const tooltipText = () => {
        const t = bar().item.tooltip;
        return (t instanceof vscode.MarkdownString ? t.value : String(t ?? '')).replace(/\\/g, '');
      };
      await until('the status bar item to say offline', () => bar().shown && bar().item.text.endsWith('Offline'));
      assert.match(tooltipText(), new RegExp(`cannot reach 127\\.0\\.0\\.1:${port} — retrying`), tooltipText());
      assert.doesNotMatch(tooltipText(), /ECONNREFUSED/);
      const icon = /^\$\(([a-z-]+)\)/.exec(bar().item.text)?.[1];
      const known = await codiconNames();
      assert.ok(icon && known.has(icon), `the icon ${String(icon)} is one of this VS Code's ${known.size} codicons`);
    } finally {
      await settings().update('connections', undefined, vscode.ConfigurationTarget.Workspace);
      await until('disconnected', () => state() === undefined);
      await api.sync.tokens.delete(deadUrl);
      api.activeSpace.set(undefined);
    }
  });
});

/**
 * The codicon names of the VS Code running the tests, read from its workbench bundle (where each
 * is registered as `("name",code)`): an icon not among them renders as nothing.
 */
async function codiconNames(): Promise<Set<string>> {
  const bundle = path.join(vscode.env.appRoot, 'out', 'vs', 'code', 'browser', 'workbench', 'workbench.js');
  const text = fs.existsSync(bundle) ? fs.readFileSync(bundle, 'utf8') : '';
  const names = new Set<string>();
  for (const m of text.matchAll(/\("([a-z][a-z0-9-]*)",(6\d{4})\)/g)) names.add(m[1]);
  assert.ok(names.size > 300, `codicons found in ${bundle}: ${names.size}`);
  return names;
}
