#!/usr/bin/env node
// `npm start`: the whole thing on this machine. Builds, installs code-server + Node 24 + Chromium
// into ~/.cache/vscode-e2e when missing, makes the demo workspace (.demo/workspace/team.space),
// starts a local team server (.demo/server) with an admin token, syncs the demo space to it, and
// starts VS Code (code-server) with the extension on the demo workspace. Prints the URL to open.
// Ctrl+C stops everything: on SIGINT, SIGTERM or SIGHUP (the terminal closed) it stops its
// children, waits until they have exited (their ports are free then), removes code-server's state
// dir and exits with 0. The npm script `exec`s node: npm runs it with /bin/sh, and dash, hit by
// the terminal's SIGINT too, would die of it once node exited, so npm would end by the signal
// whatever node's exit code. While it runs, .demo/running.json names this process and its
// children: the next npm start stops what a run killed with SIGKILL left running (code-server is
// in its own process group and keeps its port) and refuses to start while this one still runs.
//
//   npm start [-- --port 8080]        (code-server's port; the team server picks a free one)
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { connectWorkspace, startTeamServer, uploadSpace } from './e2e/fixture.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({ options: { port: { type: 'string', default: '8080' }, host: { type: 'string', default: '127.0.0.1' } } });
const say = (...a) => console.log('[start]', ...a);
const demo = path.join(root, '.demo');
const workspace = path.join(demo, 'workspace');
const spaceFile = path.join(workspace, 'team.space');
const serverData = path.join(demo, 'server');
// What runs, for the next `npm start`: a run killed with SIGKILL cannot stop its children, and a
// code-server left running (its own process group) holds the port.
const runningFile = path.join(demo, 'running.json');
/** How long a stopped child may take to exit before its process group gets SIGKILL. */
const STOP_WAIT_MS = 10_000;
const STOP_POLL_MS = 100;
/** What the command line of this script's process holds. */
const OWNER_MARK = path.join('scripts', 'start.mjs');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Functions that stop a child and resolve once it has exited. */
const stops = [];
let state;
let stopping;

const signal = (pid, sig) => {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
};
/**
 * SIGTERM to `pid` (a negative one: a process group), then SIGKILL unless `exited` resolved within
 * STOP_WAIT_MS; a group gets SIGKILL either way, for what is left of it (code-server's helpers).
 */
async function stopProcess(pid, exited) {
  signal(pid, 'SIGTERM');
  const inTime = await Promise.race([exited.then(() => true), sleep(STOP_WAIT_MS).then(() => false)]);
  if (pid < 0 || !inTime) signal(pid, 'SIGKILL');
}
/** Stops every child, waits until they have exited (so their ports are free), removes code-server's state, exits with `code` (the first call's). */
function stopAll(code) {
  stopping ??= (async () => {
    await Promise.all(stops.map((stop) => stop().catch(() => {})));
    if (state) fs.rmSync(state, { recursive: true, force: true });
    if (running.owner) fs.rmSync(runningFile, { force: true });
    process.exit(code);
  })();
  return stopping;
}
function fail(message) {
  console.error(`[start] ERROR: ${message}`);
  return stopAll(1);
}
process.on('uncaughtException', (e) => fail(e.message));
process.on('unhandledRejection', (e) => fail(e instanceof Error ? e.message : String(e)));
// SIGHUP: the terminal was closed.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => stopAll(0));

/** The command line of process `pid` ('' when it is gone or cannot be read). */
function commandLine(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    try {
      return execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return '';
    }
  }
}
/**
 * Stops what an earlier, killed `npm start` left running (a pid only while it still runs that
 * command) and removes its code-server's state. Fails when that `npm start` still runs.
 */
