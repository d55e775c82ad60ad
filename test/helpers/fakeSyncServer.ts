/**
 * A small in-test sync server on `ws` (port 0) that speaks enough of protocol v1 for client
 * unit tests, with hooks to misbehave: refuse hello with a close code, answer batches with
 * errors, stop answering pings, send bad frames. Every connection attempt and every client
 * message is recorded, so tests wait on events, not on time.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { PROTOCOL_VERSION, SYNC_PATH, encodeMessage, parseClientMessage, type ClientMessage, type ClientOpsMessage, type ErrorCode, type HelloMessage, type ServerMessage } from '../../src/protocol/messages';
import { decodeOps } from '../../src/spaces/opCodec';
import { OpRangeSet } from '../../src/spaces/opRanges';
import { opKey } from '../../src/spaces/ops';
import type { EncodedOp } from '../../src/spaces/opCodec';

export interface FakeConnection {
  readonly ws: WebSocket;
  readonly at: number;
  hello?: HelloMessage;
  readonly messages: ClientMessage[];
  closed?: { code: number; reason: string };
}

interface Batch {
  seq: number;
  treeId: string;
  ops: EncodedOp[];
}

export interface FakeOptions {
  /** Close the socket with this code right after hello. */
  refuseHello?: number;
  /** Answer `ops` messages with this error (return undefined to store normally). */
  onOps?: (m: ClientOpsMessage, conn: FakeConnection) => ErrorCode | 'ignore' | 'store-no-ack' | undefined;
  /** Refuse `subscribe` with this error (no ref). */
  refuseSubscribe?: ErrorCode;
  /** No automatic pong (a dead server, as far as the client's heartbeat can tell). */
  noPong?: boolean;
  role?: 'read' | 'write' | 'admin';
  port?: number;
  /**
   * A slow server: catch-up batches go out one every `everyMs` (a server busy with other
   * joiners); `stall` sends none at all (welcome, then silence but for pongs); `dropFirstAfter`
   * cuts the first connection after that many batches.
   */
  pacedCatchUp?: { everyMs: number; stall?: boolean; dropFirstAfter?: number };
}

export class FakeSyncServer {
  readonly connections: FakeConnection[] = [];
  readonly batches: Batch[] = [];
  private readonly sv = new Map<string, OpRangeSet>();
  private readonly waiters: Array<() => void> = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private constructor(
    private readonly http: http.Server,
    private readonly wss: WebSocketServer,
    readonly port: number,
    readonly opts: FakeOptions,
  ) {}

