/**
 * `spaces sync` reports how far a first sync got (main.ts prints it on stderr when stderr is a
 * terminal): runSync in this process against a real server, its progress lines collected.
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runSync } from '../../src/cli/sync';
import { makeOps, rootOp } from '../conformance/opFixtures';
import { newVertexId } from '../../src/spaces/appTree';
import { startTestServer, tempDir, type TestServer } from '../helpers/syncServer';

describe('spaces sync: progress of a first sync', function () {
  this.timeout(60_000);
  let t: TestServer;
  let dir: string;

  beforeEach(async () => {
    t = await startTestServer();
    dir = tempDir('spaces-cli-progress-');
  });
  afterEach(async () => {
    await t.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a clone reports "connected, catching up" and what it received, through io.progress', async function () {
    const spaceId = await t.createSpace('Progress');
    const writer = await t.open(t.token('write'), ['pw']);
    const tree = newVertexId();
    await writer.ack(writer.sendOps(spaceId, tree, [rootOp(tree, 1, 'pw'), ...makeOps(tree, 'pw', 2, 500)]));
    const lines: string[] = [];
    const summary = await runSync([path.join(dir, 'clone.space'), '--server', t.server.url, '--token', t.token('read'), '--space', spaceId], {
      secretKey: () => Buffer.alloc(32, 3),
      env: {},
      out: () => undefined,
      untilSignal: () => new Promise<string>(() => undefined),
      progress: (line) => lines.push(line),
    });
    assert.ok(summary.received >= 501, `received ${summary.received}`);
    assert.ok(lines.some((l) => /catching up/.test(l)), `progress lines: ${JSON.stringify(lines)}`);
  });
});
