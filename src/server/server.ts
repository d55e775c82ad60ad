/**
 * startServer: the team sync server on one port — WebSocket sync at /v1/sync and the HTTP
 * endpoints (http.ts) — over one SQLite store in `dataDir`, or over a PostgreSQL database
 * (`store: 'postgres://…'`) that several server processes share; they hear of each other's
 * batches through the fan-out bus (fanout/).
 *
 *   const server = await startServer({ dataDir, port: 0 });   // port 0: pick a free one
 *   server.url      // http://127.0.0.1:PORT
 *   server.syncUrl  // ws://127.0.0.1:PORT/v1/sync
 *   await server.close();                                      // graceful, idempotent
 *
 * With SQLite, one server per data directory (an OS lock on DIR/server.lock.db, see
 * store/dirLock.ts): the server is the only writer of the spaces in it (the `token` commands may
 * run next to it). With PostgreSQL the data directory holds only server.key, and any number of
 * processes may serve the same database.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { CloseCode, PROTOCOL_LIMITS, SYNC_PATH } from '../protocol/messages';
import type { Event } from '../spaces/events';
import { SpaceManager } from '../spaces/spaceManager';
import { DEFAULT_ADMISSION_LIMITS, type AdmissionLimits } from './admission';
import { ClientConnection, DEFAULT_CONNECTION_LIMITS, type ConnectionContext, type ConnectionLimits } from './connection';
import { ConnectionCaps, connectionCapLimits, type ConnectionCapLimits } from './connectionCaps';
import { CatchUpCache } from './frameCache';
import { answerClientError, bearerToken, endWithResponse, serveHttp, type HttpContext } from './http';
import { errorText, jsonLogger, type Logger } from './log';
import { Metrics } from './metrics';
import { rateLimits, type RateLimits } from './rateLimit';
import { parseRequestTarget } from './requestTarget';
import { SpaceRegistry } from './spaceRegistry';
import { lockDataDir } from './store/dirLock';
import { openSpaceStore } from './store/openStore';
import type { SpaceStore } from './store/spaceStore';
import { LocalBus, type FanoutBus } from './fanout/bus';
import { PgBus } from './fanout/pgBus';
import { TokenWatch, tokenRecheckInterval } from './tokenWatch';

export interface ServerOptions {
  /** Directory of the database and server.key (created when missing). */
  readonly dataDir: string;
  /** A `postgres://` URL: store everything there, shared with other server processes. Default: SQLite in dataDir. */
  readonly store?: string;
  /** TCP port; 0 (the default) picks a free one. */
  readonly port?: number;
  /** Interface to listen on; default 127.0.0.1. */
  readonly host?: string;
  /** WebSocket ping interval; a socket without a pong by the next ping is closed (4408). Default 30 s. */
  readonly pingIntervalMs?: number;
  /** Time a client has to send `hello` (4408 after). Default 10 s. */
  readonly helloTimeoutMs?: number;
  /** A space with no subscriber and no write for this long is unloaded. Default 60 s. */
  readonly idleUnloadMs?: number;
  /** On close, how long clients get to answer the 1001 close before they are cut off. Default 5 s. */
  readonly shutdownGraceMs?: number;
  readonly rateLimits?: Partial<RateLimits>;
  readonly connectionLimits?: Partial<ConnectionLimits>;
  /** How often open sockets' tokens are re-checked against the store (revocation, role, expiry). Default 250 ms. */
  readonly tokenRecheckMs?: number;
  /** Connections in all, per remote address and per token (connectionCaps.ts). */
  readonly connectionCaps?: Partial<ConnectionCapLimits>;
  /** Bytes of encoded catch-up frames kept for sharing between sockets. Default 32 MiB. */
  readonly catchUpCacheBytes?: number;
  /** How far client counters and secret times may run ahead (docs/server.md, "Limits"). */
  readonly admission?: Partial<AdmissionLimits>;
  /** Default: JSON lines on stdout at level info. */
  readonly logger?: Logger;
  /** 32-byte key for secrets at rest; default: DIR/server.key (created 0600). */
  readonly secretKey?: Buffer;
}

