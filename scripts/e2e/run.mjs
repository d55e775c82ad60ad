#!/usr/bin/env node
// Runs the extension's tests (test/e2e/suite, compiled by tsc to out/test/e2e/suite) inside a
// real VS Code (code-server + headless Chromium, see run-extension-tests.mjs), on the fixture
// workspace of fixture.mjs (spaces Alpha and Beta, broken.space), made here in a temp dir with the
// built CLI, plus a team server (the built dist/server.js on a free port, its data in the temp
// dir, stopped on exit) with an admin token, for the team sync tests.
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
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCodeServer, defaultNode } from './code-server.mjs';
import { makeFixture, requireBuilt, root, setupCodeServer, startTeamServer, tempDir } from './fixture.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const tests = path.join(root, 'out/test/e2e/suite/index.js');
requireBuilt('e2e', [['out/test/e2e/suite/index.js (npm run compile)', tests]]);
const keep = process.argv.includes('--keep');
const vsixAt = process.argv.indexOf('--vsix');
const vsix = vsixAt > 0 ? process.argv[vsixAt + 1] : undefined;
if (vsixAt > 0 && (!vsix || !fs.existsSync(vsix))) {
  console.error(`[e2e] ERROR: --vsix ${vsix ?? ''}: no such file (npm run package makes it)`);
  process.exit(2);
}

setupCodeServer();

const tmp = tempDir('spaces-e2e-');
const t0 = Date.now();
const { fixture: made, env } = await makeFixture(tmp);
const ws = made.workspace;

let ext = root;
if (vsix) {
  const installed = path.join(tmp, 'vsix-extensions');
  const xdg = (d) => path.join(tmp, 'vsix-xdg', d); // keeps code-server's state out of $HOME
  let dirs = [];
  try {
    execFileSync(defaultNode, [defaultCodeServer, '--install-extension', path.resolve(vsix), '--extensions-dir', installed, '--user-data-dir', xdg('user-data')], {
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

// The team server, for the team sync tests; a signal before the tests start stops it too.
const stopEarly = () => process.exit(2);
process.on('SIGINT', stopEarly);
process.on('SIGTERM', stopEarly);
let server;
try {
  server = await startTeamServer(path.join(tmp, 'server-data'));
} catch (e) {
  console.error(`[e2e] ERROR: ${e.message}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(2);
}
process.off('SIGINT', stopEarly);
process.off('SIGTERM', stopEarly);
console.log(`[e2e] team server ${server.url}`);

const fixture = { ...made, server: { url: server.url, token: server.token } };
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
  await server.stop();
  if (keep) console.log(`[e2e] kept the fixture in ${tmp}`);
  else fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(code ?? (signal ? 2 : 1));
});
