/**
 * SyncConnection: one client WebSocket to a sync server, kept up by itself.
 *
 * - Connects, sends `hello` (token, peer ids) and waits for `welcome`; only then is it "open".
 * - Reconnects after any failure with exponential backoff and full jitter (a random delay in
 *   [0, min(max, base·2^attempt)]: never a fixed interval, so clients that lost the same server
 *   do not come back in step). The attempt count resets once the owner reports the connection
 *   healthy (`markHealthy`, after `synced`), not on a mere `welcome`, so a server that accepts and
 *   drops at once is not hammered.
 * - Heartbeat: pings every `heartbeatMs`; a socket that has shown no sign of life (any byte
 *   received: a frame or part of one, a ping, a pong) for `deadAfterMs` is dropped and reconnected
 *   (a half-open TCP connection is otherwise noticed only after many minutes). Silence, like the
 *   connect timeout, counts only time this process's event loop was free (FreeTimeDeadline): a
 *   busy client — building trees, storing a catch-up — never mistakes its own stall for a dead
 *   or silent server.
 * - Auth failures (close codes 4401, 4403, 4426, or a 401/403 answer to the upgrade) are fatal:
 *   reported as such and not retried until `retry()`. Everything else is retried with backoff:
 *   a server at a connection cap (HTTP 429/503 with `Retry-After`, honoured up to the backoff
 *   cap; close 4002) and a close as a slow consumer (4001) included.
 * - Frames are validated with `parseServerMessage`; a bad frame drops the connection (and it
 *   reconnects with backoff).
 *
 * It knows nothing about spaces or ops: the ServerLayer subscribes on `onOpen` and handles
 * messages. Every timer is cleared by `close()`.
 */
import { randomInt } from 'node:crypto';
import WebSocket from 'ws';
import { CloseCode, PROTOCOL_LIMITS, PROTOCOL_VERSION, SYNC_PATH, encodeMessage, parseServerMessage, type ClientMessage, type ServerMessage, type WelcomeMessage } from '../../protocol/messages';
import { Emitter, type Event } from '../../spaces/events';
import { FreeTimeDeadline } from '../../spaces/freeTimeDeadline';

export interface ConnectionTimings {
  /** First reconnect delay cap (ms); doubles per failed attempt… */
  readonly backoffBaseMs: number;
  /** …up to this cap (ms). */
  readonly backoffMaxMs: number;
  /** TCP + TLS + upgrade + welcome must complete within this (ms). */
  readonly connectTimeoutMs: number;
  /** Ping interval (ms). */
  readonly heartbeatMs: number;
  /** No message, ping or pong for this long: the connection is dead (ms). */
  readonly deadAfterMs: number;
}

export const DEFAULT_CONNECTION_TIMINGS: ConnectionTimings = {
  backoffBaseMs: 500,
  backoffMaxMs: 30_000,
  connectTimeoutMs: 10_000,
  heartbeatMs: 15_000,
  deadAfterMs: 40_000,
};

/** A server that answers these is there but busy (a connection cap, a slow consumer): a transient failure. */
const BUSY_CODES: ReadonlySet<number> = new Set([429, 503, CloseCode.slowConsumer, CloseCode.tooManyConnections]);

/** Close codes after which retrying cannot help until something changes (token, version). */
const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([CloseCode.unauthorized, CloseCode.forbidden, CloseCode.unsupportedVersion]);

/** Full jitter: uniform in [0, min(max, base·2^attempt)]. */
export function fullJitterDelay(attempt: number, baseMs: number, maxMs: number): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return randomInt(0, Math.max(1, Math.floor(cap)) + 1);
}

/** A `Retry-After` header in seconds (the HTTP-date form is not used by the server) as ms; undefined when absent or not a number. */
export function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  if (v === undefined || !/^\d{1,6}$/.test(v.trim())) return undefined;
  return Number(v.trim()) * 1000;
}

