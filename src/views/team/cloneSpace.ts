/**
 * Cloning a team server's space into a new `*.space` file, for "Open in Workspace" and join
 * links (docs/team.md). No `vscode` here: the extension passes progress and cancellation in, the
 * integration tests run it against a real server.
 *
 * Like `spaces sync FILE --space ID` (src/cli/sync.ts, whose steps it reuses): the clone is built
 * in a staging file next to FILE (src/persistence/file/staging.ts) with its own SpaceManager and a
 * ServerLayer that keeps its sync state in that file, every app tree is opened so that each is
 * fetched, and only when everything the server had is stored is the file put at FILE. Cancelled
 * or failed at any point, the staging file is removed and nothing is at FILE. The finished file
 * holds the server's watermark, so the extension's own connection resumes from it instead of
 * downloading the space again.
 */
import fs from 'node:fs';
import { describeUnsaved, failure, openAllAppTrees, PLACE_LOCK, settle, SyncError } from '../../cli/sync';
import type { LoadProgress } from '../../persistence/contract';
import { FileLayer } from '../../persistence/file/fileLayer';
import { discardStaged, placeStaged, removeStaleStaging, stagingPath } from '../../persistence/file/staging';
import { ServerLayer } from '../../persistence/server/serverLayer';
import { isHexId, ID_RULES } from '../../spaces/ids';
import { SpaceManager } from '../../spaces/spaceManager';

/** A clone waits this long for the server without any progress before it fails. */
export const CLONE_STALL_MS = 60_000;

export interface CloneOptions {
  /** The server's base URL (normalized: the form ServerLayer ids use). */
  readonly url: string;
  readonly token: string;
  readonly spaceId: string;
  /** The new file (absolute); nothing may be there yet. */
  readonly file: string;
  readonly secretKey: Uint8Array | undefined;
  /** Free text the server logs. */
  readonly client: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: LoadProgress) => void;
  readonly stallMs?: number;
}

export interface CloneResult {
  readonly spaceId: string;
  readonly file: string;
  /** Ops received from the server. */
  readonly received: number;
  /** The server sequence the file is synced to. */
  readonly seq: number;
}

/** The clone was cancelled: nothing was left at the target. */
export class CloneCancelledError extends Error {
  constructor(readonly file: string) {
    super(`cloning into ${file} was cancelled; nothing was written there`);
    this.name = 'CloneCancelledError';
  }
}

/** Clones space `spaceId` of the server into `file` (see the header). */
export async function cloneServerSpace(o: CloneOptions): Promise<CloneResult> {
  if (!isHexId(o.spaceId)) throw new TypeError(`space id must be ${ID_RULES.hex}: ${o.spaceId}`);
  if (fs.existsSync(o.file)) throw new SyncError(`${o.file} exists already: choose another file for the clone`);
  const cancelled = (): boolean => o.signal?.aborted === true;
  const cancel = new Promise<never>((_, reject) => {
    if (cancelled()) reject(new CloneCancelledError(o.file));
    o.signal?.addEventListener('abort', () => reject(new CloneCancelledError(o.file)), { once: true });
  });
  cancel.catch(() => undefined);
  removeStaleStaging(o.file);
  const staged = stagingPath(o.file);
  const stallMs = o.stallMs ?? CLONE_STALL_MS;
  const manager = new SpaceManager();
  let layer: FileLayer | undefined;
  let server: ServerLayer | undefined;
  let placed = false;
  try {
    layer = await Promise.race([FileLayer.create(staged, o.spaceId, { secretKey: o.secretKey, watch: false }), cancel]);
    const file: FileLayer = layer;
    const srv: ServerLayer = (server = new ServerLayer({ url: o.url, token: o.token, peerId: manager.peerId, spaceId: o.spaceId, syncState: file, client: o.client, timings: { loadTimeoutMs: stallMs } }));
    if (o.onProgress) srv.onLoadProgress(o.onProgress);
    const race = async <T>(work: Promise<T>): Promise<T> => {
      const fail = failure(srv, o.url, o.file, stallMs, { cloning: true });
      try {
        return await Promise.race([work, fail.promise, cancel]);
      } finally {
        fail.dispose();
      }
    };
    await race(srv.whenReady());
    const space = await race(manager.open(o.spaceId, [file, srv]));
    await race(openAllAppTrees(space));
    await race(settle(manager, space, srv, file));
    const left = await manager.removeLayer(o.spaceId, srv.id);
    const unsaved = await manager.close(o.spaceId);
    const problems = [...(left ? [left] : []), ...unsaved];
    if (problems.length) throw new SyncError(`could not clone space ${o.spaceId}: ${describeUnsaved(problems)}`);
    await srv.close();
    await file.close();
    if (srv.storeError !== undefined) throw new SyncError(`cannot store what ${o.url} sent in ${o.file}: ${srv.storeError}`);
    if (cancelled()) throw new CloneCancelledError(o.file);
    await placeStaged(staged, o.file, PLACE_LOCK);
    placed = true;
    return { spaceId: o.spaceId, file: o.file, received: srv.stats.opsReceived, seq: srv.seq };
  } finally {
    await manager.dispose();
    await server?.close();
    await layer?.close();
    if (!placed) discardStaged(staged);
  }
}
