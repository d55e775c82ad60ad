/**
 * ClientConnection: one WebSocket at /v1/sync, from `hello` to close.
 *
 * Inbound, frames go into a small inbox and are handled one at a time, in order. The socket is
 * paused (TCP pushes back on the client) while the inbox is full, while the connection has too
 * many batches waiting to be stored, and while its rate limit makes it wait (rateLimit.ts). So
 * however fast a client sends, the server holds at most a few of its frames in memory.
 *
 * Outbound, bytes handed to the socket and not yet written are counted; above a high-water mark
 * the connection is `congested`: its spaces stop sending it live batches (it catches up from the
 * store once drained, see spaceHost.ts) and reading pauses, so it cannot queue more answers. A
 * socket whose queued bytes do not move for `slowConsumerMs` is closed with 4001. Connections
 * per token are capped at hello (connectionCaps.ts).
 *
 * Refusals inside a live socket are `error` messages (forbidden, not-found, rate-limited, …);
 * frames that break the protocol close the socket with a 44xx code and a reason.
 */
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import {
  CloseCode,
  PROTOCOL_LIMITS,
  PROTOCOL_VERSION,
  ProtocolError,
  encodeMessage,
  parseClientMessage,
  type ClientMessage,
  type ClientOpsMessage,
  type ClientSecretsMessage,
  type ErrorCode,
  type HelloMessage,
  type SubscribeMessage,
} from '../protocol/messages';
import { decodeOps } from '../spaces/opCodec';
import { InvalidOpError } from '../spaces/ops';
import { errorFrame } from './frames';
import { errorText, type Logger } from './log';
import type { ConnectionCaps } from './connectionCaps';
import type { Metrics } from './metrics';
import { RateLimiter, type RateLimits } from './rateLimit';
import { SpaceNotFoundError, type SpaceHost, type Subscriber, type Subscription } from './spaceHost';
import type { SpaceRegistry } from './spaceRegistry';
import { StoreUnavailableError, type SpaceStore } from './store/spaceStore';
import { canWrite, roleIn, tokenProblem, type TokenInfo } from './store/tokenStore';

export interface ConnectionLimits {
  /** Frames held before the socket is paused. */
  readonly inboxFrames: number;
  /** Batches (and their bytes) of one connection waiting to be stored before it is paused. */
  readonly maxInFlightBatches: number;
  readonly maxInFlightBytes: number;
  /**
   * Outgoing bytes above which the connection is congested (no live batches, reading paused),
   * and at or below which catch-up sends its next frame.
   */
  readonly outHighWater: number;
  readonly outLowWater: number;
  /** A socket with bytes queued and none of them written for this long is closed (4001). */
  readonly slowConsumerMs: number;
  readonly maxSubscriptions: number;
  /** A socket closed for a protocol violation is cut off if the client does not finish the close by then. */
  readonly closeGraceMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  inboxFrames: 8,
  maxInFlightBatches: 32,
  maxInFlightBytes: 32 * 1024 * 1024,
  outHighWater: 1024 * 1024,
  outLowWater: 256 * 1024,
  slowConsumerMs: 30_000,
  maxSubscriptions: 256,
  closeGraceMs: 2_000,
};

export interface ConnectionContext {
  readonly store: SpaceStore;
  readonly registry: SpaceRegistry;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly serverId: string;
  readonly rateLimits: RateLimits;
  readonly limits: ConnectionLimits;
  readonly helloTimeoutMs: number;
  /** Connections per token are counted from hello on (connectionCaps.ts). */
  readonly caps: ConnectionCaps;
  readonly onClosed: (c: ClientConnection) => void;
}

interface InboxItem {
  readonly data: Buffer;
  readonly isBinary: boolean;
  parsed?: ClientMessage;
}

/** WebSocket close reasons are limited to 123 bytes of UTF-8. */
function closeReason(s: string): string {
  if (Buffer.byteLength(s) <= 123) return s;
  let out = s.slice(0, 120);
  while (Buffer.byteLength(out) > 120) out = out.slice(0, -1);
  return out + '…';
}

function toBuffer(d: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(d)) return d;
  if (Array.isArray(d)) return Buffer.concat(d);
  return Buffer.from(d);
}

let nextId = 1;

