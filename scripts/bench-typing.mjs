#!/usr/bin/env node
// Typing latency in the space editor's outline with a teammate editing the same tree live.
// Issue target: keystroke → frame ≤ 50 ms at the 99th percentile.
//
// A space with a notes tree of --items items (one "Typing here:" item first, then top-level
// items with 9 children each), connected to a real team server (workspace settings +
// $SPACES_SERVER_TOKEN), opened in the space editor through the Spaces view in VS Code
// (code-server + headless Chromium, the UI harness of scripts/e2e/). A teammate
// (scripts/e2e/teammate.mjs: the project's SpaceManager + ServerLayer) edits items all over
// the tree at --rate edits/s through the server, while Playwright types --chars characters into
// the first item, one key every --delay ms. Then it reads the webview's figures
// (window.spacesEditorFigures) and prints JSON lines on stdout (progress on stderr):
//
//   {"bench":"typing","figure":"keyToFrameMs","n":300,"p50":…,"p95":…,"p99":…,"max":…}   keydown → next frame
//   {"bench":"typing","figure":"roundTripMs",…}        setText sent → the host's ack
//   {"bench":"typing","figure":"teammateToScreenMs",…}  teammate's edit made → its text in the webview
//   {"bench":"typing","items":1000,"chars":300,…,"teammateEditsDuringTyping":…,"teammateEditsArrivedDuringTyping":…,"loadavg":[…]}
//
// It checks that the typed text reached the space file (through the CLI) and that the
// teammate's edits arrived in the webview while typing. Needs `npm run compile && npm run build`.
//
//   npm run bench:typing -- [--items 1000] [--chars 300] [--delay 30] [--rate 10] [--keep] [--verbose]
//
// --rate 0: no teammate (a baseline).
//
// Exit code 0 = measured, 1 = a check failed, 2 = harness problem.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectWorkspace, keyEnv, outline, requireBuilt, root, setupCodeServer, spacesCli, startTeamServer, tempDir, uploadSpace } from './e2e/fixture.mjs';
import { createRun, editorFigures, openSpacesView, percentile, treeRow, until, webview } from './e2e/ui-harness.mjs';

const { values: opt } = parseArgs({
  options: {
    items: { type: 'string', default: '1000' },
    chars: { type: 'string', default: '300' },
    delay: { type: 'string', default: '30' },
    rate: { type: 'string', default: '10' },
    keep: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
  },
});
const items = Number(opt.items);
const chars = Number(opt.chars);
const delay = Number(opt.delay);
const rate = Number(opt.rate);
for (const [flag, n, min] of [['--items', items, 1], ['--chars', chars, 1], ['--delay', delay, 1], ['--rate', rate, 0]]) {
  if (!Number.isInteger(n) || n < min) {
    console.error(`[bench:typing] ERROR: ${flag} must be a whole number ≥ ${min}`);
    process.exit(2);
  }
}
const TARGET_P99_MS = 50;
const TYPING_PREFIX = 'Typing here: ';
const typed = 'the quick brown fox jumps over the lazy dog '.repeat(Math.ceil(chars / 44)).slice(0, chars);
const round = (x) => Math.round(x * 10) / 10;
const stats = (figure, values) => ({ bench: 'typing', figure, n: values.length, p50: round(percentile(values, 50)), p95: round(percentile(values, 95)), p99: round(percentile(values, 99)), max: round(Math.max(...values)), unit: 'ms' });
const emit = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