export interface RunningServer {
  /** http://HOST:PORT */
  readonly url: string;
  /** ws://HOST:PORT/v1/sync */
  readonly syncUrl: string;
  readonly host: string;
  readonly port: number;
  /** Random id of the database, sent in `welcome` (the same for every process of one PostgreSQL database). */
  readonly serverId: string;
  readonly metrics: Metrics;
  /** `sqlite` or `postgres`. */
  readonly storeKind: string;
  /** Spaces loaded in memory now. */
  loadedSpaces(): number;
  /** A space finished loading / was unloaded (idle or shutdown); the argument is its id. */
  readonly onDidLoadSpace: Event<string>;
  readonly onDidUnloadSpace: Event<string>;
  /**
   * Trees the server holds as a merged CRDT: the space tree of each loaded space, nothing else
   * (app trees are served from storage, see spaceHost.ts).
   */
  builtTrees(): number;
  /** Stops accepting, finishes queued writes, closes sockets with 1001, closes the database. Idempotent. */
  close(): Promise<void>;
}

/**
 * Default of ServerOptions.catchUpCacheBytes: the frames of a few big spaces' catch-up (an 8 MB
 * space is about 8 MB of frames), and more than the largest frame (8 MiB, one batch).
 */
const DEFAULT_CATCH_UP_CACHE_BYTES = 32 * 1024 * 1024;

/** How often sockets' output is checked for slow consumers: a quarter of the time they get, at most 1 s. */
function outputSweepMs(slowConsumerMs: number): number {
  return Math.max(10, Math.min(1_000, Math.floor(slowConsumerMs / 4)));
}

/** Slow consumers closed per output sweep at most (the rest wait for the next sweep). */
const SLOW_CLOSES_PER_SWEEP = 200;
/** A heartbeat this much later than its interval means the process was busy: nobody is judged on it. */
const LATE_BEAT_FACTOR = 1.5;
/** How often a shared store's health is probed (new sockets are refused with 503 while it is down). */
const STORE_PROBE_MS = 1_000;

