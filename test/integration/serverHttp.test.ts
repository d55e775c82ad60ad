/** The HTTP endpoints on the sync port: health, metrics, listing and creating spaces. */
import * as assert from 'node:assert/strict';
import { newVertexId } from '../../src/spaces/appTree';
import { decodeOps } from '../../src/spaces/opCodec';
import { makeOps, rootOp } from '../conformance/opFixtures';
import { startTestServer, type TestServer } from '../helpers/syncServer';

describe('team server: HTTP', function () {
  this.timeout(60_000);
  let t: TestServer;

  beforeEach(async () => (t = await startTestServer()));
  afterEach(() => t.stop());

  const get = (p: string, token?: string): Promise<Response> => fetch(`${t.server.url}${p}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  const post = (body: unknown, token?: string): Promise<Response> =>
    fetch(`${t.server.url}/v1/spaces`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('GET /healthz reports the store and the fan-out bus', async () => {
    const res = await get('/healthz');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const body = (await res.json()) as { pid: number };
    assert.deepEqual(body, { ok: true, pid: body.pid, store: { ok: true, kind: 'sqlite' }, fanout: { ok: true, kind: 'local' } });
  });

  it('GET /metrics counts connections, spaces, ops, bytes and errors in Prometheus text', async () => {
    const spaceId = await t.createSpace('Metered');
    const c = await t.open(t.token('write'), ['pm']);
    await c.subscribe(spaceId);
    const tree = newVertexId();
    await c.ack(c.sendOps(spaceId, tree, [rootOp(tree, 1, 'pm'), ...makeOps(tree, 'pm', 2, 9)]));
    c.send({ type: 'subscribe', spaceId: newVertexId(), since: 0 });
    await c.next('error');
    const res = await get('/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const value = (name: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(`${name} `));
      assert.ok(line, `no ${name} in\n${text}`);
      return Number(line.split(' ')[1]);
    };
    for (const line of text.split('\n')) {
      if (line && !line.startsWith('#')) assert.match(line, /^[a-z_]+(\{[a-z]+="[^"]*"\})? \d+(\.\d+)?(e[+-]?\d+)?$/, line);
    }
    assert.equal(value('spaces_server_connections'), 1);
    assert.equal(value('spaces_server_spaces_loaded'), 1);
    assert.equal(value('spaces_server_subscriptions'), 1);
    assert.equal(value('spaces_server_ops_received_total'), 10);
    assert.equal(value('spaces_server_ops_stored_total'), 10);
    assert.ok(value('spaces_server_ops_sent_total') > 0, 'catch-up ops count as sent');
    assert.ok(value('spaces_server_bytes_received_total') > 0);
    assert.ok(value('spaces_server_bytes_sent_total') > 0);
    assert.equal(value('spaces_server_errors_total{code="not-found"}'), 1);
    assert.ok(value('process_heap_used_bytes') > 0);
  });

  it('GET /v1/spaces lists what the token may see, with its role', async () => {
    const a = await t.createSpace('Alpha');
    const b = await t.createSpace('Beta');
    assert.equal((await get('/v1/spaces')).status, 401);
    assert.equal((await get('/v1/spaces')).headers.get('www-authenticate'), 'Bearer');
    const bad = await get('/v1/spaces', 'spt_nope');
    assert.equal(bad.status, 401);
    assert.match(((await bad.json()) as { error: string }).error, /not recognised/);

    const all = (await (await get('/v1/spaces', t.token('read'))).json()) as { spaces: Array<{ id: string; name: string; role: string }> };
    assert.deepEqual(
      all.spaces.map((s) => [s.name, s.role]).sort(),
      [
        ['Alpha', 'read'],
        ['Beta', 'read'],
      ],
    );
    const one = (await (await get('/v1/spaces', t.token('write', b))).json()) as { spaces: unknown[] };
    assert.deepEqual(one.spaces, [{ id: b, name: 'Beta', role: 'write' }]);
    const none = (await (await get('/v1/spaces', t.token('admin', newVertexId()))).json()) as { spaces: unknown[] };
    assert.deepEqual(none.spaces, []);
    assert.notEqual(a, b);
  });

  it('POST /v1/spaces creates a space that clients can subscribe to', async () => {
    const res = await post({ name: 'Created' }, t.token('write'));
    assert.equal(res.status, 201);
    const body = (await res.json()) as { id: string; name: string };
    assert.match(body.id, /^[0-9a-f]{32}$/);
    assert.equal(body.name, 'Created');
    const c = await t.open(t.token('read'), ['pr']);
    const { ops, synced } = await c.subscribe(body.id);
    assert.equal(synced.seq, 1);
    const decoded = ops.flatMap((m) => decodeOps(m.ops, m.treeId, 'test'));
    assert.ok(decoded.some((op) => 'key' in op && op.key === 'name' && op.value === 'Created'));
    assert.ok(decoded.some((op) => 'parentId' in op && op.parentId === null && op.targetId === body.id), 'the root of the space tree');
  });

  it('POST /v1/spaces: who may create, and with which id', async () => {
    const id = newVertexId();
    assert.equal((await post({ name: 'x' })).status, 401);
    assert.equal((await post({ name: 'x' }, t.token('read'))).status, 403);
    assert.equal((await post({ name: 'x', id }, t.token('write', id))).status, 403, 'a write token of that space');
    assert.equal((await post({ name: 'x' }, t.token('admin', id))).status, 403, 'a space admin without the id');
    assert.equal((await post({ name: 'x', id: newVertexId() }, t.token('admin', id))).status, 403, 'a space admin, another id');
    const own = await post({ name: 'Mine', id }, t.token('admin', id));
    assert.equal(own.status, 201);
    assert.deepEqual(await own.json(), { id, name: 'Mine' });
    const again = await post({ name: 'Mine', id }, t.admin);
    assert.equal(again.status, 409);
    assert.match(((await again.json()) as { error: string }).error, /already exists/);
  });

  it('POST /v1/spaces: bad bodies are 400 or 413', async () => {
    const cases: Array<[unknown, number, RegExp]> = [
      ['{not json', 400, /JSON/],
      [[1, 2], 400, /object/],
      [{}, 400, /name/],
      [{ name: 42 }, 400, /name/],
      [{ name: '   ' }, 400, /space name/],
      [{ name: 'x'.repeat(201) }, 400, /space name/],
      [{ name: 'ok', id: 'ABC' }, 400, /id/],
      [{ name: 'x'.repeat(100_000) }, 413, /larger than/],
    ];
    for (const [body, status, msg] of cases) {
      const res = await post(body, t.admin);
      assert.equal(res.status, status, JSON.stringify(body).slice(0, 40));
      assert.match(((await res.json()) as { error: string }).error, msg);
    }
  });

  it('unknown paths are 404, wrong methods 405, JSON errors throughout', async () => {
    const res = await get('/nope');
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: 'nothing at /nope' });
    const del = await fetch(`${t.server.url}/v1/spaces`, { method: 'DELETE', headers: { Authorization: `Bearer ${t.admin}` } });
    assert.equal(del.status, 405);
    assert.equal(del.headers.get('allow'), 'GET, POST');
  });
});
