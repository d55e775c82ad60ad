/**
 * The team sync settings, read and checked (no `vscode` here: the extension passes the raw values
 * of its configuration, the unit tests pass anything).
 *
 *   "spaces.server.url": "http://127.0.0.1:8787"          the team server (default for every space)
 *   "spaces.server.connections": {                        which spaces sync, per space id
 *     "3f9c…": true,                                      with spaces.server.url
 *     "a07b…": "https://other.example.com",               with that server
 *     "c5d1…": false                                      not (overrides an entry of the user settings)
 *   }
 *
 * Settings are untrusted input: a bad entry is reported and skipped, never thrown on.
 */
import { serverBaseUrl } from '../../persistence/server/connection';
import { isHexId } from '../../spaces/ids';

export const SETTINGS_SECTION = 'spaces.server';
export const URL_KEY = 'url';
export const CONNECTIONS_KEY = 'connections';

const MAX_URL_LENGTH = 2048;

export function isSpaceId(x: unknown): x is string {
  return isHexId(x);
}

/**
 * The server's base URL (http(s)://host[:port][/path], the form ServerLayer ids use) of what a
 * user typed: http, https, ws or wss, with or without the sync path. Throws a readable error.
 */
export function normalizeServerUrl(input: string): string {
  const text = input.trim();
  if (!text) throw new Error('the server URL is empty');
  if (text.length > MAX_URL_LENGTH) throw new Error(`the server URL is longer than ${MAX_URL_LENGTH} characters`);
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`not a URL: ${JSON.stringify(text)} (expected e.g. http://127.0.0.1:8787 or https://spaces.example.com)`);
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol)) throw new Error(`the server URL must start with http://, https://, ws:// or wss://, not ${u.protocol}//`);
  if (u.username || u.password) throw new Error('the server URL must not hold a user name or password: sign in with a token instead');
  return serverBaseUrl(text);
}

/** `validateInput` of input boxes: undefined when valid, else the problem. */
export function serverUrlProblem(input: string): string | undefined {
  try {
    normalizeServerUrl(input);
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** The origin a token belongs to (scheme, host, port): ws and http forms of one server share it. */
export function serverOrigin(url: string): string {
  return new URL(normalizeServerUrl(url)).origin;
}

export interface ConnectionSettings {
  /** The default server (spaces.server.url), normalized; undefined when unset or invalid. */
  readonly defaultUrl: string | undefined;
  /** Space id → server base URL, for every space that should sync. */
  readonly connections: ReadonlyMap<string, string>;
  /** What was wrong with the settings (skipped entries), for the log. */
  readonly problems: readonly string[];
}

/** Reads `spaces.server.url` and `spaces.server.connections` as VS Code returns them (merged). */
export function parseConnectionSettings(rawUrl: unknown, rawConnections: unknown): ConnectionSettings {
  const problems: string[] = [];
  let defaultUrl: string | undefined;
  if (typeof rawUrl === 'string' && rawUrl.trim()) {
    try {
      defaultUrl = normalizeServerUrl(rawUrl);
    } catch (e) {
      problems.push(`spaces.server.url: ${e instanceof Error ? e.message : String(e)}`);
    }
  } else if (rawUrl !== undefined && rawUrl !== null && typeof rawUrl !== 'string') {
    problems.push('spaces.server.url must be a string');
  }
  const connections = new Map<string, string>();
  if (rawConnections !== undefined && rawConnections !== null) {
    if (typeof rawConnections !== 'object' || Array.isArray(rawConnections)) {
      problems.push('spaces.server.connections must be an object: { "<space id>": true | "<server URL>" | false }');
    } else {
      for (const [spaceId, value] of Object.entries(rawConnections as Record<string, unknown>)) {
        const where = `spaces.server.connections[${JSON.stringify(spaceId.slice(0, 80))}]`;
        if (!isSpaceId(spaceId)) {
          problems.push(`${where}: not a space id (32 lowercase hex digits)`);
          continue;
        }
        if (value === false) continue;
        if (value === true) {
          if (defaultUrl) connections.set(spaceId, defaultUrl);
          else problems.push(`${where} is true but spaces.server.url is ${rawUrl ? 'invalid' : 'not set'}`);
          continue;
        }
        if (typeof value === 'string') {
          try {
            connections.set(spaceId, normalizeServerUrl(value));
          } catch (e) {
            problems.push(`${where}: ${e instanceof Error ? e.message : String(e)}`);
          }
          continue;
        }
        problems.push(`${where} must be true, false or a server URL`);
      }
    }
  }
  return { defaultUrl, connections, problems };
}

/**
 * The new value of the connections object of one settings level (e.g. the workspace's) after
 * connecting `spaceId` to `url` (`true` when it is the default server) or disconnecting it
 * (`undefined`: the entry is removed, or `false` when another level would still connect it).
 */
export function updatedConnections(level: unknown, spaceId: string, value: true | false | string | undefined): Record<string, unknown> {
  const base = level && typeof level === 'object' && !Array.isArray(level) ? { ...(level as Record<string, unknown>) } : {};
  if (value === undefined) delete base[spaceId];
  else base[spaceId] = value;
  return base;
}
