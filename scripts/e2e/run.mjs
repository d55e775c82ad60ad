#!/usr/bin/env node
// Runs the extension's tests (test/e2e/suite, compiled by tsc to out/test/e2e/suite) inside a
// real VS Code (code-server + headless Chromium, see run-extension-tests.mjs), on a fixture
// workspace made here in a temp dir with the built CLI:
//
//   alpha.space      space "Alpha": notes tree "Todo" (Buy milk ▸ Oat milk; Call Bob, done),
//                    chat tree "Team chat", app tree "Board" of app "kanban"
//   broken.space     not a space (plain text): must show as an error and stay untouched
//   sub/beta.space   space "Beta", no app trees
//
// The fixture's ids go to the tests in $SPACES_E2E_FIXTURE (a JSON file); $SPACES_KEY keeps the
// CLI away from the user's key file. Needs `npm run compile && npm run build` first. It runs
// scripts/e2e/setup-code-server.sh itself (Chromium, Node 24 and code-server into
// ~/.cache/vscode-e2e: about 130 s the first time, well under a second once cached).
//
//   node scripts/e2e/run.mjs [--keep] [--verbose]     (other flags go to run-extension-tests.mjs)
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const cli = path.join(root, 'dist/cli.js');
const tests = path.join(root, 'out/test/e2e/suite/index.js');
for (const [what, p] of [['dist/cli.js (npm run build)', cli], ['dist/extension.js (npm run build)', path.join(root, 'dist/extension.js')], ['out/test/e2e/suite/index.js (npm run compile)', tests]]) {
  if (!fs.existsSync(p)) {
    console.error(`[e2e] ERROR: ${what} is missing`);
    process.exit(2);
  }
}
const keep = process.argv.includes('--keep');

// Idempotent; its stdout (NODE=…, CODE_SERVER=…) is not needed: the runner finds the same cache.
execFileSync('bash', [path.join(here, 'setup-code-server.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-e2e-'));
const ws = path.join(tmp, 'workspace');
fs.mkdirSync(path.join(ws, 'sub'), { recursive: true });
const env = { ...process.env, SPACES_KEY: randomBytes(32).toString('hex') };
const spaces = (...args) => JSON.parse(execFileSync(process.execPath, [cli, ...args], { env, encoding: 'utf8' }));

const t0 = Date.now();
const alpha = path.join(ws, 'alpha.space');
const beta = path.join(ws, 'sub', 'beta.space');
const broken = path.join(ws, 'broken.space');
const { spaceId: alphaId } = spaces('create', alpha, '--name', 'Alpha');
const { treeId: todoId } = spaces('app', 'add', alpha, '--app', 'notes', '--name', 'Todo');
const { id: milkId } = spaces('item', 'add', alpha, '--tree', todoId, '--set', 'text=Buy milk', '--set', 'done=false');
spaces('item', 'add', alpha, '--tree', todoId, '--parent', milkId, '--set', 'text=Oat milk', '--set', 'done=false');
spaces('item', 'add', alpha, '--tree', todoId, '--set', 'text=Call Bob', '--set', 'done=true');
const { treeId: chatId } = spaces('app', 'add', alpha, '--app', 'chat', '--name', 'Team chat');
const { treeId: boardId } = spaces('app', 'add', alpha, '--app', 'kanban', '--name', 'Board');
const { spaceId: betaId } = spaces('create', beta, '--name', 'Beta');
fs.writeFileSync(broken, 'this is not a space file\n');
const fixture = { workspace: ws, cli, alpha: { file: alpha, spaceId: alphaId, todoId, chatId, boardId, milkId }, beta: { file: beta, spaceId: betaId }, broken: { file: broken } };
const fixtureFile = path.join(tmp, 'fixture.json');
fs.writeFileSync(fixtureFile, JSON.stringify(fixture, null, 2));
console.log(`[e2e] fixture workspace made with the CLI in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

const passThrough = process.argv.slice(2).filter((a) => a !== '--keep');
const child = spawn(
  process.execPath,
  [path.join(here, 'run-extension-tests.mjs'), '--ext', root, '--tests', tests, '--workspace', ws, '--timeout', '240', '--screenshot-dir', path.join(root, 'e2e-artifacts'), ...(keep ? ['--keep'] : []), ...passThrough],
  { cwd: root, stdio: 'inherit', env: { ...env, SPACES_E2E_FIXTURE: fixtureFile } },
);
const forward = (sig) => child.kill(sig);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
child.on('exit', (code, signal) => {
  if (keep) console.log(`[e2e] kept the fixture in ${tmp}`);
  else fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(code ?? (signal ? 2 : 1));
});
