/**
 * Read-only space files: reading works, every write is refused with "… is read-only" (a
 * READ_ONLY error from the FileLayer, a degraded layer in the SpaceManager, exit 1 from the
 * CLI) and the file keeps its bytes and its mode.
 *
 * Tests run as root in CI, where every access check passes: the file layer checks the write
 * permission bits itself, and the CLI is also run as an unprivileged user (nobody) when the
 * tests run as root, to see what a user sees.
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FileLayer, type SpaceFileError } from '../../src/persistence/file/fileLayer';
import type { LayerStateChange } from '../../src/spaces/spaceSession';
import { SpaceManager } from '../../src/spaces/spaceManager';
import { cliJson, runCli, type CliResult, type RunOptions } from '../helpers/cli';
import { TempDir, makeOps, newId, sha256 } from '../helpers/fileFixtures';
import { startTestServer, type TestServer } from '../helpers/syncServer';

const READ_ONLY_MODE = 0o444;
const WRITABLE_MODE = 0o644;
const READ_ONLY_FOLDER_MODE = 0o555;
/** `nobody` on Debian and most Linux systems. */
const NOBODY = { uid: 65534, gid: 65534 } as const;
const isRoot = process.getuid?.() === 0;
/** Who runs the CLI in the "unprivileged user" tests: nobody when we are root, else ourselves. */
const unprivileged: RunOptions['user'] = isRoot ? NOBODY : undefined;

interface FileState {
  readonly hash: string;
  readonly mode: number;
}

function stateOf(file: string): FileState {
  return { hash: sha256(file), mode: fs.statSync(file).mode & 0o7777 };
}

/** Names in the file's folder other than the file: temp or lock files a refused write left behind. */
function strays(file: string): string[] {
  return fs.readdirSync(path.dirname(file)).filter((n) => n !== path.basename(file));
}

