#!/usr/bin/env node
// The test of `npm start` as a newcomer uses it (README: `npm install && npm start`): the npm
// script itself, run from the repository root in its own process group, on a free port:
//
//   1. it prints "Open: URL" and the team server's URL within START_MS
//   2. that URL in headless Chromium: the Spaces view lists the demo space with its app trees (as
//      `spaces info` reads them from the .demo/workspace/team.space npm start made), the space's
//      row says "synced with host:port" of the printed team server, and with the space selected
//      the status bar shows $(cloud) Synced
//   3. the team server answers /healthz
//   4. SIGINT to npm's process group (what Ctrl+C in a terminal does): npm exits with 0 within
//      EXIT_MS; code-server's and the team server's ports are closed at that moment, none of their
//      processes is left, code-server's state dir is removed
//   5. a run killed with SIGKILL (start.mjs alone: code-server and the team server stay up), then
//      `npm start` on the same port again: it stops the leftovers, serves its own code-server, and
//      Ctrl+C ends it with 0
//
// npm start works in .demo/ (its gitignored folder): the test replaces what a developer's
// `npm start` left there, and fails while an `npm start` of this checkout is running.
// A failure saves a screenshot and logs in e2e-artifacts/. Runs setup-code-server.sh itself.
//
//   node scripts/e2e/start-test.mjs [--keep] [--verbose]
//
// Exit code 0 = passed, 1 = a check failed (npm start did not start or stop included), 2 = harness problem.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from './code-server.mjs';
import { root, setupCodeServer, spacesCli, tempDir } from './fixture.mjs';
import { CheckFailed, createRun, openSpacesView, treeRow, treeRows, until } from './ui-harness.mjs';

const { values: opt } = parseArgs({ options: { keep: { type: 'boolean', default: false }, verbose: { type: 'boolean', default: false } } });
/** From spawning `npm start` to its "Open:" line: it builds and makes the demo (code-server is installed before). */
const START_MS = 180_000;
/** From SIGINT to npm's exit: start.mjs stops its children and waits for them (SIGKILL after 10 s). */
const EXIT_MS = 30_000;
/** Processes killed with SIGKILL may take a moment to be gone from the process table. */
const GONE_MS = 10_000;
const demo = path.join(root, '.demo');
const spaceFile = path.join(demo, 'workspace', 'team.space');

/** Whether something accepts connections on 127.0.0.1:port (else the error code, e.g. ECONNREFUSED). */
const probe = (port) =>
  new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('open');
    });
    socket.once('error', (e) => resolve(e.code));
  });

/** Live (not zombie) processes whose process group is `pgid`, or the process `pid`: from /proc (Linux). */
function liveProcesses({ pgid, pid }) {
  const found = [];
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state !== 'Z' && (Number(pgrp) === pgid || Number(p) === pid)) found.push(Number(p));
  }
  return found;
}

/** Sends `signal` to `pid` (negative: a process group) unless it is gone. */
const kill = (pid, signal) => {
  try {
    process.kill(pid, signal);
  } catch {
    // gone
  }
};

/** Resolves with the value of `promise`, or with `timedOut` after `ms`. */
const timedOut = Symbol('timed out');
const within = (promise, ms) => {
  let timer;
  return Promise.race([promise, new Promise((r) => (timer = setTimeout(r, ms, timedOut)))]).finally(() => clearTimeout(timer));
};

/**
 * `npm start -- --port <port>` from the repository root in its own process group, as a terminal
 * runs it. `started()` resolves once it printed its "Open:" and "Team server:" lines, with them and
 * what .demo/running.json names; a run that exits or stays silent fails the check. At the end of
 * the test (`onCleanup`), a run still going gets SIGINT (SIGKILL after EXIT_MS) and whatever of
 * it is left running gets SIGKILL.
 */
