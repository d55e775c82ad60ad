// The parts of an end-to-end run that do not need VS Code, shared by run.mjs (extension tests),
// ui-test.mjs (UI tests) and ../bench-typing.mjs: the built CLI and team server, a file key the
// CLI and the extension share, the fixture workspace made with the CLI, a team server on a free
// port with an admin token, and connecting a workspace's spaces to it.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '../..');
export const cli = path.join(root, 'dist/cli.js');
export const serverJs = path.join(root, 'dist/server.js');

/** Exits with 2 (a harness problem) when one of `files` ([what, path] pairs) is missing. */
export function requireBuilt(tag, files) {
  for (const [what, p] of [['dist/cli.js (npm run build)', cli], ['dist/extension.js (npm run build)', path.join(root, 'dist/extension.js')], ...files]) {
    if (!fs.existsSync(p)) {
      console.error(`[${tag}] ERROR: ${what} is missing`);
      process.exit(2);
    }
  }
}

/** Chromium, Node 24 and code-server into ~/.cache/vscode-e2e: idempotent, well under a second once cached. */
export function setupCodeServer() {
  // Its stdout (NODE=…, CODE_SERVER=…) is not needed: code-server.mjs finds the same cache.
  execFileSync('bash', [path.join(here, 'setup-code-server.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** A throwaway dir under the system temp dir. */
export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * A fresh file key in `dir`: $SPACES_KEY keeps the CLI away from the user's key file, and
 * $SPACES_KEY_FILE holds the same key, which the extension adopts (its SecretStorage starts
 * empty), so both read the same secrets.
 */
export function keyEnv(dir) {
  const fileKey = randomBytes(32).toString('hex');
  const keyFile = path.join(dir, 'cli-file.key');
  fs.writeFileSync(keyFile, `${fileKey}\n`, { mode: 0o600 });
  return { keyFile, env: { ...process.env, SPACES_KEY: fileKey, SPACES_KEY_FILE: keyFile } };
}

/**
 * `await spaces(...args)` with the built CLI: its JSON output; rejects with its stderr. A last
 * argument `{ input }` is written to its stdin.
 */
export function spacesCli(env) {
  return (...args) => {
    const input = typeof args[args.length - 1] === 'object' ? args.pop().input : undefined;
    return new Promise((resolve, reject) => {
      const child = execFile(process.execPath, [cli, ...args], { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`spaces ${args.join(' ')}: ${stderr.trim() || err.message}`));
        else resolve(JSON.parse(stdout));
      });
      child.stdin.end(input ?? '');
    });
  };
}

/**
 * The fixture workspace, made with the CLI in `tmp`/workspace:
 *
 *   alpha.space      space "Alpha": notes tree "Todo" (Buy milk ▸ Oat milk; Call Bob, done),
 *                    chat tree "Team chat", app tree "Board" of app "kanban"
 *   broken.space     not a space (plain text): must show as an error and stay untouched
 *   sub/beta.space   space "Beta", no app trees
 */
export async function makeFixture(tmp) {
  const workspace = path.join(tmp, 'workspace');
  fs.mkdirSync(path.join(workspace, 'sub'), { recursive: true });
  const { keyFile, env } = keyEnv(tmp);
  const spaces = spacesCli(env);
  const alpha = path.join(workspace, 'alpha.space');
  const beta = path.join(workspace, 'sub', 'beta.space');
  const broken = path.join(workspace, 'broken.space');
  const { spaceId: alphaId } = await spaces('create', alpha, '--name', 'Alpha');
  const { treeId: todoId } = await spaces('app', 'add', alpha, '--app', 'notes', '--name', 'Todo');
  const { id: milkId } = await spaces('item', 'add', alpha, '--tree', todoId, '--set', 'text=Buy milk', '--set', 'done=false');
  await spaces('item', 'add', alpha, '--tree', todoId, '--parent', milkId, '--set', 'text=Oat milk', '--set', 'done=false');
  await spaces('item', 'add', alpha, '--tree', todoId, '--set', 'text=Call Bob', '--set', 'done=true');
  const { treeId: chatId } = await spaces('app', 'add', alpha, '--app', 'chat', '--name', 'Team chat');
  const { treeId: boardId } = await spaces('app', 'add', alpha, '--app', 'kanban', '--name', 'Board');
  const { spaceId: betaId } = await spaces('create', beta, '--name', 'Beta');
  fs.writeFileSync(broken, 'this is not a space file\n');
  // `fixture` is plain data (the extension tests read it as JSON).
  const fixture = {
    workspace,
    cli,
    keyFile,
    alpha: { file: alpha, spaceId: alphaId, todoId, chatId, boardId, milkId },
    beta: { file: beta, spaceId: betaId },
    broken: { file: broken },
  };
  return { fixture, env, spaces };
}

/** `count` notes items for `spaces import`: top-level items with up to 9 children each. */
export function outline(count) {
  const nodes = [];
  for (let made = 0; made < count; ) {
    const top = { props: { text: `Item ${nodes.length + 1}`, done: false }, children: [] };
    made++;
    for (let c = 1; c <= 9 && made < count; c++, made++) top.children.push({ props: { text: `Item ${nodes.length + 1}.${c}`, done: c % 3 === 0 } });
    nodes.push(top);
  }
  return nodes;
}

/**
 * A team server (dist/server.js) on a free port with its data in `data`, and an admin token
 * for every space made for `user`. Stopped when this process exits, whatever the way; `stop()`
 * stops it and resolves once it has exited; `pid` is its process id, `exited` resolves when it exits.
 */
export async function startTeamServer(data, user = 'e2e') {
  const token = JSON.parse(execFileSync(process.execPath, [serverJs, 'token', 'create', '--data', data, '--user', user, '--space', '*', '--role', 'admin'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]).token;
  const child = spawn(process.execPath, [serverJs, 'serve', '--data', data, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  process.on('exit', () => child.kill('SIGTERM'));
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  try {
    // Port 0: its `listening` log line says which port it got.
    const url = await new Promise((resolve, reject) => {
      let buf = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d) => {
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
      child.on('exit', (code) => reject(new Error(`the team server exited (${code})`)));
      setTimeout(() => reject(new Error('the team server did not say "listening" within 30 s')), 30_000).unref();
    });
    child.stdout.resume();
    return { url, token, pid: child.pid, exited, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * Puts the space of `file` on the team server as a user would: `spaces sync` creates it there
 * (under its own id, with the admin token) and pushes its ops.
 */
export async function uploadSpace(server, file, env) {
  const spaces = spacesCli(env);
  const { spaceId } = await spaces('sync', file, '--server', server.url, '--token', server.token);
  return spaceId;
}

/**
 * Connects spaces of `workspace` to the team server as a user would (workspace settings
 * `spaces.server.url` + `spaces.server.connections`); the token reaches the extension as
 * $SPACES_SERVER_TOKEN, so nothing needs a sign-in. `moreSettings` go to the same file.
 */
export function connectWorkspace(workspace, serverUrl, spaceIds, moreSettings = {}) {
  fs.mkdirSync(path.join(workspace, '.vscode'), { recursive: true });
  const settings = { 'spaces.server.url': serverUrl, 'spaces.server.connections': Object.fromEntries(spaceIds.map((id) => [id, true])), ...moreSettings };
  fs.writeFileSync(path.join(workspace, '.vscode', 'settings.json'), `${JSON.stringify(settings, null, 2)}\n`);
}