/** The ws(s) URL of the sync endpoint for a server URL given as http(s)://… or ws(s)://… (with or without the path). */
export function syncUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new TypeError(`not a server URL (http, https, ws or wss): ${url}`);
  const base = u.pathname.replace(/\/+$/, '');
  if (!base.endsWith(SYNC_PATH)) u.pathname = `${base}${SYNC_PATH}`;
  u.search = '';
  u.hash = '';
  return u.toString();
}

/** The server's base URL as http(s)://host[:port][/path], the stable part of a server layer's id. */
export function serverBaseUrl(url: string): string {
  const u = new URL(syncUrl(url));
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  u.pathname = u.pathname.slice(0, -SYNC_PATH.length);
  return u.toString().replace(/\/+$/, '');
}

export type ConnectionStatus = 'idle' | 'connecting' | 'open' | 'waiting' | 'failed' | 'closed';

export interface ConnectionDown {
  /** WebSocket close code (1006 for a network failure), or an HTTP status of a refused upgrade. */
  readonly code: number;
  readonly reason: string;
  /** Not retried until `retry()`. */
  readonly fatal: boolean;
  /** Asked for by the owner (`reconnect`), not a failure. */
  readonly planned: boolean;
  /**
   * The server got as far as `welcome` on this connection, or refused it for being busy (a
   * connection cap, 429/503, 4001, 4002): it is there, so the failure is transient.
   */
  readonly transient: boolean;
  /** When the next attempt starts (ms from now), unless fatal. */
  readonly retryInMs?: number;
}

export interface ConnectionOptions {
  /** http(s) or ws(s) URL of the server. */
  readonly url: string;
  readonly token: string;
  /** The peer ids to announce in the next `hello` (asked at every connect). */
  readonly peerIds: () => string[];
  readonly client?: string;
  readonly timings?: Partial<ConnectionTimings>;
}

export interface ConnectionStats {
  connects: number;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
}

export class SyncConnection {
  readonly url: string;
  private readonly timings: ConnectionTimings;
  private ws: WebSocket | undefined;
  private statusValue: ConnectionStatus = 'idle';
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private connectTimer: FreeTimeDeadline | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  /** Silence of the open socket, counted in this process's free time (see the header). */
  private silence: FreeTimeDeadline | undefined;
  private announced: readonly string[] = [];
  readonly stats: ConnectionStats = { connects: 0, messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 };

  private readonly openEmitter = new Emitter<WelcomeMessage>();
  /** The server said `welcome`: the connection is ready for `subscribe`. */
  readonly onOpen: Event<WelcomeMessage> = this.openEmitter.event;
  private readonly messageEmitter = new Emitter<ServerMessage>();
  /** Every valid frame after `welcome`. */
  readonly onMessage: Event<ServerMessage> = this.messageEmitter.event;
  private readonly downEmitter = new Emitter<ConnectionDown>();
  /** The connection (or an attempt) ended. */
  readonly onDown: Event<ConnectionDown> = this.downEmitter.event;

  constructor(private readonly opts: ConnectionOptions) {
    this.url = syncUrl(opts.url);
    this.timings = { ...DEFAULT_CONNECTION_TIMINGS, ...opts.timings };
  }

  get status(): ConnectionStatus {
    return this.statusValue;
  }

  get isOpen(): boolean {
    return this.statusValue === 'open';
  }

  /** The peer ids the open connection announced. */
  get peerIds(): readonly string[] {
    return this.announced;
  }

  /** Starts connecting (once; later calls do nothing). */
  start(): void {
    if (this.statusValue === 'idle') this.connect();
  }

  /** The owner saw the connection work (e.g. `synced`): the next failure starts backoff afresh. */
  markHealthy(): void {
    this.attempt = 0;
  }

  /** Connects now: after a fatal failure, or to skip the backoff wait. No-op while connecting or open. */
  retry(): void {
    if (this.statusValue === 'closed' || this.statusValue === 'connecting' || this.statusValue === 'open') return;
    this.clearRetry();
    this.attempt = 0;
    this.connect();
  }

  /** Drops the current connection and connects again soon (e.g. to announce other peer ids). */
  reconnect(reason: string, immediately = false): void {
    if (this.statusValue === 'closed') return;
    if (this.ws) {
      this.drop(CloseCode.normal, reason, false, immediately ? 0 : undefined, true);
      return;
    }
    if (immediately && this.statusValue === 'waiting') {
      this.clearRetry();
      this.connect();
    }
  }

