#!/usr/bin/env node
// Benchmarks of the extension inside a real VS Code (code-server + headless Chromium, through
// scripts/e2e/run-extension-tests.mjs). Each bench suite is a file test/e2e/bench/<name>.bench.ts
// (compiled by `npm run compile`); every run of every suite gets a fresh VS Code window on a fresh
// copy of the bench workspace, made here once with the built CLI:
//
//   space-01.space … space-NN.space   one space each, with a notes tree "Notes" of ITEMS items
//                                      (top-level items with 9 children each)
//
// A suite reports figures with recordFigure() (test/e2e/bench/record.ts); this script prints one
// JSON line per figure and run, then one summary line per figure (min/median/max over the runs):
//
//   {"bench":"vscode","suite":"activation","run":1,"figure":"activateMs","value":12.3,"unit":"ms",…}
//   {"bench":"vscode","suite":"activation","figure":"activateMs","runs":3,"min":…,"median":…,"max":…,"unit":"ms"}
//
//   npm run bench:vscode -- [--runs 3] [--files 20] [--items 100] [--suite activation[,other]]
//                           [--keep] [--verbose]
//
// --suite defaults to every *.bench.js in out/test/e2e/bench. Progress goes to stderr. Exit code:
// 0 when every run passed, 1 when a run failed (its output is shown), 2 for a usage problem.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { outline } from './e2e/fixture.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const cli = path.join(root, 'dist/cli.js');
const benchDir = path.join(root, 'out/test/e2e/bench');
const say = (...a) => console.error('[bench:vscode]', ...a);
const fail = (msg, code = 2) => {
  console.error(`[bench:vscode] ERROR: ${msg}`);
  process.exit(code);
};

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    files: { type: 'string', default: '20' },
    items: { type: 'string', default: '100' },
    suite: { type: 'string' },
    keep: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
  },
});
const runs = Number(opt.runs);
const fileCount = Number(opt.files);
const itemCount = Number(opt.items);
for (const [flag, n] of [['--runs', runs], ['--files', fileCount], ['--items', itemCount]]) {
  if (!Number.isInteger(n) || n < 1) fail(`${flag} must be a positive whole number`);
}
for (const [what, p] of [['dist/cli.js (npm run build)', cli], ['dist/extension.js (npm run build)', path.join(root, 'dist/extension.js')], ['out/test/e2e/bench/index.js (npm run compile)', path.join(benchDir, 'index.js')]]) {
  if (!fs.existsSync(p)) fail(`${what} is missing`);
}
const available = fs.readdirSync(benchDir).filter((f) => f.endsWith('.bench.js')).map((f) => f.slice(0, -'.bench.js'.length)).sort();
const suites = opt.suite ? opt.suite.split(',') : available;
for (const s of suites) if (!available.includes(s)) fail(`no bench suite "${s}" (have: ${available.join(', ')})`);

// Idempotent (well under a second once ~/.cache/vscode-e2e is there), as in scripts/e2e/run.mjs.
execFileSync('bash', [path.join(here, 'e2e/setup-code-server.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-bench-vscode-'));
const env = { ...process.env, SPACES_KEY: randomBytes(32).toString('hex') };

/** Runs a command; resolves with its stdout, rejects with its stderr. */
function run(cmd, args, { input, extraEnv = {}, cwd = root } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...env, ...extraEnv }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      if (opt.verbose) process.stderr.write(d);
    });
    child.stderr.setEncoding('utf8').on('data', (d) => {
      err += d;
      if (opt.verbose) process.stderr.write(d);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 ? resolve(out) : reject(Object.assign(new Error(`${path.basename(args[0] ?? cmd)} ${args.slice(1, 3).join(' ')} exited with ${code ?? signal}`), { out, err }))));
    child.stdin.end(input ?? '');
  });
}
const spaces = async (args, input) => JSON.parse(await run(process.execPath, [cli, ...args], { input }));

