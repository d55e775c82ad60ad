/**
 * The peer benchmark (bench/peers, `npm run bench:peers`) at its --quick sizes made smaller still:
 * every row is printed with a figure for both sides and a ratio, and the report is written. It
 * keeps the bench from rotting; it asserts no timing (the figures are whatever the machine gives).
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SERVER_JS, tempDir } from '../helpers/syncServer';

const MAIN = path.resolve(__dirname, '../../bench/peers/main.js');
const ROWS = ['cold-10k', 'storage-10k', 'cold-100k', 'heap-100k', 'fanout-p50', 'fanout-p99', 'join', 'offline'];
const SIZES = ['--edits', '200', '--big-edits', '500', '--readers', '2', '--fanout-edits', '20', '--joiners', '3', '--join-edits', '100', '--offline-edits', '50'];

interface RowLine {
  bench: string;
  workload: string;
  unit: string;
  yjs: number | null;
  project: number | null;
  ratio: number | null;
  yjsFailed?: string;
  projectFailed?: string;
  loadStart: number[];
  loadEnd: number[];
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('bench:peers --quick', function () {
  this.timeout(120_000);
  let dir: string;

  before(function () {
    if (!fs.existsSync(SERVER_JS)) throw new Error(`${SERVER_JS} is missing: run \`node esbuild.mjs\` first`);
  });
  beforeEach(() => (dir = tempDir('spaces-bench-peers-')));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('prints every row with both figures and a ratio, and writes the report', async function () {
    const out = path.join(dir, 'report.md');
    const r = await run(['--quick', ...SIZES, '--data-root', dir, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as RowLine);
    assert.deepEqual(
      rows.map((x) => x.workload),
      ROWS,
    );
    for (const row of rows) {
      const what = `${row.workload}: ${JSON.stringify(row)}`;
      assert.equal(row.bench, 'peers', what);
      assert.ok(row.unit === 'ms' || row.unit === 'bytes', what);
      assert.equal(row.yjsFailed, undefined, what);
      assert.equal(row.projectFailed, undefined, what);
      for (const v of [row.yjs, row.project, row.ratio]) assert.ok(typeof v === 'number' && Number.isFinite(v) && v > 0, what);
      assert.equal(row.ratio, Math.round(((row.project as number) / (row.yjs as number)) * 100) / 100, what);
      assert.equal(row.loadStart.length, 3, what);
      assert.equal(row.loadEnd.length, 3, what);
    }
    const report = fs.readFileSync(out, 'utf8');
    assert.match(report, /\| workload \| Yjs \+ Hocuspocus \| this project \| project \/ Yjs \|/);
    assert.match(report, new RegExp(`Node ${process.version.replace(/\./g, '\\.')}`));
    assert.equal(report.split('\n').filter((l) => /^\| (?!workload|---)/.test(l)).length, ROWS.length);
    // The data directories and client files went into --data-root and were removed.
    assert.deepEqual(
      fs.readdirSync(dir).filter((f) => f !== 'report.md'),
      [],
    );
  });

  it('refuses an unknown workload and a bad size with a message', async function () {
    const bad = await run(['--only', 'nope', '--out', path.join(dir, 'x.md')]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--only: unknown workload "nope"/);
    const size = await run(['--edits', '0', '--out', path.join(dir, 'x.md')]);
    assert.notEqual(size.code, 0);
    assert.match(size.stderr, /--edits must be a positive integer/);
  });
});
