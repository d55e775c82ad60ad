/**
 * The HTTP side of the server (same port as the WebSocket):
 *   GET  /healthz     → 200 {"ok":true,"pid",store:{ok,kind},fanout:{ok,kind}}; 503 with ok:false when
 *                       the store or the fan-out connection is down
 *   GET  /metrics     → Prometheus text
 *   GET  /v1/spaces   → the spaces the Bearer token may see, with its role in each
 *   POST /v1/spaces   → creates a space {name, id?}
 * Errors are JSON {"error": message}.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { newVertexId, TreeError, type AppTree } from '../spaces/appTree';
import { Space } from '../spaces/space';
import { errorText, type Logger } from './log';
import type { Gauges, Metrics } from './metrics';
import { parseRequestTarget } from './requestTarget';
import { SPACE_PAGE_PATH, spacePage } from './spacePage';
import { SpaceExistsError } from './store/serverStore';
import { StoreUnavailableError, type SpaceStore, type StoreHealth } from './store/spaceStore';
import { ALL_SPACES, canWrite, roleIn, type TokenInfo } from './store/tokenStore';
import { ID_RULES, isHexId } from '../spaces/ids';

const MAX_BODY_BYTES = 64 * 1024;

/** What GET /healthz answers (503 when not ok). */
export interface Health {
  readonly ok: boolean;
  readonly pid: number;
  readonly store: StoreHealth;
  readonly fanout: { readonly kind: string; readonly ok: boolean; readonly error?: string };
}

export interface HttpContext {
  readonly store: SpaceStore;
  health(): Promise<Health>;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** The peer id the server writes its own ops under (the SpaceManager's). */
  readonly peerId: string;
  gauges(): Gauges;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The token of an `Authorization: Bearer …` header, or undefined. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer +(\S+) *$/i.exec(h);
  return m ? m[1] : undefined;
}

async function authenticate(req: IncomingMessage, ctx: HttpContext): Promise<TokenInfo> {
  const token = bearerToken(req);
  const challenge = { 'WWW-Authenticate': 'Bearer' };
  if (!token) throw new HttpError(401, 'an Authorization: Bearer token is required', challenge);
  const check = await ctx.store.tokens.verify(token);
  if (!check.ok) throw new HttpError(401, `token ${check.reason === 'unknown' ? 'not recognised' : check.reason}`, challenge);
  return check.token;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        // Stop keeping the body (the rest is read and dropped) and answer 413 right away.
        req.removeAllListeners('data');
        req.resume();
        reject(new HttpError(413, `the body is larger than ${MAX_BODY_BYTES} bytes`, { Connection: 'close' }));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function countResponse(ctx: HttpContext, status: number): void {
  ctx.metrics.httpResponses.set(String(status), (ctx.metrics.httpResponses.get(String(status)) ?? 0) + 1);
}

function send(res: ServerResponse, ctx: HttpContext, status: number, body: string, type: string, headers: Record<string, string> = {}): void {
  countResponse(ctx, status);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...headers });
  res.end(body);
}

function sendJson(res: ServerResponse, ctx: HttpContext, status: number, value: unknown, headers: Record<string, string> = {}): void {
  send(res, ctx, status, JSON.stringify(value), 'application/json; charset=utf-8', headers);
}

async function listSpaces(token: TokenInfo, ctx: HttpContext): Promise<Array<{ id: string; name: string; role: string }>> {
  const spaces = token.space === ALL_SPACES ? await ctx.store.listSpaces() : [await ctx.store.getSpace(token.space)].filter((s) => s !== undefined);
  return spaces.map((s) => ({ id: s.id, name: s.name, role: roleIn(token, s.id) ?? 'read' }));
}

async function createSpace(req: IncomingMessage, token: TokenInfo, ctx: HttpContext): Promise<{ id: string; name: string }> {
  let body: unknown;
  try {
    body = JSON.parse(await readBody(req));
  } catch (e) {
    if (e instanceof HttpError) throw e;
    throw new HttpError(400, 'the body must be JSON: {"name": …, "id"?: …}');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'the body must be a JSON object');
  const { name, id } = body as Record<string, unknown>;
  if (typeof name !== 'string') throw new HttpError(400, 'name must be a string');
  if (id !== undefined && !isHexId(id)) throw new HttpError(400, `id must be ${ID_RULES.hex}`);
  // A '*' write/admin token may create any space; an admin token of one space may create that space.
  const allowed = (token.space === ALL_SPACES && canWrite(token.role)) || (token.role === 'admin' && id !== undefined && token.space === id);
  if (!allowed) throw new HttpError(403, "creating a space needs a '*' token with write or admin role, or the admin token of that space id");
  const spaceId = (id as string | undefined) ?? newVertexId();
  let tree: AppTree;
  try {
    tree = Space.newSpaceTree(ctx.peerId, name, spaceId);
  } catch (e) {
    if (e instanceof TreeError) throw new HttpError(400, e.message);
    throw e;
  }
  try {
    const ops = tree.allOps();
    await ctx.store.createSpace(spaceId, name, ops);
  } catch (e) {
    if (e instanceof SpaceExistsError) throw new HttpError(409, e.message);
    throw e;
  } finally {
    tree.dispose();
  }
  ctx.logger.info('space created', { spaceId, user: token.user, tokenId: token.id });
  return { id: spaceId, name };
}

