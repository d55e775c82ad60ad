/**
 * Sync clients for integration tests: a SpaceManager over a FileLayer (which is also the
 * ServerLayer's SyncStateStore) and a ServerLayer, as the extension and `spaces sync` set them up;
 * helpers to wait until clients converged (by events and round trips, not by sleeping), to dump a
 * whole space, and to run the built server as a child process on a fixed port (for SIGKILL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import { ServerLayer, type ServerLayerTimings } from '../../src/persistence/server/serverLayer';
import type { SyncStateStore } from '../../src/persistence/server/syncState';
import type { DumpNode } from '../../src/spaces/appTree';
import type { Space } from '../../src/spaces/space';
import { SpaceManager } from '../../src/spaces/spaceManager';
import { SERVER_JS } from './syncServer';

export const CLIENT_TIMINGS: Partial<ServerLayerTimings> = { backoffBaseMs: 50, backoffMaxMs: 500, loadTimeoutMs: 10_000, closeTimeoutMs: 5_000, heartbeatMs: 1_000, deadAfterMs: 5_000 };
/** The secret key of every SyncClient's space file. */
export const CLIENT_SECRET_KEY = Buffer.alloc(32, 5);
const KEY = CLIENT_SECRET_KEY;

export interface SpaceDump {
  readonly space: DumpNode;
  readonly apps: Record<string, DumpNode>;
}

export class SyncClient {
  private constructor(
    readonly name: string,
    readonly manager: SpaceManager,
    readonly file: FileLayer,
    readonly server: ServerLayer,
    readonly space: Space,
  ) {}

  /** Opens (or, when the file does not exist, creates and clones) `dir/name.space` synced with the server. */
  static async open(
    dir: string,
    name: string,
    url: string,
    token: string,
    spaceId: string,
    opts: { timings?: Partial<ServerLayerTimings>; wrapStore?: (file: FileLayer) => SyncStateStore; peerId?: string } = {},
  ): Promise<SyncClient> {
    const file = path.join(dir, `${name}.space`);
    const manager = new SpaceManager({ retry: { baseMs: 50, maxMs: 500 }, peerId: opts.peerId });
    const layer = fs.existsSync(file) ? await FileLayer.open(file, { secretKey: KEY }) : await FileLayer.create(file, spaceId, { secretKey: KEY });
    const syncState = opts.wrapStore ? opts.wrapStore(layer) : layer;
    const server = new ServerLayer({ url, token, peerId: manager.peerId, spaceId, syncState, timings: { ...CLIENT_TIMINGS, ...opts.timings } });
    const space = await manager.open(spaceId, [layer, server]);
    return new SyncClient(name, manager, layer, server, space);
  }

  /** The whole space: the space tree and every app tree it lists. */
  async dump(): Promise<SpaceDump> {
    const apps: Record<string, DumpNode> = {};
    for (const ref of this.space.appTreeRefs()) apps[ref.id] = (await this.space.openAppTree(ref.id)).dump();
    return { space: this.space.tree.dump(), apps };
  }

  /** Ops of the whole space held by this client. */
  async opCount(): Promise<number> {
    let n = this.space.tree.opCount;
    for (const ref of this.space.appTreeRefs()) n += (await this.space.openAppTree(ref.id)).opCount;
    return n;
  }

  /** Everything this client made is on the server, and everything the server had is here. */
  async settle(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      await this.manager.flush(this.space.id);
      await this.server.whenIdle();
      await this.server.refresh();
    }
    await this.manager.flush(this.space.id);
    await this.file.flush();
  }

  async close(): Promise<void> {
    await this.manager.dispose();
  }
}

/** Settles every client twice over (what one sends, the others fetch in the second round). */
export async function converge(clients: readonly SyncClient[]): Promise<void> {
  for (let round = 0; round < 2; round++) {
    await Promise.all(clients.map((c) => c.manager.flush(c.space.id).then(() => c.server.whenIdle())));
    for (const c of clients) await c.settle();
  }
}

/** Resolves with the first state of `layer` that matches. */
export function waitForState(layer: ServerLayer, status: string): Promise<void> {
  if (layer.state.status === status) return Promise.resolve();
  return new Promise((resolve) => {
    const d = layer.onStateChange((s) => {
      if (s.status !== status) return;
      d.dispose();
      resolve();
    });
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly exited: Promise<void>;
}

/** Runs the built server (dist/server.js) on a fixed port; resolves when it listens. */
export function spawnServerOn(dir: string, port: number): Promise<ServerProcess> {
  if (!fs.existsSync(SERVER_JS)) throw new Error(`${SERVER_JS} is missing: run \`node esbuild.mjs\` first`);
  const child = spawn(process.execPath, [SERVER_JS, 'serve', '--port', String(port), '--data', dir, '--log-level', 'warn', '--ping-seconds', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdout?.resume();
  const url = `http://127.0.0.1:${port}`;
  return new Promise((resolve, reject) => {
    let done = false;
    void exited.then(() => {
      if (!done) reject(new Error(`server exited before listening: ${err}`));
    });
    const poll = (): void => {
      fetch(`${url}/healthz`).then(
        (r) => {
          if (r.ok) {
            done = true;
            resolve({ child, url, exited });
          } else setTimeout(poll, 20);
        },
        () => (done ? undefined : setTimeout(poll, 20)),
      );
    };
    poll();
  });
}
