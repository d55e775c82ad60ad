/**
 * The "Several processes" example of docs/server.md, run line by line with bash against a private
 * PostgreSQL (its URL and free ports put in place of the example's), then used: a space created
 * on the first process, a client on the second sees a batch written through the first, live.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ServerOpsMessage } from '../../src/protocol/messages';
import { makeOps, newTreeId } from '../conformance/opFixtures';
import { TestPostgres } from '../helpers/postgres';
import { freePort } from '../helpers/syncClients';
import { TestClient, tempDir } from '../helpers/syncServer';

const ROOT = path.resolve(__dirname, '../../..');
const DOC = path.join(ROOT, 'docs/server.md');
const SECTION = '## Several processes';
const EXAMPLE_URL = 'postgres://spaces@127.0.0.1:5432/spaces';
const EXAMPLE_PORTS = ['8421', '8422'];
const WAIT_MS = 30_000;

/** The first ```sh block of the section. */
function exampleLines(): string[] {
  const text = fs.readFileSync(DOC, 'utf8');
  const at = text.indexOf(SECTION);
  assert.ok(at >= 0, `${SECTION} is missing from docs/server.md`);
  const m = /```sh\n([\s\S]*?)```/.exec(text.slice(at));
  assert.ok(m, `no sh block in ${SECTION}`);
  return m[1].split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
}

/** Waits until `url` answers /healthz with 200. */
async function healthy(url: string, proc: ChildProcess): Promise<Record<string, unknown>> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`server exited (${proc.exitCode})`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.status === 200) return (await r.json()) as Record<string, unknown>;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} not healthy within ${WAIT_MS} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('docs/server.md: the "Several processes" example', function () {
  this.timeout(120_000);
  let pg: TestPostgres;
  let dir: string;
  const procs: ChildProcess[] = [];
  const sockets: TestClient[] = [];

  before(async () => {
    pg = await TestPostgres.start();
    dir = tempDir('spaces-docs-cluster-');
  });
  after(async () => {
    await Promise.all(sockets.map((s) => s.close()));
    await Promise.all(
      procs.map(async (p) => {
        if (p.exitCode !== null || p.signalCode !== null) return;
        const gone = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        await gone;
      }),
    );
    await pg.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs as written: two processes on one database, healthy, and a batch written on one reaches a client of the other', async () => {
    const url = await pg.createDatabase();
    const ports = [String(await freePort()), String(await freePort())];
    const subst = (line: string): string => {
      // Ports first, on the example's own text (the database URL put in later may hold any digits).
      let out = line;
      EXAMPLE_PORTS.forEach((p, i) => (out = out.replaceAll(`--port ${p}`, `--port ${ports[i]}`).replaceAll(`127.0.0.1:${p}/`, `127.0.0.1:${ports[i]}/`)));
      return out.replaceAll(EXAMPLE_URL, url).replaceAll('dist/server.js', path.join(ROOT, 'dist/server.js'));
    };
    const lines = exampleLines();
    assert.equal(lines.length, 4, 'token create, two serve lines, curl');
    let token = '';
    let lastOutput = '';
    for (const line of lines) {
      const cmd = subst(line);
      if (cmd.endsWith(' &')) {
        const p = spawn('bash', ['-c', `exec ${cmd.slice(0, -2)}`], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
        procs.push(p);
        const port = EXAMPLE_PORTS.findIndex((x) => line.includes(`--port ${x}`));
        await healthy(`http://127.0.0.1:${ports[port]}`, p);
        continue;
      }
      const r = spawnSync('bash', ['-c', cmd], { cwd: dir, encoding: 'utf8', timeout: WAIT_MS });
      assert.equal(r.status, 0, `${line}\n${r.stderr}`);
      lastOutput = r.stdout;
      if (line.includes('token create')) token = (JSON.parse(r.stdout) as { token: string }).token;
    }
    const health = JSON.parse(lastOutput) as { ok: boolean; store: { kind: string }; fanout: { kind: string; ok: boolean } };
    assert.equal(health.ok, true);
    assert.equal(health.store.kind, 'postgres');
    assert.deepEqual([health.fanout.kind, health.fanout.ok], ['postgres', true]);

    const [first, second] = ports.map((p) => `http://127.0.0.1:${p}`);
    const res = await fetch(`${first}/v1/spaces`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: JSON.stringify({ name: 'Docs' }) });
    assert.equal(res.status, 201);
    const spaceId = ((await res.json()) as { id: string }).id;
    const reader = (await TestClient.open(`${second.replace('http', 'ws')}/v1/sync`, token, ['reader'])).client;
    const writer = (await TestClient.open(`${first.replace('http', 'ws')}/v1/sync`, token, ['writer'])).client;
    sockets.push(reader, writer);
    await reader.subscribe(spaceId);
    const tree = newTreeId('docs');
    const ack = await writer.ack(writer.sendOps(spaceId, tree, makeOps(tree, 'writer', 1, 4)));
    const live = (await reader.next('ops')) as ServerOpsMessage;
    assert.deepEqual([live.seq, live.treeId, live.ops.length], [ack.seq, tree, 4]);
  });
});