function assertRefused(r: CliResult, what: string, pattern = /is read-only/): void {
  assert.equal(r.code, 1, `${what} should fail: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, pattern, what);
  assert.equal(r.stdout, '', `${what} printed a result`);
}

describe('read-only space files', function () {
  this.timeout(180_000);
  let tmp: TempDir;
  beforeEach(() => (tmp = new TempDir()));
  afterEach(() => tmp.cleanup());

  it('FileLayer: opens and reads a 0444 file; a save rejects with READ_ONLY and leaves bytes and mode; once writable it saves', async () => {
    const file = tmp.file('team.space');
    const spaceId = newId();
    const creator = await FileLayer.create(file, spaceId);
    await creator.saveOps(spaceId, makeOps(spaceId, 'aaaa1111', 1, 8));
    await creator.close();
    fs.chmodSync(file, READ_ONLY_MODE);
    const before = stateOf(file);

    const layer = await FileLayer.open(file, { watch: false });
    try {
      assert.equal((await layer.loadTree(spaceId)).length, 8);
      await assert.rejects(layer.saveOps(spaceId, makeOps(spaceId, 'aaaa1111', 9, 4)), (e: SpaceFileError) => {
        assert.equal(e.code, 'READ_ONLY');
        assert.match(e.message, /team\.space is read-only/);
        return true;
      });
      assert.deepEqual(stateOf(file), before);
      assert.deepEqual(strays(file), []);
      assert.equal(layer.readOnly, true);
      assert.match(layer.readOnlyReason ?? '', /team\.space is read-only/);

      // Nothing was dropped: once the file may be written, the next save stores it all.
      fs.chmodSync(file, WRITABLE_MODE);
      await layer.saveOps(spaceId, makeOps(spaceId, 'aaaa1111', 9, 4));
    } finally {
      await layer.close();
    }
    const check = await FileLayer.open(file, { watch: false });
    try {
      assert.equal(check.readOnly, false);
      assert.equal((await check.loadTree(spaceId)).length, 12);
    } finally {
      await check.close();
    }
  });

  it('SpaceManager: an edit of a space in a read-only file degrades its layer with the reason, and is reported unsaved', async () => {
    const file = tmp.file('team.space');
    const first = new SpaceManager();
    const created = await first.create('Team', async (id) => [await FileLayer.create(file, id)]);
    const spaceId = created.id;
    await first.dispose();
    fs.chmodSync(file, READ_ONLY_MODE);
    const before = stateOf(file);

    const m = new SpaceManager();
    try {
      const space = await m.open(spaceId, [await FileLayer.open(file, { watch: false })]);
      const changes: LayerStateChange[] = [];
      m.onDidChangeLayerState((e) => changes.push(e));
      space.createAppTree('notes', 'Plans');
      const unsaved = await m.close(spaceId);
      assert.equal(unsaved.length, 1, 'the edit was reported saved');
      assert.match(unsaved[0].error ?? '', /team\.space is read-only/);
      const degraded = changes.find((e) => e.state.status === 'degraded');
      assert.match(degraded?.state.error ?? '', /save failed: .*team\.space is read-only/);
    } finally {
      await m.dispose();
    }
    assert.deepEqual(stateOf(file), before);
  });

  it('CLI: every write command exits 1 with "is read-only", the file unchanged; reading commands work', async () => {
    const file = tmp.file('team.space');
    await cliJson(['create', file, '--name', 'Team']);
    const { treeId } = await cliJson<{ treeId: string }>(['app', 'add', file, '--app', 'notes', '--name', 'Plans']);
    const { id } = await cliJson<{ id: string }>(['item', 'add', file, '--tree', treeId, '--set', 'text=kept']);
    await cliJson(['secret', 'set', file, 'api.key'], { stdin: 'sk-1' });
    fs.chmodSync(file, READ_ONLY_MODE);
    const before = stateOf(file);

    const writes: Array<[string[], string?]> = [
      [['app', 'add', file, '--app', 'notes', '--name', 'More']],
      [['app', 'rename', file, '--tree', treeId, '--name', 'Renamed']],
      [['item', 'add', file, '--tree', treeId, '--set', 'text=lost?']],
      [['item', 'set', file, '--tree', treeId, '--id', id, '--set', 'text=changed']],
      [['item', 'delete', file, '--tree', treeId, '--id', id]],
      [['import', file, '--tree', treeId], JSON.stringify([{ props: { text: 'imported' } }])],
      [['secret', 'set', file, 'other'], 'v'],
      [['secret', 'delete', file, 'api.key']],
    ];
    for (const [args, stdin] of writes) {
      assertRefused(await runCli(args, { stdin }), `spaces ${args.slice(0, 2).join(' ')}`);
      assert.deepEqual(stateOf(file), before, `spaces ${args.slice(0, 2).join(' ')} changed the file`);
    }
    assert.deepEqual(strays(file), []);

    const dump = await cliJson<{ children: Array<{ props: Record<string, unknown> }> }>(['dump', file, '--tree', treeId]);
    assert.deepEqual(dump.children.map((n) => n.props.text), ['kept']);
    assert.equal((await cliJson<{ name: string }>(['info', file])).name, 'Team');
    assert.deepEqual(await cliJson(['secret', 'list', file]), { keys: ['api.key'] });
    assert.deepEqual(await cliJson(['secret', 'get', file, 'api.key']), { key: 'api.key', value: 'sk-1' });
    assert.deepEqual(stateOf(file), before);
  });

  it(`CLI as an unprivileged user (${isRoot ? 'nobody' : 'this user'}): a 0444 file, ${isRoot ? "another user's file, " : ''}a file in a read-only folder — refused, unchanged`, async () => {
    const folder = path.join(tmp.path, 'user');
    fs.mkdirSync(folder);
    if (unprivileged) {
      fs.chmodSync(tmp.path, 0o711);
      fs.chownSync(folder, unprivileged.uid, unprivileged.gid);
    }
    const as: RunOptions = { user: unprivileged };
    const file = path.join(folder, 'team.space');
    await cliJson(['create', file, '--name', 'Team'], as);
    const { treeId } = await cliJson<{ treeId: string }>(['app', 'add', file, '--app', 'notes', '--name', 'Plans'], as);
    const edit = ['item', 'add', file, '--tree', treeId, '--set', 'text=refused'];

    // 1. No write permission bit: a rename in the (writable) folder would replace it.
    fs.chmodSync(file, READ_ONLY_MODE);
    let before = stateOf(file);
    assertRefused(await runCli(edit, as), 'a 0444 file');
    assert.deepEqual(stateOf(file), before);
    assert.deepEqual(strays(file), []);

    // 2. Writable by its owner only, and the owner is someone else.
    if (isRoot) {
      fs.chownSync(file, 0, 0);
      fs.chmodSync(file, WRITABLE_MODE);
      before = stateOf(file);
      assertRefused(await runCli(edit, as), "another user's 0644 file", /is read-only \(this user has no write permission\)/);
      assert.deepEqual(stateOf(file), before);
      assert.equal(fs.statSync(file).uid, 0, 'the file was replaced by one of another owner');
      if (unprivileged) fs.chownSync(file, unprivileged.uid, unprivileged.gid);
    }

    // 3. A writable file in a folder that cannot be written (no temp file, no lock, no rename).
    fs.chmodSync(file, WRITABLE_MODE);
    fs.chmodSync(folder, READ_ONLY_FOLDER_MODE);
    try {
      before = stateOf(file);
      assertRefused(await runCli(edit, as), 'a file in a read-only folder', /is read-only \(this user cannot write its folder\)/);
      assert.deepEqual(stateOf(file), before);
      const dump = await cliJson<{ id: string }>(['dump', file, '--tree', treeId], as);
      assert.equal(dump.id, treeId);
      assert.deepEqual(stateOf(file), before);
    } finally {
      fs.chmodSync(folder, 0o755);
    }
  });

  describe('spaces sync of a read-only file', () => {
    let t: TestServer;
    beforeEach(async () => (t = await startTestServer()));
    afterEach(() => t.stop());

    it('exits 1 with "is read-only" before storing anything; the file is unchanged', async () => {
      const spaceId = await t.createSpace('Team');
      const token = t.token('write');
      const sync = (file: string, extra: string[] = []): Promise<CliResult> => runCli(['sync', file, '--server', t.server.url, '--token', token, '--timeout', '60', ...extra]);
      const mine = tmp.file('mine.space');
      const theirs = tmp.file('theirs.space');
      for (const f of [mine, theirs]) assert.equal((await sync(f, ['--space', spaceId])).code, 0);
      // A teammate's edit on the server: something the read-only file would have to store.
      await cliJson(['app', 'add', theirs, '--app', 'notes', '--name', 'From a teammate']);
      assert.equal((await sync(theirs)).code, 0);

      fs.chmodSync(mine, READ_ONLY_MODE);
      const before = stateOf(mine);
      assertRefused(await sync(mine), 'spaces sync');
      assert.deepEqual(stateOf(mine), before);
      assert.deepEqual((await cliJson<{ appTrees: unknown[] }>(['info', mine])).appTrees, []);
    });
  });
});