/** The fan-out bus of a store: LISTEN/NOTIFY for PostgreSQL, none for SQLite (one process). */
async function startBus(opts: ServerOptions, store: SpaceStore): Promise<FanoutBus> {
  return opts.store !== undefined && store.kind === 'postgres' ? PgBus.start(opts.store) : new LocalBus();
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const logger = opts.logger ?? jsonLogger('info');
  const host = opts.host ?? '127.0.0.1';
  const pingIntervalMs = opts.pingIntervalMs ?? 30_000;
  const shutdownGraceMs = opts.shutdownGraceMs ?? 5_000;
  const limits: ConnectionLimits = { ...DEFAULT_CONNECTION_LIMITS, ...opts.connectionLimits };
  const rates = rateLimits(opts.rateLimits);
  const tokenRecheckMs = tokenRecheckInterval(opts.tokenRecheckMs);
  const capLimits = connectionCapLimits(opts.connectionCaps);
  const cacheBytes = opts.catchUpCacheBytes ?? DEFAULT_CATCH_UP_CACHE_BYTES;
  if (!Number.isSafeInteger(cacheBytes) || cacheBytes < 0) throw new RangeError(`catchUpCacheBytes must be a non-negative integer (got ${cacheBytes})`);

  const store = await openSpaceStore({ dataDir: opts.dataDir, store: opts.store, secretKey: opts.secretKey });
  let unlock: () => void = () => undefined;
  let bus: FanoutBus;
  try {
    if (store.kind === 'sqlite') unlock = lockDataDir(opts.dataDir);
    bus = await startBus(opts, store);
  } catch (e) {
    unlock();
    await store.close();
    throw e;
  }
  if (store.keyFileMode !== undefined) logger.warn('server.key is readable by other users; chmod 600 it', { mode: store.keyFileMode.toString(8) });
  const metrics = new Metrics();
  const caps = new ConnectionCaps(capLimits, metrics);
  const catchUpCache = new CatchUpCache(cacheBytes);
  const manager = new SpaceManager();
  manager.onDidError((e) => logger.warn('space error', { spaceId: e.spaceId, layerId: e.layerId, error: e.message }));
  const admission: AdmissionLimits = { ...DEFAULT_ADMISSION_LIMITS, ...opts.admission };
  const registry = new SpaceRegistry({ store, manager, metrics, logger, catchUpCache, idleUnloadMs: opts.idleUnloadMs ?? 60_000, admission });
  const connections = new Set<ClientConnection>();
  const busSubs = [bus.onNotice((n) => registry.noteCommitted(n.spaceId, n.seq)), bus.onResync(() => registry.resyncAll())];
  // A shared store is probed, so a process whose database is away says so (/healthz) and takes no new sockets.
  let storeOk = true;
  let probing = false;
  const probe = setInterval(() => {
    if (probing || store.kind === 'sqlite') return;
    probing = true;
    store
      .health()
      .then((h) => {
        if (h.ok !== storeOk) logger.warn(h.ok ? 'store available again' : 'store unavailable', { store: store.kind, error: h.error });
        storeOk = h.ok;
      })
      .finally(() => (probing = false));
  }, STORE_PROBE_MS);
  probe.unref();

  const connCtx: ConnectionContext = {
    store,
    registry,
    metrics,
    logger,
    serverId: store.serverId,
    rateLimits: rates,
    limits,
    helloTimeoutMs: opts.helloTimeoutMs ?? PROTOCOL_LIMITS.helloTimeoutMs,
    caps,
    onClosed: (c) => {
      connections.delete(c);
      caps.release(c);
    },
  };
  const queuedGauges = (): { bytesQueued: number; socketBytesQueuedMax: number } => {
    let bytesQueued = 0;
    let socketBytesQueuedMax = 0;
    for (const c of connections) {
      const q = c.queuedBytes;
      bytesQueued += q;
      socketBytesQueuedMax = Math.max(socketBytesQueuedMax, q);
    }
    return { bytesQueued, socketBytesQueuedMax };
  };
  const httpCtx: HttpContext = {
    store,
    metrics,
    logger,
    peerId: manager.peerId,
    gauges: () => ({
      connections: connections.size,
      spacesLoaded: registry.loadedCount,
      subscriptions: registry.subscriptionCount,
      ...queuedGauges(),
      catchUp: catchUpCache.stats,
      cluster: { store: store.kind, storeOk, bus: bus.status(), seqsBehind: registry.seqsBehind },
    }),
    health: async () => {
      const h = await store.health();
      storeOk = h.ok;
      const b = bus.status();
      return { ok: h.ok && b.ok, pid: process.pid, store: h, fanout: { kind: b.kind, ok: b.ok, ...(b.error ? { error: b.error } : {}) } };
    },
  };

  const wss = new WebSocketServer({ noServer: true, maxPayload: PROTOCOL_LIMITS.maxFrameBytes, perMessageDeflate: false, clientTracking: false });
  const server = http.createServer((req, res) => serveHttp(req, res, httpCtx));
  let closing: Promise<void> | undefined;

  const acceptUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (closing) return endWithResponse(socket, 503);
    if (!storeOk) return endWithResponse(socket, 503, JSON.stringify({ error: 'the store is unavailable', retryAfterSeconds: 1 }), { 'Retry-After': 1 });
    const target = parseRequestTarget(req.url);
    if (!target.ok) return endWithResponse(socket, 400);
    if (target.pathname !== SYNC_PATH) return endWithResponse(socket, 404);
    const address = req.socket.remoteAddress ?? '';
    const refusal = caps.checkUpgrade(address);
    if (refusal) {
      const body = JSON.stringify({ error: refusal.message, reason: refusal.reason, retryAfterSeconds: refusal.retryAfterS });
      return endWithResponse(socket, refusal.status, body, { 'Retry-After': refusal.retryAfterS });
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (closing) {
        ws.close(CloseCode.goingAway, 'server shutting down');
        return;
      }
      const c = new ClientConnection(ws, req, connCtx, bearerToken(req));
      caps.admit(c, address);
      connections.add(c);
    });
  };
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (e) => logger.debug('upgrade socket error', { error: errorText(e) }));
    // The error boundary of the upgrade path: whatever the request holds, one socket fails, never the process.
    try {
      acceptUpgrade(req, socket, head);
    } catch (e) {
      metrics.fault('upgrade');
      logger.error('upgrade fault', { error: errorText(e) });
      socket.destroy();
    }
  });
  server.on('clientError', (e: Error, socket: Duplex) => answerClientError(e, socket, httpCtx));

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    await manager.dispose();
    clearInterval(probe);
    for (const d of busSubs) d.dispose();
    await bus.close();
    await store.close();
    unlock();
    throw e;
  }
  server.on('error', (e) => logger.error('server error', { error: errorText(e) }));

  // A busy server is not a dead client: sockets are judged after the poll phase (pongs that came
  // while this loop was busy are read first), and not at all on a beat that came late.
  let lastBeat = Date.now();
  let beat: NodeJS.Immediate | undefined;
  const heartbeat = setInterval(() => {
    beat ??= setImmediate(() => {
      beat = undefined;
      const now = Date.now();
      const judge = now - lastBeat < pingIntervalMs * LATE_BEAT_FACTOR;
      lastBeat = now;
      for (const c of connections) {
        try {
          c.heartbeat(judge);
        } catch (e) {
          logger.debug('heartbeat failed', { conn: c.id, error: errorText(e) });
        }
      }
    });
  }, pingIntervalMs);
  heartbeat.unref();
  const tokenWatch = new TokenWatch({ tokens: store.tokens, intervalMs: tokenRecheckMs, holders: () => connections, logger });
  await tokenWatch.start().catch((e: unknown) => logger.warn('token watch: first read failed', { error: errorText(e) }));
  // Slow consumers: sockets whose queued output does not move (connection.ts checkOutput).
  // Sockets that stalled together are closed a batch per sweep, not all in one event-loop turn.
  const outputSweep = setInterval(() => {
    const now = Date.now();
    let closed = 0;
    for (const c of connections) if (c.checkOutput(now, closed < SLOW_CLOSES_PER_SWEEP)) closed++;
  }, outputSweepMs(limits.slowConsumerMs));
  outputSweep.unref();

  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${urlHost}:${port}`;

  const close = (): Promise<void> => {
    closing ??= (async () => {
      logger.info('shutting down', { connections: connections.size, spacesLoaded: registry.loadedCount });
      clearInterval(heartbeat);
      if (beat) clearImmediate(beat);
      tokenWatch.dispose();
      clearInterval(outputSweep);
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of connections) c.stopReading();
      await registry.flush();
      await Promise.all(
        [...connections].map((c) => {
          c.closeWith(CloseCode.goingAway, 'server shutting down');
          return c.whenClosed(shutdownGraceMs);
        }),
      );
      await registry.closeAll();
      await manager.dispose();
      server.closeAllConnections();
      await serverClosed;
      wss.close();
      clearInterval(probe);
      for (const d of busSubs) d.dispose();
      await bus.close();
      await store.close();
      unlock();
      logger.info('stopped');
    })();
    return closing;
  };

  return {
    url,
    syncUrl: `ws://${urlHost}:${port}${SYNC_PATH}`,
    host,
    port,
    serverId: store.serverId,
    metrics,
    storeKind: store.kind,
    loadedSpaces: () => registry.loadedCount,
    onDidLoadSpace: registry.onDidLoadSpace,
    onDidUnloadSpace: registry.onDidUnloadSpace,
    builtTrees: () => manager.list().reduce((n, s) => n + 1 + s.loadedAppTreeIds().length, 0),
    close,
  };
}
