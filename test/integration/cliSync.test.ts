/**
 * `spaces sync` as a user runs it: the built CLI (dist/cli.js) against a real team server.
 * A space made with the CLI and pushed (the server creates it), clone, push offline CLI edits,
 * resume, errors (token, unreachable, read-only, unknown space, usage), and --watch until SIGINT.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, TEST_KEY, cliJson, runCli } from '../helpers/cli';
import { freePort } from '../helpers/syncClients';
import { startTestServer, tempDir, type TestServer } from '../helpers/syncServer';

interface Summary {
  spaceId: string;
  file: string;
  received: number;
  sent: number;
  seq: number;
}

describe('spaces sync (CLI, real server)', function () {
  this.timeout(60_000);
  let t: TestServer;
  let dir: string;
  let spaceId: string;
  let token: string;
  const file = (name: string): string => path.join(dir, name);

  before(function () {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`node esbuild.mjs\` first`);
  });
  beforeEach(async () => {
    t = await startTestServer();
    dir = tempDir('spaces-cli-sync-');
    token = t.token('write');
    // As a user starts: a space made with the CLI, pushed to the server (which creates it).
    ({ spaceId } = await cliJson<{ spaceId: string }>(['create', file('seed.space'), '--name', 'CLI team']));
    await cliJson(['sync', file('seed.space'), '--server', t.server.url, '--token', token]);
  });
  afterEach(async () => {
    await t.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const sync = (name: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Summary> =>
    cliJson<Summary>(['sync', file(name), '--server', t.server.url, '--token', token, ...extra], { env });

  it('clones a server space into a new file, pushes offline CLI edits, and resumes with only what is new', async function () {
    const first = await sync('a.space', ['--space', spaceId]);
    assert.equal(first.spaceId, spaceId);
    assert.equal(first.file, file('a.space'));
    assert.ok(first.received > 0);
    assert.equal(first.sent, 0);
    assert.ok(first.seq >= 1);
    assert.equal((await cliJson<{ name: string }>(['info', file('a.space')])).name, 'CLI team');

    // Edits made with the CLI while not syncing, then pushed.
    const { treeId } = await cliJson<{ treeId: string }>(['app', 'add', file('a.space'), '--app', 'notes', '--name', 'Notes']);
    await cliJson(['import', file('a.space'), '--tree', treeId], { stdin: JSON.stringify(Array.from({ length: 30 }, (_, i) => ({ props: { text: `n${i}` } }))) });
    const pushed = await sync('a.space');
    assert.equal(pushed.received, 0);
    assert.ok(pushed.sent > 90, `sent ${pushed.sent}`);

    // Another clone gets everything; then only the new edit comes down on the next sync.
    const b = await sync('b.space', ['--space', spaceId]);
    assert.equal(b.received, first.received + pushed.sent);
    assert.deepEqual(await cliJson(['dump', file('b.space'), '--tree', treeId]), await cliJson(['dump', file('a.space'), '--tree', treeId]));
    await cliJson(['item', 'add', file('a.space'), '--tree', treeId, '--set', 'text=later']);
    const a2 = await sync('a.space');
    const b2 = await sync('b.space');
    assert.equal(b2.received, a2.sent);
    assert.equal(b2.sent, 0);
    assert.equal(b2.seq, a2.seq);
    assert.deepEqual(await cliJson(['dump', file('b.space'), '--tree', treeId]), await cliJson(['dump', file('a.space'), '--tree', treeId]));
  });

  it('pushes a file whose space the server lacks: created there when the token may, a clear error when it may not', async function () {
    const { spaceId: id } = await cliJson<{ spaceId: string }>(['create', file('team.space'), '--name', 'Pushed']);
    const { treeId } = await cliJson<{ treeId: string }>(['app', 'add', file('team.space'), '--app', 'notes', '--name', 'Plans']);
    await cliJson(['item', 'add', file('team.space'), '--tree', treeId, '--set', 'text=first']);
    const serverSpaces = async (): Promise<Array<{ id: string; name: string }>> =>
      ((await (await fetch(`${t.server.url}/v1/spaces`, { headers: { Authorization: `Bearer ${t.admin}` } })).json()) as { spaces: Array<{ id: string; name: string }> }).spaces;

    // Tokens that may not create it: what is needed is named, nothing is created.
    const reader = await runCli(['sync', file('team.space'), '--server', t.server.url, '--token', t.token('read')]);
    assert.equal(reader.code, 1, reader.stderr);
    assert.match(reader.stderr, new RegExp(`^spaces: .*no space ${id}.*could not be created.*token with write access to every space`));
    const otherSpace = await runCli(['sync', file('team.space'), '--server', t.server.url, '--token', t.token('write', spaceId)]);
    assert.equal(otherSpace.code, 1, otherSpace.stderr);
    assert.match(otherSpace.stderr, new RegExp(`^spaces: .*no access.*token with access to space ${id} is needed, or one with write access to every space`));
    assert.ok(!(await serverSpaces()).some((s) => s.id === id));

    // The README's push, with an admin token.
    const r = await runCli(['sync', file('team.space'), '--server', t.server.url, '--token', t.admin]);
    assert.equal(r.code, 0, r.stderr);
    const pushed = JSON.parse(r.stdout) as Summary;
    assert.equal(pushed.spaceId, id);
    assert.ok(pushed.sent > 0);
    assert.deepEqual((await serverSpaces()).find((s) => s.id === id)?.name, 'Pushed');
    // A clone from the server has what the file had.
    await sync('clone.space', ['--space', id]);
    assert.deepEqual(await cliJson(['dump', file('clone.space'), '--tree', treeId]), await cliJson(['dump', file('team.space'), '--tree', treeId]));
    assert.equal((await cliJson<{ name: string }>(['info', file('clone.space')])).name, 'Pushed');

    // The admin token of that one space id may create it too.
    const { spaceId: own } = await cliJson<{ spaceId: string }>(['create', file('own.space'), '--name', 'Own']);
    const ownPush = await cliJson<Summary>(['sync', file('own.space'), '--server', t.server.url, '--token', t.token('admin', own)]);
    assert.equal(ownPush.spaceId, own);
    assert.equal((await serverSpaces()).find((s) => s.id === own)?.name, 'Own');
  });

  it('takes the token from $SPACES_TOKEN', async function () {
    const r = await cliJson<Summary>(['sync', file('env.space'), '--server', t.server.url, '--space', spaceId], { env: { SPACES_TOKEN: token } });
    assert.equal(r.spaceId, spaceId);
  });

  it('fails with a clear message: bad token, unknown space, unreachable server, read-only with edits', async function () {
    const bad = await runCli(['sync', file('x.space'), '--server', t.server.url, '--token', 'spt_nope', '--space', spaceId]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^spaces: .*token/);
    assert.ok(!fs.existsSync(file('x.space')), 'a failed clone left a file behind');

    const unknown = await runCli(['sync', file('x.space'), '--server', t.server.url, '--token', token, '--space', 'f'.repeat(32)]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no space/);

    const closedPort = await freePort();
    const t0 = Date.now();
    const down = await runCli(['sync', file('x.space'), '--server', `http://127.0.0.1:${closedPort}`, '--token', token, '--space', spaceId, '--timeout', '1.5']);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot sync with .* within 1\.5 s/);
    assert.ok(Date.now() - t0 < 15_000);

    await sync('r.space', ['--space', spaceId]);
    await cliJson(['app', 'add', file('r.space'), '--app', 'notes', '--name', 'Mine']);
    const reader = t.token('read', spaceId);
    const ro = await runCli(['sync', file('r.space'), '--server', t.server.url, '--token', reader]);
    assert.equal(ro.code, 1);
    assert.match(ro.stderr, /read-only: \d+ ops not sent/);

    const usage = await runCli(['sync', file('missing.space'), '--server', t.server.url, '--token', token]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--space/);
  });

  it('--watch prints a JSON line per sync event, picks up edits as they come, and closes cleanly on SIGINT', async function () {
    await sync('w.space', ['--space', spaceId]);
    const child = spawn(process.execPath, [CLI, 'sync', file('w.space'), '--server', t.server.url, '--token', token, '--watch'], {
      env: { ...process.env, SPACES_KEY: TEST_KEY },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: Array<Record<string, unknown>> = [];
    let stderr = '';
    const waiters: Array<() => void> = [];
    let buf = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
        buf = buf.slice(nl + 1);
        for (const w of waiters.splice(0)) w();
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const line = async (pred: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
      for (;;) {
        const found = lines.find(pred);
        if (found) return found;
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    };
    try {
      await line((l) => l.event === 'state' && l.status === 'connected');
      // Another client writes; the watcher receives it and stores it in its file.
      await sync('other.space', ['--space', spaceId]);
      const { treeId } = await cliJson<{ treeId: string }>(['app', 'add', file('other.space'), '--app', 'notes', '--name', 'Live']);
      const pushed = await sync('other.space');
      const received = await line((l) => l.event === 'received' && l.treeId === treeId);
      assert.equal(typeof received.seq, 'number');
      assert.ok(pushed.sent > 0);
      child.kill('SIGINT');
      assert.equal(await exited, 0, stderr);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    assert.ok(lines.some((l) => l.event === 'signal' && l.signal === 'SIGINT'));
    const summary = lines[lines.length - 1] as unknown as Summary;
    assert.equal(summary.spaceId, spaceId);
    assert.ok(summary.received > 0);
    const info = await cliJson<{ appTrees: Array<{ name: string }> }>(['info', file('w.space')]);
    assert.ok(info.appTrees.some((a) => a.name === 'Live'), 'the watched file lacks what arrived');
  });
});
