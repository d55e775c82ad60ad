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
// plus a team server (the built dist/server.js on a free port, its data in the temp dir, stopped
// on exit) with an admin token, for the team sync tests.
//
// The fixture's ids, the server's URL and token go to the tests in $SPACES_E2E_FIXTURE (a JSON
// file); $SPACES_KEY keeps the CLI away from the user's key file, and $SPACES_KEY_FILE holds the
// same key, which the extension adopts (its SecretStorage starts empty): both read the same secrets.
// Needs `npm run compile && npm run build` first. It runs
// scripts/e2e/setup-code-server.sh itself (Chromium, Node 24 and code-server into
// ~/.cache/vscode-e2e: about 130 s the first time, well under a second once cached).
//
//   node scripts/e2e/run.mjs [--keep] [--verbose] [--vsix FILE]   (other flags go to run-extension-tests.mjs)
//
// --vsix FILE tests a packaged build (`npm run package`) instead of this folder: code-server
// installs it (`--install-extension`) into a throwaway extensions dir, and the suite runs on that.
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
const vsixAt = process.argv.indexOf('--vsix');
const vsix = vsixAt > 0 ? process.argv[vsixAt + 1] : undefined;
if (vsixAt > 0 && (!vsix || !fs.existsSync(vsix))) {
  console.error(`[e2e] ERROR: --vsix ${vsix ?? ''}: no such file (npm run package makes it)`);
  process.exit(2);
}

// Idempotent; its stdout (NODE=…, CODE_SERVER=…) is not needed: the runner finds the same cache.
execFileSync('bash', [path.join(here, 'setup-code-server.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-e2e-'));
const ws = path.join(tmp, 'workspace');
fs.mkdirSync(path.join(ws, 'sub'), { recursive: true });
const fileKey = randomBytes(32).toString('hex');
const keyFile = path.join(tmp, 'cli-file.key');
fs.writeFileSync(keyFile, `${fileKey}\n`, { mode: 0o600 });
const env = { ...process.env, SPACES_KEY: fileKey, SPACES_KEY_FILE: keyFile };
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

let ext = root;
if (vsix) {
  const cache = process.env.VSCODE_E2E_CACHE || path.join(os.homedir(), '.cache', 'vscode-e2e');
  const installed = path.join(tmp, 'vsix-extensions');
  const xdg = (d) => path.join(tmp, 'vsix-xdg', d); // keeps code-server's state out of $HOME
  let dirs = [];
  try {
    execFileSync(path.join(cache, 'node/bin/node'), [path.join(cache, 'code-server/node_modules/code-server/out/node/entry.js'), '--install-extension', path.resolve(vsix), '--extensions-dir', installed, '--user-data-dir', xdg('user-data')], {
      env: { ...process.env, XDG_CONFIG_HOME: xdg('config'), XDG_DATA_HOME: xdg('data'), XDG_CACHE_HOME: xdg('cache') },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    dirs = fs.readdirSync(installed).filter((d) => d.startsWith('spaces-vscode.spaces-vscode-'));
  } catch (e) {
    console.error(`[e2e] ${e.message}`);
  }
  if (dirs.length !== 1) {
    console.error(`[e2e] ERROR: code-server did not install ${vsix}`);
    fs.rmSync(tmp, { recursive: true, force: true });
    process.exit(2);
  }
  ext = path.join(installed, dirs[0]);
  console.log(`[e2e] testing the package ${path.basename(vsix)}, installed by code-server`);
}

// The team server: port 0 (its `listening` log line says which), an admin token for the tests.
const serverJs = path.join(root, 'dist/server.js');
const serverData = path.join(tmp, 'server-data');
const serverToken = JSON.parse(execFileSync(process.execPath, [serverJs, 'token', 'create', '--data', serverData, '--user', 'e2e', '--space', '*', '--role', 'admin'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]).token;
const teamServer = spawn(process.execPath, [serverJs, 'serve', '--data', serverData, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const serverExited = new Promise((resolve) => teamServer.on('exit', resolve));
// Whatever way this script ends, the server goes too (a signal before the tests start included).
process.on('exit', () => teamServer.kill('SIGTERM'));
const stopEarly = () => process.exit(2);
process.on('SIGINT', stopEarly);
process.on('SIGTERM', stopEarly);
const stopServer = () => {
  teamServer.kill('SIGTERM');
  return serverExited;
};
let serverUrl;
try {
  serverUrl = await new Promise((resolve, reject) => {
    let buf = '';
    teamServer.stdout.setEncoding('utf8');
    teamServer.stdout.on('data', (d) => {
      buf += d;
      for (const line of buf.split('\n')) {
        try {
          const j = JSON.parse(line);
          if (j.msg === 'listening') resolve(j.url);
        } catch {
          // a partial line
        }
      }
    });
    teamServer.on('exit', (code) => reject(new Error(`the team server exited (${code})`)));
    setTimeout(() => reject(new Error('the team server did not say "listening" within 30 s')), 30_000).unref();
  });
} catch (e) {
  console.error(`[e2e] ERROR: ${e.message}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(2);
}
teamServer.stdout.resume();
process.off('SIGINT', stopEarly);
process.off('SIGTERM', stopEarly);
console.log(`[e2e] team server ${serverUrl}`);

const fixture = { workspace: ws, cli, server: { url: serverUrl, token: serverToken }, keyFile, alpha: { file: alpha, spaceId: alphaId, todoId, chatId, boardId, milkId }, beta: { file: beta, spaceId: betaId }, broken: { file: broken } };
const fixtureFile = path.join(tmp, 'fixture.json');
fs.writeFileSync(fixtureFile, JSON.stringify(fixture, null, 2));
console.log(`[e2e] fixture workspace made with the CLI in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

const passThrough = process.argv.slice(2).filter((a, i, all) => a !== '--keep' && a !== '--vsix' && all[i - 1] !== '--vsix');
const child = spawn(
  process.execPath,
  [path.join(here, 'run-extension-tests.mjs'), '--ext', ext, '--tests', tests, '--workspace', ws, '--timeout', '240', '--screenshot-dir', path.join(root, 'e2e-artifacts'), ...(keep ? ['--keep'] : []), ...passThrough],
  { cwd: root, stdio: 'inherit', env: { ...env, SPACES_E2E_FIXTURE: fixtureFile } },
);
const forward = (sig) => child.kill(sig);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
child.on('exit', async (code, signal) => {
  await stopServer();
  if (keep) console.log(`[e2e] kept the fixture in ${tmp}`);
  else fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(code ?? (signal ? 2 : 1));
});