  /** Drops the connection as failed (reported offline with `reason`) and reconnects with backoff. */
  abort(code: number, reason: string): void {
    this.drop(code, reason, false);
  }

  /** Drops the connection and stops retrying until `retry()` (e.g. the space is not on the server). */
  fail(code: number, reason: string): void {
    if (this.ws) this.drop(code, reason, true);
    else if (this.statusValue === 'waiting') {
      this.clearRetry();
      this.failAttempt(code, reason, true);
    }
  }

  /** Sends a message; false when the connection is not open (nothing is queued). */
  send(m: ClientMessage): boolean {
    const ws = this.ws;
    if (!ws || this.statusValue !== 'open' || ws.readyState !== WebSocket.OPEN) return false;
    const frame = encodeMessage(m);
    this.stats.messagesOut++;
    this.stats.bytesOut += Buffer.byteLength(frame);
    ws.send(frame);
    return true;
  }

  /** Bytes queued in the socket but not yet sent. */
  get bufferedAmount(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  /** Closes the socket (1000) and stops every timer; idempotent. */
  close(): void {
    if (this.statusValue === 'closed') return;
    this.statusValue = 'closed';
    this.clearRetry();
    this.clearConnectTimer();
    this.stopHeartbeat();
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      if (ws.readyState === WebSocket.OPEN) ws.close(CloseCode.normal, 'client closed');
      else ws.terminate();
    }
    this.openEmitter.dispose();
    this.messageEmitter.dispose();
    this.downEmitter.dispose();
  }

  // ---- internals -------------------------------------------------------------------------