export async function handleHttp(req: IncomingMessage, res: ServerResponse, ctx: HttpContext): Promise<void> {
  let route = `${req.method ?? 'GET'} (unparsed target)`;
  try {
    // Parsing what the peer sent happens inside the error boundary: a bad target is a 400.
    const target = parseRequestTarget(req.url);
    if (!target.ok) throw new HttpError(400, target.reason, { Connection: 'close' });
    const { pathname } = target;
    route = `${req.method ?? 'GET'} ${pathname}`;
    switch (route) {
      case 'GET /healthz': {
        const h = await ctx.health();
        return sendJson(res, ctx, h.ok ? 200 : 503, h);
      }
      case 'GET /metrics':
        return send(res, ctx, 200, ctx.metrics.render(ctx.gauges()), 'text/plain; version=0.0.4; charset=utf-8');
      case 'GET /v1/spaces':
        return sendJson(res, ctx, 200, { spaces: await listSpaces(await authenticate(req, ctx), ctx) });
      case `GET ${SPACE_PAGE_PATH}`: { const page = await spacePage(req.url, await authenticate(req, ctx), ctx.store); return sendJson(res, ctx, page.status, page.body); }
      case 'POST /v1/spaces': {
        const token = await authenticate(req, ctx);
        return sendJson(res, ctx, 201, await createSpace(req, token, ctx));
      }
    }
    const allow: Record<string, string> = { '/healthz': 'GET', '/metrics': 'GET', '/v1/spaces': 'GET, POST', '/v1/sync': 'GET' };
    if (Object.hasOwn(allow, pathname)) {
      if (pathname === '/v1/sync') throw new HttpError(426, 'this endpoint speaks WebSocket only', { Upgrade: 'websocket' });
      throw new HttpError(405, `${req.method} is not allowed on ${pathname}`, { Allow: allow[pathname] });
    }
    throw new HttpError(404, `nothing at ${pathname}`);
  } catch (e) {
    if (e instanceof HttpError) return sendJson(res, ctx, e.status, { error: e.message }, e.headers);
    if (e instanceof StoreUnavailableError) return sendJson(res, ctx, 503, { error: 'the store is unavailable; try again later' }, { 'Retry-After': '1' });
    ctx.metrics.fault('http');
    ctx.logger.error('http fault', { route, error: errorText(e) });
    if (!res.headersSent) sendJson(res, ctx, 500, { error: 'internal server error' });
    else res.destroy();
  }
}

/** The request listener: handleHttp behind a last boundary, so an answer that fails ends one socket, never the process. */
export function serveHttp(req: IncomingMessage, res: ServerResponse, ctx: HttpContext): void {
  handleHttp(req, res, ctx).catch((e: unknown) => {
    ctx.metrics.fault('http');
    ctx.logger.error('http fault', { error: errorText(e) });
    res.destroy();
  });
}

/**
 * A request Node's parser refused (bad request line, bad header bytes, headers over the limit):
 * answered like every other error, as JSON, then the socket is closed.
 */
export function answerClientError(e: Error, socket: Duplex, ctx: HttpContext): void {
  if (!socket.writable) return;
  const code = (e as NodeJS.ErrnoException).code;
  const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  const body = JSON.stringify({ error: status === 431 ? 'the request line and headers are too large' : 'malformed HTTP request' });
  countResponse(ctx, status);
  endWithResponse(socket, status, body);
}

/**
 * Answers on a raw socket (a request the parser refused, or an upgrade that is not accepted) and
 * closes it: `status`, then `body` as JSON when there is one.
 */
export function endWithResponse(socket: Duplex, status: number, body?: string, headers: Readonly<Record<string, string | number>> = {}): void {
  const head = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`, 'Connection: close'];
  for (const [k, v] of Object.entries(headers)) head.push(`${k}: ${v}`);
  if (body !== undefined) head.push('Content-Type: application/json; charset=utf-8');
  head.push(`Content-Length: ${body === undefined ? 0 : Buffer.byteLength(body)}`);
  socket.end(`${head.join('\r\n')}\r\n\r\n${body ?? ''}`);
}
