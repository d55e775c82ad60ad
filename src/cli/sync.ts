/**
 * `spaces sync FILE --server URL [--token T] [--space ID] [--timeout S] [--watch]`
 *
 * One-shot: opens FILE (or clones server space --space ID into a new FILE), attaches a ServerLayer
 * that keeps its sync state in the file, opens every app tree (so each is reconciled with what the
 * server has), waits until the catch-up is stored in the file and everything local is
 * acknowledged, prints {"spaceId","file","received","sent","seq"} and exits. A server that refuses
 * the token, the space or writes, that cannot be reached within --timeout, or a file that cannot
 * be written fails the command with a message on stderr: exit 0 means the file holds it all.
 *
 * A clone is written to a staging file next to FILE and put at FILE only once complete (staging.ts),
 * so a clone killed or failing half-way leaves no file that cannot be opened.
 *
 * A space the server does not have (an existing FILE pushed to a server for the first time) is
 * created there when the token may (POST /v1/spaces with the file's id and name), then its ops
 * are pushed; a token that may not gets an error saying what it needs.
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
import { discardStaged, placeStaged, removeStaleStaging, stagingPath } from '../persistence/file/staging';
import { ensureServerSpace } from '../persistence/server/serverApi';
import { ServerLayer } from '../persistence/server/serverLayer';
import { AppTree } from '../spaces/appTree';
import type { Space } from '../spaces/space';
import { SpaceManager } from '../spaces/spaceManager';
import { SpaceOpenError, type UnsavedReport } from '../spaces/spaceSession';
import { UsageError } from './usage';
import { ID_RULES, isHexId } from '../spaces/ids';

export interface SyncIo {
  readonly secretKey: () => Buffer;
  readonly env: NodeJS.ProcessEnv;
  /** Prints one JSON line on stdout (events of --watch). */
  readonly out: (value: unknown) => void;
  /** Resolves with the signal's name at the first SIGINT or SIGTERM. */
  readonly untilSignal: () => Promise<string>;
  /** Where a slow first sync reports how far it got (main.ts: stderr when it is a terminal). */
  readonly progress?: (line: string) => void;
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

const CLIENT = 'spaces-cli/0.1.0';
/** Putting a finished clone in place waits this long for the target's lock (as FileLayer's saves). */
export const PLACE_LOCK = { timeoutMs: 60_000, staleMs: 30_000 } as const;

export class SyncError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SyncError';
  }
}

function reasonOf(s: LayerConnectionState): string {
  return 'reason' in s && s.reason ? s.reason : s.status;
}

/** Why the sync failed, with what the token needs when it has no access to the space. */
function stateError(server: ServerLayer, url: string, s: LayerConnectionState, cloning: boolean): SyncError {
  const needs = server.stopReason !== 'forbidden'
    ? ''
    : cloning
      ? ` (a token with access to space ${server.spaceId} is needed)`
      : ` (a token with access to space ${server.spaceId} is needed, or one with write access to every space ('*') to create it there)`;
  return new SyncError(`${url}: ${reasonOf(s)}${needs}`);
}

/** The message of a failed store write, naming the file. */
function storeFailure(url: string, file: string, storeError: string): SyncError {
  return new SyncError(`cannot store what ${url} sent in ${file}: ${storeError}`);
}

/**
 * Rejects when the layer reports an error — only one it gave up on (auth, unknown space) when
 * `onlyFatal`, any (read-only with ops waiting, refused ops) otherwise; a failed store write in
 * both cases — or after `timeoutMs`. `handled(state)`: an error someone else deals with (the
 * creation of a space the server lacks).
 */
export function failure(
  server: ServerLayer,
  url: string,
  file: string,
  timeoutMs: number | undefined,
  opts: { onlyFatal?: boolean; handled?: () => boolean; cloning?: boolean } = {},
): { promise: Promise<never>; dispose(): void } {
  let timer: NodeJS.Timeout | undefined;
  const subs: Array<{ dispose(): void }> = [];
  const promise = new Promise<never>((_, reject) => {
    const check = (s: LayerConnectionState): void => {
      if (server.storeError !== undefined) reject(storeFailure(url, file, server.storeError));
      else if (s.status === 'error' && (server.stopped || !opts.onlyFatal) && !opts.handled?.()) reject(stateError(server, url, s, opts.cloning === true));
    };
    subs.push(server.onStateChange(check));
    // A store failure while not connected changes no state: its event is enough.
    subs.push(server.onSyncEvent((e) => e.type === 'store-error' && check(server.state)));
    check(server.state);
    if (timeoutMs !== undefined) {
      // Counted from the last progress: a big space on a slow link or a busy server is waited for.
      const arm = (): void => {
        clearTimeout(timer);
        timer = setTimeout(() => reject(new SyncError(`cannot sync with ${url} within ${timeoutMs / 1000} s: ${reasonOf(server.state)}`)), timeoutMs);
      };
      arm();
      subs.push(server.onLoadProgress(arm));
      subs.push(server.onSyncEvent((e) => e.type !== 'store-error' && e.type !== 'refused' && arm()));
    }
  });
  promise.catch(() => undefined);
  return {
    promise,
    dispose() {
      clearTimeout(timer);
      for (const s of subs) s.dispose();
    },
  };
}

