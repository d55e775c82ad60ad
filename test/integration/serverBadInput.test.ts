/**
 * Bad frames close only the socket that sent them, with the documented code and a reason; the
 * server keeps serving every other client and stores nothing invalid.
 */
import * as assert from 'node:assert/strict';
import { CloseCode, PROTOCOL_LIMITS, PROTOCOL_VERSION } from '../../src/protocol/messages';
import { newVertexId } from '../../src/spaces/appTree';
import { encodeOps } from '../../src/spaces/opCodec';
import { makeOps, rootOp } from '../conformance/opFixtures';
import { TestClient, startTestServer, withStore, type TestServer } from '../helpers/syncServer';

interface BadCase {
  readonly name: string;
  /** Frames sent after hello (unless `beforeHello`). */
  readonly frames: (spaceId: string, treeId: string) => Array<string | Buffer>;
  readonly beforeHello?: boolean;
  readonly code: number;
  readonly reason: RegExp;
}

function deepValue(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

const opsFrame = (spaceId: string, treeId: string, ops: unknown[]): string => JSON.stringify({ type: 'ops', spaceId, treeId, ops, ref: 1 });

const CASES: BadCase[] = [
  { name: 'a frame that is not JSON', frames: () => ['{"type": "ops", oops'], code: CloseCode.badMessage, reason: /not JSON/ },
  { name: 'a JSON frame that is not an object', frames: () => ['[1,2,3]'], code: CloseCode.badMessage, reason: /must be an object/ },
  { name: 'a binary frame', frames: () => [Buffer.from([1, 2, 3])], code: CloseCode.badMessage, reason: /binary/ },
  { name: 'an unknown message type', frames: () => [JSON.stringify({ type: 'delete-everything' })], code: CloseCode.badMessage, reason: /unknown message type/ },
  { name: 'an unknown field', frames: (s) => [JSON.stringify({ type: 'subscribe', spaceId: s, since: 0, admin: true })], code: CloseCode.badMessage, reason: /unknown field/ },
  { name: 'a bad space id', frames: () => [JSON.stringify({ type: 'subscribe', spaceId: '../../etc', since: 0 })], code: CloseCode.badMessage, reason: /spaceId/ },
  { name: 'a second hello', frames: () => [JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, token: 'x', peerIds: ['p1'] })], code: CloseCode.badMessage, reason: /hello was sent already/ },
  { name: 'ops that are not an array', frames: (s, t) => [JSON.stringify({ type: 'ops', spaceId: s, treeId: t, ops: 5, ref: 1 })], code: CloseCode.badMessage, reason: /ops must be an array/ },
  { name: 'an op of an unknown kind', frames: (s, t) => [opsFrame(s, t, [[7, 1, 'p1', 'x', 'y']])], code: CloseCode.badMessage, reason: /not an encoded op/ },
  { name: 'an op with a short tuple', frames: (s, t) => [opsFrame(s, t, [[1, 1, 'p1', 'x']])], code: CloseCode.badMessage, reason: /not an encoded op/ },
  { name: 'an op with counter 0', frames: (s, t) => [opsFrame(s, t, [[1, 0, 'p1', 'x', 'k', 1]])], code: CloseCode.badMessage, reason: /counter/ },
  { name: 'an op with a fractional counter', frames: (s, t) => [opsFrame(s, t, [[1, 1.5, 'p1', 'x', 'k', 1]])], code: CloseCode.badMessage, reason: /counter/ },
  { name: 'a move of the root', frames: (s, t) => [opsFrame(s, t, [[0, 5, 'p1', t, 'x']])], code: CloseCode.badMessage, reason: /root cannot be moved/ },
  { name: 'a value nested too deep', frames: (s, t) => [opsFrame(s, t, [[1, 5, 'p1', 'x', 'k', deepValue(40)]])], code: CloseCode.badMessage, reason: /not JSON/ },
  {
    name: 'one bad op in an otherwise good batch',
    frames: (s, t) => [opsFrame(s, t, [...encodeOps(makeOps(t, 'p1', 1, 5)), [1, -3, 'p1', 'x', 'k', 1], ...encodeOps(makeOps(t, 'p1', 10, 5))])],
    code: CloseCode.badMessage,
    reason: /op #5/,
  },
  { name: 'ops under a peer id hello did not announce', frames: (s, t) => [opsFrame(s, t, encodeOps([rootOp(t, 1, 'p1'), ...makeOps(t, 'mallory', 1, 3)]))], code: CloseCode.badMessage, reason: /peer id mallory/ },
  {
    name: `a batch over ${PROTOCOL_LIMITS.maxOpsPerBatch} ops`,
    frames: (s, t) => [opsFrame(s, t, encodeOps(makeOps(t, 'p1', 1, PROTOCOL_LIMITS.maxOpsPerBatch + 1)))],
    code: CloseCode.tooLarge,
    reason: /at most 20000 ops/,
  },
  {
    name: `a frame over ${PROTOCOL_LIMITS.maxFrameBytes} bytes`,
    frames: (s, t) => [opsFrame(s, t, [[1, 1, 'p1', 'x', 'k', 'x'.repeat(PROTOCOL_LIMITS.maxFrameBytes)]])],
    code: CloseCode.tooLarge,
    reason: /over the 8388608-byte limit/,
  },
  { name: 'a text frame that is not UTF-8', frames: () => [Buffer.from([0x7b, 0xff, 0xfe, 0x7d])], code: CloseCode.badMessage, reason: /UTF-8/ },
  { name: 'a message before hello', beforeHello: true, frames: (s) => [JSON.stringify({ type: 'subscribe', spaceId: s, since: 0 })], code: CloseCode.unauthorized, reason: /first message must be hello/ },
  { name: 'garbage before hello', beforeHello: true, frames: () => ['GET / HTTP/1.1'], code: CloseCode.badMessage, reason: /not JSON/ },
  { name: 'a hello with protocol 2', beforeHello: true, frames: () => [JSON.stringify({ type: 'hello', protocol: 2, token: 'x', peerIds: ['p1'] })], code: CloseCode.unsupportedVersion, reason: /protocol 2 is not supported/ },
  { name: 'a hello with bad peer ids', beforeHello: true, frames: () => [JSON.stringify({ type: 'hello', protocol: 1, token: 'x', peerIds: ['UPPER'] })], code: CloseCode.badMessage, reason: /peerIds/ },
];

