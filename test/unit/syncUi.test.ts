/**
 * The pure parts of the extension's team sync UI (src/views/sync/): the settings, the status
 * wording, the token store (with a map for SecretStorage) and the HTTP calls (against a real
 * server on port 0).
 */
import * as assert from 'node:assert/strict';
import { newVertexId } from '../../src/spaces/appTree';
import { Emitter } from '../../src/spaces/events';
import { ServerApiError, ensureServerSpace, listServerSpaces } from '../../src/persistence/server/serverApi';
import { normalizeServerUrl, parseConnectionSettings, serverOrigin, serverUrlProblem, updatedConnections } from '../../src/views/sync/settings';
import { stopReasonOf } from '../../src/protocol/stopReasons';
import { authFailureOf, clickRetries, statusBarText, statusOf, tooltipLines, treeDescription, type SpaceSyncState } from '../../src/views/sync/syncStatus';
import { TOKEN_ENV, TokenStore, tokenProblem, tokenSecretKey, type TokenSecrets } from '../../src/views/sync/tokens';
import { startTestServer, type TestServer } from '../helpers/syncServer';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const C = 'c'.repeat(32);

describe('team sync UI: settings', function () {
  it('server URLs: http(s) and ws(s), normalized to the base URL; anything else is refused with a reason', function () {
    assert.equal(normalizeServerUrl(' http://127.0.0.1:8787/ '), 'http://127.0.0.1:8787');
    assert.equal(normalizeServerUrl('ws://127.0.0.1:8787/v1/sync'), 'http://127.0.0.1:8787');
    assert.equal(normalizeServerUrl('wss://spaces.example.com/team/'), 'https://spaces.example.com/team');
    assert.throws(() => normalizeServerUrl(''), /empty/);
    assert.throws(() => normalizeServerUrl('127.0.0.1:8787'), /must start with http|not a URL/);
    assert.throws(() => normalizeServerUrl('ftp://example.com'), /must start with http/);
    assert.throws(() => normalizeServerUrl('https://ann:pw@example.com'), /user name or password/);
    assert.throws(() => normalizeServerUrl(`https://example.com/${'x'.repeat(3000)}`), /longer than/);
    assert.equal(serverUrlProblem('https://example.com'), undefined);
    assert.match(serverUrlProblem('nope') ?? '', /not a URL/);
    assert.equal(serverOrigin('ws://Example.com:443/v1/sync'), 'http://example.com:443');
    assert.equal(serverOrigin('https://example.com/team'), 'https://example.com');
  });

  it('connections: true uses the default server, a URL its own, false nothing; bad entries are reported and skipped', function () {
    const s = parseConnectionSettings('http://127.0.0.1:8787', { [A]: true, [B]: 'wss://other.example.com', [C]: false, nope: true, ['d'.repeat(32)]: 42, ['e'.repeat(32)]: 'ftp://x' });
    assert.equal(s.defaultUrl, 'http://127.0.0.1:8787');
    assert.deepEqual([...s.connections], [
      [A, 'http://127.0.0.1:8787'],
      [B, 'https://other.example.com'],
    ]);
    assert.equal(s.problems.length, 3, s.problems.join('\n'));
    assert.match(s.problems.join('\n'), /"nope".*not a space id/);
    assert.match(s.problems.join('\n'), /must be true, false or a server URL/);
    assert.match(s.problems.join('\n'), /must start with http/);

    const noDefault = parseConnectionSettings('', { [A]: true });
    assert.equal(noDefault.connections.size, 0);
    assert.match(noDefault.problems[0], /spaces\.server\.url is not set/);
    assert.match(parseConnectionSettings('garbage', {}).problems[0], /spaces\.server\.url/);
    assert.match(parseConnectionSettings(undefined, [A]).problems[0], /must be an object/);
    assert.match(parseConnectionSettings(7, undefined).problems[0], /must be a string/);
    assert.deepEqual(parseConnectionSettings(undefined, undefined), { defaultUrl: undefined, connections: new Map(), problems: [] });
  });

  it('updatedConnections changes one entry of one settings level, leaving the others', function () {
    assert.deepEqual(updatedConnections(undefined, A, true), { [A]: true });
    assert.deepEqual(updatedConnections({ [A]: true, [B]: 'https://x' }, A, undefined), { [B]: 'https://x' });
    assert.deepEqual(updatedConnections({ [B]: 'https://x' }, A, false), { [B]: 'https://x', [A]: false });
    assert.deepEqual(updatedConnections(['junk'], A, 'https://y'), { [A]: 'https://y' });
    const level = { [A]: true };
    updatedConnections(level, A, undefined);
    assert.deepEqual(level, { [A]: true }, 'the input is not changed');
  });
});

