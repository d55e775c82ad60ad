/**
 * `spaces sync FILE --server URL [--token T] [--space ID] [--timeout S] [--watch]`
 *
 * One-shot: opens FILE (or creates it and clones server space --space ID into it), attaches a
 * ServerLayer that keeps its sync state in the file, opens every app tree (so each is reconciled
 * with what the server has), waits until the catch-up is stored in the file and everything local
 * is acknowledged, prints {"spaceId","file","received","sent","seq"} and exits. A server that
 * refuses the token, the space or writes, or that cannot be reached within --timeout, fails the
 * command with a message on stderr.
 *
 * --watch: keeps syncing until SIGINT/SIGTERM, printing a JSON line per sync event (and per
 * connection state), then closes cleanly and prints the same summary. It rides out outages
 * (reconnecting by itself) and stops only on an error retrying cannot fix (auth, unknown space).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { LayerConnectionState } from '../persistence/contract';
import { FileLayer } from '../persistence/file/fileLayer';
import { ServerLayer } from '../persistence/server/serverLayer';
import type { Space } from '../spaces/space';
import { SpaceManager } from '../spaces/spaceManager';
import { UsageError } from './usage';

export interface SyncIo {
  readonly secretKey: () => Buffer;
  readonly env: NodeJS.ProcessEnv;
  /** Prints one JSON line on stdout (events of --watch). */
  readonly out: (value: unknown) => void;
  /** Resolves with the signal's name at the first SIGINT or SIGTERM. */
  readonly untilSignal: () => Promise<string>;
}

export interface SyncSummary {
  readonly spaceId: string;
  readonly file: string;
  /** Ops received from the server. */
  readonly received: number;
  /** Ops the server acknowledged. */
  readonly sent: number;
  /** The server sequence the file is synced to. */
  readonly seq: number;
}

const ID_RE = /^[0-9a-f]{32}$/;
const CLIENT = 'spaces-cli/0.1.0';

export class SyncError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SyncError';
  }
}

function reasonOf(s: LayerConnectionState): string {
  return 'reason' in s && s.reason ? s.reason : s.status;
}

/**
 * Rejects when the layer reports an error — only one it gave up on (auth, unknown space) when
 * `onlyFatal`, any (read-only with ops waiting, refused ops) otherwise — or after `timeoutMs`.
 */
function failure(server: ServerLayer, url: string, timeoutMs: number | undefined, onlyFatal = false): { promise: Promise<never>; dispose(): void } {
  let timer: NodeJS.Timeout | undefined;
  let sub: { dispose(): void } | undefined;
  const promise = new Promise<never>((_, reject) => {
    const check = (s: LayerConnectionState): void => {
      if (s.status === 'error' && (server.stopped || !onlyFatal)) reject(new SyncError(`${url}: ${reasonOf(s)}`));
    };
    sub = server.onStateChange(check);
    check(server.state);
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => reject(new SyncError(`cannot sync with ${url} within ${timeoutMs / 1000} s: ${reasonOf(server.state)}`)), timeoutMs);
    }
  });
  promise.catch(() => undefined);
  return {
    promise,
    dispose() {
      clearTimeout(timer);
      sub?.dispose();
    },
  };
}

async function openAllAppTrees(space: Space): Promise<void> {
  for (const ref of space.appTreeRefs()) {
    try {
      await space.openAppTree(ref.id);
    } catch {
      // A tree listed but with no ops anywhere yet: nothing to reconcile.
    }
  }
}