async function stopLeftovers() {
  let left;
  try {
    left = JSON.parse(fs.readFileSync(runningFile, 'utf8'));
  } catch {
    return; // none (or unreadable: nothing to go by)
  }
  if (Number.isSafeInteger(left.owner) && left.owner > 0 && commandLine(left.owner).includes(OWNER_MARK)) await fail(`npm start is already running here (pid ${left.owner}); stop it first (Ctrl+C)`);
  await Promise.all(
    (Array.isArray(left.processes) ? left.processes : []).map(async ({ pid, group, mark }) => {
      const runs = () => commandLine(pid).includes(mark);
      if (!Number.isSafeInteger(pid) || pid <= 0 || typeof mark !== 'string' || !mark || !runs()) return;
      say(`stopping pid ${pid}, left running by an earlier npm start`);
      const deadline = Date.now() + STOP_WAIT_MS;
      const gone = (async () => {
        while (runs() && Date.now() < deadline) await sleep(STOP_POLL_MS);
      })();
      await stopProcess(group ? -pid : pid, gone);
    }),
  );
  if (typeof left.state === 'string' && path.basename(left.state).startsWith('spaces-start-')) fs.rmSync(left.state, { recursive: true, force: true });
  fs.rmSync(runningFile, { force: true });
}
/** Notes this process and its running children in runningFile. */
const running = { owner: 0, processes: [] };
function noteRunning(entry) {
  running.owner = process.pid;
  Object.assign(running, entry.state ? { state: entry.state } : {});
  if (entry.process) running.processes.push(entry.process);
  fs.writeFileSync(runningFile, `${JSON.stringify(running)}\n`);
}
/** Whether something accepts connections on host:port. */
const portInUse = (host, port) =>
  new Promise((resolve) => {
    const socket = net.connect({ host, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

await stopLeftovers();

// 1. The demo workspace (builds the bundles too).
execFileSync(process.execPath, [path.join(root, 'scripts', 'demo.mjs'), '--no-secret'], { cwd: root, stdio: 'inherit' });

// 2. code-server, Node 24, Chromium (cached).
say('checking code-server (the first time this installs it: about 2 minutes)');
const setup = execFileSync('bash', [path.join(root, 'scripts', 'e2e', 'setup-code-server.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const env = Object.fromEntries(setup.trim().split('\n').map((l) => l.split('=')).map(([k, ...v]) => [k, v.join('=')]));

// 3. The team server, an admin token, and the demo space synced to it.
fs.rmSync(serverData, { recursive: true, force: true });
const { url: serverUrl, token, pid: serverPid, exited: serverExited } = await startTeamServer(serverData, 'demo');
stops.push(() => stopProcess(serverPid, serverExited));
noteRunning({ process: { pid: serverPid, mark: serverData } });
const tokenFile = path.join(demo, 'admin.token');
fs.writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
say(`team server: ${serverUrl}`);
const cliEnv = { ...process.env, SPACES_KEY_FILE: path.join(demo, 'file.key') };
const spaceId = await uploadSpace({ url: serverUrl, token }, spaceFile, cliEnv);
say(`demo space ${spaceId} synced to the team server`);
// The workspace connects the demo space to this server; the token reaches the extension through
// $SPACES_SERVER_TOKEN (below), so there is nothing to sign in to.
connectWorkspace(workspace, serverUrl, [spaceId]);

// 4. VS Code in the browser, with the extension loaded from this folder.
if (await portInUse(opt.host, opt.port)) await fail(`${opt.host}:${opt.port} is in use; pass another port: npm start -- --port N`);
state = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-start-'));
noteRunning({ state });
fs.mkdirSync(path.join(state, 'user-data', 'User'), { recursive: true });
fs.mkdirSync(path.join(state, 't'));
fs.writeFileSync(
  path.join(state, 'user-data', 'User', 'settings.json'),
  JSON.stringify({ 'workbench.startupEditor': 'none', 'security.workspace.trust.enabled': false, 'telemetry.telemetryLevel': 'off', 'chat.disableAIFeatures': true }, null, 2),
);
const codeServer = spawn(
  env.NODE,
  [
    env.CODE_SERVER,
    '--bind-addr', `${opt.host}:${opt.port}`,
    '--auth', 'none',
    '--config', path.join(state, 'config.yaml'),
    '--user-data-dir', path.join(state, 'user-data'),
    '--extensions-dir', path.join(state, 'extensions'),
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override', '--ignore-last-opened',
    // Lets the URL's payload load the extension from this folder (extensionDevelopmentPath).
    '--vscode-option', 'enable-smoke-test-driver',
  ],
  {
    detached: true,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      PATH: `${path.dirname(env.NODE)}${path.delimiter}${process.env.PATH}`,
      XDG_CONFIG_HOME: path.join(state, 'xdg-config'),
      XDG_DATA_HOME: path.join(state, 'xdg-data'),
      XDG_CACHE_HOME: path.join(state, 'xdg-cache'),
      TMPDIR: path.join(state, 't'),
      EXTENSIONS_GALLERY: '{}',
      // Team sync without signing in, and the demo's CLI key (the extension adopts it).
      SPACES_SERVER_TOKEN: token,
      SPACES_KEY_FILE: path.join(demo, 'file.key'),
    },
  },
);
const codeServerExited = new Promise((resolve) => codeServer.on('exit', resolve));
stops.push(() => stopProcess(-codeServer.pid, codeServerExited));
noteRunning({ process: { pid: codeServer.pid, group: true, mark: state } });
codeServer.on('exit', (code) => {
  if (stopping) return;
  say(`code-server exited (${code})`);
  stopAll(code ?? 1);
});
const base = `http://${opt.host}:${opt.port}`;
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${base}/healthz`)).ok) break;
  } catch {
    // not up yet
  }
  if (i > 300) await fail('code-server did not start');
  if (stopping) await stopping;
  await sleep(200);
}
const url = new URL(`${base}/`);
url.searchParams.set('folder', workspace);
url.searchParams.set('payload', JSON.stringify([['extensionDevelopmentPath', `vscode-remote://${opt.host}:${opt.port}${pathToFileURL(root).pathname}`]]));
console.log(`
  Spaces for VS Code is running.
    Open:          ${url.href}
    Team server:   ${serverUrl}   (admin token in ${path.relative(process.cwd(), tokenFile)})
    Workspace:     ${path.relative(process.cwd(), workspace)}
  Ctrl+C stops everything.
`);