/**
 * Creates the space on the server the first time the server says it has none (stop reason
 * `unknown-space`), then
 * reconnects; `promise` rejects when the token may not create it. `handled()` is true from that
 * answer until the creation is done, so that the refusal does not fail the sync meanwhile.
 */
function createWhenMissing(
  server: ServerLayer,
  o: SyncOptions,
  name: () => Promise<string>,
): { promise: Promise<never>; handled(): boolean; dispose(): void } {
  let state: 'waiting' | 'creating' | 'done' = 'waiting';
  let sub: { dispose(): void } | undefined;
  const promise = new Promise<never>((_, reject) => {
    const check = (): void => {
      if (state !== 'waiting' || !server.stopped || server.stopReason !== 'unknown-space') return;
      state = 'creating';
      name()
        .then((n) => ensureServerSpace(o.url, o.token, server.spaceId, n, { timeoutMs: o.timeoutMs }))
        .then(
          () => {
            state = 'done';
            server.retry();
          },
          (e: unknown) => {
            state = 'done';
            reject(new SyncError(`${o.url} has no space ${server.spaceId} and it could not be created: ${e instanceof Error ? e.message : String(e)}`));
          },
        );
    };
    sub = server.onStateChange(check);
    check();
  });
  promise.catch(() => undefined);
  return {
    promise,
    handled: () => state !== 'done' && server.stopReason === 'unknown-space',
    dispose: () => sub?.dispose(),
  };
}

/** The space's name as the file has it (for creating the space on a server). */
async function fileSpaceName(layer: FileLayer, peerId: string): Promise<string> {
  const tree = AppTree.fromOps(peerId, layer.spaceId, await layer.loadTree(layer.spaceId));
  try {
    const name = tree.getProp(layer.spaceId, 'name');
    return typeof name === 'string' && name ? name : 'Space';
  } finally {
    tree.dispose();
  }
}

/**
 * Opens every app tree, so each is reconciled with every layer. Only a tree no layer holds an op
 * of yet (listed in the space tree, its ops not written anywhere) is skipped; any other failure
 * fails the sync: a tree that did not load was not reconciled, and its edits were not sent.
 */
