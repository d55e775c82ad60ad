// A throwaway code-server (VS Code's server build, run by Node 24) and headless Chromium driven by
// playwright-core, shared by run-extension-tests.mjs (the extension's tests) and ui-harness.mjs
// (UI tests and benchmarks that click through the workbench). setup-code-server.sh installs both
// into $VSCODE_E2E_CACHE or ~/.cache/vscode-e2e.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const self = fileURLToPath(import.meta.url);
export const cacheDir = process.env.VSCODE_E2E_CACHE || path.join(os.homedir(), '.cache', 'vscode-e2e');
export const defaultCodeServer = path.join(cacheDir, 'code-server/node_modules/code-server/out/node/entry.js');
export const defaultNode = path.join(cacheDir, 'node/bin/node');
export const defaultChromium = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const since = (t) => `${((Date.now() - t) / 1000).toFixed(1)} s`;
const HEALTH_TIMEOUT_MS = 60_000;

/** playwright-core from the current directory's node_modules, else from this script's location; undefined when missing. */
export function loadPlaywright() {
  for (const from of [path.join(process.cwd(), 'noop.js'), self]) {
    try {
      return createRequire(from)('playwright-core');
    } catch {
      // try the next place
    }
  }
  return undefined;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().unref().on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// code-server keeps user settings on the server side, in <user-data-dir>/User.
const USER_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'security.workspace.trust.enabled': false,
  'extensions.autoUpdate': false,
  'extensions.autoCheckUpdates': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'workbench.tips.enabled': false,
  'chat.disableAIFeatures': true,
};

/**
 * Starts code-server on a free port with its state in a new temp dir (user data, extensions,
 * XDG dirs, TMPDIR: nothing lands in $HOME or the shared temp dir), in its own process group.
 * `env` is added to the environment (it reaches the extension host). Returns at once; `ready()`
 * waits for /healthz, `stop()` ends the process group and removes the state unless `keep`.
 */