function npmStart(port, { say, onCleanup }) {
  const npm = spawn('npm', ['start', '--', '--port', String(port)], { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = [];
  const output = () => out.join('');
  let exit;
  const exited = new Promise((resolve) => npm.on('exit', (code, signal) => resolve((exit = { code, signal }))));
  npm.on('error', (e) => out.push(`[spawn error] ${e.message}\n`));
  for (const s of [npm.stdout, npm.stderr]) {
    s.setEncoding('utf8');
    s.on('data', (d) => {
      out.push(d);
      if (opt.verbose) process.stdout.write(d.replace(/^(?=.)/gm, `[npm start :${port}] `));
    });
  }
  let running = { processes: [] };
  onCleanup(async () => {
    if (!exit) {
      say(`stopping npm start (port ${port})`);
      kill(-npm.pid, 'SIGINT');
      if ((await within(exited, EXIT_MS)) === timedOut) kill(-npm.pid, 'SIGKILL');
    }
    for (const { pid, group } of running.processes ?? []) {
      for (const left of liveProcesses(group ? { pgid: pid } : { pid })) {
        say(`killing pid ${left}, left running by npm start`);
        kill(left, 'SIGKILL');
      }
    }
  });
  const started = async () => {
    const banner = await within(
      new Promise((resolve, reject) => {
        const look = () => {
          const open = /^\s*Open:\s+(\S+)/m.exec(output());
          const team = /^\s*Team server:\s+(\S+)/m.exec(output());
          if (open && team) resolve({ open: new URL(open[1]), team: new URL(team[1]) });
        };
        npm.stdout.on('data', look);
        exited.then(({ code, signal }) => reject(new CheckFailed(`npm start exited (${signal ?? code}) before printing "Open: URL"; its output:\n${output()}`)));
        look();
      }),
      START_MS,
    );
    if (banner === timedOut) throw new CheckFailed(`npm start did not print "Open: URL" within ${START_MS / 1000} s; its output:\n${output()}`);
    running = JSON.parse(fs.readFileSync(path.join(demo, 'running.json'), 'utf8'));
    const codeServerPid = running.processes.find((p) => p.group)?.pid;
    const teamServerPid = running.processes.find((p) => !p.group)?.pid;
    return { ...banner, running, codeServerPid, teamServerPid };
  };
  return { pid: npm.pid, out, output, exited, started };
}

const run = createRun('start-test', opt);
await run.main(async ({ say, check, onCleanup, showWorkbench }) => {
  setupCodeServer();
  const tmp = tempDir('spaces-start-test-');
  onCleanup(() => (opt.keep ? say(`kept ${tmp}`) : fs.rmSync(tmp, { recursive: true, force: true })));

  // 1. `npm start`, in its own process group as a terminal runs it.
  const port = await freePort();
  const t0 = Date.now();
  const first = npmStart(port, { say, onCleanup });
  const { open: openUrl, team: teamUrl, running, codeServerPid, teamServerPid } = await first.started();
  const readyMs = Date.now() - t0;
  check(true, `npm start printed "Open: ${openUrl.href}" after ${(readyMs / 1000).toFixed(1)} s`);
  check(openUrl.port === String(port) && teamUrl.protocol === 'http:', `code-server on the port asked for (${openUrl.host}), team server at ${teamUrl.href}`);
  check(Number.isSafeInteger(codeServerPid) && Number.isSafeInteger(teamServerPid) && typeof running.state === 'string', `.demo/running.json names code-server (pid ${codeServerPid}), the team server (pid ${teamServerPid}) and code-server's state dir`);

  // What the demo space holds, read from the file npm start made.
  const info = await spacesCli({ ...process.env, SPACES_KEY_FILE: path.join(demo, 'file.key') })('info', spaceFile);
  const trees = info.appTrees.map((t) => t.name);
  check(trees.length > 0 && first.output().includes(`demo space ${info.spaceId} synced to the team server`), `npm start made and synced space "${info.spaceId}" "${info.name}" with app trees ${JSON.stringify(trees)}`);

  // 2. The URL in a browser.
  const userDataDir = path.join(running.state ?? tmp, 'user-data');
  const { page } = await showWorkbench({ tmp, out: first.out, userDataDir }, openUrl.href);
  say(`workbench up ${((Date.now() - t0) / 1000).toFixed(1)} s after npm start began`);
  await openSpacesView(page);
  const want = [info.name, ...trees];
  const labels = await until(`the Spaces view to list ${want.join(', ')}`, async () => {
    const l = await treeRows(page).locator('.label-name').allInnerTexts();
    return want.every((w) => l.includes(w)) && l;
  });
  check(true, `the Spaces view lists ${JSON.stringify(labels)}`);
  const spaceRow = treeRow(page, info.name);
  const synced = await until(`"${info.name}" to be synced with ${teamUrl.host}`, async () => {
    const d = await spaceRow.locator('.label-description').innerText();
    return d.includes(`synced with ${teamUrl.host}`) && d;
  });
  check(true, `"${info.name}": "${synced}"`);
  // Selected, it is the active space: the status bar item shows its state.
  await spaceRow.click();
  const item = page.locator('.part.statusbar .statusbar-item', { has: page.locator('.codicon-cloud') }).filter({ hasText: 'Synced' });
  await until('the status bar to show "$(cloud) Synced"', () => item.isVisible());
  check(true, `the status bar shows "$(cloud) ${(await item.innerText()).trim()}"`);

  // 3. The team server it printed.
  const health = await fetch(new URL('/healthz', teamUrl));
  const body = await health.json().catch(() => undefined);
  check(health.ok && body?.ok === true, `the team server answers /healthz: ${health.status} ${JSON.stringify(body)}`);

  // 4. Ctrl+C: SIGINT to the process group, as a terminal sends it (npm, its shell, start.mjs, the team server).
  const t1 = Date.now();
  process.kill(-first.pid, 'SIGINT');
  const ended = await within(first.exited, EXIT_MS);
  const stopMs = Date.now() - t1;
  check(ended !== timedOut, `npm start exits within ${EXIT_MS / 1000} s of SIGINT (${stopMs} ms)`);
  check(ended.code === 0 && ended.signal === null, `npm start exits with 0 (${ended.signal ?? ended.code})`);
  const [codeServerPort, teamServerPort] = await Promise.all([probe(port), probe(Number(teamUrl.port))]);
  check(codeServerPort === 'ECONNREFUSED', `code-server's port ${port} is closed once npm start has exited (${codeServerPort})`);
  check(teamServerPort === 'ECONNREFUSED', `the team server's port ${teamUrl.port} is closed once npm start has exited (${teamServerPort})`);
  await until('no process of code-server (its process group) or of the team server to be left', () => liveProcesses({ pgid: codeServerPid }).length === 0 && liveProcesses({ pid: teamServerPid }).length === 0, { timeout: GONE_MS });
  check(true, 'no process of code-server (its process group) or of the team server is left');
  check(!fs.existsSync(running.state), `code-server's state dir ${running.state} is removed`);
  check(!fs.existsSync(path.join(demo, 'running.json')), '.demo/running.json is removed');

  // 5. A killed run: SIGKILL to start.mjs alone leaves code-server (its own process group) and the
  // team server running, code-server holding the port. The next npm start on that port stops them
  // and serves its own code-server there.
  const port2 = await freePort();
  const killed = npmStart(port2, { say, onCleanup });
  const before = await killed.started();
  kill(before.running.owner, 'SIGKILL');
  check((await within(killed.exited, EXIT_MS)) !== timedOut, `npm start exits once start.mjs (pid ${before.running.owner}) is killed with SIGKILL`);
  check(liveProcesses({ pgid: before.codeServerPid }).length > 0 && liveProcesses({ pid: before.teamServerPid }).length > 0 && (await probe(port2)) === 'open', `the killed run left code-server (pid ${before.codeServerPid}, port ${port2}) and the team server (pid ${before.teamServerPid}) running`);
  const next = npmStart(port2, { say, onCleanup });
  const after = await next.started();
  check(liveProcesses({ pgid: before.codeServerPid }).length === 0 && liveProcesses({ pid: before.teamServerPid }).length === 0 && !fs.existsSync(before.running.state), 'the next npm start stopped what the killed run left and removed its state dir');
  const health2 = await fetch(new URL('/healthz', after.open));
  check(after.open.port === String(port2) && liveProcesses({ pid: after.codeServerPid }).length === 1 && health2.ok, `the next npm start serves its own code-server (pid ${after.codeServerPid}) on port ${port2}: /healthz ${health2.status}`);
  kill(-next.pid, 'SIGINT');
  const ended2 = await within(next.exited, EXIT_MS);
  check(ended2 !== timedOut && ended2.code === 0, `and Ctrl+C stops it with 0 (${ended2 === timedOut ? 'still running' : ended2.signal ?? ended2.code})`);

  console.log(JSON.stringify({ figure: 'npmStartReadyMs', value: readyMs, unit: 'ms' }));
  console.log(JSON.stringify({ figure: 'npmStartStopMs', value: stopMs, unit: 'ms' }));
});
