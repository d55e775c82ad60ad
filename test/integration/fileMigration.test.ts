import * as assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import initSqlJs, { type SqlJsStatic } from 'sql.js';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import { V1_BACKUP_SUFFIX, backupName } from '../../src/persistence/file/migration';
import type { Op } from '../../src/spaces/ops';
import { TEST_KEY, TempDir, WRITER_CHILD, canonical, makeOps, newId, rootOp, sha256 } from '../helpers/fileFixtures';
import { v1SpaceFileBytes, writeV1SpaceFile, type V1Contents } from '../helpers/v1SpaceFile';

const LAYER = 'server:http://127.0.0.1:1';

function contents(spaceId: string, appId: string, n: number): V1Contents {
  const spaceOps = [rootOp(spaceId, 'p1'), ...makeOps(spaceId, 'p1', 2, n)];
  const appOps = [rootOp(appId, 'p2'), ...makeOps(appId, 'p2', 2, Math.floor(n / 4))];
  return {
    spaceId,
    trees: [
      { treeId: spaceId, ops: spaceOps },
      { treeId: appId, ops: appOps },
    ],
    outbox: [
      [LAYER, appId, 2, 'p2'],
      [LAYER, appId, 3, 'p2'],
    ],
    seqs: [[LAYER, 42]],
  };
}

async function assertHoldsAll(file: string, c: V1Contents): Promise<void> {
  const layer = await FileLayer.open(file, { secretKey: TEST_KEY, watch: false });
  try {
    assert.equal(layer.meta.schemaVersion, 2);
    assert.deepEqual(new Set(await layer.listTrees()), new Set(c.trees.map((t) => t.treeId)));
    for (const t of c.trees) assert.deepEqual(canonical(await layer.loadTree(t.treeId)), canonical(t.ops), `tree ${t.treeId}`);
    const sync = await layer.loadSyncState(LAYER);
    assert.equal(sync.seq, 42);
    const appId = c.trees[1].treeId;
    assert.deepEqual(canonical(sync.outbox.get(appId) ?? []), canonical((c.trees[1].ops as Op[]).filter((op) => op.id.counter === 2 || op.id.counter === 3)));
  } finally {
    await layer.close();
  }
}