export class ClientConnection implements Subscriber {
  readonly id = nextId++;
  private state: 'hello' | 'ready' | 'closed' = 'hello';
  private token: TokenInfo | undefined;
  private peerIds = new Set<string>();
  private ownPeerId: string | undefined;
  private readonly inbox: InboxItem[] = [];
  private processing = false;
  private readonly subs = new Map<string, Subscription>();
  private inFlight = 0;
  private inFlightBytes = 0;
  private outBytes = 0;
  /** Writes ws reported done (progress of the outgoing side). */
  private writesDone = 0;
  /** Reading is paused because the client does not read what it is sent. */
  private readPausedForOutput = false;
  /** What the last output check saw, and when output last moved. */
  private readonly outSeen = { writes: 0, backlog: 0, progressAt: Date.now() };
  private drainWaiters: Array<() => void> = [];
  private readonly limiter: RateLimiter;
  private helloTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  /** Cleared by each heartbeat, set by each pong, by any frame the client sends, and by output progress. */
  private alive = true;
  /** When the client last sent anything (a frame, a ping, a pong): a slow reader that does is busy, not gone. */
  private lastSignAt = Date.now();

  constructor(
    private readonly ws: WebSocket,
    req: IncomingMessage,
    private readonly ctx: ConnectionContext,
    /** A token from the upgrade request's `Authorization: Bearer` header; it wins over hello's. */
    private readonly headerToken: string | undefined,
  ) {
    this.limiter = new RateLimiter(ctx.rateLimits, Date.now());
    ctx.metrics.connectionsTotal++;
    this.mapReceiverCloseCodes();
    ws.on('message', (data, isBinary) => this.onMessage(toBuffer(data), isBinary));
    ws.on('pong', () => this.signOfLife());
    // The client's own heartbeat: its process runs, even while it reads what it is sent slowly.
    ws.on('ping', () => this.signOfLife());
    ws.on('error', (e) => this.ctx.logger.debug('socket error', { conn: this.id, error: errorText(e) }));
    ws.on('close', (code) => this.onSocketClosed(code));
    this.helloTimer = setTimeout(() => this.closeWith(CloseCode.timeout, `no hello within ${ctx.helloTimeoutMs} ms`), ctx.helloTimeoutMs);
    ctx.logger.debug('socket opened', { conn: this.id, remote: req.socket.remoteAddress });
  }

  /**
   * ws closes sockets itself on frame-level errors (1009 over maxPayload, 1007 bad UTF-8, 1002
   * bad framing), before any of our code sees the frame. Those become our documented codes.
   */
  private mapReceiverCloseCodes(): void {
    const close = this.ws.close.bind(this.ws);
    this.ws.close = (code?: number, reason?: string | Buffer): void => {
      if (code === 1009 || code === 1002 || code === 1007) {
        const ours = code === 1009 ? CloseCode.tooLarge : CloseCode.badMessage;
        const why = code === 1009 ? `frame over the ${PROTOCOL_LIMITS.maxFrameBytes}-byte limit` : code === 1007 ? 'frame is not valid UTF-8' : 'invalid WebSocket frame';
        this.noteClose(ours, why);
        this.armKillTimer();
        close(ours, why);
        return;
      }
      close(code, reason);
    };
  }

  get user(): string | undefined {
    return this.token?.user;
  }

