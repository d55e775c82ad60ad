#!/usr/bin/env node
// `npm start`: the whole thing on this machine. Builds, installs code-server + Node 24 + Chromium
// into ~/.cache/vscode-e2e when missing, makes the demo workspace (.demo/workspace/team.space),
// starts a local team server (.demo/server) with an admin token, syncs the demo space to it, and
// starts VS Code (code-server) with the extension on the demo workspace. Prints the URL to open.
// Ctrl+C stops everything.
//
//   npm start [-- --port 8080]        (code-server's port; the team server picks a free one)
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
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
const children = [];

function stopAll(code) {
  for (const c of children) {
    try {
      process.kill(-c.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  process.exit(code);
}
function fail(message) {
  console.error(`[start] ERROR: ${message}`);
  stopAll(1);
}
process.on('uncaughtException', (e) => fail(e.message));
process.on('unhandledRejection', (e) => fail(e instanceof Error ? e.message : String(e)));
process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));

// 1. The demo workspace (builds the bundles too).
execFileSync(process.execPath, [path.join(root, 'scripts', 'demo.mjs'), '--no-secret'], { cwd: root, stdio: 'inherit' });

// 2. code-server, Node 24, Chromium (cached).
say('checking code-server (the first time this installs it: about 2 minutes)');
const setup = execFileSync('bash', [path.join(root, 'scripts', 'e2e', 'setup-code-server.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const env = Object.fromEntries(setup.trim().split('\n').map((l) => l.split('=')).map(([k, ...v]) => [k, v.join('=')]));

// 3. The team server, an admin token, and the demo space synced to it.
fs.rmSync(serverData, { recursive: true, force: true });
const { url: serverUrl, token } = await startTeamServer(serverData, 'demo');
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
const state = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-start-'));
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
children.push(codeServer);
codeServer.on('exit', (code) => {
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
  if (i > 300) {
    say('code-server did not start');
    stopAll(1);
  }
  await new Promise((r) => setTimeout(r, 200));
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