describe('space files: schema 1 → 2 migration', function () {
  this.timeout(300_000);
  let SQL: SqlJsStatic;
  let tmp: TempDir;

  before(async () => (SQL = await initSqlJs()));
  beforeEach(() => (tmp = new TempDir()));
  afterEach(() => tmp.cleanup());

  it('a schema-1 file opens with every op, outbox entry and watermark, and is schema 2 on disk afterwards', async function () {
    const file = tmp.file('old.space');
    const c = contents(newId(), newId(), 2000);
    writeV1SpaceFile(SQL, file, c);
    const before = fs.statSync(file).size;
    await assertHoldsAll(file, c);
    assert.equal((await FileLayer.readMeta(file)).schemaVersion, 2, 'migrated on disk');
    assert.ok(!fs.existsSync(backupName(file)), 'the backup is removed once the new file is durable');
    assert.ok(fs.statSync(file).size < before, `smaller: ${fs.statSync(file).size} < ${before}`);
    await assertHoldsAll(file, c); // and opens again as schema 2
  });

  it('a read-only schema-1 file opens with every op and is not touched', async function () {
    const file = tmp.file('ro.space');
    const c = contents(newId(), newId(), 500);
    writeV1SpaceFile(SQL, file, c);
    fs.chmodSync(file, 0o444);
    const hash = sha256(file);
    const layer = await FileLayer.open(file, { secretKey: TEST_KEY, watch: false });
    try {
      for (const t of c.trees) assert.deepEqual(canonical(await layer.loadTree(t.treeId)), canonical(t.ops));
    } finally {
      await layer.close();
    }
    assert.equal(sha256(file), hash);
    assert.equal((await FileLayer.readMeta(file)).schemaVersion, 1);
  });

  it('a backup left by an interrupted migration is merged in (ops the new file lacks come back) and removed', async function () {
    const file = tmp.file('half.space');
    const spaceId = newId();
    const ops = [rootOp(spaceId, 'p1'), ...makeOps(spaceId, 'p1', 2, 100)];
    const layer = await FileLayer.create(file, spaceId, { secretKey: TEST_KEY, watch: false });
    await layer.saveOps(spaceId, ops.slice(0, 50));
    await layer.close();
    // The backup holds every op (as the old file did); the new file only the first 50.
    fs.writeFileSync(backupName(file), v1SpaceFileBytes(SQL, { spaceId, trees: [{ treeId: spaceId, ops }] }));
    const again = await FileLayer.open(file, { secretKey: TEST_KEY, watch: false });
    try {
      assert.deepEqual(canonical(await again.loadTree(spaceId)), canonical(ops));
    } finally {
      await again.close();
    }
    assert.ok(!fs.existsSync(backupName(file)));
    const third = await FileLayer.open(file, { secretKey: TEST_KEY, watch: false });
    try {
      assert.equal((await third.loadTree(spaceId)).length, ops.length, 'the merged ops were written');
    } finally {
      await third.close();
    }
  });

  it('SIGKILL at random points of the migration, 20 times: the file always opens with every op', async function () {
    // Each step is seen from outside, by what it does to the folder: the lock appears (read), the
    // backup appears (backup), a temp file appears (write), the file is renamed over (verify),
    // the backup goes (remove backup).
    const steps = ['read', 'backup', 'write', 'verify', 'remove backup'] as const;
    const stepOf = (file: string, name: string): (typeof steps)[number] | undefined => {
      const base = path.basename(file);
      if (name === `${base}.lock`) return 'read';
      if (name === `${base}${V1_BACKUP_SUFFIX}`) return fs.existsSync(backupName(file)) ? 'backup' : 'remove backup';
      if (name.startsWith(`${base}.`) && name.endsWith('.tmp')) return 'write';
      if (name === base) return 'verify';
      return undefined;
    };
    const c = contents(newId(), newId(), 8000);
    const bytes = v1SpaceFileBytes(SQL, c);
    const seen = { killed: 0, leftV1: 0, leftBackup: 0 };
    for (let i = 0; i < 20; i++) {
      const file = tmp.file(`kill${i}.space`);
      fs.writeFileSync(file, bytes);
      const at = steps[i % steps.length];
      const watcher = fs.watch(path.dirname(file));
      let outcome: 'killed' | 'finished';
      try {
        outcome = await new Promise<'killed' | 'finished'>((resolve, reject) => {
          const child = fork(WRITER_CHILD, ['open', file], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
          let stderr = '';
          let killing = false;
          child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
          watcher.on('change', (_event, name) => {
            if (killing || typeof name !== 'string' || stepOf(file, name) !== at) return;
            killing = true;
            // A random extra 0–7 ms lands the kill anywhere inside the step (or the next).
            setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 8));
          });
          child.once('exit', (code, signal) => {
            if (signal === 'SIGKILL') resolve('killed');
            else if (code === 0) resolve('finished');
            else reject(new Error(`child exited with ${code}: ${stderr}`));
          });
        });
      } finally {
        watcher.close();
      }
      if (outcome === 'killed') seen.killed++;
      if (fs.existsSync(backupName(file))) seen.leftBackup++;
      if ((await FileLayer.readMeta(file)).schemaVersion === 1) seen.leftV1++;
      await assertHoldsAll(file, c);
      assert.ok(!fs.existsSync(backupName(file)), `run ${i}: the backup is gone after a successful open`);
    }
    // Kills at "read" leave the old file, kills at "verify" the new one with its backup: both paths ran.
    assert.ok(seen.killed >= 10 && seen.leftV1 >= 1 && seen.leftBackup >= 1, `kills landed on both sides of the rename: ${JSON.stringify(seen)}`);
  });
});