export async function openAllAppTrees(space: Space): Promise<void> {
  for (const ref of space.appTreeRefs()) {
    try {
      await space.openAppTree(ref.id);
    } catch (e) {
      if (!(e instanceof SpaceOpenError && e.noOps)) throw new SyncError(`cannot load app tree ${ref.id}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

interface SyncOptions {
  /** FILE as given (for messages). */
  readonly given: string;
  /** FILE, absolute. */
  readonly file: string;
  readonly url: string;
  readonly token: string;
  readonly space: string | undefined;
  readonly timeoutMs: number;
  readonly watch: boolean;
}

function parseSyncArgs(argv: string[], io: SyncIo): SyncOptions {
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
  if (values.space !== undefined && !isHexId(values.space)) throw new UsageError(`--space must be a space id (${ID_RULES.hex})`);
  const timeoutS = values.timeout === undefined ? 30 : Number(values.timeout);
  if (!(timeoutS > 0 && timeoutS <= 86_400)) throw new UsageError('--timeout must be a number of seconds (0 < S ≤ 86400)');
  return { given: positionals[0], file: path.resolve(positionals[0]), url, token, space: values.space, timeoutMs: timeoutS * 1000, watch: values.watch === true };
}

export async function runSync(argv: string[], io: SyncIo): Promise<SyncSummary> {
  const o = parseSyncArgs(argv, io);
  if (fs.existsSync(o.file)) {
    const layer = await FileLayer.open(o.file, { secretKey: io.secretKey() });
    if (o.space && o.space !== layer.spaceId) {
      await layer.close();
      throw new SyncError(`${o.given} holds space ${layer.spaceId}, not ${o.space}`);
    }
    return syncFile(o, io, layer, false);
  }
  if (!o.space) throw new UsageError(`${o.given} does not exist: give --space ID to clone a space from the server into it`);
  const cloned = await clone(o, io, o.space);
  if (!o.watch) return cloned;
  // --watch on a new file: the clone is complete (and in place) before watching starts.
  const watched = await syncFile(o, io, await FileLayer.open(o.file, { secretKey: io.secretKey() }), false);
  return { ...watched, received: cloned.received + watched.received, sent: cloned.sent + watched.sent };
}

/** Clones `spaceId` into a staging file and puts it at FILE once it is complete. */
async function clone(o: SyncOptions, io: SyncIo, spaceId: string): Promise<SyncSummary> {
  removeStaleStaging(o.file);
  const staged = stagingPath(o.file);
  let placed = false;
  try {
    const layer = await FileLayer.create(staged, spaceId, { secretKey: io.secretKey(), watch: false });
    const summary = await syncFile({ ...o, watch: false }, io, layer, true);
    await placeStaged(staged, o.file, PLACE_LOCK);
    placed = true;
    return summary;
  } catch (e) {
    // File errors name the staging file: say which clone failed.
    if (e instanceof SyncError || e instanceof UsageError) throw e;
    throw new SyncError(`cannot clone space ${spaceId} into ${o.given}: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    if (!placed) discardStaged(staged);
  }
}

/** Syncs an open file layer with the server (see the header); closes the layer. */
async function syncFile(o: SyncOptions, io: SyncIo, layer: FileLayer, cloning: boolean): Promise<SyncSummary> {
  const { url, timeoutMs, watch } = o;
  const spaceId = layer.spaceId;
  const manager = new SpaceManager();
  let server: ServerLayer;
  try {
    server = new ServerLayer({ url, token: o.token, peerId: manager.peerId, spaceId, syncState: layer, client: CLIENT, timings: { loadTimeoutMs: timeoutMs } });
  } catch (e) {
    await layer.close();
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  // Pushing a file to a server that lacks its space: create it there (a clone needs it to exist).
  const creation = cloning ? undefined : createWhenMissing(server, o, () => fileSpaceName(layer, manager.peerId));
  const handled = (): boolean => creation?.handled() ?? false;
  const failures = (ms: number | undefined, onlyFatal = false): ReturnType<typeof failure> => failure(server, url, o.given, ms, { onlyFatal, handled, cloning });
  const race = async <T>(work: Promise<T>, fail: ReturnType<typeof failure>): Promise<T> => {
    try {
      return await Promise.race([work, fail.promise, ...(creation ? [creation.promise] : [])]);
    } finally {
      fail.dispose();
    }
  };
  if (io.progress) {
    const report = io.progress;
    server.onLoadProgress((p) => report(p.message));
  }
  // Listening for SIGINT/SIGTERM from the start: one that comes early still closes cleanly.
  const signalled = watch ? io.untilSignal() : undefined;
  let summary: SyncSummary;
  try {
    if (watch) {
      server.onSyncEvent(({ type, ...rest }) => io.out({ event: type, ...rest }));
      server.onStateChange((s) => io.out({ event: 'state', ...s }));
    }
    // A clone needs the server now; an existing file syncs as soon as the server answers.
    if (cloning || !watch) await race(server.whenReady(), failures(timeoutMs));
    const space = await manager.open(spaceId, [layer, server]);
    await openAllAppTrees(space);
    if (signalled) {
      const signal = await race(signalled, failures(undefined, true));
      io.out({ event: 'signal', signal });
    } else {
      await race(settle(manager, space, server, layer), failures(timeoutMs));
      if (server.state.status === 'error') throw stateError(server, url, server.state, cloning);
    }
    // The server layer first, while the file still takes what arrives during its close.
    const serverLeft = await manager.removeLayer(spaceId, server.id);
    const unsaved = await manager.close(spaceId);
    const problems = [...(serverLeft ? [serverLeft] : []), ...unsaved];
    if (problems.length) throw new SyncError(`could not sync ${o.given}: ${describeUnsaved(problems)}`);
    summary = { spaceId, file: o.file, received: server.stats.opsReceived, sent: server.stats.opsAcked, seq: server.seq };
  } finally {
    creation?.dispose();
    await manager.dispose();
    await server.close();
    await layer.close();
  }
  if (server.storeError !== undefined) throw storeFailure(url, o.given, server.storeError);
  return summary;
}

export function describeUnsaved(problems: readonly UnsavedReport[]): string {
  return problems.map((u) => `${u.label}: ${u.error ?? `${u.pendingOps} ops not saved`}`).join('; ');
}

/** Until the file holds the catch-up and the server acknowledged everything local (stable twice). */
export async function settle(manager: SpaceManager, space: Space, server: ServerLayer, layer: FileLayer): Promise<void> {
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
