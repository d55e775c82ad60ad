// What UI tests and UI benchmarks of the extension share (ui-test.mjs, ../bench-typing.mjs): a
// run with cleanups that happen on success, failure and Ctrl+C, exit codes (0 passed, 1 a check
// failed or a UI step timed out, 2 a harness problem: build missing, a server did not start,
// Ctrl+C), polling, checks, and the workbench (code-server + headless Chromium, the extension from
// this folder as a development extension) with the selectors of the Spaces view and the space
// editor's webview.
import fs from 'node:fs';
import path from 'node:path';
import { dumpFailure, extensionId, launchChromium, loadPlaywright, since, sleep, startCodeServer, workbenchUrl } from './code-server.mjs';
import { root } from './fixture.mjs';

const EXT_ID = extensionId(root);
export const ARTIFACTS = path.join(root, 'e2e-artifacts');

/** A check that did not hold: the run fails with exit code 1. */
export class CheckFailed extends Error {}

/**
 * Polls `fn` every `interval` ms until it returns something truthy (returned) or `timeout` ms
 * passed (throws, with the last value or error). Errors thrown by `fn` count as "not yet".
 */
export async function until(what, fn, { timeout = 30_000, interval = 50 } = {}) {
  const t0 = Date.now();
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() - t0 > timeout) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new CheckFailed(`timed out after ${timeout / 1000} s waiting for ${what}${detail === undefined ? '' : ` (last: ${detail})`}`);
    }
    await sleep(interval);
  }
}