  /** The peer id this client writes as: the first in its hello (ServerLayer puts its own first). */
  get ownPeer(): string | undefined {
    return this.ownPeerId;
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  // ---- outbound: the per-socket bound and slow consumers ------------------------------

  /**
   * Bytes queued for this socket and not yet taken by the kernel: what this connection handed
   * to ws and has not seen written, or ws's own `bufferedAmount` when that is more (pings, close).
   */
  get queuedBytes(): number {
    return Math.max(this.outBytes, this.ws.bufferedAmount);
  }

  get congested(): boolean {
    return this.queuedBytes > this.ctx.limits.outHighWater;
  }

  get wantsMore(): boolean {
    return this.state !== 'closed' && this.queuedBytes <= this.ctx.limits.outLowWater;
  }

  drained(): Promise<void> {
    if (this.state === 'closed' || this.queuedBytes <= this.ctx.limits.outLowWater) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private releaseDrainWaiters(): void {
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
  }

  /**
   * Queues a frame. Live batches and catch-up frames are only sent under the high- and
   * low-water marks (spaceHost.ts), so what is queued stays under the high-water mark plus one
   * frame; answers (acks, errors) are always sent, and reading the socket pauses while it is
   * congested, so a client that does not read cannot make the server queue more answers either.
   */
  send(frame: string | Buffer, ops = 0): void {
    if (this.state === 'closed' || this.ws.readyState !== WebSocket.OPEN) return;
    const n = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length;
    this.outBytes += n;
    const m = this.ctx.metrics;
    m.bytesSent += n;
    m.messagesSent++;
    m.opsSent += ops;
    // Text frames, Buffers included (ws would send a Buffer as a binary frame by default).
    this.ws.send(frame, { binary: false }, () => {
      this.outBytes -= n;
      this.writesDone++;
      if (this.outBytes <= this.ctx.limits.outLowWater) this.onDrained();
    });
    if (!this.readPausedForOutput && this.congested) {
      this.readPausedForOutput = true;
      this.ws.pause();
    }
  }

  private onDrained(): void {
    this.releaseDrainWaiters();
    if (this.readPausedForOutput && this.queuedBytes <= this.ctx.limits.outLowWater) {
      this.readPausedForOutput = false;
      if (this.state !== 'closed') void this.pump(); // resumes reading when nothing else holds it
    }
  }

  /** Bytes of the write under way that the kernel has not taken yet (libuv's write queue). */
  private kernelBacklog(): number {
    // Not public API: net.Socket's handle. A frame larger than what the kernel takes at once is
    // one write, so its callback alone would say "no progress" for as long as the whole frame
    // takes; this counter moves with every partial write.
    const handle = (this.ws as unknown as { _socket?: { _handle?: { writeQueueSize?: unknown } } })._socket?._handle;
    return typeof handle?.writeQueueSize === 'number' ? handle.writeQueueSize : 0;
  }

  /**
   * Called by the server's output sweep: a socket that has had bytes queued and let none of
   * them go for `slowConsumerMs` is closed with 4001 (the client reconnects later). Writing
   * progress also counts as a sign of life for the heartbeat (reading may be paused). With
   * `mayClose` false a due close waits for the next check. True when it closed the socket.
   */
  checkOutput(now: number, mayClose = true): boolean {
    if (this.state === 'closed') return false;
    const queued = this.queuedBytes;
    const backlog = this.kernelBacklog();
    const moved = this.writesDone !== this.outSeen.writes || backlog < this.outSeen.backlog;
    if (queued === 0 || moved) this.outSeen.progressAt = now;
    // What it was sent moves out: it is there, reading. Its pong may sit behind that data in the
    // stream for longer than a ping interval while it works through a catch-up; a socket whose
    // output stops moving is this check's to close (4001), not the pong rule's.
    if (moved) this.alive = true;
    // While reading is paused for output no pong can arrive: this check, not the heartbeat's pong
    // rule, decides whether the client is gone.
    if (this.readPausedForOutput) this.alive = true;
    this.outSeen.writes = this.writesDone;
    this.outSeen.backlog = backlog;
    // A client that pings or writes is busy working through what it was sent (a catch-up on a
    // loaded machine), not a stalled reader; what is queued for it stays bounded by the high-water mark.
    const stalledMs = now - Math.max(this.outSeen.progressAt, this.lastSignAt);
    if (!mayClose || queued === 0 || stalledMs < this.ctx.limits.slowConsumerMs) return false;
    this.ctx.metrics.slowConsumersClosed++;
    this.closeWith(CloseCode.slowConsumer, `slow consumer: ${queued} bytes waiting, none read for ${Math.round(stalledMs / 1000)} s`);
    return true;
  }

  sendError(code: ErrorCode, message: string, spaceId?: string, ref?: number): void {
    const m = this.ctx.metrics;
    m.errors.set(code, (m.errors.get(code) ?? 0) + 1);
    this.send(errorFrame(code, message, spaceId, ref));
  }

  fail(reason: string, code: number = CloseCode.internalError): void {
    this.closeWith(code, reason);
  }

  // ---- inbound -------------------------------------------------------------------

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.state === 'closed') return;
    // A client busy sending (a large outbox) may answer pings late: its frames prove it is there.
    this.signOfLife();
    this.ctx.metrics.messagesReceived++;
    this.ctx.metrics.bytesReceived += data.length;
    this.inbox.push({ data, isBinary });
    if (this.inbox.length >= this.ctx.limits.inboxFrames) this.ws.pause();
    void this.pump();
  }