describe('team server: bad input', function () {
  this.timeout(60_000);
  let t: TestServer;
  let spaceId: string;
  let good: TestClient;
  let baseline: { ops: number; seq: number };

  beforeEach(async () => {
    t = await startTestServer();
    spaceId = await t.createSpace('Target');
    good = await t.open(t.token('write'), ['good']);
    await good.subscribe(spaceId);
    baseline = withStore(t.dir, (s) => ({ ops: s.opCount(spaceId), seq: s.lastSeq(spaceId) }));
  });
  afterEach(() => t.stop());

  for (const c of CASES) {
    it(`${c.name} → ${c.code}`, async () => {
      const tree = newVertexId();
      const bad = c.beforeHello ? await TestClient.connect(t.server.syncUrl) : await t.open(t.token('write'), ['p1']);
      if (!c.beforeHello) await bad.subscribe(spaceId);
      for (const f of c.frames(spaceId, tree)) bad.ws.send(f, { binary: Buffer.isBuffer(f) && c.name.includes('binary') });
      const closed = await bad.whenClosed();
      assert.equal(closed.code, c.code, `close code (reason: ${closed.reason})`);
      assert.match(closed.reason, c.reason);

      // The other client is still served, and its batch is the only thing stored since.
      const ack = await good.ack(good.sendOps(spaceId, tree, makeOps(tree, 'good', 10, 3)));
      assert.equal(ack.seq, baseline.seq + 1);
      withStore(t.dir, (s) => {
        assert.equal(s.opCount(spaceId), baseline.ops + 3, 'something invalid was stored');
        assert.equal(s.lastSeq(spaceId), baseline.seq + 1);
      });
    });
  }

  it('no hello within the timeout → 4408', async () => {
    const quick = await startTestServer({ helloTimeoutMs: 100 });
    try {
      const c = await TestClient.connect(quick.server.syncUrl);
      const closed = await c.whenClosed();
      assert.equal(closed.code, CloseCode.timeout);
      assert.match(closed.reason, /no hello within 100 ms/);
    } finally {
      await quick.stop();
    }
  });

  it('a client that does not answer pings → 4408, a client that does stays', async () => {
    const quick = await startTestServer({ pingIntervalMs: 50 });
    try {
      const mute = await quick.open(quick.admin, ['m'], { autoPong: false });
      const fine = await quick.open(quick.admin, ['f']);
      const closed = await mute.whenClosed();
      assert.equal(closed.code, CloseCode.timeout);
      assert.match(closed.reason, /no pong/);
      // The answering client lived through the same pings and still works.
      const space = await quick.createSpace('Alive');
      const { synced } = await fine.subscribe(space);
      assert.equal(synced.seq, 1);
    } finally {
      await quick.stop();
    }
  });

  it('unknown paths are refused at upgrade; /v1/sync over plain HTTP says so', async () => {
    await assert.rejects(TestClient.connect(t.server.syncUrl.replace('/v1/sync', '/v2/sync')), /404/);
    const res = await fetch(`${t.server.url}/v1/sync`);
    assert.equal(res.status, 426);
  });
});
