import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileLayer } from '../../src/persistence/file/fileLayer';
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
});