const run = createRun('bench:typing', { ...opt, log: console.error });
await run.main(async ({ say, check, onCleanup, openWorkbench }) => {
  requireBuilt('bench:typing', [['out/src/spaces/spaceManager.js (npm run compile)', path.join(root, 'out/src/spaces/spaceManager.js')]]);
  setupCodeServer();
  const tmp = tempDir('spaces-bench-typing-');
  onCleanup(() => (opt.keep ? say(`kept ${tmp}`) : fs.rmSync(tmp, { recursive: true, force: true })));

  // The space, on the team server, connected in the workspace settings.
  const workspace = path.join(tmp, 'workspace');
  fs.mkdirSync(workspace, { recursive: true });
  const { env } = keyEnv(tmp);
  const spaces = spacesCli(env);
  const file = path.join(workspace, 'bench.space');
  const { spaceId } = await spaces('create', file, '--name', 'Bench');
  const { treeId } = await spaces('app', 'add', file, '--app', 'notes', '--name', 'Notes');
  const { id: typingId } = await spaces('item', 'add', file, '--tree', treeId, '--set', `text=${TYPING_PREFIX}`, '--set', 'done=false');
  await spaces('import', file, '--tree', treeId, { input: JSON.stringify(outline(items - 1)) });
  const server = await startTeamServer(path.join(tmp, 'server-data'));
  onCleanup(() => server.stop());
  await uploadSpace(server, file, env);
  connectWorkspace(workspace, server.url, [spaceId]);
  say(`space with ${items} items on the team server ${server.url}`);

  // VS Code: the Spaces view, the notes tree in the editor.
  const { page } = await openWorkbench({ folder: workspace, env: { ...env, SPACES_SERVER_TOKEN: server.token } });
  await openSpacesView(page);
  await until('the space to be synced with the team server', async () => (await treeRow(page, 'Bench').locator('.label-description').innerText()).includes('synced with'));
  await treeRow(page, 'Notes').click();
  const view = webview(page);
  await until(`the outline to show ${items} items`, async () => (await view.locator('.outline .row').count()) === items, { timeout: 60_000 });
  say(`the editor shows ${items} items`);

  /**
   * Starts the teammate and notes in the webview when each of its edits shows; resolves once they
   * show. `stop(t0, t1)` stops it and gives its figures for the typing from t0 to t1.
   */
  async function startTeammate() {
    const mateEvents = [];
    const child = spawn(process.execPath, [path.join(root, 'scripts/e2e/teammate.mjs'), '--server', server.url, '--token', server.token, '--space', spaceId, '--tree', treeId, '--rate', String(rate), '--skip', typingId], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
    const mateExited = new Promise((r) => child.on('exit', r));
    onCleanup(async () => {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // gone
      }
      await Promise.race([mateExited, new Promise((r) => setTimeout(r, 5000))]);
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    });
    let buf = '';
    child.stdout.setEncoding('utf8').on('data', (d) => {
      buf += d;
      const lines = buf.split('\n');
      buf = lines.pop();
      for (const l of lines) if (l.trim()) mateEvents.push(JSON.parse(l));
    });
    await until('the teammate to sync', () => mateEvents.some((e) => e.event === 'ready'));
    await view.locator('.outline').evaluate((list) => {
      const seen = (window.__benchSeen = {});
      new MutationObserver((records) => {
        const now = Date.now();
        for (const r of records) {
          const el = r.target.nodeType === Node.TEXT_NODE ? r.target.parentElement : r.target;
          const m = el?.classList?.contains('text') ? /^teammate edit (\d+)$/.exec(el.textContent ?? '') : null;
          if (m && !seen[m[1]]) seen[m[1]] = now;
        }
      }).observe(list, { subtree: true, childList: true, characterData: true });
    });
    const seenCount = () => view.locator('body').evaluate(() => Object.keys(window.__benchSeen).length);
    await until('the teammate\'s first edits in the editor', async () => (await seenCount()) >= 3);
    return {
      async stop(t0, t1) {
        process.kill(-child.pid, 'SIGTERM');
        const stopped = await until('the teammate to stop', () => mateEvents.find((e) => e.event === 'stopped'));
        const edits = mateEvents.filter((e) => e.event === 'edit');
        const last = edits[edits.length - 1];
        await until(`the teammate's last edit (${last.n}) in the editor`, async () => (await view.locator(`.outline .row[data-id="${last.id}"] .text`).innerText()) === `teammate edit ${last.n}`);
        const seen = await view.locator('body').evaluate(() => window.__benchSeen);
        const during = edits.filter((e) => e.at >= t0 && e.at <= t1);
        const arrived = during.filter((e) => seen[e.n] !== undefined && seen[e.n] <= t1);
        check(arrived.length > 0, `teammate edits arrived in the editor while typing: ${arrived.length} of the ${during.length} made`);
        return { edits: stopped.edits, during: during.length, arrived: arrived.length, toScreen: edits.filter((e) => seen[e.n] !== undefined).map((e) => seen[e.n] - e.at) };
      },
    };
  }

  const mate = rate > 0 ? await startTeammate() : undefined;

  // Typing.
  await view.locator(`.outline .row[data-id="${typingId}"] .text`).click();
  await page.keyboard.press('End');
  const before = await editorFigures(page);
  say(`typing ${chars} characters, one every ${delay} ms, ${mate ? `while the teammate makes ${rate} edits/s` : 'no teammate'}`);
  const t0 = Date.now();
  await page.keyboard.type(typed, { delay });
  const t1 = Date.now();
  const loadavg = os.loadavg().map(round);
  const after = await until('a figure for every keystroke', async () => {
    const f = await editorFigures(page);
    return f.keyToFrame.length - before.keyToFrame.length >= chars && f.roundTrip.length - before.roundTrip.length >= chars && f;
  });
  const keyToFrame = after.keyToFrame.slice(before.keyToFrame.length);
  const roundTrip = after.roundTrip.slice(before.roundTrip.length);

  // The typed text is in the file; the teammate stops, its last edit shows, its edits arrived while typing.
  await until('the typed text in the space file', async () => {
    const dump = await spaces('dump', file, '--tree', treeId);
    return dump.children.find((c) => c.id === typingId)?.props.text === TYPING_PREFIX + typed;
  }, { interval: 250 });
  check(true, 'the typed text is in the space file');
  const teammate = mate ? await mate.stop(t0, t1) : undefined;

  emit(stats('keyToFrameMs', keyToFrame));
  emit(stats('roundTripMs', roundTrip));
  if (teammate) emit(stats('teammateToScreenMs', teammate.toScreen));
  const p99 = percentile(keyToFrame, 99);
  emit({
    bench: 'typing',
    items,
    chars,
    delayMs: delay,
    typingMs: t1 - t0,
    teammateRate: rate,
    ...(teammate ? { teammateEdits: teammate.edits, teammateEditsDuringTyping: teammate.during, teammateEditsArrivedDuringTyping: teammate.arrived } : {}),
    targetKeyToFrameP99Ms: TARGET_P99_MS,
    targetMet: p99 <= TARGET_P99_MS,
    cpus: os.cpus().length,
    loadavg,
  });
  say(`keystroke → frame p99 ${round(p99)} ms (target ≤ ${TARGET_P99_MS} ms), load average ${loadavg.join(' ')}`);
});
