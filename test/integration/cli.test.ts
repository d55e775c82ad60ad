import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliJson, runCli } from '../helpers/cli';

interface DumpNode {
  id: string;
  props: Record<string, unknown>;
  children: DumpNode[];
}

const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

describe('spaces CLI', function () {
  this.timeout(120_000);
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-cli-'));
    file = path.join(dir, 'team.space');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('creates a space, adds app trees and items, and dumps them in order', async () => {
    const created = await cliJson<{ spaceId: string; file: string }>(['create', file, '--name', 'Team']);
    assert.match(created.spaceId, /^[0-9a-f]{32}$/);
    assert.equal(created.file, file);
    const { treeId } = await cliJson<{ treeId: string }>(['app', 'add', file, '--app', 'notes', '--name', 'Plans']);
    const a = await cliJson<{ id: string }>(['item', 'add', file, '--tree', treeId, '--set', 'text=first', '--set', 'done=false']);
    const b = await cliJson<{ id: string }>(['item', 'add', file, '--tree', treeId, '--set', 'text=second', '--set', 'tags=["x",1]']);
    const c = await cliJson<{ id: string }>(['item', 'add', file, '--tree', treeId, '--parent', a.id, '--set', 'text=child']);
    await cliJson(['item', 'set', file, '--tree', treeId, '--id', b.id, '--set', 'done=true']);
    await cliJson(['item', 'move', file, '--tree', treeId, '--id', b.id, '--parent', treeId, '--before', a.id]);
    const dump = await cliJson<DumpNode>(['dump', file, '--tree', treeId]);
    assert.equal(dump.id, treeId);
    assert.deepEqual(
      dump.children.map((n) => [n.props.text, n.props.done, n.children.map((x) => x.props.text)]),
      [['second', true, []], ['first', false, ['child']]],
    );
    assert.deepEqual(dump.children[0].props.tags, ['x', 1]);
    await cliJson(['item', 'delete', file, '--tree', treeId, '--id', c.id]);
    const info = await cliJson<{ spaceId: string; name: string; appTrees: unknown[]; opCount: number }>(['info', file]);
    assert.equal(info.spaceId, created.spaceId);
    assert.equal(info.name, 'Team');
    assert.deepEqual(info.appTrees, [{ id: treeId, appId: 'notes', name: 'Plans' }]);
    assert.ok(info.opCount > 10);
    await cliJson(['app', 'rename', file, '--tree', treeId, '--name', 'Roadmap']);
    assert.equal((await cliJson<{ appTrees: Array<{ name: string }> }>(['info', file])).appTrees[0].name, 'Roadmap');
  });

  it('imports a nested JSON tree from stdin in one batch', async () => {
    await cliJson(['create', file]);
    const { treeId } = await cliJson<{ treeId: string }>(['app', 'add', file, '--app', 'notes', '--name', 'N']);
    const input = [{ props: { text: 'a' }, children: [{ props: { text: 'a1' } }, { props: { text: 'a2' } }] }, { props: { text: 'b' } }];
    const r = await cliJson<{ count: number }>(['import', file, '--tree', treeId], { stdin: JSON.stringify(input) });
    assert.equal(r.count, 4);
    const dump = await cliJson<DumpNode>(['dump', file, '--tree', treeId]);
    assert.deepEqual(dump.children.map((n) => [n.props.text, n.children.map((c) => c.props.text)]), [['a', ['a1', 'a2']], ['b', []]]);
  });

  it('keeps secrets encrypted in the file and lists names only', async () => {
    await cliJson(['create', file]);
    await cliJson(['secret', 'set', file, 'openai.key'], { stdin: 'sk-very-secret-value\n' });
    assert.deepEqual(await cliJson(['secret', 'list', file]), { keys: ['openai.key'] });
    assert.deepEqual(await cliJson(['secret', 'get', file, 'openai.key']), { key: 'openai.key', value: 'sk-very-secret-value' });
    assert.equal(fs.readFileSync(file).includes('sk-very-secret-value'), false, 'plaintext secret found in the file');
    assert.deepEqual(await cliJson(['secret', 'delete', file, 'openai.key']), { key: 'openai.key', deleted: true });
    assert.deepEqual(await cliJson(['secret', 'list', file]), { keys: [] });
    const missing = await runCli(['secret', 'get', file, 'openai.key']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no secret named openai\.key/);
  });

  it('rejects bad usage with exit code 2 and a clear message', async () => {
    const none = await runCli([]);
    assert.equal(none.code, 2);
    const unknown = await runCli(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    await cliJson(['create', file]);
    const noTree = await runCli(['item', 'add', file]);
    assert.equal(noTree.code, 2);
    assert.match(noTree.stderr, /--tree is required/);
    const badSet = await runCli(['item', 'add', file, '--tree', 'x', '--set', 'novalue']);
    assert.equal(badSet.code, 2);
    const badImport = await runCli(['import', file, '--tree', 'x'], { stdin: '{"props": 5}' });
    assert.equal(badImport.code, 2);
    assert.match(badImport.stderr, /props must be an object/);
  });

  it('reports a file that is not a space, naming it, and leaves it untouched', async () => {
    const bad = path.join(dir, 'notes.space');
    fs.writeFileSync(bad, 'this is not a database at all\n'.repeat(100));
    const before = sha(bad);
    const r = await runCli(['info', bad]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /notes\.space/);
    assert.equal(sha(bad), before);
    const missing = await runCli(['info', path.join(dir, 'missing.space')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /missing\.space/);
    const exists = await runCli(['create', bad]);
    assert.equal(exists.code, 1);
    assert.equal(sha(bad), before);
  });

  it('commands running concurrently on one file lose nothing', async () => {
    await cliJson(['create', file]);
    const { treeId } = await cliJson<{ treeId: string }>(['app', 'add', file, '--app', 'chat', '--name', 'General']);
    const n = 12;
    const added = await Promise.all(Array.from({ length: n }, (_, i) => cliJson<{ id: string }>(['item', 'add', file, '--tree', treeId, '--set', `text=m${i}`])));
    const dump = await cliJson<DumpNode>(['dump', file, '--tree', treeId]);
    assert.deepEqual(new Set(dump.children.map((c) => c.id)), new Set(added.map((a) => a.id)));
  });
});
