import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import initSqlJs, { type SqlJsStatic } from 'sql.js';
import { FileLayer, SpaceFileError } from '../../src/persistence/file/fileLayer';
import { TEST_KEY, TempDir, makeOps, newId, sha256 } from '../helpers/fileFixtures';
import { writeV1SpaceFile } from '../helpers/v1SpaceFile';

let SQL: SqlJsStatic;

/** Rewrites a space file with sql.js after running `sql` on it (to plant bad data). */
function tamper(file: string, sql: string): void {
  const db = new SQL.Database(fs.readFileSync(file));
  db.exec(sql);
  fs.writeFileSync(file, db.export());
  db.close();
}

async function expectRejection(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof SpaceFileError, `expected a SpaceFileError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    return;
  }
  assert.fail('expected a rejection');
}

describe('FileLayer with files that are not (valid) spaces', function () {
  let tmp: TempDir;
  let layers: FileLayer[];
  /** A healthy space file opened for the whole test: it must keep working next to the bad ones. */
  let healthy: FileLayer;

  before(async function () {
    SQL = await initSqlJs();
  });

  beforeEach(async function () {
    tmp = new TempDir();
    layers = [];
    healthy = await FileLayer.create(tmp.file('healthy.space'), newId(), { secretKey: TEST_KEY });
    layers.push(healthy);
    await healthy.saveOps(healthy.spaceId, makeOps(healthy.spaceId, 'p1', 1, 20));
  });

  afterEach(async function () {
    // The healthy file still works after whatever the test did to the others.
    await healthy.saveOps(healthy.spaceId, makeOps(healthy.spaceId, 'p1', 21, 20));
    assert.equal((await healthy.loadTree(healthy.spaceId)).length, 40);
    await Promise.allSettled(layers.map((l) => l.close()));
    const again = await FileLayer.open(tmp.file('healthy.space'));
    assert.equal((await again.loadTree(healthy.spaceId)).length, 40);
    await again.close();
    tmp.cleanup();
  });

  /** Writes a valid space file with ops and a secret, closed again. */
  async function validFile(name: string): Promise<{ file: string; spaceId: string }> {
    const file = tmp.file(name);
    const layer = await FileLayer.create(file, newId(), { secretKey: TEST_KEY });
    await layer.saveOps(layer.spaceId, makeOps(layer.spaceId, 'p1', 1, 400));
    await layer.saveSecrets([{ key: 'k', value: 'v', time: 1, peerId: 'p1' }]);
    await layer.close();
    return { file, spaceId: layer.spaceId };
  }

  /** open() and readMeta() reject with `code`/`re`, and the file's bytes are unchanged. */
  async function assertUnopenable(file: string, code: string, re: RegExp): Promise<void> {
    const before = sha256(file);
    await expectRejection(FileLayer.open(file, { secretKey: TEST_KEY }), code, re);
    await expectRejection(FileLayer.readMeta(file), code, re);
    assert.equal(sha256(file), before, 'the file was modified');
  }

  it('garbage bytes', async function () {
    const file = tmp.file('garbage.space');
    fs.writeFileSync(file, randomBytes(10_000));
    await assertUnopenable(file, 'NOT_A_SPACE', /garbage\.space is not a Spaces file \(not a SQLite database\)/);
  });

  it('an empty file and a text file', async function () {
    const empty = tmp.file('empty.space');
    fs.writeFileSync(empty, '');
    await assertUnopenable(empty, 'NOT_A_SPACE', /empty\.space is not a Spaces file \(the file is empty\)/);
    const text = tmp.file('notes.space');
    fs.writeFileSync(text, 'SQLite format 3 but not really\n'.repeat(20));
    await assertUnopenable(text, 'NOT_A_SPACE', /notes\.space is not a Spaces file/);
  });

  it('a truncated valid file', async function () {
    const { file } = await validFile('cut.space');
    const bytes = fs.readFileSync(file);
    for (const keep of [50, 4096, Math.floor(bytes.length / 2), bytes.length - 1]) {
      fs.writeFileSync(file, bytes.subarray(0, keep));
      await assertUnopenable(file, 'NOT_A_SPACE', /cut\.space is not a Spaces file/);
    }
  });

  it('a SQLite database of another schema', async function () {
    const file = tmp.file('other.space');
    const db = new SQL.Database();
    db.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); INSERT INTO notes (text) VALUES ('hello');");
    fs.writeFileSync(file, db.export());
    db.close();
    await assertUnopenable(file, 'NOT_A_SPACE', /other\.space is not a Spaces file \(it has no meta table\)/);
  });

  it('a SQLite database with a meta table of another application', async function () {
    const file = tmp.file('meta.space');
    const db = new SQL.Database();
    db.exec("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('format', 'something-else');");
    fs.writeFileSync(file, db.export());
    db.close();
    await assertUnopenable(file, 'NOT_A_SPACE', /meta\.space is not a Spaces file \(its format is "something-else"\)/);
  });

  it('a space file with required tables missing', async function () {
    const { file } = await validFile('partial.space');
    tamper(file, 'DROP TABLE chunks;');
    await expectRejection(FileLayer.open(file), 'NOT_A_SPACE', /partial\.space is not a Spaces file \(missing tables chunks\)/);
  });

  it('a newer schema version', async function () {
    const { file } = await validFile('future.space');
    tamper(file, "UPDATE meta SET value = '7' WHERE key = 'schema_version';");
    await assertUnopenable(file, 'NEWER_SCHEMA', /future\.space was written by a newer version of Spaces \(schema 7; this build reads 2\)/);
  });

  /**
   * A schema-1 file (one row per op) with one bad op row: its migration reads every row, so open
   * rejects with INVALID_DATA, and the file is never written (bytes unchanged).
   */
  async function assertBadRow(name: string, sql: (spaceId: string) => string, re: RegExp): Promise<void> {
    const file = tmp.file(name);
    const spaceId = newId();
    writeV1SpaceFile(SQL, file, { spaceId, trees: [{ treeId: spaceId, ops: makeOps(spaceId, 'p1', 1, 400) }] });
    tamper(file, sql(spaceId));
    const before = sha256(file);
    await expectRejection(FileLayer.open(file, { secretKey: TEST_KEY }), 'INVALID_DATA', re);
    assert.equal(sha256(file), before, 'the file was modified');
  }

  /** A schema-2 file with a damaged chunk: loadTree rejects, no write ever happens, bytes unchanged. */
  async function assertBadChunk(name: string, sql: string, re: RegExp): Promise<void> {
    const { file, spaceId } = await validFile(name);
    tamper(file, sql);
    const before = sha256(file);
    const layer = await FileLayer.open(file, { secretKey: TEST_KEY });
    layers.push(layer);
    await expectRejection(layer.loadTree(spaceId), 'INVALID_DATA', re);
    await expectRejection(layer.saveOps(spaceId, makeOps(spaceId, 'p2', 1, 5)), 'NOT_LOADED', /not writing/);
    await expectRejection(layer.saveSecrets([{ key: 'x', value: 'y', time: 5, peerId: 'p2' }]), 'NOT_LOADED', /not writing/);
    await layer.close();
    assert.equal(sha256(file), before, 'the file was modified');
  }

  it('a chunk whose blob is damaged', async function () {
    await assertBadChunk('blob.space', "UPDATE chunks SET ops = x'0100ffff';", /blob\.space holds invalid data \(chunk \d+ of tree \w+: /);
  });

  it('a chunk written by a newer codec version', async function () {
    await assertBadChunk('codec.space', "UPDATE chunks SET ops = CAST(x'09' || substr(ops, 2) AS BLOB);", /codec\.space holds invalid data \(chunk \d+ of tree \w+: codec version 9 is not one this build reads/);
  });

  it('a chunk whose row counts other ops than it holds', async function () {
    await assertBadChunk('count.space', 'UPDATE chunks SET n_ops = n_ops + 1;', /count\.space holds invalid data \(chunk \d+ of tree \w+ holds \d+ ops, its row says \d+\)/);
  });

  it('an op row with a counter of 0', async function () {
    await assertBadRow('zero.space', () => 'UPDATE ops SET counter = 0 WHERE counter = 5;', /zero\.space holds invalid data \(invalid op #\d+ in tree \w+: counter must be/);
  });

  it('an op row with an invalid peer id', async function () {
    await assertBadRow('peer.space', () => "UPDATE peers SET peer = 'NOT A PEER';", /peer\.space holds invalid data \(invalid op #0 in tree \w+: bad peer id/);
  });

  it('an op row with a malformed JSON value', async function () {
    await assertBadRow('json.space', () => "UPDATE ops SET b = '{broken' WHERE kind = 1 AND counter = 2;", /json\.space holds invalid data \(ops of tree \w+ are damaged/);
  });

  it('an op row with an unknown kind', async function () {
    await assertBadRow('kind.space', () => 'UPDATE ops SET kind = 9 WHERE counter = 4;', /kind\.space holds invalid data \(op #\d+ of tree \w+ has unknown kind 9\)/);
  });

  it('an op row pointing to a missing vertex', async function () {
    await assertBadRow('dangling.space', () => 'UPDATE ops SET target = 999999 WHERE counter = 4;', /dangling\.space holds invalid data \(op #\d+ of tree \w+ points to a missing vertex\)/);
  });

  it('a move of the root', async function () {
    await assertBadRow(
      'root.space',
      (spaceId) => `UPDATE ops SET target = (SELECT id FROM names WHERE name = '${spaceId}') WHERE counter = 4;`,
      /root\.space holds invalid data \(invalid op #\d+ in tree \w+: a tree's root cannot be moved\)/,
    );
  });

  it('a damaged secret record', async function () {
    const { file } = await validFile('secret.space');
    tamper(file, "UPDATE secrets SET iv = x'0102';");
    const layer = await FileLayer.open(file, { secretKey: TEST_KEY });
    layers.push(layer);
    await expectRejection(layer.loadSecrets(), 'INVALID_DATA', /secret\.space holds invalid data \(secret "k": iv must be 12 bytes\)/);
  });

  it('a tampered secret ciphertext', async function () {
    const { file } = await validFile('tampered.space');
    tamper(file, "UPDATE secrets SET data = x'00112233445566778899aabbccddeeff00';");
    const layer = await FileLayer.open(file, { secretKey: TEST_KEY });
    layers.push(layer);
    await expectRejection(layer.loadSecrets(), 'WRONG_KEY', /tampered\.space: cannot decrypt secret "k"/);
  });

  it('a file replaced by garbage while open: saves fail, the garbage is not overwritten', async function () {
    const { file, spaceId } = await validFile('replaced.space');
    const layer = await FileLayer.open(file, { secretKey: TEST_KEY, watch: false });
    layers.push(layer);
    assert.equal((await layer.loadTree(spaceId)).length, 400);
    fs.writeFileSync(`${file}.new`, randomBytes(5000));
    fs.renameSync(`${file}.new`, file);
    const before = sha256(file);
    await expectRejection(layer.saveOps(spaceId, makeOps(spaceId, 'p2', 1, 5)), 'NOT_A_SPACE', /replaced\.space is not a Spaces file/);
    await expectRejection(layer.refresh(), 'NOT_A_SPACE', /replaced\.space/);
    await layer.close();
    assert.equal(sha256(file), before, 'the garbage was overwritten');
  });

  it('a file replaced by another space while open: saves fail, nothing is overwritten', async function () {
    const { file, spaceId } = await validFile('swapped.space');
    const other = await validFile('other.space');
    const layer = await FileLayer.open(file, { secretKey: TEST_KEY, watch: false });
    layers.push(layer);
    fs.copyFileSync(other.file, `${file}.new`);
    fs.renameSync(`${file}.new`, file);
    const before = sha256(file);
    await expectRejection(layer.saveOps(spaceId, makeOps(spaceId, 'p2', 1, 5)), 'SPACE_MISMATCH', /swapped\.space now holds another space/);
    assert.equal(sha256(file), before);
  });
});
