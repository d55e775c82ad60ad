import * as assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import fs from 'node:fs';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import { opKey } from '../../src/spaces/ops';
import { TempDir, WRITER_CHILD, makeOps, newId } from '../helpers/fileFixtures';

interface Run {
  /** The last counter whose batch the child reported as saved (0: none). */
  readonly lastSaved: number;
  readonly stderr: string;
}

/**
 * Starts a child that saves batches forever and SIGKILLs it at a random moment after it has
 * reported `minLines` to `minLines + 4` saved batches (so usually in the middle of a flush).
 */
function runAndKill(file: string, spaceId: string, peer: string, minLines: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = fork(WRITER_CHILD, ['forever', file, spaceId, peer, '50'], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    let lastSaved = 0;
    let lines = 0;
    let buffered = '';
    let stderr = '';
    let killed = false;
    const killAfter = minLines + Math.floor(Math.random() * 5);
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const m = /^ok (\d+)$/.exec(line);
        if (!m) continue;
        lastSaved = Number(m[1]);
        if (++lines >= killAfter && !killed) {
          killed = true;
          // A random extra delay of 0–15 ms lands the kill anywhere in the next flush.
          setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 16));
        }
      }
    });
    child.once('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ lastSaved, stderr });
      else reject(new Error(`child exited by itself (${code}): ${stderr}`));
    });
  });
}

describe('FileLayer: SIGKILL while flushing', function () {
  this.timeout(300_000);
  let tmp: TempDir;

  beforeEach(() => (tmp = new TempDir()));
  afterEach(() => tmp.cleanup());

  it('20 kills in a row: the file always opens and every op reported saved is there', async function () {
    const file = tmp.file('crash.space');
    const spaceId = newId();
    const seed = await FileLayer.create(file, spaceId, { watch: false });
    // A few MB of existing ops, so that every flush takes a while to write.
    await seed.saveOps(spaceId, makeOps(spaceId, 'seed', 1, 40_000));
    await seed.close();

    const saved = new Map<string, number>();
    for (let i = 0; i < 20; i++) {
      const peer = `crash${i}`;
      const run = await runAndKill(file, spaceId, peer, 1 + (i % 3));
      assert.ok(run.lastSaved > 0, `run ${i}: nothing saved (${run.stderr})`);
      saved.set(peer, run.lastSaved);

      const layer = await FileLayer.open(file, { watch: false });
      try {
        const have = new Set((await layer.loadTree(spaceId)).map(opKey));
        for (const [p, last] of saved) {
          const missing = makeOps(spaceId, p, 1, last).filter((op) => !have.has(opKey(op)));
          assert.equal(missing.length, 0, `after kill ${i}: ${missing.length} ops of ${p} reported saved are missing`);
        }
        assert.equal(makeOps(spaceId, 'seed', 1, 40_000).filter((op) => !have.has(opKey(op))).length, 0, 'seed ops lost');
      } finally {
        await layer.close();
      }
    }
    // The next writer cleans up after the killed ones: stale lock broken, temp files removed.
    const last = await FileLayer.open(file, { watch: false });
    await last.saveOps(spaceId, makeOps(spaceId, 'final', 1, 1));
    await last.close();
    const leftovers = fs.readdirSync(tmp.path).filter((n) => n !== 'crash.space');
    assert.deepEqual(leftovers, []);
  });
});
