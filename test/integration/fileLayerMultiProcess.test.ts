import * as assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import { opKey } from '../../src/spaces/ops';
import { TempDir, WRITER_CHILD, makeOps, newId } from '../helpers/fileFixtures';

/** Resolves when the child sends `message` over IPC. */
function whenMessage(child: ChildProcess, message: string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.on('message', (m) => {
      if (m === message) resolve();
    });
    child.once('exit', (code) => reject(new Error(`child exited with ${code} before "${message}"`)));
  });
}

function whenExit(child: ChildProcess, stderr: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`child failed (${code ?? signal}): ${stderr()}`))));
  });
}

describe('FileLayer: two processes writing one file', function () {
  this.timeout(120_000);
  let tmp: TempDir;

  beforeEach(() => (tmp = new TempDir()));
  afterEach(() => tmp.cleanup());

  it('two child processes adding 1000 ops each at the same time: all 2000 are there', async function () {
    const file = tmp.file('shared.space');
    const spaceId = newId();
    const creator = await FileLayer.create(file, spaceId);
    await creator.close();

    const peers = ['aaaa1111', 'bbbb2222'];
    const children = peers.map((peer) =>
      fork(WRITER_CHILD, ['count', file, spaceId, peer, '1000', '25'], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] }),
    );
    const errs = children.map(() => '');
    children.forEach((c, i) => c.stderr?.on('data', (d: Buffer) => (errs[i] += d.toString())));
    const exits = children.map((c, i) => whenExit(c, () => errs[i]));
    // Both open the file first; then both start writing at the same moment.
    await Promise.all(children.map((c) => whenMessage(c, 'ready')));
    children.forEach((c) => c.send('go'));
    await Promise.all(exits);

    const layer = await FileLayer.open(file);
    try {
      const ops = await layer.loadTree(spaceId);
      const want = [...makeOps(spaceId, peers[0], 1, 1000), ...makeOps(spaceId, peers[1], 1, 1000)].map(opKey).sort();
      assert.equal(ops.length, 2000);
      assert.deepEqual(ops.map(opKey).sort(), want);
    } finally {
      await layer.close();
    }
    assert.ok(!fs.existsSync(`${file}.lock`), 'a lock file was left behind');
  });
});
