import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import { cliJson, runCli } from '../helpers/cli';
import { sha256 } from '../helpers/fileFixtures';
import { Notes } from '../../src/spaces/apps/notes';
import type { SpaceErrorEvent } from '../../src/spaces/spaceSession';
import { SpaceManager } from '../../src/spaces/spaceManager';

describe('a space file whose secrets were written with another key', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-keys-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('opens, shows and saves its items; only its secrets are unavailable, and reported', async () => {
    const file = path.join(dir, 'team.space');
    const keyA = Buffer.alloc(32, 1);
    const keyB = Buffer.alloc(32, 2);
    const first = new SpaceManager();
    const created = await first.create('Team', async (id) => [await FileLayer.create(file, id, { secretKey: keyA })]);
    const treeId = created.createAppTree('notes', 'Plans').id;
    created.setSecret('api.key', 'sk-a');
    const spaceId = created.id;
    await first.dispose();

    const m = new SpaceManager();
    const check = new SpaceManager();
    try {
      const errors: SpaceErrorEvent[] = [];
      m.onDidError((e) => errors.push(e));
      const layer = await FileLayer.open(file, { secretKey: keyB });
      const space = await m.open(spaceId, [layer]);
      const [state] = m.layerStates(spaceId);
      assert.equal(state.state.status, 'ready');
      assert.match(state.state.secretsError ?? '', /key/i);
      assert.equal(errors.length, 1);
      assert.match(errors[0].message, /secrets unavailable/);
      assert.deepEqual(space.secretNames(), []);
      const notes = new Notes(await space.openAppTree(treeId));
      notes.add('still editable');
      space.setSecret('other', 'x'); // kept in memory, never written with the wrong key
      assert.deepEqual(await m.close(spaceId), [], 'nothing left unsaved');
      await m.dispose();

      const again = await check.open(spaceId, [await FileLayer.open(file, { secretKey: keyA })]);
      assert.deepEqual(new Notes(await again.openAppTree(treeId)).items().map((i) => i.text), ['still editable']);
      assert.equal(again.getSecret('api.key'), 'sk-a', 'the secret written with key A is intact');
      assert.equal(again.getSecret('other'), undefined);
    } finally {
      await m.dispose();
      await check.dispose();
    }
  });

  it('CLI: secret set/get/list/delete with another key each exit 1 naming the cause; nothing is written; the first key still reads the value', async () => {
    const file = path.join(dir, 'team.space');
    const keyA = { SPACES_KEY: '1a'.repeat(32) };
    const keyB = { SPACES_KEY: '2b'.repeat(32) };
    await cliJson(['create', file], { env: keyA });
    await cliJson(['secret', 'set', file, 'api.key'], { stdin: 'sk-a\n', env: keyA });
    const before = sha256(file);

    const commands: Array<[string[], string?]> = [
      [['secret', 'set', file, 'api.key'], 'sk-b'],
      [['secret', 'set', file, 'other.key'], 'x'],
      [['secret', 'get', file, 'api.key']],
      [['secret', 'list', file]],
      [['secret', 'delete', file, 'api.key']],
    ];
    for (const [args, stdin] of commands) {
      const r = await runCli(args, { stdin, env: keyB });
      const what = `spaces ${args.slice(0, 2).join(' ')} with another key`;
      assert.equal(r.code, 1, `${what}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /this file's secrets were written with another key/, what);
      assert.match(r.stderr, /\$SPACES_KEY/, `${what}: says where the key came from`);
      assert.equal(r.stdout, '', `${what} printed a result`);
      assert.equal(sha256(file), before, `${what} changed the file`);
    }

    assert.deepEqual(await cliJson(['secret', 'get', file, 'api.key'], { env: keyA }), { key: 'api.key', value: 'sk-a' });
    assert.deepEqual(await cliJson(['secret', 'list', file], { env: keyA }), { keys: ['api.key'] });
  });
});
