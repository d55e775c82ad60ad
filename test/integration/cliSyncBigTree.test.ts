/**
 * `spaces sync` of an old clone with a local edit after a teammate added 100,000 items to the same
 * tree through the server: the built CLI against a real server. Exit 0 must mean the edit reached
 * the server and the file holds the teammate's items (it used to overflow the stack on the
 * received ops, and to exit 0 with the edit unsent).
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, cliJson, runCli } from '../helpers/cli';
import { startTestServer, tempDir, type TestServer } from '../helpers/syncServer';

const ITEMS = 100_000;
/** Generous: the machine may be loaded; the CLI fails with a message if it is exceeded. */
const CLI_TIMEOUT_S = '600';

interface Summary {
  received: number;
  sent: number;
  seq: number;
}

interface DumpNode {
  props: Record<string, unknown>;
  children: DumpNode[];
}

describe('spaces sync: an old clone with a local edit after a teammate added 100k items', function () {
  this.timeout(20 * 60_000);
  let t: TestServer;
  let dir: string;
  const file = (name: string): string => path.join(dir, name);

  before(function () {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`node esbuild.mjs\` first`);
  });
  beforeEach(async () => {
    t = await startTestServer();
    dir = tempDir('spaces-cli-big-');
  });
  afterEach(async () => {
    await t.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sends the edit and stores the 100k items, or does not exit 0', async function () {
    const token = t.token('write');
    const sync = (name: string, extra: string[] = []): Promise<Summary> =>
      cliJson<Summary>(['sync', file(name), '--server', t.server.url, '--token', token, '--timeout', CLI_TIMEOUT_S, ...extra]);

    // The teammate made the space with its notes tree and pushed it; the old clone has it too.
    const { spaceId } = await cliJson<{ spaceId: string }>(['create', file('mate.space'), '--name', 'Big team']);
    const { treeId } = await cliJson<{ treeId: string }>(['app', 'add', file('mate.space'), '--app', 'notes', '--name', 'Notes']);
    await sync('mate.space');
    await sync('old.space', ['--space', spaceId]);

    // The old clone's local edit, not synced yet.
    await cliJson(['item', 'add', file('old.space'), '--tree', treeId, '--set', 'text=my local edit']);

    // The teammate adds 100k items and pushes them.
    const items = Array.from({ length: ITEMS }, (_, i) => ({ props: { text: `item ${i}` } }));
    await cliJson(['import', file('mate.space'), '--tree', treeId], { stdin: JSON.stringify(items) });
    const pushed = await sync('mate.space');
    assert.ok(pushed.sent >= ITEMS, `the teammate sent ${pushed.sent} ops`);

    // The old clone syncs: exit 0 only with both directions done.
    const r = await runCli(['sync', file('old.space'), '--server', t.server.url, '--token', token, '--timeout', CLI_TIMEOUT_S]);
    assert.equal(r.code, 0, `spaces sync exited ${r.code}: ${r.stderr}`);
    const old = JSON.parse(r.stdout) as Summary;
    assert.ok(old.received >= pushed.sent, `received ${old.received} of the ${pushed.sent} ops pushed`);
    assert.ok(old.sent > 0, 'the local edit was not sent');

    const mine = (d: DumpNode): boolean => d.children.some((c) => c.props.text === 'my local edit');
    const oldDump = await cliJson<DumpNode>(['dump', file('old.space'), '--tree', treeId]);
    assert.equal(oldDump.children.length, ITEMS + 1);
    assert.ok(mine(oldDump));

    // The server acknowledged the edit: the teammate gets it.
    const back = await sync('mate.space');
    assert.ok(back.received > 0);
    const mateDump = await cliJson<DumpNode>(['dump', file('mate.space'), '--tree', treeId]);
    assert.equal(mateDump.children.length, ITEMS + 1);
    assert.ok(mine(mateDump), "the teammate's file lacks the old clone's edit");
  });
});