export function percentile(values, p) {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

/**
 * One run. `main(body)` runs `body(run)` and exits the process: cleanups run last-in first-out
 * whatever happens (Ctrl+C and SIGTERM included); on a failure it dumps code-server's output and
 * the extension's logs ("Spaces" log included) and saves a screenshot in e2e-artifacts/.
 * Progress goes to `log` (console.log; benchmarks that print figures on stdout pass console.error),
 * and last a line "N passed, M failed" (the checks that held; M is 1 when the run failed).
 */
export function createRun(tag, { verbose = false, keep = false, keepGoing = false, only = undefined, log = console.log } = {}) {
  const say = (...a) => log(`[${tag}]`, ...a);
  const cleanups = [];
  const browserLog = [];
  let workbench;
  /** Until the workbench shows: a problem is the harness's (exit 2), after that the test's (exit 1). */
  let uiUp = false;
  let stopping;
  /** Checks that held; the closing line reports them with the failure, if any. */
  let passed = 0;
  /** Sections that failed with --keep-going (else the first failure ends the run). */
  const failedSections = [];

  const stopAll = () =>
    (stopping ??= (async () => {
      for (const fn of cleanups.reverse()) {
        try {
          await fn();
        } catch (e) {
          console.error(`[${tag}] cleanup: ${e.message}`);
        }
      }
    })());

  const run = {
    say,
    verbose,
    keep,
    /** Runs `fn` at the end (last registered, first run). */
    onCleanup(fn) {
      cleanups.push(fn);
    },
    check(ok, what) {
      say(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
      if (!ok) throw new CheckFailed(what);
      passed++;
    },

    /**
     * Runs one independent part of a test. With `keepGoing` (--keep-going) a failure is reported
     * with a screenshot and the run goes on with the next section (Escape closes what the failed
     * one left open); the run still fails at the end. Without it, the failure ends the run.
     * With `only`, sections whose name does not hold it are skipped.
     */
    async section(name, fn) {
      if (only !== undefined && !name.includes(only)) return;
      say(`-- ${name}`);
      try {
        await fn();
      } catch (e) {
        if (!keepGoing || !workbench) throw e;
        failedSections.push(name);
        say(`FAIL section "${name}": ${e instanceof CheckFailed ? e.message : e.stack || e.message}`);
        const file = path.join(ARTIFACTS, `${tag}-section-${failedSections.length}.png`);
        fs.mkdirSync(ARTIFACTS, { recursive: true });
        await workbench.page.screenshot({ path: file }).catch(() => undefined);
        for (let i = 0; i < 3; i++) await workbench.page.keyboard.press('Escape').catch(() => undefined);
      }
    },

    /**
     * code-server with the extension from this folder on `folder`, `env` added to its
     * environment, and headless Chromium on it; resolves once the Spaces activity bar item shows.
     */
    async openWorkbench({ folder, env = {} }) {
      const t0 = Date.now();
      const server = await startCodeServer({ env, prefix: `${tag}-`, onOutput: verbose ? (d) => process.stdout.write(d.replace(/^(?=.)/gm, '[server] ')) : undefined });
      run.onCleanup(() => server.stop({ keep }));
      await server.ready();
      const opened = await run.showWorkbench(server, workbenchUrl(server, { folder, extensionDevelopmentPath: root }));
      say(`workbench up in ${since(t0)} (code-server ${server.base})`);
      return opened;
    },

    /**
     * Headless Chromium on the workbench at `url`, served by a running code-server `server`:
     * `{ tmp, out, userDataDir }` (Chromium's state goes under `tmp`; a failure dumps `out`, its
     * output, and the logs under `userDataDir`). Resolves once the Spaces activity bar item shows.
     */
    async showWorkbench(server, url) {
      const playwright = loadPlaywright();
      if (!playwright) throw new Error('playwright-core not found (npm install)');
      const browser = await launchChromium(playwright.chromium, server.tmp);
      run.onCleanup(() => browser.close());
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      page.setDefaultTimeout(30_000);
      page.on('console', (m) => {
        browserLog.push(`[console.${m.type()}] ${m.text()}`);
        if (verbose) console.log(`[browser ${m.type()}] ${m.text()}`);
      });
      page.on('pageerror', (e) => browserLog.push(`[pageerror] ${e.stack || e}`));
      workbench = { server, browser, page };
      await page.goto(url);
      await page.locator('.part.activitybar .action-item a[aria-label^="Spaces"]').waitFor({ timeout: 60_000 });
      uiUp = true;
      return workbench;
    },

    /** A PNG of the page (or of one locator's element) in each of `files`. */
    async screenshot(files, locator) {
      const [first, ...rest] = files;
      fs.mkdirSync(path.dirname(first), { recursive: true });
      await (locator ?? workbench.page).screenshot({ path: first });
      for (const f of rest) {
        fs.mkdirSync(path.dirname(f), { recursive: true });
        fs.copyFileSync(first, f);
      }
      say(`screenshot: ${files.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
    },

    /** Runs `body(run)`, then cleans up and exits with 0, 1 or 2. */
    async main(body) {
      let exitCode = 2;
      let interrupted = false;
      for (const sig of ['SIGINT', 'SIGTERM']) {
        process.on(sig, () => {
          interrupted = true;
          say(`${sig}: stopping`);
          stopAll().then(() => process.exit(2));
        });
      }
      const t0 = Date.now();
      try {
        await body(run);
        if (failedSections.length) throw new CheckFailed(`${failedSections.length} section(s) failed: ${failedSections.join('; ')}`);
        exitCode = 0;
        say(`passed in ${since(t0)}`);
      } catch (e) {
        if (interrupted) return; // the signal handler cleans up and exits
        exitCode = e instanceof CheckFailed || uiUp ? 1 : 2;
        console.error(`[${tag}] ${exitCode === 1 ? 'FAILED' : 'ERROR'}: ${e instanceof CheckFailed ? e.message : e.stack || e.message}`);
        if (workbench) {
          await dumpFailure({
            server: workbench.server,
            extId: EXT_ID,
            page: workbench.page,
            dir: ARTIFACTS,
            say,
            extra: (all) => [['browser console', (all ? browserLog : browserLog.filter((l) => /^\[(console\.(error|warning))|pageerror\]/.test(l))).join('\n')]],
          });
        }
      }
      await stopAll();
      say(`${passed} passed, ${exitCode === 0 ? 0 : Math.max(1, failedSections.length)} failed`);
      process.exit(exitCode);
    },
  };
  return run;
}

// ---- the workbench and the extension's UI ---------------------------------------------------

const exactly = (text) => new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);

/**
 * The rows of one view of the Spaces container ("Spaces" or "Team Server"): both list spaces
 * by name, so a row is looked up in its own view's pane.
 */
export const treeRows = (page, view = 'Spaces') =>
  page.locator('.part.sidebar .pane').filter({ has: page.locator('.pane-header h3.title', { hasText: exactly(view) }) }).locator('.monaco-list-row[role="treeitem"]');

/** The row of a view (the Spaces view unless named) whose label is `label`. */
export const treeRow = (page, label, view = 'Spaces') => treeRows(page, view).filter({ has: page.locator('.label-name', { hasText: exactly(label) }) });

/** Clicks the Spaces activity bar item; resolves once the view shows rows. */
export async function openSpacesView(page) {
  await page.locator('.part.activitybar .action-item a[aria-label^="Spaces"]').click();
  await page.locator('.part.sidebar .composite.title h2', { hasText: 'Spaces' }).waitFor();
  await treeRows(page).first().waitFor();
}

/**
 * The document inside the visible space editor's webview: VS Code puts a webview in two nested
 * iframes (iframe.webview > #active-frame); editors in other tabs keep theirs, hidden.
 */
export const webview = (page) => page.frameLocator('iframe.webview.ready:visible').frameLocator('#active-frame');

/** The texts of the outline's rows, in order. */
export const outlineTexts = (page) => webview(page).locator('.outline .row .text').allInnerTexts();

/** The id of the outline row that has the keyboard focus (undefined: none). */
export const focusedRow = (page) => webview(page).locator('body').evaluate(() => document.activeElement?.closest('.row')?.getAttribute('data-id') ?? undefined);

/** The webview's typing figures ({keyToFrame, roundTrip}, ms), copied. */
export const editorFigures = (page) => webview(page).locator('body').evaluate(() => JSON.parse(JSON.stringify(window.spacesEditorFigures)));

/** A notes tree as dumped by `spaces dump --tree` → nested text: "a(b,c),d". */
export function shape(node) {
  return (node.children ?? []).map((c) => (c.children?.length ? `${c.props.text}(${shape(c)})` : c.props.text)).join(',');
}

/** What has the keyboard focus inside the visible webview: tag, classes, data-id of its row, data-tree. */
export const webviewFocus = (page) =>
  webview(page)
    .locator('body')
    .evaluate(() => {
      const a = document.activeElement;
      return a ? { tag: a.tagName.toLowerCase(), cls: a.className, row: a.closest('.row')?.getAttribute('data-id') ?? undefined, tree: a.getAttribute('data-tree') ?? undefined, inTabs: !!a.closest('nav.tabs') } : undefined;
    });

/** VS Code's modal dialog (a confirmation). */
export const dialog = (page) => page.locator('.monaco-dialog-box');

/** Runs a command from the palette (F1) by its title, e.g. "Spaces: Add App Tree". */
export async function runFromPalette(page, title) {
  const widget = page.locator('.quick-input-widget');
  const input = widget.locator('input.input').first();
  // A quick pick that is closing still shows (inert) for a moment, and F1 is lost when it lands
  // while the focus moves: F1 again until the palette takes the text.
  await widget.waitFor({ state: 'hidden', timeout: 5000 }).catch(() => undefined);
  await until('the command palette', async () => {
    if (!(await input.isVisible())) await page.keyboard.press('F1');
    await input.fill(`>${title}`, { timeout: 2000 });
    return true;
  }, { timeout: 20_000, interval: 200 });
  await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor();
  await page.keyboard.press('Enter');
}
