/**
 * The request target of an HTTP request line, parsed once for both the HTTP endpoints and the
 * WebSocket upgrade. Node's parser passes absolute targets it cannot resolve
 * (`GET http://[::1 HTTP/1.1`, a port of 99999) through as `req.url`; `new URL` throws on them,
 * so every target goes through here and a bad one is a value, never an exception.
 *
 * Accepted: origin-form (`/path?query`), and absolute-form (`http://host/path`, as a proxy sends)
 * with an http(s)/ws(s) scheme. Everything else (`*`, authority-form, garbage) is refused: no
 * endpoint of this server answers it.
 */

/** Longest target accepted (Node's header limit bounds the request line already; this bounds what we parse). */
export const MAX_TARGET_LENGTH = 8 * 1024;
const ORIGIN = 'http://server';
const SCHEMES: ReadonlySet<string> = new Set(['http:', 'https:', 'ws:', 'wss:']);

export type RequestTarget = { readonly ok: true; readonly pathname: string } | { readonly ok: false; readonly reason: string };

function parse(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

/** The path a request asks for, or why its target is refused. Never throws. */
export function parseRequestTarget(target: string | undefined): RequestTarget {
  if (target === undefined || target.length === 0) return { ok: false, reason: 'empty request target' };
  if (target.length > MAX_TARGET_LENGTH) return { ok: false, reason: `request target longer than ${MAX_TARGET_LENGTH} characters` };
  if (target.startsWith('/')) {
    // Prefixing the origin keeps `//x` a path (a relative `//x` would be read as host x).
    const url = parse(ORIGIN + target);
    return url ? { ok: true, pathname: url.pathname } : { ok: false, reason: 'invalid request target' };
  }
  const url = parse(target);
  if (!url || !SCHEMES.has(url.protocol)) return { ok: false, reason: 'invalid request target: expected /path or an absolute http(s) URL' };
  return { ok: true, pathname: url.pathname };
}
