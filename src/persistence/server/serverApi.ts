/**
 * The team server's HTTP API as the extension and `spaces sync` use it (docs/server.md):
 * GET /v1/spaces checks a token and lists the spaces it may see; POST /v1/spaces uploads a space
 * made locally (with its own id). Answers are untrusted: checked before use. No `vscode` here.
 */
import { serverBaseUrl } from './connection';
import { isHexId } from '../../spaces/ids';


function isSpaceId(x: unknown): x is string {
  return isHexId(x);
}

const TIMEOUT_MS = 10_000;

export interface ServerSpace {
  readonly id: string;
  readonly name: string;
  readonly role: string;
}

export class ServerApiError extends Error {
  constructor(
    message: string,
    /** The HTTP status, undefined when the server was not reached. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ServerApiError';
  }

  /** The server refused the token (401). */
  get unauthorized(): boolean {
    return this.status === 401;
  }
}

export interface ApiOptions {
  readonly timeoutMs?: number;
}

export async function request(url: string, token: string, path: string, init: { method: string; body?: string }, opts: ApiOptions): Promise<{ status: number; body: unknown }> {
  const base = serverBaseUrl(url);
  const target = `${base}${path}`;
  let res: Response;
  try {
    res = await fetch(target, {
      method: init.method,
      headers: { Authorization: `Bearer ${token}`, ...(init.body ? { 'Content-Type': 'application/json' } : {}) },
      body: init.body,
      signal: AbortSignal.timeout(opts.timeoutMs ?? TIMEOUT_MS),
      redirect: 'error',
    });
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : undefined;
    const why = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError') ? `no answer within ${(opts.timeoutMs ?? TIMEOUT_MS) / 1000} s` : (cause ?? (e instanceof Error ? e.message : String(e)));
    throw new ServerApiError(`cannot reach ${base}: ${why}`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.status, body };
}

export function errorOf(status: number, body: unknown, base: string, what: string): ServerApiError {
  const said = body && typeof body === 'object' && typeof (body as { error?: unknown }).error === 'string' ? (body as { error: string }).error.slice(0, 300) : undefined;
  if (status === 401) return new ServerApiError(`${base} refused the token${said ? ` (${said})` : ''}`, status);
  return new ServerApiError(`${what} on ${base} failed: HTTP ${status}${said ? ` (${said})` : ''}`, status);
}

/** The spaces the token may see (also: the token check of a sign-in). */
export async function listServerSpaces(url: string, token: string, opts: ApiOptions = {}): Promise<ServerSpace[]> {
  const base = serverBaseUrl(url);
  const { status, body } = await request(url, token, '/v1/spaces', { method: 'GET' }, opts);
  if (status !== 200) throw errorOf(status, body, base, 'listing spaces');
  const list = body && typeof body === 'object' ? (body as { spaces?: unknown }).spaces : undefined;
  if (!Array.isArray(list)) throw new ServerApiError(`${base} is not a spaces server (GET /v1/spaces did not answer {"spaces": […]})`, status);
  return list.flatMap((s: unknown): ServerSpace[] => {
    if (!s || typeof s !== 'object') return [];
    const { id, name, role } = s as Record<string, unknown>;
    return isSpaceId(id) && typeof name === 'string' && typeof role === 'string' ? [{ id, name, role }] : [];
  });
}

/**
 * Makes sure the server has space `id` (named `name` if it creates it): 'exists' when the token
 * sees it already or the server says it exists, 'created' when it was made now. Throws when the
 * token may not create it (403) or on any other failure.
 */
export async function ensureServerSpace(url: string, token: string, id: string, name: string, opts: ApiOptions = {}): Promise<'exists' | 'created'> {
  if (!isSpaceId(id)) throw new TypeError(`not a space id: ${id}`);
  const base = serverBaseUrl(url);
  const spaces = await listServerSpaces(url, token, opts);
  if (spaces.some((s) => s.id === id)) return 'exists';
  const { status, body } = await request(url, token, '/v1/spaces', { method: 'POST', body: JSON.stringify({ id, name: name.slice(0, 200) || 'Space' }) }, opts);
  if (status === 201) return 'created';
  if (status === 409) return 'exists';
  if (status === 403) throw new ServerApiError(`${base} does not let this token create space ${id}: ask its admin for a token with write access to every space ('*'), or to create it`, status);
  throw errorOf(status, body, base, 'creating the space');
}