  static async start(opts: FakeOptions = {}): Promise<FakeSyncServer> {
    const server = http.createServer((_req, res) => res.writeHead(404).end());
    const wss = new WebSocketServer({ server, path: SYNC_PATH, autoPong: !opts.noPong });
    await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
    const f = new FakeSyncServer(server, wss, (server.address() as AddressInfo).port, opts);
    wss.on('connection', (ws) => f.accept(ws));
    return f;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get seq(): number {
    return this.batches.length;
  }

  /** Ops stored per tree (keys). */
  stored(treeId: string): Set<string> {
    const out = new Set<string>();
    for (const b of this.batches) if (b.treeId === treeId) for (const op of decodeOps(b.ops, b.treeId, 'fake')) out.add(opKey(op));
    return out;
  }

  /** Resolves when `pred` holds (checked on every event); the mocha timeout bounds it. */
  async until(pred: () => boolean): Promise<void> {
    while (!pred()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private changed(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private send(conn: FakeConnection, m: ServerMessage): void {
    if (conn.ws.readyState === WebSocket.OPEN) conn.ws.send(encodeMessage(m));
  }

  /** Sends a raw frame to every open connection. */
  broadcastRaw(frame: string): void {
    for (const c of this.connections) if (c.ws.readyState === WebSocket.OPEN) c.ws.send(frame);
  }

  /** Stores a batch as if another client wrote it, and sends it to every subscriber. */
  inject(spaceId: string, treeId: string, ops: EncodedOp[]): number {
    const seq = this.store(treeId, ops);
    for (const c of this.connections) if (c.hello && !c.closed) this.send(c, { type: 'ops', spaceId, treeId, ops, seq });
    return seq;
  }

  private store(treeId: string, ops: EncodedOp[]): number {
    let set = this.sv.get(treeId);
    if (!set) this.sv.set(treeId, (set = new OpRangeSet()));
    const fresh = ops.filter((o) => !set.has(o[2], o[1]));
    if (fresh.length === 0) return this.seq;
    for (const o of fresh) set.add(o[2], o[1]);
    this.batches.push({ seq: this.seq + 1, treeId, ops: fresh });
    return this.seq;
  }

  private accept(ws: WebSocket): void {
    const conn: FakeConnection = { ws, at: Date.now(), messages: [] };
    this.connections.push(conn);
    this.changed();
    ws.on('close', (code, reason) => {
      conn.closed = { code, reason: reason.toString() };
      this.changed();
    });
    ws.on('message', (data: Buffer) => {
      const m = parseClientMessage(data);
      conn.messages.push(m);
      this.handle(conn, m);
      this.changed();
    });
  }

  private handle(conn: FakeConnection, m: ClientMessage): void {
    switch (m.type) {
      case 'hello':
        conn.hello = m;
        if (this.opts.refuseHello) {
          conn.ws.close(this.opts.refuseHello, 'refused');
          return;
        }
        this.send(conn, { type: 'welcome', protocol: PROTOCOL_VERSION, user: 'fake', serverId: 'fake-server' });
        return;
      case 'subscribe': {
        if (this.opts.refuseSubscribe) {
          this.send(conn, { type: 'error', code: this.opts.refuseSubscribe, message: `fake ${this.opts.refuseSubscribe}`, spaceId: m.spaceId });
          return;
        }
        const due = this.batches.filter((b) => b.seq > m.since);
        const synced = (): void => {
          const trees: Record<string, Record<string, Array<[number, number]>>> = {};
          for (const [t, set] of this.sv) trees[t] = set.toRanges();
          this.send(conn, { type: 'synced', spaceId: m.spaceId, seq: this.seq, role: this.opts.role ?? 'write', trees });
        };
        const paced = this.opts.pacedCatchUp;
        if (!paced) {
          for (const b of due) this.send(conn, { type: 'ops', spaceId: m.spaceId, treeId: b.treeId, ops: b.ops, seq: b.seq });
          synced();
          return;
        }
        if (paced.stall) return;
        const first = this.connections.indexOf(conn) === 0;
        let i = 0;
        const timer = setInterval(() => {
          if (conn.closed || conn.ws.readyState !== WebSocket.OPEN) return clearInterval(timer);
          if (first && paced.dropFirstAfter !== undefined && i >= paced.dropFirstAfter) {
            clearInterval(timer);
            conn.ws.terminate();
            return;
          }
          const b = due[i++];
          if (b) return this.send(conn, { type: 'ops', spaceId: m.spaceId, treeId: b.treeId, ops: b.ops, seq: b.seq });
          clearInterval(timer);
          synced();
        }, paced.everyMs);
        this.timers.add(timer);
        return;
      }
      case 'ops': {
        const verdict = this.opts.onOps?.(m, conn);
        if (verdict === 'ignore') return;
        if (verdict === 'store-no-ack') {
          this.store(m.treeId, m.ops);
          return;
        }
        if (verdict) {
          this.send(conn, { type: 'error', code: verdict, message: `fake ${verdict}`, spaceId: m.spaceId, ref: m.ref });
          return;
        }
        const announced = new Set(conn.hello?.peerIds ?? []);
        if (m.ops.some((o) => !announced.has(o[2]))) {
          conn.ws.close(4400, 'op under a peer id hello did not announce');
          return;
        }
        const seq = this.store(m.treeId, m.ops);
        this.send(conn, { type: 'ack', spaceId: m.spaceId, ref: m.ref, seq });
        return;
      }
      case 'secrets':
        if ((this.opts.role ?? 'write') === 'read') this.send(conn, { type: 'error', code: 'forbidden', message: 'read only', spaceId: m.spaceId, ref: m.ref });
        else this.send(conn, { type: 'ack', spaceId: m.spaceId, ref: m.ref, seq: this.seq });
        return;
      case 'unsubscribe':
        return;
    }
  }

  /** Cuts every connection without a close frame (like a crash or a cable pulled). */
  killConnections(): void {
    for (const c of this.connections) c.ws.terminate();
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.killConnections();
    this.wss.close();
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
    await closed;
  }
}
