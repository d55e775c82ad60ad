import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileLayer, SpaceFileError } from '../../src/persistence/file/fileLayer';
import { runningWorkers } from '../../src/persistence/file/workerPool';
import { columnsToOps, opsToColumns } from '../../src/persistence/file/opColumns';
import type { SecretRecord } from '../../src/persistence/contract';
import type { Op } from '../../src/spaces/ops';
import { faultyWorkerPath, injectFileFault } from '../helpers/fileFaults';
import { OTHER_KEY, TEST_KEY, TempDir, canonical, makeOps, newId, rootOp } from '../helpers/fileFixtures';

async function rejectsWith(p: Promise<unknown>, code: string, re?: RegExp): Promise<SpaceFileError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof SpaceFileError, `expected a SpaceFileError, got ${String(e)}`);
    assert.equal(e.code, code, `wrong code for: ${e.message}`);
    if (re) assert.match(e.message, re);
    return e;
  }
  assert.fail(`expected a rejection with ${code}`);
}

const ALL_VALUES: Op[] = [
  { id: { counter: 10, peerId: 'p1' }, targetId: 'x', key: 's', value: 'ünïcødé ✓ \u{1F600} "q" \\ \n', transient: false },
  { id: { counter: 11, peerId: 'p1' }, targetId: 'x', key: 'n', value: 0.1 + 0.2, transient: false },
  { id: { counter: 12, peerId: 'p1' }, targetId: 'x', key: 'big', value: 1e300, transient: false },
  { id: { counter: 13, peerId: 'p1' }, targetId: 'x', key: 'neg', value: -1.5, transient: false },
  { id: { counter: 14, peerId: 'p1' }, targetId: 'x', key: 'null', value: null, transient: false },
  { id: { counter: 15, peerId: 'p1' }, targetId: 'x', key: 'obj', value: { a: [1, { b: 'c' }], e: {} }, transient: false },
  { id: { counter: 16, peerId: 'p1' }, targetId: 'x', key: 'gone', value: undefined, transient: false },
  { id: { counter: 17, peerId: 'p1' }, targetId: 'x', key: 'key with spaces, "quotes"\nand a newline', value: true, transient: false },
  { id: { counter: 18, peerId: 'p1' }, targetId: 'x', parentId: '0' },
  { id: { counter: Number.MAX_SAFE_INTEGER, peerId: 'p1' }, targetId: 'y', key: 'max', value: [], transient: false },
];

