/** Tokens and roles on the sync socket: 4401 for bad tokens, `error forbidden` for refused requests. */
import * as assert from 'node:assert/strict';
import { CloseCode, PROTOCOL_VERSION } from '../../src/protocol/messages';
import { newVertexId } from '../../src/spaces/appTree';
import { makeOps, rootOp, secret } from '../conformance/opFixtures';
import { TestClient, makeToken, revokeToken, startTestServer, withStore, type TestServer } from '../helpers/syncServer';

const DAY = 86_400_000;

describe('team server: authentication and access', function () {
  this.timeout(60_000);
  let t: TestServer;
  let spaceId: string;

  beforeEach(async () => {
    t = await startTestServer({ pingIntervalMs: 100 });
    spaceId = await t.createSpace('Private');
  });
  afterEach(() => t.stop());

  async function helloWith(token: string, opts = {}): Promise<{ code: number; reason: string }> {
    const c = await TestClient.connect(t.server.syncUrl, opts);
    t.clients.push(c);
    c.send({ type: 'hello', protocol: PROTOCOL_VERSION, token, peerIds: ['p1'] });
    return c.whenClosed();
  }

  it('a missing token → 4401', async () => {
    const closed = await helloWith('');
    assert.equal(closed.code, CloseCode.unauthorized);
    assert.match(closed.reason, /hello.token/);
  });

  it('an unknown token → 4401', async () => {
    const closed = await helloWith('spt_' + 'A'.repeat(43));
    assert.equal(closed.code, CloseCode.unauthorized);
    assert.match(closed.reason, /token not recognised/);
  });

  it('an expired token → 4401', async () => {
    const token = withStore(t.dir, (s) => s.tokens.create({ user: 'old', space: '*', role: 'write', expiresDays: 1 }, Date.now() - 2 * DAY).token);
    const closed = await helloWith(token);
    assert.equal(closed.code, CloseCode.unauthorized);
    assert.match(closed.reason, /token expired/);
  });

  it('a revoked token → 4401, and a live socket is closed once its token is revoked', async () => {
    const live = makeToken(t.dir, 'write');
    const client = await t.open(live.token);
    await client.subscribe(spaceId);
    revokeToken(t.dir, live.id);
    const closedLive = await client.whenClosed();
    assert.equal(closedLive.code, CloseCode.unauthorized);
    assert.match(closedLive.reason, /token revoked/);
    const closed = await helloWith(live.token);
    assert.equal(closed.code, CloseCode.unauthorized);
    assert.match(closed.reason, /token revoked/);
  });

  it('an Authorization header token is used instead of the one in hello', async () => {
    const viaHeader = await TestClient.connect(t.server.syncUrl, { headers: { Authorization: `Bearer ${t.token('read', spaceId, { user: 'header-user' })}` } });
    t.clients.push(viaHeader);
    viaHeader.send({ type: 'hello', protocol: PROTOCOL_VERSION, token: 'repeated-or-anything', peerIds: ['p1'] });
    assert.equal((await viaHeader.next('welcome')).user, 'header-user');
    const closed = await helloWith(t.admin, { headers: { Authorization: 'Bearer spt_not-a-real-token' } });
    assert.equal(closed.code, CloseCode.unauthorized);
  });

  it('a token for another space gets error forbidden and the socket stays usable', async () => {
    const other = await t.createSpace('Other');
    const c = await t.open(t.token('admin', other));
    c.send({ type: 'subscribe', spaceId, since: 0 });
    const err = await c.next('error');
    assert.equal(err.code, 'forbidden');
    assert.equal(err.spaceId, spaceId);
    const tree = newVertexId();
    const refused = await c.result(c.sendOps(spaceId, tree, [rootOp(tree, 1, 'p1')]));
    assert.equal(refused.type, 'error');
    assert.equal(refused.type === 'error' && refused.code, 'forbidden');
    const { synced } = await c.subscribe(other);
    assert.equal(synced.role, 'admin');
    assert.equal(withStore(t.dir, (s) => s.lastSeq(spaceId)), 1, 'nothing stored in the forbidden space');
  });

  it('an unknown space gets error not-found', async () => {
    const c = await t.open(t.admin);
    const missing = newVertexId();
    c.send({ type: 'subscribe', spaceId: missing, since: 0 });
    const err = await c.next('error');
    assert.equal(err.code, 'not-found');
    const tree = newVertexId();
    const r = await c.result(c.sendOps(missing, tree, [rootOp(tree, 1, 'p1')]));
    assert.ok(r.type === 'error' && r.code === 'not-found');
    assert.equal(withStore(t.dir, (s) => s.getSpace(missing)), undefined);
  });

  it("a read-only client's writes are refused, not stored and not fanned out", async () => {
    const reader = await t.open(t.token('read', spaceId), ['r1']);
    const watcher = await t.open(t.token('read', spaceId), ['w1']);
    const writer = await t.open(t.token('write', spaceId), ['pw']);
    const { synced } = await reader.subscribe(spaceId);
    assert.equal(synced.role, 'read');
    await watcher.subscribe(spaceId);
    await writer.subscribe(spaceId);
    const tree = newVertexId();
    const ref = reader.sendOps(spaceId, tree, [rootOp(tree, 1, 'r1'), ...makeOps(tree, 'r1', 2, 10)]);
    const refused = await reader.result(ref);
    assert.ok(refused.type === 'error' && refused.code === 'forbidden' && refused.ref === ref, JSON.stringify(refused));
    const sref = reader.sendSecrets(spaceId, [secret('k', 'v', 1, 'r1')]);
    const srefused = await reader.result(sref);
    assert.ok(srefused.type === 'error' && srefused.code === 'forbidden');
    // The next batch anyone sees is the writer's, with the next seq: nothing of the reader's went out.
    const wack = await writer.ack(writer.sendOps(spaceId, tree, [rootOp(tree, 1, 'pw')]));
    assert.equal(wack.seq, 2);
    const seen = await watcher.next('ops');
    assert.equal(seen.seq, 2);
    assert.deepEqual(seen.ops, [[0, 1, 'pw', tree, null]]);
    assert.ok(!watcher.received.some((m) => m.type === 'secrets'));
    withStore(t.dir, (s) => {
      assert.deepEqual(s.loadSecrets(spaceId), []);
      assert.equal(s.loadTreeOps(spaceId, tree).length, 1);
    });
  });
});