  private connect(): void {
    this.statusValue = 'connecting';
    this.stats.connects++;
    let ws: WebSocket;
    try {
      // No handshakeTimeout: a wall-clock timer would fire on a busy client; connectTimer covers the handshake.
      ws = new WebSocket(this.url, {
        maxPayload: PROTOCOL_LIMITS.maxFrameBytes,
        perMessageDeflate: false,
      });
    } catch (e) {
      this.failAttempt(1006, e instanceof Error ? e.message : String(e), false);
      return;
    }
    this.ws = ws;
    // The whole handshake, hello → welcome included, must fit in the connect timeout.
    this.connectTimer = new FreeTimeDeadline(this.timings.connectTimeoutMs, () => this.drop(CloseCode.timeout, `no welcome within ${this.timings.connectTimeoutMs} ms`, false));
    this.connectTimer.reset();
    ws.on('open', () => {
      this.announced = [...new Set(this.opts.peerIds())].slice(0, PROTOCOL_LIMITS.maxPeerIdsPerHello);
      const hello: ClientMessage = { type: 'hello', protocol: PROTOCOL_VERSION, token: this.opts.token, peerIds: [...this.announced], client: this.opts.client };
      const frame = encodeMessage(hello);
      this.stats.messagesOut++;
      this.stats.bytesOut += Buffer.byteLength(frame);
      ws.send(frame);
      this.startHeartbeat();
    });
    // Any byte counts as a sign of life, also a part of a large frame still arriving.
    ws.on('upgrade', (res) => res.socket.on('data', () => this.signOfLife(ws)));
    ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => this.onFrame(ws, data, isBinary));
    ws.on('ping', () => this.signOfLife(ws));
    ws.on('pong', () => this.signOfLife(ws));
    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      const fatal = status === 401 || status === 403 || status === 426;
      // 429/503 (a connection cap): wait at least what Retry-After asks, within the backoff cap.
      const after = retryAfterMs(res.headers['retry-after']);
      const delay = after === undefined || fatal ? undefined : Math.max(Math.min(after, this.timings.backoffMaxMs), fullJitterDelay(this.attempt++, this.timings.backoffBaseMs, this.timings.backoffMaxMs));
      this.drop(status, `the server refused the connection (HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''})`, fatal, delay);
    });
    ws.on('error', (e: Error) => this.drop(1006, e.message || 'connection failed', false));
    ws.on('close', (code: number, reason: Buffer) => {
      const text = reason.toString('utf8');
      this.drop(code, text || closeCodeText(code), FATAL_CLOSE_CODES.has(code));
    });
  }

  private onFrame(ws: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
    if (ws !== this.ws) return;
    this.signOfLife(ws);
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    this.stats.messagesIn++;
    this.stats.bytesIn += buf.length;
    if (isBinary) {
      this.drop(CloseCode.badMessage, 'the server sent a binary frame', false);
      return;
    }
    let m: ServerMessage;
    try {
      m = parseServerMessage(buf);
    } catch (e) {
      const code = (e as { closeCode?: number }).closeCode ?? CloseCode.badMessage;
      this.drop(code, `bad frame from the server: ${e instanceof Error ? e.message : String(e)}`, code === CloseCode.unsupportedVersion);
      return;
    }
    if (this.statusValue === 'connecting') {
      if (m.type !== 'welcome') {
        if (m.type === 'error') this.drop(CloseCode.unauthorized, m.message, m.code === 'forbidden');
        else this.drop(CloseCode.badMessage, `expected welcome, got ${m.type}`, false);
        return;
      }
      this.clearConnectTimer();
      this.statusValue = 'open';
      this.openEmitter.fire(m);
      return;
    }
    this.messageEmitter.fire(m);
  }

  /** Ends the current socket (if any) and reports it once; schedules the next attempt unless fatal. */
  private drop(code: number, reason: string, fatal: boolean, retryInMs?: number, planned = false): void {
    const ws = this.ws;
    if (!ws || this.statusValue === 'closed') return;
    const wasOpen = this.statusValue === 'open';
    this.ws = undefined;
    this.clearConnectTimer();
    this.stopHeartbeat();
    ws.removeAllListeners();
    ws.on('error', () => undefined);
    if (ws.readyState === WebSocket.OPEN) ws.close(code >= 4000 && code < 5000 ? code : CloseCode.normal, reason.slice(0, 120));
    else ws.terminate();
    this.failAttempt(code, reason, fatal, retryInMs, planned, wasOpen);
  }

  private failAttempt(code: number, reason: string, fatal: boolean, retryInMs?: number, planned = false, wasOpen = false): void {
    this.announced = [];
    if (fatal) {
      this.statusValue = 'failed';
      this.downEmitter.fire({ code, reason, fatal, planned, transient: false });
      return;
    }
    const delay = retryInMs ?? fullJitterDelay(this.attempt++, this.timings.backoffBaseMs, this.timings.backoffMaxMs);
    const transient = wasOpen || BUSY_CODES.has(code);
    this.statusValue = 'waiting';
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.statusValue === 'waiting') this.connect();
    }, delay);
    this.downEmitter.fire({ code, reason, fatal, planned, transient, retryInMs: delay });
  }

  /** The socket showed a sign of life: silence starts again from zero. */
  private signOfLife(ws: WebSocket): void {
    if (ws === this.ws) this.silence?.reset();
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    const ws = this.ws;
    if (!ws) return;
    this.silence = new FreeTimeDeadline(this.timings.deadAfterMs, () => {
      if (this.ws === ws) this.drop(CloseCode.timeout, `no sign of life from the server for ${this.timings.deadAfterMs} ms`, false);
    });
    this.silence.reset();
    const tick = Math.max(10, Math.min(this.timings.heartbeatMs, Math.floor(this.timings.deadAfterMs / 2)));
    this.heartbeatTimer = setInterval(() => {
      if (this.ws === ws && ws.readyState === WebSocket.OPEN) ws.ping();
    }, tick);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    this.silence?.stop();
    this.silence = undefined;
  }

  private clearRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private clearConnectTimer(): void {
    this.connectTimer?.stop();
    this.connectTimer = undefined;
  }
}

function closeCodeText(code: number): string {
  for (const [name, c] of Object.entries(CloseCode)) if (c === code) return `closed by the server (${name}, ${code})`;
  return code === 1006 ? 'the connection was lost' : `closed (${code})`;
}
