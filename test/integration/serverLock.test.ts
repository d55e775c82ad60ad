/**
 * One server per data directory, with a lock the kernel releases when the server dies: a second
 * server is refused (in this process and in another one), a SIGKILLed server restarts at once,
 * a leftover pid note (pid 1, or a live unrelated pid) never blocks a start, and a server that ran
 * as pid 1 in its own pid namespace (a container) and was killed starts again.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../../src/server/log';
import { startServer } from '../../src/server/server';
import { LOCK_NOTE_FILE, lockDataDir } from '../../src/server/store/dirLock';
import { runScript } from '../helpers/cli';
import { SERVER_JS, TestClient, makeToken, spawnServer, tempDir, type ChildServer } from '../helpers/syncServer';

const WAIT_MS = 20_000;

/** The `unshare` prefix that runs a command as pid 1 of a new pid namespace here, if any. */
function pidNamespacePrefix(): string[] | undefined {
  const candidates = process.getuid?.() === 0 ? [['--pid', '--fork', '--kill-child']] : [['--user', '--map-root-user', '--pid', '--fork', '--kill-child']];
  for (const flags of candidates) {
    const probe = spawnSync('unshare', [...flags, process.execPath, '-e', 'process.exit(process.pid === 1 ? 0 : 3)'], { stdio: 'ignore' });
    if (probe.status === 0) return ['unshare', ...flags];
  }
  return undefined;
}

/** Starts the built server as pid 1 of a new pid namespace; resolves with its pid outside and its log. */
function spawnAsPid1(prefix: string[], dir: string): Promise<{ wrapper: ReturnType<typeof spawn>; hostPid: number; loggedPid: number; url: string; exited: Promise<unknown> }> {
  const [cmd, ...flags] = prefix;
  const wrapper = spawn(cmd, [...flags, process.execPath, SERVER_JS, 'serve', '--port', '0', '--data', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => wrapper.once('exit', resolve));
  let err = '';
  let buf = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line within ${WAIT_MS} ms: ${err}`)), WAIT_MS);
    wrapper.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
    wrapper.stdout?.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const m = JSON.parse(buf.slice(0, nl)) as { msg?: string; url?: string; pid?: number };
        buf = buf.slice(nl + 1);
        if (m.msg !== 'listening' || !m.url || m.pid === undefined) continue;
        clearTimeout(timer);
        // unshare --fork has one child: the server, seen from here under its outer pid.
        const children = fs.readFileSync(`/proc/${wrapper.pid}/task/${wrapper.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
        resolve({ wrapper, hostPid: children[0], loggedPid: m.pid, url: m.url, exited });
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the server exited before listening: ${err}`));
    });
  });
}

async function healthy(url: string): Promise<void> {
  const res = await fetch(`${url}/healthz`);
  assert.equal(res.status, 200);
}

describe('team server: data directory lock', function () {
  this.timeout(60_000);
  let dir: string;
  const children: ChildServer[] = [];

  beforeEach(() => (dir = tempDir()));
  afterEach(async () => {
    for (const c of children.splice(0)) {
      if (c.child.exitCode === null && c.child.signalCode === null) {
        c.child.kill('SIGKILL');
        await c.exited;
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a second server on the directory is refused, in the same process and in another process', async () => {
    const server = await startServer({ dataDir: dir, port: 0, logger: silentLogger });
    try {
      await assert.rejects(startServer({ dataDir: dir, port: 0, logger: silentLogger }), new RegExp(`another server \\(pid ${process.pid}\\) is using this data directory`));
      assert.throws(() => lockDataDir(dir), /another server .*is using this data directory/);
      const other = await runScript(SERVER_JS, ['serve', '--data', dir, '--port', '0']);
      assert.equal(other.code, 1, other.stdout);
      assert.match(other.stdout, new RegExp(`another server \\(pid ${process.pid}\\) is using this data directory`));
      await healthy(server.url); // the refused starts did not disturb the running one
    } finally {
      await server.close();
    }
    // And the other way round: a server in a child process holds it; this process is refused.
    const child = await spawnServer(dir);
    children.push(child);
    assert.throws(() => lockDataDir(dir), new RegExp(`another server \\(pid ${child.child.pid}\\) is using this data directory`));
    await assert.rejects(startServer({ dataDir: dir, port: 0, logger: silentLogger }), /another server .*is using this data directory/);
    await healthy(child.url);
  });

  it('a server killed with SIGKILL restarts at once on the same directory', async () => {
    const admin = makeToken(dir, 'admin').token;
    for (let round = 0; round < 3; round++) {
      const server = await spawnServer(dir);
      children.push(server);
      const { client } = await TestClient.open(server.syncUrl, admin, [`r${round}`]);
      server.child.kill('SIGKILL');
      assert.equal((await server.exited).signal, 'SIGKILL');
      await client.whenClosed();
      // The killed server's note is left behind, naming a pid that is gone; it must not matter.
      assert.equal(fs.readFileSync(path.join(dir, LOCK_NOTE_FILE), 'utf8').trim(), String(server.child.pid));
    }
    const last = await spawnServer(dir);
    children.push(last);
    await healthy(last.url);
  });

  it('a leftover lock note naming pid 1 or a live unrelated pid does not block a start', async () => {
    for (const pid of [1, process.pid]) {
      fs.writeFileSync(path.join(dir, LOCK_NOTE_FILE), `${pid}\n`);
      const server = await spawnServer(dir);
      await healthy(server.url);
      assert.equal(fs.readFileSync(path.join(dir, LOCK_NOTE_FILE), 'utf8').trim(), String(server.child.pid), 'the note names the new holder');
      server.child.kill('SIGTERM');
      assert.equal((await server.exited).code, 0);
      assert.ok(!fs.existsSync(path.join(dir, LOCK_NOTE_FILE)), 'a stopped server removes its note');
    }
    // In this process too (the pid in the note is this very process).
    fs.writeFileSync(path.join(dir, LOCK_NOTE_FILE), `${process.pid}\n`);
    const unlock = lockDataDir(dir);
    unlock();
  });

  it('as pid 1 in a new pid namespace (a container): killed, it starts again as pid 1', async () => {
    const prefix = pidNamespacePrefix();
    assert.ok(prefix, 'this test needs `unshare --pid --fork` (as root, or with unprivileged user namespaces)');
    for (let round = 0; round < 2; round++) {
      const s = await spawnAsPid1(prefix, dir);
      try {
        assert.equal(s.loggedPid, 1, 'the server runs as pid 1 of its namespace');
        await healthy(s.url);
        assert.equal(fs.readFileSync(path.join(dir, LOCK_NOTE_FILE), 'utf8').trim(), '1');
        process.kill(s.hostPid, 'SIGKILL');
        await s.exited; // unshare --fork exits once its child, the server, is gone
      } finally {
        if (s.wrapper.exitCode === null && s.wrapper.signalCode === null) {
          s.wrapper.kill('SIGKILL');
          await s.exited;
        }
      }
    }
    // And outside any namespace, next to the note "1" that the killed pid 1 left behind.
    const server = await spawnServer(dir);
    children.push(server);
    await healthy(server.url);
  });
});
