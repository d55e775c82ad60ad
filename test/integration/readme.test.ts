/**
 * Every command of README.md's ```bash blocks, so that the README cannot drift from the code.
 *
 * The team server block and the `spaces` block run for real, line by line, with bash in a fresh
 * directory: the built server and CLI (dist/), a real server on a free port. Placeholders are
 * replaced from the explicit tables below (values printed by earlier lines, the server's URL and
 * port). Lines that are heavy or interactive are listed in RUN_ELSEWHERE with the test or CI step
 * that runs them; a README line that is in neither list fails this test.
 */
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, TEST_KEY } from '../helpers/cli';
import { freePort } from '../helpers/syncClients';
import { SERVER_JS, tempDir } from '../helpers/syncServer';

const ROOT = path.resolve(__dirname, '../../..');
const README = path.join(ROOT, 'README.md');
const WAIT_MS = 120_000;

/** README lines (comment stripped) that this test does not run, and who does. */
const RUN_ELSEWHERE: Record<string, string> = {
  'npm install && npm start': 'scripts/e2e/start-test.mjs (npm run test:start, part of npm test): runs `npm start`, checks the demo space synced in the browser, Ctrl+C stops everything',
  'npm install && npm test': 'CI: .ci/run runs npm ci, then npm test',
  'npm install && npm run package': 'test/integration/package.test.ts (vsce with the flags of `npm run package`); npm run test:vsix',
  'code --install-extension spaces-vscode-0.1.0.vsix': 'npm run test:vsix (scripts/e2e/run.mjs --vsix: code-server --install-extension of the package)',
  'npm install && npm run build': 'CI: .ci/run (npm ci; npm test builds before mocha); this test runs what the build made',
  'npm run bench': 'heavy (every suite: minutes, GBs); bench/run.js, the runner of the `--only flat` line this test runs',
};

/** Values printed by README lines: placeholder ← field of the JSON printed by the first line matching. */
const FROM_OUTPUT: ReadonlyArray<{ readonly placeholder: string; readonly line: RegExp; readonly field: string }> = [
  { placeholder: 'spt_…', line: /^node dist\/server\.js token create /, field: 'token' },
  { placeholder: 'ID', line: /^spaces create team\.space /, field: 'spaceId' },
  { placeholder: 'T', line: /^spaces app add team\.space /, field: 'treeId' },
  { placeholder: 'V', line: /text="Ship it"/, field: 'id' },
  { placeholder: 'P', line: /text="Later"/, field: 'id' },
  { placeholder: 'W', line: /text="Someday"/, field: 'id' },
];

/** Lines that keep running: what they print when ready, and how they end. */
const LONG_RUNNING: ReadonlyArray<{ readonly line: RegExp; readonly ready: (json: Record<string, unknown>) => boolean; readonly end: 'at the end' | 'SIGINT when ready' }> = [
  { line: /^node dist\/server\.js serve /, ready: (j) => j.msg === 'listening', end: 'at the end' },
  { line: /^spaces sync .* --watch$/, ready: (j) => j.event === 'state' && j.status === 'connected', end: 'SIGINT when ready' },
];

interface Block {
  readonly first: number;
  readonly lines: string[];
}

function bashBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  const all = text.split('\n');
  for (let i = 0; i < all.length; i++) {
    if (!/^\s*```bash\s*$/.test(all[i])) continue;
    const lines: string[] = [];
    let j = i + 1;
    for (; j < all.length && !/^\s*```\s*$/.test(all[j]); j++) lines.push(all[j].trim());
    blocks.push({ first: i + 2, lines: lines.filter((l) => l !== '') });
    i = j;
  }
  return blocks;
}

