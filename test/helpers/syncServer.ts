/**
 * Helpers for the team server's integration tests: a real server on port 0 over a real SQLite
 * store in a temporary directory, tokens made through a second connection to that store (as the
 * `token` commands do), and a WebSocket test client that waits on messages and close events —
 * never on time. Its timeouts only turn a hang into a readable failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import type { SecretRecord } from '../../src/persistence/contract';
import {
  PROTOCOL_VERSION,
  encodeMessage,
  parseServerMessage,
  type AckMessage,
  type ClientMessage,
  type ErrorMessage,
  type ServerMessage,
  type ServerOpsMessage,
  type ServerSecretsMessage,
  type SyncedMessage,
  type WelcomeMessage,
  type Role,
} from '../../src/protocol/messages';
import { silentLogger } from '../../src/server/log';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/server';
import { ServerStore } from '../../src/server/store/serverStore';
import { encodeOps } from '../../src/spaces/opCodec';
import type { Op } from '../../src/spaces/ops';

export const SERVER_JS = path.resolve(__dirname, '../../../dist/server.js');
const WAIT_MS = 20_000;

export function tempDir(prefix = 'spaces-server-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Creates a token through its own connection to the store in `dataDir`. */
export function makeToken(dataDir: string, role: Role, space = '*', opts: { user?: string; expiresDays?: number } = {}): { token: string; id: string } {
  const store = ServerStore.open(dataDir);
  try {
    const { token, info } = store.tokens.create({ user: opts.user ?? `${role}-user`, space, role, expiresDays: opts.expiresDays });
    return { token, id: info.id };
  } finally {
    store.close();
  }
}

export function revokeToken(dataDir: string, id: string): void {
  const store = ServerStore.open(dataDir);
  try {
    store.tokens.revoke(id);
  } finally {
    store.close();
  }
}

/** Reads the store of a stopped (or running) server through its own connection. */
export function withStore<T>(dataDir: string, fn: (s: ServerStore) => T): T {
  const store = ServerStore.open(dataDir);
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

export interface CloseEvent {
  readonly code: number;
  readonly reason: string;
}

/** A WebSocket client that queues every server message and lets tests wait for them. */
export class TestClient {
  readonly received: ServerMessage[] = [];
  private queue: ServerMessage[] = [];
  private waiter: (() => void) | undefined;
  readonly closed: Promise<CloseEvent>;
  private closeEvent: CloseEvent | undefined;
  private refs = 0;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeEvent = { code, reason: reason.toString() };
        resolve(this.closeEvent);
        this.waiter?.();
      });
    });
    ws.on('message', (data: Buffer) => {
      const m = parseServerMessage(data);
      this.received.push(m);
      this.queue.push(m);
      this.waiter?.();
    });
    ws.on('error', () => undefined);
  }

  static connect(url: string, opts: WebSocket.ClientOptions = {}): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024, ...opts });
      const c = new TestClient(ws);
      ws.once('open', () => resolve(c));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
  }

  /** Connects and says hello; resolves with the welcome. */
  static async open(url: string, token: string, peerIds: string[] = ['p1'], opts: WebSocket.ClientOptions = {}): Promise<{ client: TestClient; welcome: WelcomeMessage }> {
    const client = await TestClient.connect(url, opts);
    client.send({ type: 'hello', protocol: PROTOCOL_VERSION, token, peerIds, client: 'test' });
    const welcome = await client.next('welcome');
    return { client, welcome };
  }

  get isClosed(): boolean {
    return this.closeEvent !== undefined;
  }

  send(m: ClientMessage | string | Buffer): void {
    this.ws.send(typeof m === 'string' || Buffer.isBuffer(m) ? m : encodeMessage(m));
  }

  nextRef(): number {
    return ++this.refs;
  }

  /** Sends ops for a tree; returns the ref. */
  sendOps(spaceId: string, treeId: string, ops: readonly Op[], ref = this.nextRef()): number {
    this.send({ type: 'ops', spaceId, treeId, ops: encodeOps(ops), ref });
    return ref;
  }

  sendSecrets(spaceId: string, records: SecretRecord[], ref = this.nextRef()): number {
    this.send({ type: 'secrets', spaceId, records, ref });
    return ref;
  }

  /**
   * The next queued message; with `type`, the next of that type (others before it are dropped
   * from the queue but stay in `received`). Rejects when the socket closes first.
   */
  next(type: 'welcome'): Promise<WelcomeMessage>;
  next(type: 'ops'): Promise<ServerOpsMessage>;
  next(type: 'synced'): Promise<SyncedMessage>;
  next(type: 'ack'): Promise<AckMessage>;
  next(type: 'secrets'): Promise<ServerSecretsMessage>;
  next(type: 'error'): Promise<ErrorMessage>;
  next(type?: ServerMessage['type']): Promise<ServerMessage>;
  async next(type?: ServerMessage['type']): Promise<ServerMessage> {
    return this.until((m) => type === undefined || m.type === type, `a ${type ?? 'message'}`);
  }

  /** Waits for the first queued message matching `pred` (dropping those before it). */
  async until(pred: (m: ServerMessage) => boolean, what = 'a matching message', timeoutMs = WAIT_MS): Promise<ServerMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.queue.length > 0) {
        const m = this.queue.shift() as ServerMessage;
        if (pred(m)) return m;
      }
      if (this.closeEvent) throw new Error(`socket closed (${this.closeEvent.code} ${this.closeEvent.reason}) while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          this.waiter = undefined;
          resolve();
        };
      });
    }
  }

  /** Subscribes and collects the catch-up: every `ops` until `synced`. */
  async subscribe(spaceId: string, since = 0): Promise<{ ops: ServerOpsMessage[]; synced: SyncedMessage }> {
    this.send({ type: 'subscribe', spaceId, since });
    const ops: ServerOpsMessage[] = [];
    for (;;) {
      const m = await this.until((x) => x.type === 'ops' || x.type === 'synced' || x.type === 'error', `catch-up of ${spaceId}`);
      if (m.type === 'error') throw new Error(`subscribe refused: ${m.code} ${m.message}`);
      if (m.type === 'synced') return { ops, synced: m };
      ops.push(m as ServerOpsMessage);
    }
  }

  /** Waits for the ack (or error) of `ref`. */
  async result(ref: number): Promise<AckMessage | ErrorMessage> {
    return (await this.until((m) => (m.type === 'ack' || m.type === 'error') && m.ref === ref, `the answer to ref ${ref}`)) as AckMessage | ErrorMessage;
  }

  async ack(ref: number): Promise<AckMessage> {
    const r = await this.result(ref);
    if (r.type !== 'ack') throw new Error(`ref ${ref} refused: ${r.code} ${r.message}`);
    return r;
  }

  /** Waits for the socket to close (within the timeout). */
  async whenClosed(timeoutMs = WAIT_MS): Promise<CloseEvent> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`socket not closed within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(t);
    }
  }

  close(): Promise<CloseEvent> {
    if (!this.closeEvent) {
      if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
      else this.ws.terminate();
    }
    return this.closed;
  }
}