describe('team sync UI: status wording', function () {
  const base: SpaceSyncState = { spaceId: A, url: 'http://127.0.0.1:8787', status: 'connected', pendingOps: 0 };

  it('layer states map to UI states; stop codes to auth failures', function () {
    assert.deepEqual(statusOf({ status: 'connected' }), { status: 'connected' });
    assert.deepEqual(statusOf({ status: 'syncing' }), { status: 'syncing' });
    assert.deepEqual(statusOf({ status: 'offline', reason: 'ECONNREFUSED' }), { status: 'offline', reason: 'ECONNREFUSED' });
    assert.deepEqual(statusOf({ status: 'error', reason: 'token not recognised' }), { status: 'error', reason: 'token not recognised' });
    for (const [code, reason, auth] of [
      [4401, 'unauthorized', 'unauthorized'],
      [401, 'unauthorized', 'unauthorized'],
      [4403, 'forbidden', 'forbidden'],
      [403, 'forbidden', 'forbidden'],
      [4404, 'unknown-space', undefined],
      [4426, 'unsupported-version', undefined],
      [426, 'unsupported-version', undefined],
      [4408, undefined, undefined],
    ] as const) {
      assert.equal(stopReasonOf(code), reason, `stop code ${code}`);
      assert.equal(authFailureOf(stopReasonOf(code)), auth, `auth failure of ${code}`);
    }
    assert.equal(stopReasonOf(undefined), undefined);
    assert.equal(authFailureOf(undefined), undefined);
  });

  it('status bar text with codicons, tree descriptions, and what a click does', function () {
    const text = (status: SpaceSyncState['status']) => statusBarText({ ...base, status });
    assert.equal(text('connected'), '$(cloud) Synced');
    assert.equal(text('syncing'), '$(sync~spin) Syncing…');
    assert.equal(text('connecting'), '$(sync~spin) Connecting…');
    assert.equal(text('offline'), '$(cloud-offline) Offline');
    assert.equal(text('error'), '$(error) Sync error');
    assert.equal(text('signed-out'), '$(error) Not signed in');
    assert.equal(treeDescription(base), 'synced with 127.0.0.1:8787');
    assert.equal(treeDescription({ ...base, status: 'syncing' }), 'syncing… 127.0.0.1:8787');
    assert.equal(treeDescription({ ...base, status: 'offline' }), 'offline (127.0.0.1:8787)');
    assert.deepEqual(
      (['connected', 'syncing', 'connecting', 'offline', 'error', 'signed-out'] as const).map((status) => clickRetries({ ...base, status })),
      [false, false, false, true, true, true],
    );
  });

  it('the tooltip names the space, the server, pending ops and the last error, escaped', function () {
    const md = (t: string) => t.replace(/[*_]/g, '\\$&');
    const lines = tooltipLines({ ...base, status: 'offline', reason: 'connect ECONNREFUSED', lastError: 'old *problem*', pendingOps: 3 }, 'Team_notes', md);
    assert.deepEqual(lines, ['**Team\\_notes** — offline', 'Server: http://127.0.0.1:8787', 'Pending ops: 3', 'Reason: connect ECONNREFUSED', 'Last error: old \\*problem\\*', 'Click to retry now']);
    assert.equal(tooltipLines({ ...base, status: 'error', reason: 'unauthorized', auth: 'unauthorized' }, 'T').at(-1), 'Click to sign in');
    assert.equal(tooltipLines(base, 'T').at(-1), 'Click to show the log');
  });
});

class MapSecrets implements TokenSecrets {
  readonly map = new Map<string, string>();
  private readonly changes = new Emitter<{ key: string }>();
  readonly onDidChange = this.changes.event;
  async get(key: string): Promise<string | undefined> {
    return this.map.get(key);
  }
  async store(key: string, value: string): Promise<void> {
    this.map.set(key, value);
    this.changes.fire({ key });
  }
  async delete(key: string): Promise<void> {
    this.map.delete(key);
    this.changes.fire({ key });
  }
}

