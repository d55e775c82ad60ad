#!/usr/bin/env node
// UI test of working as a team (docs/team.md) through the real UI: VS Code (code-server) in
// headless Chromium, the extension from this folder, on the fixture workspace with
// "spaces.server.url" set to a real team server and its token in $SPACES_SERVER_TOKEN (signed in).
// A teammate makes a space with the CLI and puts it on the server with `spaces sync`, as they
// would; then, clicking like a user:
//
//   1. the Team Server view lists the teammate's space; its inline "Open in Workspace" asks for
//      the file name (Enter takes the space's name), and the Spaces view shows the joined space,
//      its app tree and its items; the file is in the workspace, connected in the settings
//   2. the teammate adds an item and syncs: it shows in the Spaces view
//   3. Rename on a note in the Spaces view: the teammate's next sync has the new text
//   4. Show History on that note (context menu): the quick pick lists both texts, the new one in
//      force, and who wrote it
//
//   node scripts/e2e/team-ui-test.mjs [--keep] [--verbose]
//
// Needs `npm run compile && npm run build`; runs setup-code-server.sh itself.
// Exit code 0 = passed, 1 = a check failed or a UI step timed out, 2 = harness problem.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectWorkspace, makeFixture, requireBuilt, setupCodeServer, startTeamServer, tempDir } from './fixture.mjs';
import { createRun, openSpacesView, treeRow, until } from './ui-harness.mjs';

const { values: opt } = parseArgs({ options: { keep: { type: 'boolean', default: false }, verbose: { type: 'boolean', default: false } } });
const SPACE = 'Team Plan';

const run = createRun('team-ui-test', opt);
await run.main(async ({ say, check, onCleanup, openWorkbench }) => {
  requireBuilt('team-ui-test', []);
  setupCodeServer();
  const tmp = tempDir('spaces-team-ui-');
  onCleanup(() => (opt.keep ? say(`kept ${tmp}`) : fs.rmSync(tmp, { recursive: true, force: true })));
  const { fixture, env, spaces } = await makeFixture(tmp);
  const server = await startTeamServer(path.join(tmp, 'server-data'));
  onCleanup(() => server.stop());

  // The teammate: a space of their own, outside the workspace, put on the server.
  const theirs = path.join(tmp, 'theirs.space');
  const { spaceId } = await spaces('create', theirs, '--name', SPACE);
  const { treeId } = await spaces('app', 'add', theirs, '--app', 'notes', '--name', 'Plan');
  await spaces('item', 'add', theirs, '--tree', treeId, '--set', 'text=Call Bob');
  const teammateSync = () => spaces('sync', theirs, '--server', server.url, '--token', server.token);
  await teammateSync();
  const teammateTexts = async () => {
    await teammateSync();
    return (await spaces('dump', theirs, '--tree', treeId)).children.map((c) => c.props.text);
  };
  // This window: the default server set, no space connected yet.
  connectWorkspace(fixture.workspace, server.url, []);
  say(`teammate's space ${spaceId} on ${server.url}`);

  const { page } = await openWorkbench({ folder: fixture.workspace, env: { ...env, SPACES_SERVER_TOKEN: server.token } });
  await openSpacesView(page);
  const short = { timeout: 15_000, interval: 100 };

  // 1. Join from the Team Server view.
  const teamRow = treeRow(page, SPACE, 'Team Server');
  await until(`the Team Server view to list "${SPACE}"`, () => teamRow.first().isVisible(), short);
  check(true, `the Team Server view lists "${SPACE}"`);
  const open = teamRow.first().locator('.action-label[aria-label="Open in Workspace"]');
  await until('the inline Open in Workspace action', async () => {
    await teamRow.first().hover();
    if (!(await open.isVisible())) return false;
    await open.click({ timeout: 2000 });
    return true;
  }, short);
  const input = page.locator('.quick-input-widget input.input').first();
  await until('the file name box', async () => (await input.isVisible()) && (await input.inputValue()) === `${SPACE}.space`, short);
  check(true, `the file name box proposes "${SPACE}.space"`);
  await page.keyboard.press('Enter');
  const file = path.join(fixture.workspace, `${SPACE}.space`);
  await until('the joined file in the workspace', () => fs.existsSync(file), { timeout: 60_000, interval: 200 });
  // The connection is written once the clone is in place.
  const settingsFile = path.join(fixture.workspace, '.vscode', 'settings.json');
  await until('the connection in the workspace settings', () => JSON.parse(fs.readFileSync(settingsFile, 'utf8'))['spaces.server.connections']?.[spaceId] === true, short);
  check(true, 'the joined space is connected in the workspace settings');
  const expand = async (label) => {
    const row = treeRow(page, label).first();
    await until(`the "${label}" row`, () => row.isVisible(), short);
    // The twistie: a click on an app tree's label opens it in the editor instead.
    if ((await row.getAttribute('aria-expanded')) === 'false') await row.locator('.monaco-tl-twistie').click();
    await until(`"${label}" expanded`, async () => (await row.getAttribute('aria-expanded')) === 'true', short);
  };
  await expand(SPACE);
  await expand('Plan');
  await until('the teammate\'s item in the Spaces view', () => treeRow(page, 'Call Bob').first().isVisible(), short);
  check(true, 'the Spaces view shows the joined space, its app tree "Plan" and the item "Call Bob"');

  // 2. A teammate's edit shows.
  await spaces('item', 'add', theirs, '--tree', treeId, '--set', 'text=From the teammate');
  await teammateSync();
  await until('the teammate\'s new item in the Spaces view', () => treeRow(page, 'From the teammate').first().isVisible(), { timeout: 30_000, interval: 100 });
  check(true, 'a teammate\'s new item shows in the Spaces view');

  // 3. An edit here reaches the teammate: Rename on the note.
  const menuItem = (label) => page.locator('.context-view .action-label', { hasText: new RegExp(`^${label}$`) });
  const fromMenu = async (rowLabel, label) => {
    await until(`"${label}" from the context menu of "${rowLabel}"`, async () => {
      if (await menuItem(label).isVisible()) {
        await menuItem(label).click({ timeout: 2000 });
        return true;
      }
      await treeRow(page, rowLabel).first().click({ button: 'right' });
      return false;
    }, short);
  };
  await fromMenu('Call Bob', 'Rename');
  await until('the rename box', () => input.isVisible(), short);
  await input.fill('Call Bob at 10');
  await page.keyboard.press('Enter');
  await until('the renamed note at the teammate', async () => (await teammateTexts()).includes('Call Bob at 10'), { timeout: 30_000, interval: 500 });
  check(true, 'a note renamed in the Spaces view reaches the teammate');

  // 4. Show History on it.
  await until('the renamed row', () => treeRow(page, 'Call Bob at 10').first().isVisible(), short);
  await fromMenu('Call Bob at 10', 'Show History');
  const rows = page.locator('.quick-input-list .monaco-list-row');
  const texts = await until('the history quick pick', async () => {
    const all = await rows.allInnerTexts();
    return all.some((t) => t.includes('text "Call Bob at 10"')) && all.some((t) => t.includes('text "Call Bob"')) && all;
  }, short);
  const current = texts.find((t) => t.includes('text "Call Bob at 10"')) ?? '';
  check(current.includes('in force now') && current.includes('e2e'), `the new text is in force, by the signed-in user: ${JSON.stringify(current)}`);
  check(texts.some((t) => t.includes('text "Call Bob"') && t.includes('pick to restore')), 'the teammate\'s text is listed to restore');
  await page.keyboard.press('Escape');
});