export async function startCodeServer({ codeServer = defaultCodeServer, nodeBin = defaultNode, env = {}, settings = {}, onOutput, prefix = 'vscode-e2e-' } = {}) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const userDataDir = path.join(tmp, 'user-data');
  fs.mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
  fs.mkdirSync(path.join(tmp, 'extensions'), { recursive: true });
  fs.mkdirSync(path.join(tmp, 't'));
  fs.writeFileSync(path.join(userDataDir, 'User', 'settings.json'), JSON.stringify({ ...USER_SETTINGS, ...settings }, null, 2));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const args = [
    codeServer,
    '--bind-addr', `127.0.0.1:${port}`,
    '--auth', 'none',
    '--config', path.join(tmp, 'config.yaml'), // written with defaults if missing
    '--user-data-dir', userDataDir,
    '--extensions-dir', path.join(tmp, 'extensions'),
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    '--ignore-last-opened',
    // Required: a built VS Code ignores extensionDevelopmentPath/extensionTestsPath
    // in the URL payload unless the smoke-test driver is enabled.
    '--vscode-option', 'enable-smoke-test-driver',
  ];
  const out = [];
  const child = spawn(nodeBin, args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PATH: `${path.dirname(nodeBin)}${path.delimiter}${process.env.PATH}`,
      XDG_CONFIG_HOME: path.join(tmp, 'xdg-config'), // keep code-server's state out of $HOME
      XDG_DATA_HOME: path.join(tmp, 'xdg-data'),
      XDG_CACHE_HOME: path.join(tmp, 'xdg-cache'), // VS Code's device id file
      TMPDIR: path.join(tmp, 't'), // VS Code's IPC sockets (vscode-ipc-*, vscode-git-*) land here, not in the shared temp dir
      EXTENSIONS_GALLERY: process.env.EXTENSIONS_GALLERY || '{}', // no marketplace lookups (offline)
      ...env,
    },
  });
  for (const s of [child.stdout, child.stderr]) {
    s.setEncoding('utf8');
    s.on('data', (d) => {
      out.push(d);
      onOutput?.(d);
    });
  }
  let exit = null;
  const died = new Promise((r) => child.on('exit', (code, signal) => r((exit = { code, signal }))));
  let stopped = false;
  return {
    tmp,
    userDataDir,
    port,
    base,
    /** Everything code-server printed. */
    out,
    /** Resolves with {code, signal} when code-server exits. */
    died,
    get exit() {
      return exit;
    },
    /** A vscode-remote URI of a path on this machine, as the workbench's payload wants it. */
    remote: (p) => `vscode-remote://127.0.0.1:${port}${pathToFileURL(p).pathname}`,
    async ready() {
      const t0 = Date.now();
      for (;;) {
        if (exit) throw new Error(`code-server exited early (${JSON.stringify(exit)})`);
        if (Date.now() - t0 > HEALTH_TIMEOUT_MS) throw new Error(`code-server did not answer /healthz within ${HEALTH_TIMEOUT_MS / 1000} s`);
        try {
          if ((await fetch(`${base}/healthz`)).ok) return;
        } catch {
          // not up yet
        }
        await sleep(200);
      }
    },
    async stop({ keep = false } = {}) {
      if (stopped) return;
      stopped = true;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      await Promise.race([died, sleep(3000)]);
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone
      }
      if (!keep) fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/**
 * Headless Chromium (Playwright adds --no-sandbox itself); its crash reports stay in `stateDir`.
 * Signals are left to the caller: Playwright's own SIGINT handler would exit the process (130)
 * before the caller has stopped code-server.
 */
export function launchChromium(chromium, stateDir, executablePath = defaultChromium) {
  return chromium.launch({
    executablePath,
    headless: true,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    args: ['--disable-dev-shm-usage'],
    env: { ...process.env, XDG_CONFIG_HOME: path.join(stateDir, 'xdg-config'), XDG_CACHE_HOME: path.join(stateDir, 'xdg-cache') }, // keep Chromium's crash reports out of $HOME
  });
}

/** The workbench URL on `folder` (none: an empty window) with an extension-development payload. */
export function workbenchUrl(server, { folder, extensionDevelopmentPath, extensionTestsPath }) {
  const url = new URL(`${server.base}/`);
  if (folder) url.searchParams.set('folder', folder);
  else url.searchParams.set('ew', 'true');
  const payload = [['extensionDevelopmentPath', server.remote(extensionDevelopmentPath)]];
  if (extensionTestsPath) payload.push(['extensionTestsPath', server.remote(extensionTestsPath)]);
  url.searchParams.set('payload', JSON.stringify(payload));
  return url.href;
}

/**
 * Server-side log files under <user-data-dir>/logs/<timestamp>/: remoteagent.log (server),
 * exthostN/remoteexthost.log (extension host), exthostN/<publisher.name>/ (the extension's
 * LogOutputChannels, e.g. "Spaces.log"), exthostN/output_logging_… (plain channels). Without
 * `all`, only those.
 */
export function logFiles(userDataDir, extId, all = false) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }) : []) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.log')) out.push(p);
    }
  };
  walk(path.join(userDataDir, 'logs'));
  const wanted = (p) => all || /(remoteagent|remoteexthost)\.log$/.test(p) || p.includes(`${path.sep}${extId}${path.sep}`) || p.includes('output_logging_');
  return out.sort().filter(wanted);
}

/** The id (publisher.name, lower case) of the extension in `dir`; undefined without a readable package.json. */
export function extensionId(dir) {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    return `${pkg.publisher}.${pkg.name}`.toLowerCase();
  } catch {
    return undefined;
  }
}

/**
 * After a failure: a focused dump on stdout (code-server's output, the server-side logs of
 * `logFiles`, `extra(false)`) and, with `dir`, a full one (every log file, `extra(true)`) in
 * `dir`/e2e-failure-<time>.log next to a screenshot of `page`. `extra(all)` gives more
 * [title, text] sections.
 */
export async function dumpFailure({ server, extId, page, dir, say = console.log, extra = () => [] }) {
  const sections = (all) => [
    ['code-server output', server.out.join('')],
    ...logFiles(server.userDataDir, extId, all).map((f) => [path.relative(server.userDataDir, f), fs.readFileSync(f, 'utf8')]),
    ...extra(all),
  ];
  const render = (all) => sections(all).map(([t, c]) => `\n===== ${t} =====\n${c.trimEnd()}\n`).join('');
  console.log(render(false));
  if (!dir) return;
  const stamp = `e2e-failure-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  fs.mkdirSync(path.resolve(dir), { recursive: true });
  const at = (ext) => path.join(path.resolve(dir), `${stamp}.${ext}`);
  fs.writeFileSync(at('log'), render(true));
  say(`full log: ${at('log')}`);
  if (!page) return;
  try {
    await page.screenshot({ path: at('png'), timeout: 10_000 });
    say(`screenshot: ${at('png')}`);
  } catch (e) {
    console.error(`screenshot failed: ${e.message}`);
  }
}
