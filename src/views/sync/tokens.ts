/**
 * Team server tokens of the extension: kept in VS Code's SecretStorage under one key per server
 * origin (`spaces.serverToken:<origin>`), never in settings or logs. When SecretStorage holds no
 * token for a server, $SPACES_SERVER_TOKEN is used (scripted and dev setups: `npm start`, tests).
 * No `vscode` runtime import: SecretStorage is passed in (a map in unit tests).
 */
import type * as vscode from 'vscode';
import { PROTOCOL_LIMITS } from '../../protocol/messages';
import { Emitter, type Disposable, type Event } from '../../spaces/events';
import { withTimeout } from '../fileKey';
import { serverOrigin } from './settings';

export const TOKEN_ENV = 'SPACES_SERVER_TOKEN';
const KEY_PREFIX = 'spaces.serverToken:';

/** The SecretStorage key of the token of the server at `url`. */
export function tokenSecretKey(url: string): string {
  return `${KEY_PREFIX}${serverOrigin(url)}`;
}

/** Undefined when `token` can be a server token, else what is wrong (never echoing it). */
export function tokenProblem(token: string): string | undefined {
  if (token.length === 0) return 'the token is empty';
  if (token.length > PROTOCOL_LIMITS.maxTokenLength) return `a token has at most ${PROTOCOL_LIMITS.maxTokenLength} characters`;
  if (/\s/.test(token)) return 'a token has no spaces or line breaks';
  if (!/^[\x21-\x7e]+$/.test(token)) return 'a token has printable ASCII characters only';
  return undefined;
}

export interface ServerToken {
  readonly token: string;
  readonly source: 'secret-storage' | 'environment';
}

export type TokenSecrets = Pick<vscode.SecretStorage, 'get' | 'store' | 'delete' | 'onDidChange'>;

export class TokenStore implements Disposable {
  private readonly changeEmitter = new Emitter<string>();
  /** The token of a server origin changed (here or in another window). */
  readonly onDidChange: Event<string> = this.changeEmitter.event;
  private readonly sub: { dispose(): unknown };

  constructor(
    private readonly secrets: TokenSecrets,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.sub = secrets.onDidChange((e) => {
      if (e.key.startsWith(KEY_PREFIX)) this.changeEmitter.fire(e.key.slice(KEY_PREFIX.length));
    });
  }

  /** The token for the server at `url`: SecretStorage's, else $SPACES_SERVER_TOKEN, else undefined. */
  async get(url: string): Promise<ServerToken | undefined> {
    const stored = await withTimeout(this.secrets.get(tokenSecretKey(url)), 'SecretStorage.get');
    if (stored) return { token: stored, source: 'secret-storage' };
    const fromEnv = this.env[TOKEN_ENV]?.trim();
    if (fromEnv && tokenProblem(fromEnv) === undefined) return { token: fromEnv, source: 'environment' };
    return undefined;
  }

  async store(url: string, token: string): Promise<void> {
    const problem = tokenProblem(token);
    if (problem) throw new Error(problem);
    await withTimeout(this.secrets.store(tokenSecretKey(url), token), 'SecretStorage.store');
  }

  /** Forgets the stored token; true when there was one. */
  async delete(url: string): Promise<boolean> {
    const key = tokenSecretKey(url);
    const had = (await withTimeout(this.secrets.get(key), 'SecretStorage.get')) !== undefined;
    await withTimeout(this.secrets.delete(key), 'SecretStorage.delete');
    return had;
  }

  dispose(): void {
    this.sub.dispose();
    this.changeEmitter.dispose();
  }
}