export interface TestServer {
  readonly server: RunningServer;
  readonly dir: string;
  /** A '*' admin token made at start. */
  readonly admin: string;
  token(role: Role, space?: string, opts?: { user?: string; expiresDays?: number }): string;
  /** Creates a space over HTTP (POST /v1/spaces) with the admin token. */
  createSpace(name?: string): Promise<string>;
  clients: TestClient[];
  /** Connects, says hello; the client is closed by `stop`. */
  open(token: string, peerIds?: string[], opts?: WebSocket.ClientOptions): Promise<TestClient>;
  /** Closes the clients, the server and removes the directory. */
  stop(): Promise<void>;
}

export async function startTestServer(opts: Partial<ServerOptions> = {}, dir = tempDir()): Promise<TestServer> {
  const admin = makeToken(dir, 'admin', '*', { user: 'admin' }).token;
  const server = await startServer({ logger: silentLogger, ...opts, dataDir: dir, port: 0 });
  const clients: TestClient[] = [];
  const t: TestServer = {
    server,
    dir,
    admin,
    clients,
    token: (role, space = '*', o = {}) => makeToken(dir, role, space, o).token,
    async createSpace(name = 'Team space') {
      const res = await fetch(`${server.url}/v1/spaces`, { method: 'POST', headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ name }) });
      if (res.status !== 201) throw new Error(`POST /v1/spaces: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { id: string }).id;
    },
    async open(token, peerIds = ['p1'], o = {}) {
      const { client } = await TestClient.open(server.syncUrl, token, peerIds, o);
      clients.push(client);
      return client;
    },
    async stop() {
      await Promise.all(clients.map((c) => c.close()));
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return t;
}

// ---- the built server as a child process -----------------------------------------------

export interface ChildServer {
  readonly child: ChildProcess;
  readonly url: string;
  readonly syncUrl: string;
  /** Every stdout line so far (JSON logs). */
  readonly lines: string[];
  readonly stderr: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `node dist/server.js serve --port 0 --data DIR` and waits for its "listening" line. */
export function spawnServer(dir: string, extraArgs: string[] = []): Promise<ChildServer> {
  if (!fs.existsSync(SERVER_JS)) throw new Error(`${SERVER_JS} is missing: run \`node esbuild.mjs\` first`);
  const child = spawn(process.execPath, [SERVER_JS, 'serve', '--port', '0', '--data', dir, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let err = '';
  let buf = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        const m = JSON.parse(line) as { msg?: string; url?: string; syncUrl?: string };
        if (m.msg === 'listening' && m.url && m.syncUrl) resolve({ child, url: m.url, syncUrl: m.syncUrl, lines, stderr: () => err, exited });
      }
    });
    void exited.then(({ code, signal }) => reject(new Error(`server exited (${code ?? signal}) before listening: ${err}`)));
  });
}

/** Fetches /metrics and returns one sample's value. */
export async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no metric ${name}`);
  return Number(line.split(' ')[1]);
}
