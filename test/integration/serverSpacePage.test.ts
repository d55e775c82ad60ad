/** GET /v1/spaces/page: the spaces a token may read, in bounded pages by id (the Team Server view's source). */
import * as assert from 'node:assert/strict';
import { SPACE_PAGE_LIMITS, SPACE_PAGE_PATH, type PagedSpace } from '../../src/server/spacePage';
import { newVertexId } from '../../src/spaces/appTree';
import { findTeamSpace, listTeamSpacePage } from '../../src/views/team/teamApi';
import { makeOps, rootOp } from '../conformance/opFixtures';
import { startTestServer, type TestServer } from '../helpers/syncServer';

interface PageBody {
  spaces: PagedSpace[];
  next?: string;
  error?: string;
}

describe('team server: GET /v1/spaces/page', function () {
  this.timeout(60_000);
  let t: TestServer;

  beforeEach(async () => (t = await startTestServer()));
  afterEach(() => t.stop());

  const get = async (query: string, token?: string): Promise<{ status: number; body: PageBody }> => {
    const res = await fetch(`${t.server.url}${SPACE_PAGE_PATH}${query}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    return { status: res.status, body: (await res.json()) as PageBody };
  };

  it('pages through every space once, in id order, with name, role, creation time and last change', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(await t.createSpace(`S${i}`));
    // A change to one space moves its lastSeq.
    const c = await t.open(t.token('write'), ['pw']);
    await c.subscribe(ids[3]);
    const tree = newVertexId();
    await c.ack(c.sendOps(ids[3], tree, [rootOp(tree, 1, 'pw'), ...makeOps(tree, 'pw', 2, 4)]));

    const reader = t.token('read');
    const seen: PagedSpace[] = [];
    let after = '';
    let pages = 0;
    for (;;) {
      const { status, body } = await get(`?limit=3${after ? `&after=${after}` : ''}`, reader);
      assert.equal(status, 200);
      assert.ok(body.spaces.length <= 3);
      seen.push(...body.spaces);
      pages++;
      if (!body.next) break;
      after = body.next;
    }
    assert.equal(pages, 3);
    assert.deepEqual(seen.map((s) => s.id), [...ids].sort());
    for (const s of seen) {
      assert.equal(s.role, 'read');
      assert.equal(s.name, `S${ids.indexOf(s.id)}`);
      assert.ok(s.created > 0);
    }
    const changed = seen.find((s) => s.id === ids[3]);
    const other = seen.find((s) => s.id === ids[0]);
    assert.ok(changed && other);
    assert.ok(changed.lastSeq > other.lastSeq, `a written space has a higher lastSeq (${changed.lastSeq} vs ${other.lastSeq})`);
  });

  it('lists only the space a one-space token covers, with its role', async () => {
    const a = await t.createSpace('A');
    await t.createSpace('B');
    const { status, body } = await get('', t.token('write', a));
    assert.equal(status, 200);
    assert.deepEqual(body.spaces.map((s) => [s.id, s.role]), [[a, 'write']]);
    assert.equal(body.next, undefined);
  });

  it('defaults to a bounded page', async () => {
    const { status, body } = await get('', t.admin);
    assert.equal(status, 200);
    assert.deepEqual(body.spaces, []);
    assert.ok(SPACE_PAGE_LIMITS.defaultLimit <= SPACE_PAGE_LIMITS.maxLimit);
  });

  it('refuses hostile queries with a 400 and a rule, and no token with a 401', async () => {
    for (const q of ['?limit=0', '?limit=-1', `?limit=${SPACE_PAGE_LIMITS.maxLimit + 1}`, '?limit=1e3', '?limit=abc', '?after=XYZ', '?after=../../etc', '?after=a&after=b', '?limit=1&limit=2', '?cursor=1', `?after=${'f'.repeat(33)}`]) {
      const { status, body } = await get(q, t.admin);
      assert.equal(status, 400, q);
      assert.equal(typeof body.error, 'string', q);
    }
    assert.equal((await get('')).status, 401);
    assert.equal((await get('', 'spt_not-a-token')).status, 401);
    // The server is still serving.
    assert.equal((await get('?limit=1', t.admin)).status, 200);
  });

  it('the extension\'s client pages through them and finds one space with one request of one entry', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await t.createSpace(`C${i}`));
    const token = t.token('write');
    const seen: string[] = [];
    let after: string | undefined;
    do {
      const page = await listTeamSpacePage(t.server.url, token, after, { limit: 2 });
      for (const s of page.spaces) seen.push(s.id);
      after = page.next;
    } while (after);
    assert.deepEqual(seen, [...ids].sort());
    for (const id of ids) assert.equal((await findTeamSpace(t.server.url, token, id))?.name, `C${ids.indexOf(id)}`);
    assert.equal(await findTeamSpace(t.server.url, t.token('read', ids[0]), ids[1]), undefined, 'a space the token may not read is not found');
    await assert.rejects(listTeamSpacePage(t.server.url, 'spt_wrong'), /refused the token/);
  });
});
