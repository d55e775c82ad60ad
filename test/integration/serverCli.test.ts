/** The `spaces-server` command line (dist/server.js): token create/list/revoke and usage errors. */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CloseCode, PROTOCOL_VERSION } from '../../src/protocol/messages';
import { runScript, type CliResult } from '../helpers/cli';
import { SERVER_JS, TestClient, spawnServer, tempDir } from '../helpers/syncServer';

function run(args: string[]): Promise<CliResult> {
  return runScript(SERVER_JS, args);
}

async function json<T>(args: string[]): Promise<T> {
  const r = await run(args);
  assert.equal(r.code, 0, `spaces-server ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

interface PublicToken {
  id: string;
  user: string;
  space: string;
  role: string;
  created: string;
  expires: string | null;
  revoked: string | null;
  token?: string;
}

describe('spaces-server command line', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('token create prints the token once; list shows no secret; the token is not in the database files', async () => {
    const space = 'ab'.repeat(16);
    const created = await json<PublicToken>(['token', 'create', '--data', dir, '--user', 'alice', '--space', space, '--role', 'write', '--expires', '30']);
    assert.match(created.token ?? '', /^spt_[A-Za-z0-9_-]{43}$/);
    assert.equal(created.user, 'alice');
    assert.equal(created.space, space);
    assert.equal(created.role, 'write');
    const days = (Date.parse(created.expires ?? '') - Date.parse(created.created)) / 86_400_000;
    assert.ok(Math.abs(days - 30) < 0.001, `expires in ${days} days`);
    const star = await json<PublicToken>(['token', 'create', '--data', dir, '--user', 'ops', '--space', '*', '--role', 'admin']);
    assert.equal(star.expires, null);

    const list = await json<{ tokens: PublicToken[] }>(['token', 'list', '--data', dir]);
    assert.deepEqual(
      list.tokens.map((x) => x.id),
      [created.id, star.id],
    );
    for (const x of list.tokens) {
      assert.deepEqual(Object.keys(x).sort(), ['created', 'expires', 'id', 'revoked', 'role', 'space', 'user']);
    }
    const text = JSON.stringify(list);
    assert.ok(!text.includes(created.token ?? '?') && !text.includes(star.token ?? '?'));

    for (const f of fs.readdirSync(dir)) {
      const bytes = fs.readFileSync(path.join(dir, f));
      for (const tok of [created.token, star.token]) assert.ok(!bytes.includes(tok ?? '?'), `${f} holds a token in the clear`);
    }
    const keyMode = fs.statSync(path.join(dir, 'server.key')).mode & 0o777;
    assert.equal(keyMode, 0o600);
  });

  it('token revoke marks the token revoked and the server refuses it', async () => {
    const t = await json<PublicToken>(['token', 'create', '--data', dir, '--user', 'bob', '--space', '*', '--role', 'read']);
    const server = await spawnServer(dir);
    try {
      const { client, welcome } = await TestClient.open(server.syncUrl, t.token ?? '');
      assert.equal(welcome.user, 'bob');
      await client.close();
      assert.deepEqual(await json(['token', 'revoke', '--data', dir, t.id]), { id: t.id, revoked: true });
      const list = await json<{ tokens: PublicToken[] }>(['token', 'list', '--data', dir]);
      assert.ok(list.tokens[0].revoked !== null);
      const again = await TestClient.connect(server.syncUrl);
      again.send({ type: 'hello', protocol: PROTOCOL_VERSION, token: t.token ?? '', peerIds: ['p'] });
      const closed = await again.whenClosed();
      assert.equal(closed.code, CloseCode.unauthorized);
      assert.match(closed.reason, /revoked/);
      const missing = await run(['token', 'revoke', '--data', dir, 'nope']);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no token with id "nope"/);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('bad arguments exit 2 with a clear message', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['token'], /needs a subcommand/],
      [['token', 'rotate', '--data', dir], /unknown token subcommand "rotate"/],
      [['token', 'create', '--data', dir, '--user', 'a', '--space', '*'], /--role is required/],
      [['token', 'create', '--data', dir, '--user', 'a', '--space', '*', '--role', 'owner'], /--role must be read, write or admin/],
      [['token', 'create', '--data', dir, '--user', 'a', '--space', 'not-an-id', '--role', 'read'], /space must be a space id/],
      [['token', 'create', '--data', dir, '--user', 'a', '--space', '*', '--role', 'read', '--expires', '-1'], /--expires needs a value|--expires must be/],
      [['token', 'create', '--data', dir, '--user', 'a', '--space', '*', '--role', 'read', '--expires', 'soon'], /--expires must be a number/],
      [['token', 'list'], /--data is required/],
      [['token', 'list', '--data', dir, '--user', 'x'], /--user does not apply/],
      [['token', 'revoke', '--data', dir], /exactly one token id/],
      [['serve'], /--data is required/],
      [['serve', '--data', dir, '--port', '70000'], /--port must be an integer from 0 to 65535/],
      [['serve', '--data', dir, '--port'], /--port needs a value/],
      [['serve', '--data', dir, '--verbose', 'yes'], /unknown option --verbose/],
      [['serve', '--data', dir, '--log-level', 'loud'], /--log-level must be/],
      [['serve', 'extra', '--data', dir], /unexpected argument "extra"/],
    ];
    for (const [args, msg] of cases) {
      const r = await run(args);
      assert.equal(r.code, 2, `${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      assert.match(r.stderr, msg, args.join(' '));
      assert.match(r.stderr, /spaces-server --help/);
    }
    const help = await run(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /token create --data DIR --user NAME/);
  });

  it('serve exits 1 with a JSON error line on a port in use, or on a directory another server uses', async () => {
    const first = await spawnServer(dir);
    const other = tempDir();
    try {
      const lastLine = (r: CliResult): { level?: string; msg?: string; error?: string } => JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { level?: string; msg?: string; error?: string };
      const port = new URL(first.url).port;
      const busyPort = await run(['serve', '--data', other, '--port', port]);
      assert.equal(busyPort.code, 1);
      assert.equal(lastLine(busyPort).level, 'error');
      assert.equal(lastLine(busyPort).msg, 'cannot start');
      assert.match(lastLine(busyPort).error ?? '', /EADDRINUSE/);
      assert.ok(!fs.existsSync(path.join(other, 'server.lock')), 'the lock was released');
      const busyDir = await run(['serve', '--data', dir, '--port', '0']);
      assert.equal(busyDir.code, 1);
      assert.match(lastLine(busyDir).error ?? '', new RegExp(`another server \\(pid ${first.child.pid}\\) is using this data directory`));
    } finally {
      first.child.kill('SIGTERM');
      await first.exited;
      fs.rmSync(other, { recursive: true, force: true });
    }
    assert.ok(!fs.existsSync(path.join(dir, 'server.lock')), 'a stopped server leaves no lock');
  });

  it('logs are JSON lines with time, level and msg, and never a token', async () => {
    const t = await json<PublicToken>(['token', 'create', '--data', dir, '--user', 'carol', '--space', '*', '--role', 'admin']);
    const server = await spawnServer(dir, ['--log-level', 'debug']);
    const { client } = await TestClient.open(server.syncUrl, t.token ?? '');
    await client.close();
    server.child.kill('SIGTERM');
    const exit = await server.exited;
    assert.equal(exit.code, 0);
    assert.ok(server.lines.length >= 4);
    for (const line of server.lines) {
      const o = JSON.parse(line) as Record<string, unknown>;
      assert.equal(typeof o.time, 'string');
      assert.ok(['debug', 'info', 'warn', 'error'].includes(o.level as string));
      assert.equal(typeof o.msg, 'string');
      assert.ok(!line.includes(t.token ?? '?'), `a log line holds the token: ${line}`);
    }
    assert.ok(server.lines.some((l) => l.includes('"client connected"') && l.includes('"user":"carol"')));
  });
});
