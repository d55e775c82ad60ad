/**
 * A client killed with SIGKILL while it edits: a local op is sent to the server before its write
 * to the space file lands (docs/sync-client.md, "Outgoing"), so a kill often catches ops the
 * server has (a teammate saw them) that the file does not. Nothing acknowledged may be lost: the
 * file's watermark never passes an op that is not durable in it, so the restarted client gets
 * those ops back from the server. Three rounds, the client restarted in a child process each time.
 */
import * as assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import type { AppTree } from '../../src/spaces/appTree';
import { isPropertyOp } from '../../src/spaces/ops';
import { makeToken, tempDir } from '../helpers/syncServer';
import { CLIENT_SECRET_KEY, SyncClient, freePort, spawnServerOn, type ServerProcess } from '../helpers/syncClients';

const CHILD = path.join(__dirname, '../helpers/syncWriterChild.js');
const ROUNDS = 3;
/** The teammate sees this many of the writer's edits before the writer is killed. */
const SEEN_BEFORE_KILL = 150;

/** Texts of the items of `tree` that `who` made. */
function textsBy(tree: AppTree, who: string): Set<string> {
  const out = new Set<string>();
  for (const op of tree.allOps()) if (isPropertyOp(op) && op.key === 'text' && typeof op.value === 'string' && op.value.startsWith(`${who} `)) out.add(op.value);
  return out;
}

/** What the space file holds durably, read as a new process would (no server). */
async function textsInFile(file: string, notesId: string, who: string): Promise<Set<string>> {
  const layer = await FileLayer.open(file, { secretKey: CLIENT_SECRET_KEY, watch: false });
  try {
    const out = new Set<string>();
    for (const op of await layer.loadTree(notesId)) if (isPropertyOp(op) && op.key === 'text' && typeof op.value === 'string' && op.value.startsWith(`${who} `)) out.add(op.value);
    return out;
  } finally {
    await layer.close();
  }
}

describe('team sync: a client killed with SIGKILL while its edits are sent before they are durable', function () {
  this.timeout(180_000);
  let dir: string;
  let srv: ServerProcess | undefined;
  let child: ChildProcess | undefined;
  const clients: SyncClient[] = [];

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all(clients.splice(0).map((c) => c.close()));
    if (srv && srv.child.exitCode === null && srv.child.signalCode === null) {
      srv.child.kill('SIGTERM');
      await srv.exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('every edit the server had comes back to the restarted client, also those its file never got', async function () {
    dir = tempDir('spaces-client-crash-');
    const data = `${dir}/server`;
    const admin = makeToken(data, 'admin', '*', { user: 'admin' }).token;
    const writer = makeToken(data, 'write', '*', { user: 'writer' }).token;
    srv = await spawnServerOn(data, await freePort());
    const url = srv.url;
    const res = await fetch(`${url}/v1/spaces`, { method: 'POST', headers: { Authorization: `Bearer ${admin}` }, body: JSON.stringify({ name: 'Client crash' }) });
    const spaceId = ((await res.json()) as { id: string }).id;
    const teammate = await SyncClient.open(dir, 'teammate', url, writer, spaceId);
    clients.push(teammate);
    const notes = teammate.space.createAppTree('notes', 'Notes');
    await teammate.settle();
    const file = path.join(dir, 'w.space');
    let notInFileButOnServer = 0;

    for (let round = 0; round < ROUNDS; round++) {
      const c = fork(CHILD, [dir, 'w', url, writer, spaceId, notes.id], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
      child = c;
      let err = '';
      c.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
      await new Promise<void>((resolve, reject) => {
        c.once('message', () => resolve());
        c.once('exit', (code) => reject(new Error(`the writer exited (${code}) before it was ready: ${err}`)));
      });
      const before = textsBy(notes, 'w').size;
      c.send('go');
      // The teammate sees the writer's edits only once the server committed them.
      await new Promise<void>((resolve) => {
        const check = (): void => {
          if (textsBy(notes, 'w').size < before + SEEN_BEFORE_KILL) return;
          d.dispose();
          resolve();
        };
        const d = teammate.manager.onDidChangeSpace(check);
        check();
      });
      c.kill('SIGKILL');
      await new Promise<void>((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve())));
      await teammate.settle(); // everything the server committed before the kill is here
      const onServer = textsBy(notes, 'w');
      const inFile = await textsInFile(file, notes.id, 'w');
      notInFileButOnServer += [...onServer].filter((t) => !inFile.has(t)).length;

      // The restarted client (this process) has every edit the server had.
      const again = await SyncClient.open(dir, 'w', url, writer, spaceId);
      try {
        await again.settle();
        const mine = textsBy(await again.space.openAppTree(notes.id), 'w');
        const lost = [...onServer].filter((t) => !mine.has(t));
        assert.deepEqual(lost.slice(0, 5), [], `round ${round}: ${lost.length} edits the server had are not in the restarted client`);
      } finally {
        await again.close();
      }
    }
    assert.ok(notInFileButOnServer > 0, 'no kill landed between an edit reaching the server and its file write: the rule was not exercised');
  });
});
