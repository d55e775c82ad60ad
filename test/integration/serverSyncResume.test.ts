/**
 * Resume: a client that synced before downloads only the batches after its stored seq — counted
 * in ops and in bytes on the wire — and a reconnect sends nothing the server already has.
 * Prints one JSON line with the measured numbers.
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import { silentLogger } from '../../src/server/log';
import { startServer, type RunningServer } from '../../src/server/server';
import type { ImportNode } from '../../src/spaces/appTree';
import { makeToken, tempDir } from '../helpers/syncServer';
import { SyncClient, converge, freePort } from '../helpers/syncClients';

function items(n: number, prefix: string): ImportNode[] {
  return Array.from({ length: n }, (_, i) => ({ props: { text: `${prefix} item ${i} with a few words of text` } }));
}

describe('team sync: resume', function () {
  this.timeout(120_000);
  let dir: string;
  let server: RunningServer | undefined;
  const clients: SyncClient[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await server?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('downloads only what is new since the stored seq, and resends nothing after a reconnect', async function () {
    dir = tempDir('spaces-sync-resume-');
    const data = `${dir}/server`;
    const port = await freePort();
    const admin = makeToken(data, 'admin', '*', { user: 'admin' }).token;
    const writer = makeToken(data, 'write', '*', { user: 'writer' }).token;
    server = await startServer({ dataDir: data, port, logger: silentLogger });
    const url = server.url;
    const res = await fetch(`${url}/v1/spaces`, { method: 'POST', headers: { Authorization: `Bearer ${admin}` }, body: JSON.stringify({ name: 'Big' }) });
    const spaceId = ((await res.json()) as { id: string }).id;
    const open = async (name: string): Promise<SyncClient> => {
      const c = await SyncClient.open(dir, name, url, writer, spaceId);
      clients.push(c);
      return c;
    };
    const closeClient = async (c: SyncClient): Promise<void> => {
      clients.splice(clients.indexOf(c), 1);
      await c.close();
    };

    // A writes a big space; C clones all of it.
    const a = await open('a');
    const notes = a.space.createAppTree('notes', 'Notes');
    notes.importNodes(notes.rootId, items(15_000, 'a'));
    await a.settle();
    const c = await open('c');
    await c.settle();
    const whole = { ops: c.server.stats.opsReceived, bytes: c.server.stats.bytesIn };
    assert.equal(await c.opCount(), await a.opCount());
    await closeClient(c);

    // While C is away, A adds about 5k ops.
    const before = notes.opCount;
    notes.importNodes(notes.rootId, items(1_700, 'later'));
    const added = notes.opCount - before;
    await a.settle();

    // C comes back from its file: only the new batches come down.
    const c2 = await open('c');
    await converge([a, c2]);
    const resume = { ops: c2.server.stats.opsReceived, bytes: c2.server.stats.bytesIn, sentBytes: c2.server.stats.bytesOut, opsSent: c2.server.stats.opsSent };
    assert.equal(resume.ops, added, `resume received ${resume.ops} ops, ${added} were new`);
    assert.equal(resume.opsSent, 0, 'the resumed client sent ops the server had');
    assert.deepEqual(await c2.dump(), await a.dump());

    // A reconnect (the server restarts on the same port) sends nothing and receives nothing new.
    const aSentBefore = a.server.stats.opsSent;
    const aReceivedBefore = a.server.stats.opsReceived;
    const aBytesOutBefore = a.server.stats.bytesOut;
    await server.close();
    server = await startServer({ dataDir: data, port, logger: silentLogger });
    await converge([a, c2]);
    const reconnect = { opsSent: a.server.stats.opsSent - aSentBefore, opsReceived: a.server.stats.opsReceived - aReceivedBefore, bytesOut: a.server.stats.bytesOut - aBytesOutBefore };
    assert.equal(reconnect.opsSent, 0);
    assert.equal(reconnect.opsReceived, 0);

    console.log(JSON.stringify({ bench: 'sync-resume', spaceOps: whole.ops, wholeBytes: whole.bytes, resumeOps: resume.ops, resumeBytes: resume.bytes, resumeBytesSent: resume.sentBytes, reconnectBytesSent: reconnect.bytesOut }));
    assert.ok(resume.bytes < whole.bytes / 5, `resume took ${resume.bytes} bytes, the whole space ${whole.bytes}`);
  });
});
