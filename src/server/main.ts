/**
 * `spaces-server` entry point: `serve` (the default) and the `token` commands.
 * Token commands print JSON on stdout; errors go to stderr (exit 1, or 2 for usage errors).
 */
import { MAX_CLOCK_STEP } from '../crdt';
import { USAGE, UsageError, noMorePositionals, numberFlag, parseArgs, required, type Parsed } from './args';
import { errorText, isLogLevel, jsonLogger } from './log';
import { startServer, type RunningServer } from './server';
import { openSpaceStore } from './store/openStore';
import type { SpaceStore } from './store/spaceStore';
import { TokenError, isRole, type TokenInfo } from './store/tokenStore';

const DEFAULT_PORT = 8420;
/** `serve` flags of the connection caps, the slow-consumer time and the admission bounds (docs/server.md, Limits). */
const SERVE_LIMIT_FLAGS = ['max-connections', 'max-connections-per-address', 'max-connections-per-token', 'slow-consumer-seconds', 'max-counter-gap', 'max-secret-skew-seconds'];

function out(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function publicToken(t: TokenInfo): Record<string, string | null> {
  return { id: t.id, user: t.user, space: t.space, role: t.role, created: iso(t.created), expires: iso(t.expires), revoked: iso(t.revoked) };
}

/** Opens the store `p` names (--data, and --store for PostgreSQL), runs `fn`, closes it. */
async function withStore<T>(p: Parsed, fn: (store: SpaceStore) => Promise<T>): Promise<T> {
  const store = await openSpaceStore({ dataDir: required(p, 'data'), store: p.flags.get('store') });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function tokenCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, ['data', 'store', 'user', 'space', 'role', 'expires']);
  const [sub, ...rest] = p.positionals;
  const only = (allowed: string[]): void => {
    for (const k of p.flags.keys()) if (!allowed.includes(k)) throw new UsageError(`--${k} does not apply to token ${sub}`);
  };
  switch (sub) {
    case 'create': {
      only(['data', 'store', 'user', 'space', 'role', 'expires']);
      noMorePositionals(p, 1, 'token create');
      const role = required(p, 'role');
      if (!isRole(role)) throw new UsageError('--role must be read, write or admin');
      const user = required(p, 'user');
      const space = required(p, 'space');
      const expiresDays = numberFlag(p, 'expires', 0.001, 36_500, false);
      const { token, info } = await withStore(p, (s) => s.tokens.create({ user, space, role, expiresDays }));
      out({ ...publicToken(info), token });
      process.stderr.write('Store this token now: the server keeps only its hash and cannot show it again.\n');
      return 0;
    }
    case 'list': {
      only(['data', 'store']);
      noMorePositionals(p, 1, 'token list');
      out({ tokens: (await withStore(p, (s) => s.tokens.list())).map(publicToken) });
      return 0;
    }
    case 'revoke': {
      only(['data', 'store']);
      if (rest.length !== 1) throw new UsageError('token revoke needs exactly one token id');
      noMorePositionals(p, 2, 'token revoke');
      const id = rest[0];
      const ok = await withStore(p, (s) => s.tokens.revoke(id));
      if (!ok) {
        process.stderr.write(`spaces-server: no token with id ${JSON.stringify(id)}\n`);
        return 1;
      }
      out({ id, revoked: true });
      return 0;
    }
    case 'set-role': {
      only(['data', 'store', 'role']);
      if (rest.length !== 1) throw new UsageError('token set-role needs exactly one token id');
      noMorePositionals(p, 2, 'token set-role');
      const role = required(p, 'role');
      if (!isRole(role)) throw new UsageError('--role must be read, write or admin');
      const id = rest[0];
      const updated = await withStore(p, async (s) => ((await s.tokens.setRole(id, role)) ? s.tokens.get(id) : undefined));
      if (!updated) {
        process.stderr.write(`spaces-server: no token with id ${JSON.stringify(id)}\n`);
        return 1;
      }
      out(publicToken(updated));
      return 0;
    }
    case undefined:
      throw new UsageError('token needs a subcommand: create, list, revoke or set-role');
    default:
      throw new UsageError(`unknown token subcommand ${JSON.stringify(sub)}`);
  }
}

async function serve(p: Parsed): Promise<number> {
  noMorePositionals(p, 0, 'serve');
  const dataDir = required(p, 'data');
  const port = numberFlag(p, 'port', 0, 65_535, true) ?? DEFAULT_PORT;
  const idle = numberFlag(p, 'idle-seconds', 0.01, 86_400, false);
  const ping = numberFlag(p, 'ping-seconds', 0.01, 3_600, false);
  const maxConnections = numberFlag(p, 'max-connections', 1, 1_000_000, true);
  const perAddress = numberFlag(p, 'max-connections-per-address', 1, 1_000_000, true);
  const perToken = numberFlag(p, 'max-connections-per-token', 1, 1_000_000, true);
  const slowConsumer = numberFlag(p, 'slow-consumer-seconds', 0.01, 3_600, false);
  const counterGap = numberFlag(p, 'max-counter-gap', 1, MAX_CLOCK_STEP, true);
  const secretSkew = numberFlag(p, 'max-secret-skew-seconds', 0, 366 * 86_400, false);
  const level = p.flags.get('log-level') ?? 'info';
  if (!isLogLevel(level)) throw new UsageError('--log-level must be debug, info, warn or error');
  const logger = jsonLogger(level);
  let server: RunningServer;
  try {
    server = await startServer({
      dataDir,
      store: p.flags.get('store'),
      port,
      host: p.flags.get('host') ?? '127.0.0.1',
      idleUnloadMs: idle === undefined ? undefined : idle * 1000,
      pingIntervalMs: ping === undefined ? undefined : ping * 1000,
      connectionCaps: { total: maxConnections, perAddress, perToken },
      connectionLimits: slowConsumer === undefined ? undefined : { slowConsumerMs: slowConsumer * 1000 },
      admission: {
        ...(counterGap === undefined ? {} : { maxCounterGap: counterGap }),
        ...(secretSkew === undefined ? {} : { maxSecretSkewMs: secretSkew * 1000 }),
      },
      logger,
    });
  } catch (e) {
    logger.error('cannot start', { error: errorText(e) });
    return 1;
  }
  logger.info('listening', { url: server.url, syncUrl: server.syncUrl, serverId: server.serverId, store: server.storeKind, pid: process.pid });
  const running = server;
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      logger.info('signal', { signal });
      running.close().then(resolve, (e: unknown) => {
        logger.error('shutdown failed', { error: errorText(e) });
        resolve();
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  return 0;
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    if (argv[0] === 'token') return await tokenCommand(argv.slice(1));
    const rest = argv[0] === 'serve' ? argv.slice(1) : argv;
    return await serve(parseArgs(rest, ['data', 'store', 'port', 'host', 'idle-seconds', 'ping-seconds', 'log-level', ...SERVE_LIMIT_FLAGS]));
  } catch (e) {
    const usage = e instanceof UsageError || e instanceof TokenError;
    process.stderr.write(`spaces-server: ${errorText(e)}\n${usage ? 'Run `spaces-server --help` for usage.\n' : ''}`);
    return usage ? 2 : 1;
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code));
