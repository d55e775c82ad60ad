/**
 * Several built servers (dist/server.js) over one PostgreSQL database, for the scale-out tests:
 * each a real child process on its own fixed port (so a killed one comes back at the same
 * address), all sharing one data directory for server.key, plus a round-robin TCP proxy in front
 * of them — the "load balancer" a client connects to, which skips backends that refuse.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import type { Role } from '../../src/protocol/messages';
import { PostgresSpaceStore } from '../../src/server/store/postgresStore';
import { loadOrCreateServerKey } from '../../src/server/store/serverKey';
import { freePort } from './syncClients';
import { SERVER_JS, tempDir } from './syncServer';
import type { TestPostgres } from './postgres';

export interface ClusterProcess {
  readonly port: number;
  readonly url: string;
  readonly syncUrl: string;
  child: ChildProcess;
  exited: Promise<void>;
}

/** Spawns `dist/server.js serve --store URL` on `port` and waits for its "listening" line. */
export function spawnOnStore(dataDir: string, storeUrl: string, port: number, extraArgs: string[] = []): Promise<ClusterProcess> {
  if (!fs.existsSync(SERVER_JS)) throw new Error(`${SERVER_JS} is missing: run \`node esbuild.mjs\` first`);
  const args = [SERVER_JS, 'serve', '--port', String(port), '--data', dataDir, '--store', storeUrl, '--log-level', 'warn', '--ping-seconds', '2', ...extraArgs];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let buf = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  return new Promise((resolve, reject) => {
    let done = false;
    // `--log-level warn` hides the listening line; the first successful /healthz says it is up.
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      if (buf.length > 1_000_000) buf = buf.slice(-100_000);
    });
    const url = `http://127.0.0.1:${port}`;
    void exited.then(() => {
      if (!done) reject(new Error(`server exited before listening: ${err}\n${buf}`));
    });
    const poll = (): void => {
      if (done || child.exitCode !== null) return;
      fetch(`${url}/healthz`).then(
        (r) => {
          if (r.ok) {
            done = true;
            resolve({ port, url, syncUrl: `ws://127.0.0.1:${port}/v1/sync`, child, exited });
          } else setTimeout(poll, 20);
        },
        () => setTimeout(poll, 20),
      );
    };
    poll();
  });
}

/** A TCP proxy that hands each new connection to the next backend in turn, skipping ones that refuse. */
export class RoundRobinProxy {
  private next = 0;
  private readonly sockets = new Set<net.Socket>();
  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private readonly backends: readonly number[],
  ) {}

  static async start(backends: readonly number[]): Promise<RoundRobinProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new RoundRobinProxy(server, (server.address() as net.AddressInfo).port, backends);
    server.on('connection', (socket: net.Socket) => proxy.accept(socket));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private accept(client: net.Socket): void {
    this.sockets.add(client);
    client.once('close', () => this.sockets.delete(client));
    client.on('error', () => client.destroy());
    client.pause();
    this.route(client, 0);
  }

  /** Connects `client` to the next backend; one that refuses passes it on to the one after. */
  private route(client: net.Socket, tried: number): void {
    const port = this.backends[this.next++ % this.backends.length];
    const upstream = net.connect(port, '127.0.0.1');
    this.sockets.add(upstream);
    let connected = false;
    upstream.once('close', () => this.sockets.delete(upstream));
    upstream.once('connect', () => {
      connected = true;
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
      upstream.once('close', () => client.destroy());
      client.once('close', () => upstream.destroy());
    });
    upstream.on('error', () => {
      upstream.destroy();
      if (connected || client.destroyed) client.destroy();
      else if (tried + 1 < this.backends.length) this.route(client, tried + 1);
      else client.destroy();
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export interface Cluster {
  readonly storeUrl: string;
  readonly dataDir: string;
  readonly procs: ClusterProcess[];
  /** A store handle of the test's own (tokens, reading what is stored). */
  readonly store: PostgresSpaceStore;
  readonly admin: string;
  token(role: Role, user?: string): Promise<{ token: string; id: string }>;
  /** Creates a space over HTTP on process `i`. */
  createSpace(i: number, name?: string): Promise<string>;
  /** SIGKILLs process `i` and waits until it is gone. */
  kill(i: number): Promise<void>;
  /** Starts process `i` again on its port. */
  restart(i: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startCluster(pg: TestPostgres, n: number, extraArgs: string[] = []): Promise<Cluster> {
  const storeUrl = await pg.createDatabase();
  const dataDir = tempDir('spaces-cluster-');
  const key = loadOrCreateServerKey(dataDir).key;
  const store = await PostgresSpaceStore.open(storeUrl, { secretKey: key });
  const admin = (await store.tokens.create({ user: 'admin', space: '*', role: 'admin' })).token;
  const ports: number[] = [];
  for (let i = 0; i < n; i++) ports.push(await freePort());
  const procs = await Promise.all(ports.map((p) => spawnOnStore(dataDir, storeUrl, p, extraArgs)));
  const c: Cluster = {
    storeUrl,
    dataDir,
    procs,
    store,
    admin,
    async token(role, user = `${role}-user`) {
      const { token, info } = await store.tokens.create({ user, space: '*', role });
      return { token, id: info.id };
    },
    async createSpace(i, name = 'Team space') {
      const res = await fetch(`${procs[i].url}/v1/spaces`, { method: 'POST', headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ name }) });
      if (res.status !== 201) throw new Error(`POST /v1/spaces: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { id: string }).id;
    },
    async kill(i) {
      const p = procs[i];
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await p.exited;
    },
    async restart(i) {
      procs[i] = await spawnOnStore(dataDir, storeUrl, procs[i].port, extraArgs);
    },
    async stop() {
      await Promise.all(
        procs.map(async (p) => {
          if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
          await p.exited;
        }),
      );
      await store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return c;
}
