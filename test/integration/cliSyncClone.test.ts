/**
 * `spaces sync` clones that cannot complete, with the built CLI against a real server: killed
 * (SIGKILL) mid-download, or on a "full disk" (an OS file-size limit: writes fail with EFBIG).
 * Nothing that cannot be opened may be left at the target name, a rerun must clone, and a store
 * failure must be an exit 1 with its cause — also when syncing an existing file, whose sync
 * position must then stay where it was.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, TEST_KEY, cliJson, runCli } from '../helpers/cli';
import { startTestServer, tempDir, type TestServer } from '../helpers/syncServer';

/** Items the teammate pushes: enough for a download of several seconds and a file of megabytes. */
const ITEMS = 30_000;
const WAIT_MS = 120_000;
/** A file that grew past this holds received ops (a new space file is far smaller). */
const PROGRESS_BYTES = 256 * 1024;
const CLI_TIMEOUT_S = '300';

interface Summary {
  received: number;
  sent: number;
  seq: number;
}

function sha(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Resolves once `pred()` holds, re-checked on every change in `dir` (no polling by time). */
function whenDir(dir: string, pred: () => boolean, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!pred()) return;
      done();
      resolve();
    };
    const watcher = fs.watch(dir, check);
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no ${what} within ${WAIT_MS} ms`));
    }, WAIT_MS);
    function done(): void {
      watcher.close();
      clearTimeout(timer);
    }
    check();
  });
}

describe('spaces sync: clones that cannot complete, store failures', function () {
  this.timeout(10 * 60_000);
  let t: TestServer;
  let dir: string;
  let spaceId: string;
  let treeId: string;
  let token: string;
  let pushed: Summary;
  const file = (name: string): string => path.join(dir, name);
  const syncArgs = (name: string, extra: string[] = []): string[] => ['sync', file(name), '--server', t.server.url, '--token', token, '--timeout', CLI_TIMEOUT_S, ...extra];
  const entries = (): string[] => fs.readdirSync(dir).sort();

  before(async function () {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`node esbuild.mjs\` first`);
    t = await startTestServer();
    dir = tempDir('spaces-cli-clone-');
    token = t.token('write');
    // The teammate's space, pushed to the server; an old clone made before its big push.
    ({ spaceId } = await cliJson<{ spaceId: string }>(['create', file('mate.space'), '--name', 'Clone me']));
    ({ treeId } = await cliJson<{ treeId: string }>(['app', 'add', file('mate.space'), '--app', 'notes', '--name', 'Notes']));
    await cliJson(syncArgs('mate.space'));
    await cliJson(syncArgs('old.space', ['--space', spaceId]));
    // Random texts: stored ops are deflated, and the write-failure test needs one received frame to
    // outgrow the room it leaves.
    const items = Array.from({ length: ITEMS }, (_, i) => ({ props: { text: `item ${i} ${randomBytes(32).toString('hex')}`, done: i % 2 === 0 } }));
    await cliJson(['import', file('mate.space'), '--tree', treeId], { stdin: JSON.stringify(items) });
    pushed = await cliJson<Summary>(syncArgs('mate.space'));
    assert.ok(pushed.sent >= ITEMS);
  });
  after(async () => {
    await t.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a clone killed mid-download leaves nothing at the target; a rerun clones it whole', async function () {
    const target = file('killed.space');
    const child = spawn(process.execPath, [CLI, ...syncArgs('killed.space', ['--space', spaceId])], { env: { ...process.env, SPACES_KEY: TEST_KEY }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    try {
      // Progress: a file of this clone (whatever its name) holds received ops.
      await whenDir(dir, () => entries().some((n) => n.startsWith('killed.space') && (fs.statSync(file(n), { throwIfNoEntry: false })?.size ?? 0) > PROGRESS_BYTES), 'download progress');
      assert.equal(child.exitCode, null, `the clone finished before it could be killed: ${stderr}`);
      child.kill('SIGKILL');
      assert.equal(await exited, 'SIGKILL');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    assert.ok(!fs.existsSync(target), 'a killed clone left a file at the target name');

    const again = await cliJson<Summary & { file: string }>(syncArgs('killed.space', ['--space', spaceId]));
    assert.equal(again.file, target);
    assert.ok(again.received >= pushed.sent);
    assert.deepEqual(
      entries().filter((n) => n.startsWith('killed.space')),
      ['killed.space'],
      'the rerun left temporary files next to the clone',
    );
    const dump = await cliJson<{ children: unknown[] }>(['dump', target, '--tree', treeId]);
    assert.equal(dump.children.length, ITEMS);
  });

  it('a clone on a full disk exits 1 with the cause and leaves nothing behind', async function () {
    const r = await runCli(syncArgs('full.space', ['--space', spaceId]), { fileSizeLimit: PROGRESS_BYTES });
    assert.equal(r.code, 1, `exit ${r.code}, stdout ${r.stdout.slice(0, 200)}, stderr ${r.stderr}`);
    assert.equal(r.stdout, '', 'a failed clone printed a summary');
    assert.match(r.stderr, /^spaces: .*(EFBIG|too large)/);
    assert.deepEqual(
      entries().filter((n) => n.startsWith('full.space')),
      [],
      'a failed clone left files behind',
    );
  });

  it('a sync of an existing file whose write fails exits 1 with the cause and does not advance its sync position', async function () {
    const before = sha(file('old.space'));
    const size = fs.statSync(file('old.space')).size;
    // Room for lock files and the like, not for the file with the teammate's items.
    const r = await runCli(syncArgs('old.space'), { fileSizeLimit: size + 8 * 1024 });
    assert.equal(r.code, 1, `exit ${r.code}, stdout ${r.stdout.slice(0, 200)}, stderr ${r.stderr}`);
    assert.match(r.stderr, /^spaces: .*(EFBIG|too large)/);
    assert.equal(sha(file('old.space')), before, 'the file changed although the sync failed');
    assert.deepEqual(
      entries().filter((n) => n.startsWith('old.space')),
      ['old.space'],
    );
    // With room again, the next sync downloads everything it did not store.
    const ok = await cliJson<Summary>(syncArgs('old.space'));
    assert.ok(ok.received >= pushed.sent, `received ${ok.received} of ${pushed.sent}`);
    const dump = await cliJson<{ children: unknown[] }>(['dump', file('old.space'), '--tree', treeId]);
    assert.equal(dump.children.length, ITEMS);
  });
});