/** The command without its trailing `# comment`. */
function command(line: string): string {
  return line.replace(/\s+#\s.*$/, '').trim();
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Replaces whole-word placeholders (T, V, …) and literal ones (URLs, `spt_…`). */
function substitute(cmd: string, values: ReadonlyMap<string, string>): string {
  let out = cmd;
  for (const [from, to] of values) {
    const re = /^\w+$/.test(from) ? new RegExp(`(?<=\\s)${escapeRe(from)}(?=\\s|$)`, 'g') : new RegExp(escapeRe(from), 'g');
    out = out.replace(re, to);
  }
  return out;
}

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

describe('README.md: every command block', function () {
  this.timeout(10 * 60_000);
  const blocks = bashBlocks(fs.readFileSync(README, 'utf8'));
  let dir: string;
  let bin: string;
  const children: ChildProcess[] = [];

  before(function () {
    for (const f of [CLI, SERVER_JS]) if (!fs.existsSync(f)) throw new Error(`${f} is missing: run \`node esbuild.mjs\` first`);
    dir = tempDir('spaces-readme-');
    // `spaces` is the package's bin: dist/cli.js.
    bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'spaces'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`, { mode: 0o755 });
  });
  after(async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
          }),
      ),
    );
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh working directory with dist/ (the README's server block runs in the repository). */
  function workDir(name: string): string {
    const cwd = path.join(dir, name);
    fs.mkdirSync(cwd);
    fs.symlinkSync(path.join(ROOT, 'dist'), path.join(cwd, 'dist'));
    return cwd;
  }

  const env = (): NodeJS.ProcessEnv => ({ ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`, SPACES_KEY: TEST_KEY });

  /** Runs one line with bash (after the block's earlier `export`s); long-running lines as LONG_RUNNING says. */
  function run(cmd: string, cwd: string, exports: readonly string[]): Promise<Ran> {
    const long = LONG_RUNNING.find((l) => l.line.test(cmd));
    // exec: a signal for a long-running line reaches the command, not the shell waiting for it.
    const script = [...exports, long ? `exec ${cmd}` : cmd].join('\n');
    return new Promise((resolve, reject) => {
      const child = spawn('bash', ['-c', script], { cwd, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let stdout = '';
      let stderr = '';
      let ready = false;
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`\`${cmd}\` did not ${long ? 'get ready' : 'finish'} within ${WAIT_MS} ms: ${stderr}`));
      }, WAIT_MS);
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
        if (!long || ready) return;
        for (const line of stdout.split('\n')) {
          let j: unknown;
          try {
            j = JSON.parse(line);
          } catch {
            continue;
          }
          if (!j || typeof j !== 'object' || !long.ready(j as Record<string, unknown>)) continue;
          ready = true;
          if (long.end === 'at the end') {
            clearTimeout(timer);
            resolve({ code: null, stdout, stderr });
          } else {
            child.kill('SIGINT');
          }
          return;
        }
      });
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        if (long && !ready) reject(new Error(`\`${cmd}\` exited (${code}) before it was ready: ${stderr}`));
        else resolve({ code, stdout, stderr });
      });
    });
  }

  /** Runs a block line by line; returns the outputs by command (after substitution). */
  async function runBlock(block: Block, cwd: string, values: Map<string, string>): Promise<Map<string, Ran>> {
    const exports: string[] = [];
    const ran = new Map<string, Ran>();
    for (const line of block.lines) {
      const readme = command(line);
      const cmd = substitute(readme, values);
      assert.ok(!/…/.test(cmd.replace(/'sk-…'/, '')), `README line ${JSON.stringify(line)}: a placeholder is left in \`${cmd}\``);
      if (/^export \w+=/.test(cmd)) {
        exports.push(cmd);
        continue;
      }
      const r = await run(cmd, cwd, exports);
      const keepsRunning = LONG_RUNNING.find((l) => l.line.test(cmd))?.end === 'at the end';
      assert.ok(r.code === 0 || (r.code === null && keepsRunning), `README line ${JSON.stringify(line)}: \`${cmd}\` exited ${r.code}: ${r.stderr}`);
      ran.set(readme, r);
      const from = FROM_OUTPUT.filter((f) => f.line.test(readme) && !values.has(f.placeholder));
      for (const f of from) {
        const json = JSON.parse(r.stdout.split('\n')[0]) as Record<string, unknown>;
        assert.equal(typeof json[f.field], 'string', `\`${cmd}\` printed no ${f.field}: ${r.stdout}`);
        values.set(f.placeholder, json[f.field] as string);
      }
    }
    return ran;
  }

  it('RUN_ELSEWHERE names runners that exist: the files and npm scripts it cites', function () {
    const scripts = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    for (const [line, runner] of Object.entries(RUN_ELSEWHERE)) {
      for (const [file] of runner.matchAll(/\b(?:scripts|test)\/[\w./-]+\.(?:mjs|ts|sh)\b/g)) assert.ok(fs.existsSync(path.join(ROOT, file)), `RUN_ELSEWHERE[${JSON.stringify(line)}] cites ${file}, which does not exist`);
      for (const [, name] of runner.matchAll(/\bnpm run ([\w:-]+)/g)) assert.ok(name in scripts, `RUN_ELSEWHERE[${JSON.stringify(line)}] cites \`npm run ${name}\`, which package.json lacks`);
    }
  });

  const isServerBlock = (b: Block): boolean => b.lines.some((l) => /^node dist\/server\.js serve /.test(command(l)));
  const isCliBlock = (b: Block): boolean => b.lines.some((l) => /^spaces create /.test(command(l)));

  it('has only commands this test runs or that RUN_ELSEWHERE names a runner for', function () {
    assert.ok(blocks.length >= 4, `found ${blocks.length} bash blocks`);
    for (const b of blocks) {
      if (isServerBlock(b) || isCliBlock(b)) continue;
      for (const line of b.lines) {
        const cmd = command(line);
        if (/^npm run bench -- /.test(cmd)) continue; // run below
        assert.ok(cmd in RUN_ELSEWHERE, `README.md line ${b.first}…: \`${cmd}\` is neither run by this test nor listed in RUN_ELSEWHERE`);
      }
    }
    assert.equal(blocks.filter(isServerBlock).length, 1);
    assert.equal(blocks.filter(isCliBlock).length, 1);
  });

  it('the team server block and the `spaces` block run as written: push, clone, watch', async function () {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const values = new Map<string, string>([
      ['http://127.0.0.1:8420', url],
      ['8420', String(port)],
      ['https://spaces.example.com', url],
    ]);
    const server = blocks.find(isServerBlock) as Block;
    const serverRan = await runBlock({ ...server, lines: server.lines.filter((l) => !(command(l) in RUN_ELSEWHERE)) }, workDir('server'), values);
    const push = [...serverRan].find(([cmd]) => / sync team\.space /.test(cmd));
    assert.ok(push, 'the server block has no push');
    const pushed = JSON.parse(push[1].stdout) as { sent: number };
    assert.ok(pushed.sent > 0, 'the push sent nothing');

    // The `spaces` block: its own directory, the same server and token (an admin's).
    const cli = blocks.find(isCliBlock) as Block;
    const cwd = workDir('cli');
    const ran = await runBlock(cli, cwd, values);
    const summaries = [...ran].filter(([cmd]) => /^spaces sync /.test(cmd)).map(([cmd, r]) => [cmd, JSON.parse(r.stdout.trim().split('\n').pop() as string) as { spaceId: string; file: string; sent: number }] as const);
    assert.equal(summaries.length, 3);
    const spaceId = values.get('ID');
    for (const [cmd, s] of summaries) assert.equal(s.spaceId, spaceId, `${cmd}: ${ran.get(cmd)?.stdout ?? ""}`);
    assert.ok((summaries.find(([cmd]) => / team\.space --server \S+$/.test(cmd))?.[1].sent ?? 0) > 0, 'the push of team.space sent nothing');
    // The clone holds what the pushed file holds.
    const dump = async (file: string): Promise<string> => (await run(`spaces dump ${file} --tree ${values.get('T') ?? ''}`, cwd, [])).stdout;
    assert.equal(await dump('copy.space'), await dump('team.space'));
  });

  it('the benchmark block runs (`npm run bench -- --only flat --flat 20000`)', async function () {
    const lines = blocks.flatMap((b) => b.lines.map(command)).filter((c) => /^npm run bench -- /.test(c));
    assert.deepEqual(lines, ['npm run bench -- --only flat --flat 20000']);
    const r = await run(lines[0], ROOT, []);
    assert.equal(r.code, 0, r.stderr);
    const results = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { bench?: string; children?: number });
    assert.ok(results.some((j) => j.bench === 'flat-children' && j.children === 20_000), r.stdout);
  });
});