describe('team sync UI: tokens', function () {
  it('one SecretStorage key per server origin; $SPACES_SERVER_TOKEN only when none is stored', async function () {
    const secrets = new MapSecrets();
    const env: NodeJS.ProcessEnv = {};
    const tokens = new TokenStore(secrets, env);
    const changed: string[] = [];
    tokens.onDidChange((o) => changed.push(o));
    assert.equal(tokenSecretKey('ws://127.0.0.1:8787/v1/sync'), 'spaces.serverToken:http://127.0.0.1:8787');
    assert.equal(await tokens.get('http://127.0.0.1:8787'), undefined);
    env[TOKEN_ENV] = ' spt_from_env \n';
    assert.deepEqual(await tokens.get('http://127.0.0.1:8787'), { token: 'spt_from_env', source: 'environment' });
    await tokens.store('http://127.0.0.1:8787/', 'spt_stored');
    assert.deepEqual(await tokens.get('ws://127.0.0.1:8787'), { token: 'spt_stored', source: 'secret-storage' });
    assert.deepEqual(await tokens.get('http://127.0.0.1:9999'), { token: 'spt_from_env', source: 'environment' }, 'another server');
    assert.equal(await tokens.delete('http://127.0.0.1:8787'), true);
    assert.equal(await tokens.delete('http://127.0.0.1:8787'), false);
    assert.deepEqual(changed, ['http://127.0.0.1:8787', 'http://127.0.0.1:8787', 'http://127.0.0.1:8787']);
    await secrets.store('spaces.fileSecretKey', 'x');
    assert.equal(changed.length, 3, 'other secrets are not token changes');
    env[TOKEN_ENV] = 'has spaces';
    assert.equal(await tokens.get('http://127.0.0.1:8787'), undefined, 'a malformed environment token is ignored');
    tokens.dispose();
  });

  it('token shape checks never echo the token', async function () {
    assert.equal(tokenProblem('spt_abc'), undefined);
    assert.match(tokenProblem('') ?? '', /empty/);
    assert.match(tokenProblem('a b') ?? '', /no spaces/);
    assert.match(tokenProblem('x'.repeat(600)) ?? '', /at most 512/);
    assert.match(tokenProblem('spt_é') ?? '', /printable ASCII/);
    assert.ok(!(tokenProblem('secret value') ?? '').includes('secret'));
    await assert.rejects(new TokenStore(new MapSecrets(), {}).store('http://h', 'with space'), /no spaces/);
  });
});

describe('team sync UI: the server HTTP API', function () {
  this.timeout(30_000);
  let t: TestServer;
  before(async () => (t = await startTestServer()));
  after(() => t.stop());

  it('listServerSpaces checks the token: the list with roles, or "refused the token" (401)', async function () {
    const id = await t.createSpace('Listed');
    const spaces = await listServerSpaces(t.server.url, t.admin);
    assert.ok(spaces.some((s) => s.id === id && s.name === 'Listed' && s.role === 'admin'), JSON.stringify(spaces));
    await assert.rejects(listServerSpaces(t.server.url, 'spt_wrong'), (e: ServerApiError) => e instanceof ServerApiError && e.unauthorized && /refused the token/.test(e.message));
  });

  it('ensureServerSpace creates a local space with its id once; a token of another space may not', async function () {
    const id = newVertexId();
    assert.equal(await ensureServerSpace(t.server.url, t.admin, id, 'Made locally'), 'created');
    assert.equal(await ensureServerSpace(t.server.url, t.admin, id, 'Made locally'), 'exists');
    const other = t.token('write', newVertexId());
    await assert.rejects(ensureServerSpace(t.server.url, other, newVertexId(), 'Nope'), (e: ServerApiError) => e.status === 403 && /does not let this token create/.test(e.message));
    await assert.rejects(ensureServerSpace(t.server.url, t.admin, 'not-an-id', 'x'), /not a space id/);
  });

  it('a server that is not there, or not a spaces server, gives a clear error', async function () {
    await assert.rejects(listServerSpaces('http://127.0.0.1:1', 'spt_x', { timeoutMs: 2000 }), /cannot reach http:\/\/127\.0\.0\.1:1/);
    await assert.rejects(listServerSpaces(`${t.server.url}/somewhere`, t.admin), /HTTP 404/);
  });
});
