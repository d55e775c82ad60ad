import * as assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DB_FILE, SCHEMA_VERSION } from '../../src/server/store/database';
import { ServerStore } from '../../src/server/store/serverStore';
import type { Op } from '../../src/spaces/ops';
import { canonical, makeOps, rootOp } from '../helpers/fileFixtures';
import { tempDir } from '../helpers/syncServer';
import { writeV2ServerDb, type V2Space } from '../helpers/v2ServerDb';

const CHILD = path.join(__dirname, '..', 'helpers', 'storeOpenChild.js');
const KEY = Buffer.alloc(32, 1);

function oldSpaces(n: number): V2Space[] {
  const a = 'a'.repeat(32);
  const b = 'b'.repeat(32);
  const tree = 'c'.repeat(32);
  const batches: Array<{ treeId: string; ops: Op[] }> = [{ treeId: a, ops: [rootOp(a, 'srv')] }, { treeId: tree, ops: [rootOp(tree, 'p1')] }];
  // Batches of 4 ops like one edit each, two peers, two trees interleaved.
  for (let c = 2; c < n; c += 4) batches.push({ treeId: c % 8 === 2 ? a : tree, ops: makeOps(c % 8 === 2 ? a : tree, c % 3 === 0 ? 'p1' : 'p2', c, 4) });
  return [
    { id: a, batches },
    { id: b, batches: [{ treeId: b, ops: [rootOp(b, 'srv'), ...makeOps(b, 'srv', 2, 10)] }] },
  ];
}

function userVersion(dir: string): number {
  const db = new Database(path.join(dir, DB_FILE), { readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
}

/** Every op of every space is stored, catch-up returns every batch in seq order, and the state vectors agree. */
function assertHoldsAll(dir: string, spaces: readonly V2Space[]): void {
  const store = ServerStore.open(dir, { secretKey: KEY });
  try {
    for (const s of spaces) {
      assert.equal(store.lastSeq(s.id), s.batches.length);
      const byTree = new Map<string, Op[]>();
      for (const b of s.batches) byTree.set(b.treeId, (byTree.get(b.treeId) ?? []).concat(b.ops));
      for (const [treeId, ops] of byTree) assert.deepEqual(canonical(store.loadTreeOps(s.id, treeId)), canonical(ops), `space ${s.id} tree ${treeId}`);
      const seqs = store.batchesAfter(s.id, 0, 1e9).map((b) => b.seq);
      assert.deepEqual(seqs, s.batches.map((_, i) => i + 1));
      const tail = store.batchesAfter(s.id, 3, 2);
      assert.deepEqual(tail.map((b) => b.seq), [4, 5].filter((x) => x <= s.batches.length));
      const sv = store.stateVectors(s.id);
      for (const [treeId, ops] of byTree) for (const op of ops) assert.ok(sv.get(treeId)?.has(op.id.peerId, op.id.counter));
      assert.equal(store.opCount(s.id), s.batches.reduce((n, b) => n + b.ops.length, 0));
    }
  } finally {
    store.close();
  }
}

describe('server store: schema 2 → 3 migration', function () {
  this.timeout(300_000);
  let dir: string;
  beforeEach(() => (dir = tempDir('spaces-store-migration-')));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a schema-2 data directory opens with every batch, op and state vector, is schema 3 afterwards and smaller', () => {
    const spaces = oldSpaces(4000);
    writeV2ServerDb(dir, spaces);
    const size = (): number => [DB_FILE, `${DB_FILE}-wal`].reduce((n, f) => n + (fs.existsSync(path.join(dir, f)) ? fs.statSync(path.join(dir, f)).size : 0), 0);
    const before = size();
    assertHoldsAll(dir, spaces);
    assert.equal(userVersion(dir), SCHEMA_VERSION);
    assertHoldsAll(dir, spaces);
    assert.ok(size() < before / 2, `${size()} bytes after, ${before} before`);
  });

  it('a data directory from a newer server is refused and not touched', () => {
    writeV2ServerDb(dir, oldSpaces(40));
    const db = new Database(path.join(dir, DB_FILE));
    db.pragma('user_version = 9');
    db.close();
    assert.throws(() => ServerStore.open(dir, { secretKey: KEY }), /newer server \(schema 9; this build reads 3\)/);
    assert.equal(userVersion(dir), 9);
  });

  it('SIGKILL at random points of the migration, 20 times: the store always opens with every op', async function () {
    const spaces = oldSpaces(20_000);
    const template = path.join(dir, 'template');
    writeV2ServerDb(template, spaces);
    const seen = { killed: 0, leftOld: 0 };
    for (let i = 0; i < 20; i++) {
      const run = path.join(dir, `run${i}`);
      fs.cpSync(template, run, { recursive: true });
      const outcome = await new Promise<'killed' | 'finished'>((resolve, reject) => {
        const child = fork(CHILD, [run], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: { ...process.env, SPACES_MIGRATION_TRACE: '1' } });
        let stderr = '';
        let killing = false;
        child.stderr?.on('data', (d: Buffer) => {
          stderr += d.toString();
          if (!killing && stderr.includes('migration: start\n')) {
            killing = true;
            // A random 0–300 ms lands the kill anywhere in the migration's transaction, or after it.
            setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 300));
          }
        });
        child.once('exit', (code, signal) => {
          if (signal === 'SIGKILL') resolve('killed');
          else if (code === 0) resolve('finished');
          else reject(new Error(`child exited with ${code}: ${stderr}`));
        });
      });
      if (outcome === 'killed') seen.killed++;
      if (userVersion(run) < SCHEMA_VERSION) seen.leftOld++;
      assertHoldsAll(run, spaces);
      fs.rmSync(run, { recursive: true, force: true });
    }
    assert.ok(seen.killed >= 5 && seen.leftOld >= 1, `kills landed inside the migration: ${JSON.stringify(seen)}`);
  });
});