  private parse(item: InboxItem): ClientMessage {
    if (item.isBinary) throw new ProtocolError('binary frames are not accepted; send JSON text');
    return parseClientMessage(item.data);
  }

  /** Handles inbox frames in order until the inbox is empty or the connection must wait. */
  private async pump(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      while (this.inbox.length > 0 && this.state !== 'closed') {
        const { limits } = this.ctx;
        if (this.inFlight >= limits.maxInFlightBatches || this.inFlightBytes >= limits.maxInFlightBytes) {
          this.ws.pause(); // resumed when a batch is stored (onBatchDone)
          return;
        }
        const item = this.inbox[0];
        const msg = (item.parsed ??= this.parse(item));
        if (this.state === 'ready') {
          const ops = msg.type === 'ops' ? msg.ops.length : msg.type === 'secrets' ? msg.records.length : 0;
          const r = this.limiter.take({ messages: 1, ops, bytes: item.data.length }, Date.now());
          if (!r.ok) {
            if (r.flood) {
              this.closeWith(CloseCode.rateLimited, `still over the rate limit after ${this.ctx.rateLimits.floodCloseMs} ms`);
              return;
            }
            this.ctx.metrics.rateLimited++;
            if (r.first) this.sendError('rate-limited', `slow down: over ${this.ctx.rateLimits.messagesPerSecond} messages or ${this.ctx.rateLimits.opsPerSecond} ops per second; reading paused`);
            this.ws.pause();
            await this.sleep(r.waitMs);
            continue;
          }
        }
        this.inbox.shift();
        await this.handle(msg, item.data.length);
      }
    } catch (e) {
      if (e instanceof ProtocolError) {
        this.closeWith(e.closeCode, e.message);
      } else if (e instanceof InvalidOpError) {
        this.closeWith(CloseCode.badMessage, e.message);
      } else if (e instanceof StoreUnavailableError) {
        this.closeWith(CloseCode.storeUnavailable, 'the store is unavailable; reconnect later');
      } else {
        this.ctx.metrics.fault('connection');
        this.ctx.logger.error('connection fault', { conn: this.id, error: errorText(e) });
        this.closeWith(CloseCode.internalError, 'internal server error');
      }
    } finally {
      this.processing = false;
      if (this.state !== 'closed' && !this.readPausedForOutput && this.inbox.length < this.ctx.limits.inboxFrames && this.inFlight < this.ctx.limits.maxInFlightBatches && this.inFlightBytes < this.ctx.limits.maxInFlightBytes) {
        this.ws.resume();
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.wakeTimer = setTimeout(resolve, ms);
    });
  }

  private async handle(msg: ClientMessage, size: number): Promise<void> {
    if (this.state === 'hello') {
      if (msg.type !== 'hello') throw new ProtocolError('the first message must be hello', CloseCode.unauthorized);
      return this.onHello(msg);
    }
    switch (msg.type) {
      case 'hello':
        throw new ProtocolError('hello was sent already');
      case 'subscribe':
        return this.onSubscribe(msg);
      case 'unsubscribe': {
        const sub = this.subs.get(msg.spaceId);
        if (sub) this.dropSubscription(sub);
        return;
      }
      case 'ops':
        return this.onOps(msg, size);
      case 'secrets':
        return this.onSecrets(msg, size);
    }
  }

  private async onHello(msg: HelloMessage): Promise<void> {
    clearTimeout(this.helloTimer);
    const check = await this.ctx.store.tokens.verify(this.headerToken ?? msg.token);
    if (this.state === 'closed') return;
    if (!check.ok) throw new ProtocolError(`token ${check.reason === 'unknown' ? 'not recognised' : check.reason}`, CloseCode.unauthorized);
    if (!this.ctx.caps.bindToken(this, check.token.id)) {
      throw new ProtocolError(`this token has its maximum of ${this.ctx.caps.limits.perToken} connections open; try again later`, CloseCode.tooManyConnections);
    }
    this.token = check.token;
    this.peerIds = new Set(msg.peerIds);
    this.ownPeerId = msg.peerIds[0];
    this.state = 'ready';
    this.send(encodeMessage({ type: 'welcome', protocol: PROTOCOL_VERSION, user: check.token.user, serverId: this.ctx.serverId }));
    this.ctx.logger.info('client connected', { conn: this.id, user: check.token.user, tokenId: check.token.id, client: msg.client, peers: msg.peerIds.length });
  }

  private async onSubscribe(msg: SubscribeMessage): Promise<void> {
    const token = this.token as TokenInfo;
    const role = roleIn(token, msg.spaceId);
    if (!role) return this.sendError('forbidden', 'this token gives no access to the space', msg.spaceId);
    const previous = this.subs.get(msg.spaceId);
    if (!previous && this.subs.size >= this.ctx.limits.maxSubscriptions) {
      return this.sendError('too-large', `at most ${this.ctx.limits.maxSubscriptions} subscriptions per connection`, msg.spaceId);
    }
    const host = await this.acquire(msg.spaceId);
    if (!host) return;
    if (this.state === 'closed') {
      this.ctx.registry.release(host);
      return;
    }
    const sub = host.subscribe(this, role, msg.since);
    this.subs.set(msg.spaceId, sub);
    if (previous) this.ctx.registry.release(previous.host);
    this.ctx.logger.debug('subscribed', { conn: this.id, spaceId: msg.spaceId, since: msg.since, seq: host.seq });
  }

  private dropSubscription(sub: Subscription): void {
    this.subs.delete(sub.host.spaceId);
    sub.host.unsubscribe(sub);
    this.ctx.registry.release(sub.host);
  }

  /** The host of a space, with a reference; undefined (and an error sent) when it is not there. */
  private async acquire(spaceId: string, ref?: number): Promise<SpaceHost | undefined> {
    try {
      return await this.ctx.registry.acquire(spaceId);
    } catch (e) {
      if (e instanceof SpaceNotFoundError) this.sendError('not-found', `no space ${spaceId} on this server`, spaceId, ref);
      else this.sendError('internal', 'the space could not be loaded', spaceId, ref);
      return undefined;
    }
  }

  /** Checks that the token may write the space; sends `forbidden` and returns false if not. */
  private mayWrite(spaceId: string, ref: number): boolean {
    const role = roleIn(this.token as TokenInfo, spaceId);
    if (canWrite(role)) return true;
    this.sendError('forbidden', role ? 'this token may only read the space' : 'this token gives no access to the space', spaceId, ref);
    return false;
  }

  private async onOps(msg: ClientOpsMessage, size: number): Promise<void> {
    if (!this.mayWrite(msg.spaceId, msg.ref)) return;
    const ops = decodeOps(msg.ops, msg.treeId, 'ops message');
    for (const op of ops) {
      if (!this.peerIds.has(op.id.peerId)) throw new ProtocolError(`op under peer id ${op.id.peerId} that hello did not announce`);
    }
    this.ctx.metrics.opsReceived += ops.length;
    await this.write(msg.spaceId, msg.ref, size, (host) => host.enqueueOps(msg.treeId, ops, this, msg.ref));
  }

  private async onSecrets(msg: ClientSecretsMessage, size: number): Promise<void> {
    if (!this.mayWrite(msg.spaceId, msg.ref)) return;
    await this.write(msg.spaceId, msg.ref, size, (host) => host.enqueueSecrets(msg.records, this, msg.ref));
  }

  /** Queues a write on the space's host without waiting for it; counts it as in flight. */
  private async write(spaceId: string, ref: number, size: number, enqueue: (host: SpaceHost) => Promise<void>): Promise<void> {
    const sub = this.subs.get(spaceId);
    const host = sub ? sub.host : await this.acquire(spaceId, ref);
    if (!host) return;
    if (sub) await this.ctx.registry.acquire(spaceId); // a reference of its own, in case of unsubscribe
    this.inFlight++;
    this.inFlightBytes += size;
    enqueue(host)
      .catch(() => undefined) // the host reported the failure to the client
      .finally(() => {
        this.ctx.registry.release(host);
        this.inFlight--;
        this.inFlightBytes -= size;
        if (this.state !== 'closed') void this.pump();
      });
  }

  // ---- liveness and re-checks ----------------------------------------------------------

  private signOfLife(): void {
    this.alive = true;
    this.lastSignAt = Date.now();
  }

  /**
   * Called by the server's heartbeat: closes a socket that missed a pong, else pings it. With
   * `judge` false (the heartbeat came late: this process was busy, so pongs may be unread) it
   * only pings again.
   */
  heartbeat(judge = true): void {
    if (this.state === 'closed') return;
    if (!this.alive && judge) {
      this.closeWith(CloseCode.timeout, 'no pong to the last ping');
      return;
    }
    // Revocation and expiry are the token watch's (tokenWatch.ts, every 250 ms), not the ping's.
    this.alive = false;
    this.ws.ping();
  }

  /** The token this socket authenticated with; undefined before hello and once closed. */
  get tokenInfo(): TokenInfo | undefined {
    return this.state === 'ready' ? this.token : undefined;
  }

  /**
   * The server's token watch (tokenWatch.ts) hands over the token as stored now (undefined: it no
   * longer exists). Revoked, expired or gone: the socket is closed with 4401. Otherwise the stored
   * token replaces ours, so its role rules from the next message on (a write with a lowered role
   * gets `forbidden`), and subscriptions to spaces it no longer covers end with `forbidden`.
   */
  applyToken(fresh: TokenInfo | undefined, now: number): void {
    const current = this.tokenInfo;
    if (!current) return;
    const problem = fresh ? tokenProblem(fresh, now) : 'revoked';
    if (!fresh || problem) {
      this.closeWith(CloseCode.unauthorized, `token ${problem}`);
      return;
    }
    this.token = fresh; // expiry included: the stored one rules
    if (fresh.role === current.role && fresh.space === current.space) return;
    this.ctx.logger.info('token changed', { conn: this.id, tokenId: fresh.id, role: fresh.role, was: current.role });
    for (const sub of Array.from(this.subs.values())) {
      if (roleIn(fresh, sub.host.spaceId)) continue;
      this.dropSubscription(sub);
      this.sendError('forbidden', 'this token no longer gives access to the space; subscription ended', sub.host.spaceId);
    }
  }

  // ---- closing -------------------------------------------------------------------------

  private noteClose(code: number, reason: string): void {
    const m = this.ctx.metrics;
    m.closes.set(String(code), (m.closes.get(String(code)) ?? 0) + 1);
    const level = code === CloseCode.goingAway || code === CloseCode.normal ? 'debug' : code === CloseCode.internalError ? 'error' : 'info';
    this.ctx.logger[level]('closing socket', { conn: this.id, user: this.token?.user, code, reason });
  }

  private armKillTimer(): void {
    clearTimeout(this.killTimer);
    this.killTimer = setTimeout(() => this.ws.terminate(), this.ctx.limits.closeGraceMs);
    this.killTimer.unref();
  }

  /**
   * Closes the socket with `code` and stops handling its frames. Reading resumes so the client's
   * close frame can arrive; a client that does not answer is cut off after `closeGraceMs`.
   */
  closeWith(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.noteClose(code, reason);
    this.cleanup();
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, closeReason(reason));
    this.ws.resume();
    this.armKillTimer();
  }

  /** Stops reading, for shutdown: queued frames are dropped (they were not acknowledged). */
  stopReading(): void {
    if (this.state === 'closed') return;
    this.inbox.length = 0;
    this.ws.pause();
  }

  private cleanup(): void {
    this.state = 'closed';
    clearTimeout(this.helloTimer);
    clearTimeout(this.wakeTimer);
    this.wake?.();
    this.inbox.length = 0;
    for (const sub of [...this.subs.values()]) this.dropSubscription(sub);
    this.releaseDrainWaiters();
  }

  private onSocketClosed(code: number): void {
    if (this.state !== 'closed') this.cleanup();
    clearTimeout(this.killTimer);
    this.ctx.logger.debug('socket closed', { conn: this.id, code });
    this.ctx.onClosed(this);
  }

  /** Resolves when the socket has closed (or after `ms`, then it is cut off). */
  whenClosed(ms: number): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, ms);
      this.ws.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