async function makeWorkspace(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const items = JSON.stringify(outline(itemCount));
  const make = async (i) => {
    const file = path.join(dir, `space-${String(i).padStart(2, '0')}.space`);
    const { spaceId } = await spaces(['create', file, '--name', `Space ${i}`]);
    const { treeId } = await spaces(['app', 'add', file, '--app', 'notes', '--name', 'Notes']);
    const { count } = await spaces(['import', file, '--tree', treeId], items);
    return { file, spaceId, treeId, items: count };
  };
  // A few CLI processes at a time: each is a Node start plus a sql.js file write.
  const files = [];
  const parallel = Math.max(1, Math.min(4, os.cpus().length));
  for (let i = 1; i <= fileCount; i += parallel) {
    files.push(...(await Promise.all(Array.from({ length: Math.min(parallel, fileCount - i + 1) }, (_, k) => make(i + k)))));
  }
  return files;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x) => Math.round(x * 10) / 10;
const emit = (o) => process.stdout.write(`${JSON.stringify({ bench: 'vscode', ...o })}\n`);

let exitCode = 0;
try {
  const t0 = Date.now();
  const template = path.join(tmp, 'template');
  const files = await makeWorkspace(template);
  say(`bench workspace: ${fileCount} space files × ${itemCount} items, made with the CLI in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const figures = new Map(); // `${suite}\t${figure}` → { unit, values }
  for (const suite of suites) {
    for (let r = 1; r <= runs; r++) {
      const runDir = path.join(tmp, `${suite}-${r}`);
      const ws = path.join(runDir, 'workspace');
      fs.cpSync(template, ws, { recursive: true });
      const fixtureFile = path.join(runDir, 'fixture.json');
      fs.writeFileSync(fixtureFile, JSON.stringify({ workspace: ws, cli, files: files.map((f) => ({ ...f, file: path.join(ws, path.relative(template, f.file)) })) }, null, 2));
      const outFile = path.join(runDir, 'figures.jsonl');
      say(`${suite}: run ${r}/${runs}`);
      try {
        await run(process.execPath, [path.join(here, 'e2e/run-extension-tests.mjs'), '--ext', root, '--tests', path.join(benchDir, 'index.js'), '--workspace', ws, '--timeout', '300', ...(opt.verbose ? ['--verbose'] : []), ...(opt.keep ? ['--keep'] : [])], {
          extraEnv: { SPACES_BENCH_SUITE: suite, SPACES_BENCH_OUT: outFile, SPACES_BENCH_FIXTURE: fixtureFile },
        });
      } catch (e) {
        if (!opt.verbose) process.stderr.write(`${e.out ?? ''}${e.err ?? ''}`);
        throw new Error(`${suite} run ${r} failed: ${e.message}`);
      }
      const lines = fs.existsSync(outFile) ? fs.readFileSync(outFile, 'utf8').split('\n').filter(Boolean) : [];
      if (lines.length === 0) throw new Error(`${suite} run ${r} recorded no figures`);
      for (const line of lines) {
        const f = JSON.parse(line);
        emit({ suite, run: r, ...f });
        const key = `${suite}\t${f.figure}`;
        if (!figures.has(key)) figures.set(key, { unit: f.unit, values: [] });
        figures.get(key).values.push(f.value);
      }
    }
  }
  for (const [key, { unit, values }] of figures) {
    const [suite, figure] = key.split('\t');
    emit({ suite, figure, runs: values.length, min: round(Math.min(...values)), median: round(median(values)), max: round(Math.max(...values)), unit, files: fileCount, itemsPerFile: itemCount, cpus: os.cpus().length, loadavg: os.loadavg().map(round) });
  }
} catch (e) {
  say(`ERROR: ${e.message}`);
  exitCode = 1;
} finally {
  if (opt.keep) say(`kept ${tmp}`);
  else fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(exitCode);