export async function runSync(argv: string[], io: SyncIo): Promise<SyncSummary> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { server: { type: 'string' }, token: { type: 'string' }, space: { type: 'string' }, watch: { type: 'boolean' }, timeout: { type: 'string' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError(`expected FILE, got ${positionals.length ? positionals.join(' ') : 'nothing'}`);
  const url = values.server;
  if (!url) throw new UsageError('--server URL is required');
  try {
    new URL(url);
  } catch {
    throw new UsageError(`--server must be a URL (http(s)://host:port), got ${JSON.stringify(url)}`);
  }
  const token = values.token ?? io.env.SPACES_TOKEN;
  if (!token) throw new UsageError('give --token T or set $SPACES_TOKEN');
  if (values.space !== undefined && !ID_RE.test(values.space)) throw new UsageError('--space must be a space id (32 lowercase hex digits)');
  const timeoutS = values.timeout === undefined ? 30 : Number(values.timeout);
  if (!(timeoutS > 0 && timeoutS <= 86_400)) throw new UsageError('--timeout must be a number of seconds (0 < S ≤ 86400)');
  const watch = values.watch === true;
  const file = path.resolve(positionals[0]);

  const created = !fs.existsSync(file);
  let layer: FileLayer;
  if (created) {
    if (!values.space) throw new UsageError(`${positionals[0]} does not exist: give --space ID to clone a space from the server into it`);
    layer = await FileLayer.create(file, values.space, { secretKey: io.secretKey() });
  } else {
    layer = await FileLayer.open(file, { secretKey: io.secretKey() });
    if (values.space && values.space !== layer.spaceId) {
      await layer.close();
      throw new SyncError(`${positionals[0]} holds space ${layer.spaceId}, not ${values.space}`);
    }
  }
  const spaceId = layer.spaceId;
  const manager = new SpaceManager();
  let server: ServerLayer;
  try {
    server = new ServerLayer({ url, token, peerId: manager.peerId, spaceId, syncState: layer, client: CLIENT, timings: { loadTimeoutMs: timeoutS * 1000 } });
  } catch (e) {
    await layer.close();
    if (created) fs.rmSync(file, { force: true });
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  const summary = (): SyncSummary => ({ spaceId, file, received: server.stats.opsReceived, sent: server.stats.opsAcked, seq: server.seq });
  let ok = false;
  try {
    if (watch) {
      server.onSyncEvent(({ type, ...rest }) => io.out({ event: type, ...rest }));
      server.onStateChange((s) => io.out({ event: 'state', ...s }));
    }
    // A clone needs the server now; an existing file syncs as soon as the server answers.
    if (created || !watch) {
      const fail = failure(server, url, timeoutS * 1000);
      try {
        await Promise.race([server.whenReady(), fail.promise]);
      } finally {
        fail.dispose();
      }
    }
    const space = await manager.open(spaceId, [layer, server]);
    await openAllAppTrees(space);
    if (watch) {
      const fail = failure(server, url, undefined, true);
      try {
        const signal = await Promise.race([io.untilSignal(), fail.promise]);
        io.out({ event: 'signal', signal });
      } finally {
        fail.dispose();
      }
    } else {
      const fail = failure(server, url, timeoutS * 1000);
      try {
        await Promise.race([settle(manager, space, server, layer), fail.promise]);
      } finally {
        fail.dispose();
      }
      if (server.state.status === 'error') throw new SyncError(`${url}: ${reasonOf(server.state)}`);
    }
    const unsaved = await manager.close(spaceId);
    const fileProblems = unsaved.filter((u) => u.layerId === layer.id);
    // (The server's leftovers, if any, are in the file's outbox: the next sync sends them.)
    if (fileProblems.length) throw new SyncError(`could not save ${positionals[0]}: ${fileProblems.map((u) => u.error ?? `${u.pendingOps} ops pending`).join('; ')}`);
    ok = true;
    return summary();
  } finally {
    await manager.dispose();
    await server.close();
    await layer.close();
    if (!ok && created && server.seq === 0) fs.rmSync(file, { force: true });
  }
}

/** Until the file holds the catch-up and the server acknowledged everything local (stable twice). */
async function settle(manager: SpaceManager, space: Space, server: ServerLayer, layer: FileLayer): Promise<void> {
  for (;;) {
    await manager.flush(space.id);
    await server.whenIdle();
    const seq = server.seq;
    await server.refresh();
    await manager.flush(space.id);
    await layer.flush();
    if (server.seq === seq && server.outboxSize === 0) return;
  }
}