describe('FileLayer', function () {
  let tmp: TempDir;
  let layers: FileLayer[];
  const track = (l: FileLayer): FileLayer => {
    layers.push(l);
    return l;
  };
  const create = async (name = 'test.space', opts = {}): Promise<FileLayer> =>
    track(await FileLayer.create(tmp.file(name), newId(), { secretKey: TEST_KEY, ...opts }));
  const open = async (file: string, opts = {}): Promise<FileLayer> => track(await FileLayer.open(file, { secretKey: TEST_KEY, ...opts }));

  beforeEach(function () {
    tmp = new TempDir();
    layers = [];
  });
  afterEach(async function () {
    await Promise.allSettled(layers.map((l) => l.close()));
    tmp.cleanup();
  });

  describe('identity and files', function () {
    it('describes itself and creates a file that readMeta recognises', async function () {
      const spaceId = newId();
      const file = tmp.file('my notes.space');
      const layer = track(await FileLayer.create(file, spaceId));
      assert.equal(layer.kind, 'one-way');
      assert.equal(layer.id, `file:${file}`);
      assert.equal(layer.label, 'my notes.space');
      assert.equal(layer.spaceId, spaceId);
      assert.ok(fs.existsSync(file), 'create() writes the file at once');
      const meta = await FileLayer.readMeta(file);
      assert.equal(meta.spaceId, spaceId);
      assert.equal(meta.format, 'spaces-vscode');
      assert.equal(meta.schemaVersion, 2);
      assert.equal(typeof meta.createdAt, 'number');
    });

    it('create() fails when the file exists and leaves it alone', async function () {
      const file = tmp.file();
      fs.writeFileSync(file, 'precious');
      await rejectsWith(FileLayer.create(file, newId()), 'EXISTS', /already exists/);
      assert.equal(fs.readFileSync(file, 'utf8'), 'precious');
    });

    it('create() refuses a malformed space id', async function () {
      await rejectsWith(FileLayer.create(tmp.file(), 'not a valid id!'), 'INVALID_DATA');
      assert.ok(!fs.existsSync(tmp.file()));
    });

    it('open() of a missing file fails naming it', async function () {
      const e = await rejectsWith(FileLayer.open(tmp.file('missing.space')), 'IO', /missing\.space/);
      assert.equal(e.errno, 'ENOENT');
    });

    it('open() takes the space id from the file; a relative path is resolved', async function () {
      const layer = await create();
      await layer.close();
      const rel = path.relative(process.cwd(), tmp.file());
      const again = track(await FileLayer.open(rel));
      assert.equal(again.spaceId, layer.spaceId);
      assert.equal(again.path, tmp.file());
    });

    it('readMeta answers from the start of a large file', async function () {
      const layer = await create();
      // Random values: ops are stored deflated, and the file must still outgrow the prefix.
      const ops: Op[] = Array.from({ length: 5000 }, (_, i) => ({ id: { counter: i + 1, peerId: 'p1' }, targetId: layer.spaceId, key: 'k', value: randomBytes(64).toString('hex'), transient: false }));
      await layer.saveOps(layer.spaceId, ops);
      await layer.close();
      assert.ok(fs.statSync(tmp.file()).size > 256 * 1024);
      assert.equal((await FileLayer.readMeta(tmp.file())).spaceId, layer.spaceId);
    });

    it('rejects a secret key that is not 32 bytes', async function () {
      await rejectsWith(FileLayer.create(tmp.file(), newId(), { secretKey: Buffer.alloc(16) }), 'NO_KEY', /32 bytes/);
    });
  });

  describe('ops', function () {
    it('round-trips every op shape exactly, before and after reopen', async function () {
      const layer = await create();
      const tree = layer.spaceId;
      const ops = [rootOp(tree, 'p1'), { id: { counter: 2, peerId: 'p1' }, targetId: 'x', parentId: tree }, ...ALL_VALUES];
      await layer.saveOps(tree, ops);
      assert.deepEqual(canonical(await layer.loadTree(tree)), canonical(ops));
      await layer.close();
      const again = await open(tmp.file());
      const loaded = await again.loadTree(tree);
      assert.deepEqual(canonical(loaded), canonical(ops));
      const removal = loaded.find((o) => 'key' in o && o.key === 'gone');
      assert.ok(removal && 'value' in removal && removal.value === undefined);
    });

    it('loads ops sorted by op id', async function () {
      const layer = await create();
      const tree = layer.spaceId;
      const ops = [...makeOps(tree, 'zz', 1, 50), ...makeOps(tree, 'aa', 1, 50)].reverse();
      await layer.saveOps(tree, ops);
      const loaded = await layer.loadTree(tree);
      for (let i = 1; i < loaded.length; i++) {
        const a = loaded[i - 1].id;
        const b = loaded[i].id;
        assert.ok(a.counter < b.counter || (a.counter === b.counter && a.peerId < b.peerId), `out of order at ${i}`);
      }
    });

    it('saves are idempotent: the same ops again add nothing, also after reopen', async function () {
      const layer = await create();
      const tree = layer.spaceId;
      const ops = makeOps(tree, 'p1', 1, 300);
      await layer.saveOps(tree, ops);
      const size = fs.statSync(tmp.file()).size;
      const writes = layer.stats.writes;
      await layer.saveOps(tree, ops);
      await layer.saveOps(tree, [...ops.slice(10, 20), ...ops.slice(10, 20)]);
      assert.equal(layer.stats.writes, writes, 'saving known ops rewrote the file');
      assert.equal((await layer.loadTree(tree)).length, 300);
      await layer.close();
      const again = await open(tmp.file());
      await again.saveOps(tree, ops);
      assert.equal((await again.loadTree(tree)).length, 300);
      assert.equal(fs.statSync(tmp.file()).size, size);
    });

    it('keeps trees apart (same op ids in two trees) and lists them', async function () {
      const layer = await create();
      const app = newId();
      const a = makeOps(layer.spaceId, 'p1', 1, 40);
      const b = makeOps(app, 'p1', 1, 40);
      await Promise.all([layer.saveOps(layer.spaceId, a), layer.saveOps(app, b)]);
      assert.deepEqual((await layer.listTrees()).sort(), [layer.spaceId, app].sort());
      assert.deepEqual(await layer.loadTree(newId()), []);
      await layer.close();
      const again = await open(tmp.file());
      assert.deepEqual(canonical(await again.loadTree(layer.spaceId)), canonical(a));
      assert.deepEqual(canonical(await again.loadTree(app)), canonical(b));
      assert.deepEqual((await again.listTrees()).sort(), [layer.spaceId, app].sort());
    });

    it('unflushed saves show in loadTree and listTrees, and are durable after close()', async function () {
      const layer = await create('t.space', { debounceMs: 10_000, maxWaitMs: 10_000 });
      const app = newId();
      const ops = makeOps(app, 'p1', 1, 20);
      const saved = layer.saveOps(app, ops);
      assert.deepEqual(await layer.listTrees(), [app]);
      assert.equal((await layer.loadTree(app)).length, 20);
      await layer.close();
      await saved;
      const again = await open(tmp.file('t.space'));
      assert.equal((await again.loadTree(app)).length, 20);
    });

    it('many saves share one flush; saves during a flush go into the next one', async function () {
      const layer = await create('t.space', { debounceMs: 20, maxWaitMs: 250 });
      const tree = layer.spaceId;
      await Promise.all(Array.from({ length: 100 }, (_, i) => layer.saveOps(tree, makeOps(tree, 'p1', 1 + i * 10, 10))));
      assert.equal(layer.stats.flushes, 1);
      const first = layer.saveOps(tree, makeOps(tree, 'p2', 1, 10));
      await layer.flush();
      const during = [layer.saveOps(tree, makeOps(tree, 'p3', 1, 10))];
      await first;
      during.push(layer.saveOps(tree, makeOps(tree, 'p3', 11, 10)));
      await Promise.all(during);
      assert.ok(layer.stats.flushes <= 4, `${layer.stats.flushes} flushes`);
      assert.equal((await layer.loadTree(tree)).length, 1000 + 10 + 20);
    });

    it('the maximum wait bounds how long a stream of saves is delayed', async function () {
      const layer = await create('t.space', { debounceMs: 50, maxWaitMs: 100 });
      const tree = layer.spaceId;
      const started = Date.now();
      const firstSave = layer.saveOps(tree, makeOps(tree, 'p1', 1, 1));
      // Keep saving every 10 ms (less than the debounce): only the maximum wait can flush.
      let c = 2;
      const ticker = setInterval(() => void layer.saveOps(tree, makeOps(tree, 'p1', c++, 1)), 10);
      try {
        await firstSave;
      } finally {
        clearInterval(ticker);
      }
      assert.ok(Date.now() - started < 5000, 'the first save waited for the stream to end');
      await layer.flush();
    });

    it('rejects invalid ops and unstorable keys, storing nothing of the batch', async function () {
      const layer = await create();
      const tree = layer.spaceId;
      const good = makeOps(tree, 'p1', 1, 3);
      const bad: unknown[] = [
        { id: { counter: 0, peerId: 'p1' }, targetId: 'x', parentId: tree },
        { id: { counter: 5, peerId: 'UPPER' }, targetId: 'x', parentId: tree },
        { id: { counter: 5, peerId: 'p1' }, targetId: 'x', key: 'k', value: NaN, transient: false },
        { id: { counter: 5, peerId: 'p1' }, targetId: 'x', key: 'nul\0key', value: 1, transient: false },
        { id: { counter: 5, peerId: 'p1' }, targetId: 'x', key: 'lone \ud800', value: 1, transient: false },
      ];
      for (const op of bad) await assert.rejects(layer.saveOps(tree, [...good, op as Op]));
      await assert.rejects(layer.saveOps('bad tree id', good));
      assert.deepEqual(await layer.loadTree(tree), []);
    });

    it('what the caller does with its ops after saveOps does not change what is stored', async function () {
      const layer = await create();
      const tree = layer.spaceId;
      const op: Op = { id: { counter: 1, peerId: 'p1' }, targetId: 'x', key: 'obj', value: { a: 1 }, transient: false };
      const saving = layer.saveOps(tree, [op]);
      (op.value as { a: number }).a = 2;
      op.targetId = 'changed';
      await saving;
      const [loaded] = await layer.loadTree(tree);
      assert.equal(loaded.targetId, 'x');
      assert.deepEqual('value' in loaded && loaded.value, { a: 1 });
    });

    it('a file deleted underneath is written again by the next save', async function () {
      const layer = await create();
      const tree = layer.spaceId;
      await layer.saveOps(tree, makeOps(tree, 'p1', 1, 10));
      fs.unlinkSync(tmp.file());
      await layer.saveOps(tree, makeOps(tree, 'p1', 11, 10));
      await layer.close();
      assert.equal((await (await open(tmp.file())).loadTree(tree)).length, 20);
    });

    it('keeps the permission bits of the file across writes', async function () {
      if (process.platform === 'win32') return;
      const layer = await create();
      fs.chmodSync(tmp.file(), 0o600);
      await layer.saveOps(layer.spaceId, makeOps(layer.spaceId, 'p1', 1, 5));
      assert.equal(fs.statSync(tmp.file()).mode & 0o777, 0o600);
    });
  });

  describe('secrets', function () {
    const rec = (key: string, value: string | null, time: number, peerId = 'p1'): SecretRecord => ({ key, value, time, peerId });

    it('round-trips secrets (tombstones included) and merges by time, then peer', async function () {
      const layer = await create();
      await layer.saveSecrets([rec('api.token', 'v1', 1000), rec('gone', null, 1000), rec('k', 'x', 5)]);
      await layer.saveSecrets([rec('api.token', 'older', 999), rec('k', 'y', 5, 'p2')]);
      const want = [rec('api.token', 'v1', 1000), rec('gone', null, 1000), rec('k', 'y', 5, 'p2')];
      const byKey = (l: SecretRecord[]): SecretRecord[] => [...l].sort((a, b) => (a.key < b.key ? -1 : 1));
      assert.deepEqual(byKey(await layer.loadSecrets()), want);
      await layer.close();
      assert.deepEqual(byKey(await (await open(tmp.file())).loadSecrets()), want);
    });

    it('stores values encrypted: the plaintext is nowhere in the file', async function () {
      const layer = await create();
      const plaintext = 'sk-PLAINTEXT-must-not-appear-0123456789';
      await layer.saveSecrets([rec('openai', plaintext, 1)]);
      await layer.close();
      const raw = fs.readFileSync(tmp.file());
      assert.ok(!raw.includes(Buffer.from(plaintext)), 'plaintext found in the file');
      assert.ok(!raw.includes(Buffer.from(plaintext, 'utf16le')));
      assert.ok(raw.includes(Buffer.from('openai')), 'the secret name is stored in clear (it is not secret)');
    });

    it('a wrong key gives a clear error, and the ops stay readable', async function () {
      const layer = await create();
      await layer.saveOps(layer.spaceId, makeOps(layer.spaceId, 'p1', 1, 10));
      await layer.saveSecrets([rec('k', 'v', 1)]);
      await layer.close();
      const wrong = await open(tmp.file(), { secretKey: OTHER_KEY });
      await rejectsWith(wrong.loadSecrets(), 'WRONG_KEY', /test\.space.*written with another key/);
      // In one flush with ops: the secrets fail, the ops are stored.
      const opsSaved = wrong.saveOps(layer.spaceId, makeOps(layer.spaceId, 'p1', 11, 5));
      await rejectsWith(wrong.saveSecrets([rec('k2', 'v', 2)]), 'WRONG_KEY');
      await opsSaved;
      assert.equal((await wrong.loadTree(layer.spaceId)).length, 15);
      const none = track(await FileLayer.open(tmp.file()));
      await rejectsWith(none.loadSecrets(), 'NO_KEY', /no secret key/);
      await rejectsWith(none.saveSecrets([rec('k2', 'v', 2)]), 'NO_KEY');
    });

    it('without a key, a file without secrets still works', async function () {
      const layer = track(await FileLayer.create(tmp.file(), newId()));
      assert.deepEqual(await layer.loadSecrets(), []);
      await layer.saveOps(layer.spaceId, makeOps(layer.spaceId, 'p1', 1, 4));
    });

    it('rejects invalid secret records', async function () {
      const layer = await create();
      await assert.rejects(layer.saveSecrets([rec('bad key!', 'v', 1)]));
      await assert.rejects(layer.saveSecrets([rec('k', 'v', -1)]));
      assert.deepEqual(await layer.loadSecrets(), []);
    });
  });

  describe('lifecycle', function () {
    it('close() is idempotent, flushes, and every call after it rejects', async function () {
      const layer = await create('t.space', { debounceMs: 10_000, maxWaitMs: 10_000 });
      const tree = layer.spaceId;
      const saving = layer.saveOps(tree, makeOps(tree, 'p1', 1, 10));
      await Promise.all([layer.close(), layer.close()]);
      await saving;
      await layer.close();
      assert.ok(layer.closed);
      await rejectsWith(layer.loadTree(tree), 'CLOSED');
      await rejectsWith(layer.listTrees(), 'CLOSED');
      await rejectsWith(layer.saveOps(tree, makeOps(tree, 'p1', 20, 1)), 'CLOSED');
      await rejectsWith(layer.loadSecrets(), 'CLOSED');
      await rejectsWith(layer.saveSecrets([]), 'CLOSED');
      await rejectsWith(layer.refresh(), 'CLOSED');
      assert.equal((await (await open(tmp.file('t.space'))).loadTree(tree)).length, 10);
    });

    it('the worker stops when the last layer closes', async function () {
      const a = await create('a.space');
      const b = await create('b.space');
      assert.equal(runningWorkers(), 1, 'one worker serves both files');
      await a.close();
      assert.equal(runningWorkers(), 1);
      await b.close();
      assert.equal(runningWorkers(), 0);
      const c = await open(tmp.file('a.space'));
      assert.equal(runningWorkers(), 1);
      await c.close();
      assert.equal(runningWorkers(), 0);
    });

    it('prewarm starts the worker ahead of the first open, which shares it; it stops with its last user', async function () {
      const release = FileLayer.prewarm();
      assert.equal(runningWorkers(), 1, 'started before any file is opened');
      const a = await create('warm.space');
      assert.equal(runningWorkers(), 1, 'the open used the prewarmed worker');
      await release();
      await release();
      assert.equal(runningWorkers(), 1, 'still used by the open file; a second release is a no-op');
      await a.close();
      assert.equal(runningWorkers(), 0);
      await FileLayer.prewarm()();
      assert.equal(runningWorkers(), 0, 'a prewarm nobody used stops again');
    });

    it('a failed load blocks writes until the tree loads again', async function () {
      const layer = await create('test.space', { workerPath: faultyWorkerPath });
      const tree = layer.spaceId;
      await layer.saveOps(tree, makeOps(tree, 'p1', 1, 10));
      await injectFileFault(layer, 'fail-next-load');
      await rejectsWith(layer.loadTree(tree), 'IO', /injected read failure/);
      await rejectsWith(layer.saveOps(tree, makeOps(tree, 'p1', 11, 5)), 'NOT_LOADED', /not writing/);
      assert.equal((await layer.loadTree(tree)).length, 10);
      await layer.saveOps(tree, makeOps(tree, 'p1', 11, 5));
      assert.equal((await layer.loadTree(tree)).length, 15);
    });

    it('a failed write rejects the batch; the next flush writes it', async function () {
      const layer = await create('test.space', { workerPath: faultyWorkerPath });
      const tree = layer.spaceId;
      await layer.saveOps(tree, makeOps(tree, 'p1', 1, 10));
      await injectFileFault(layer, 'fail-next-save');
      await rejectsWith(layer.saveOps(tree, makeOps(tree, 'p1', 11, 10)), 'READ_ONLY');
      await layer.saveOps(tree, makeOps(tree, 'p1', 21, 10));
      await layer.close();
      assert.equal((await (await open(tmp.file())).loadTree(tree)).length, 30);
    });
  });

  describe('locking', function () {
    it('breaks a stale lock left by a dead process', async function () {
      const layer = await create();
      fs.writeFileSync(`${tmp.file()}.lock`, JSON.stringify({ pid: 2 ** 22 + 12345, host: os.hostname(), time: Date.now() }));
      await layer.saveOps(layer.spaceId, makeOps(layer.spaceId, 'p1', 1, 5));
      assert.ok(!fs.existsSync(`${tmp.file()}.lock`));
    });

    it('waits for a live lock and fails with LOCKED after the timeout, naming the holder', async function () {
      const layer = await create('t.space', { lockTimeoutMs: 150 });
      const lock = `${tmp.file('t.space')}.lock`;
      fs.writeFileSync(lock, JSON.stringify({ pid: process.pid, host: os.hostname(), time: Date.now() }));
      await rejectsWith(layer.saveOps(layer.spaceId, makeOps(layer.spaceId, 'p1', 1, 5)), 'LOCKED', new RegExp(`process ${process.pid}`));
      fs.unlinkSync(lock);
      await layer.saveOps(layer.spaceId, makeOps(layer.spaceId, 'p1', 1, 5));
    });

    it('a save waiting for a lock proceeds once it is released', async function () {
      const layer = await create();
      const lock = `${tmp.file()}.lock`;
      fs.writeFileSync(lock, JSON.stringify({ pid: process.pid, host: os.hostname(), time: Date.now() }));
      let done = false;
      const saving = layer.saveOps(layer.spaceId, makeOps(layer.spaceId, 'p1', 1, 5)).then(() => (done = true));
      const flushing = layer.flush();
      // The worker handles requests in order: once it answers this one, the flush has already
      // found the lock taken and is waiting for it.
      await FileLayer.readMeta(tmp.file());
      assert.equal(done, false, 'saved while the lock was held');
      fs.unlinkSync(lock);
      await Promise.all([saving, flushing]);
      assert.ok(done);
    });

    it('removes temp files a killed writer left behind', async function () {
      const layer = await create();
      const orphan = `${tmp.file()}.999999-abcdef.tmp`;
      fs.writeFileSync(orphan, 'half a file');
      const unrelated = tmp.file('other.space.1-ab.tmp');
      fs.writeFileSync(unrelated, 'not ours');
      await layer.saveOps(layer.spaceId, makeOps(layer.spaceId, 'p1', 1, 5));
      assert.ok(!fs.existsSync(orphan));
      assert.ok(fs.existsSync(unrelated));
    });
  });

  describe('op columns', function () {
    it('round-trip ops through columns', function () {
      const ops = [rootOp('t', 'p1'), ...ALL_VALUES, ...makeOps('t', 'p2', 100, 50)];
      assert.deepEqual(canonical(columnsToOps(opsToColumns('t', ops))), canonical(ops));
    });

    it('reject columns that do not fit together', function () {
      const cols = opsToColumns('t', makeOps('t', 'p1', 1, 8));
      assert.throws(() => columnsToOps({ ...cols, strings: [] }), /string table/);
      assert.throws(() => columnsToOps({ ...cols, values: '[]' }), /too few values/);
      assert.throws(() => columnsToOps({ ...cols, kind: new Uint8Array(3) }), /lengths/);
    });
  });
});
