/**
 * The key that encrypts secret values inside space files, for the extension: 32 random bytes
 * kept in VS Code's SecretStorage (the OS keychain on desktop), made on first use. It is never
 * written to disk by this extension and never derived from a space.
 */
import { randomBytes } from 'node:crypto';
import type * as vscode from 'vscode';

export const FILE_KEY_SECRET = 'spaces.fileSecretKey';
const KEY_RE = /^[0-9a-f]{64}$/;
const TIMEOUT_MS = 15_000;

function withTimeout<T>(p: Thenable<T>, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} did not answer within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

export class FileKeyStore {
  private key: Promise<Uint8Array | undefined> | undefined;

  constructor(
    private readonly secrets: vscode.SecretStorage,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /**
   * The key, or undefined when SecretStorage cannot be used (files then open without it: their
   * ops work, their secrets cannot be read or written). A failure is retried on the next call.
   */
  get(): Promise<Uint8Array | undefined> {
    this.key ??= this.load().catch((e: unknown) => {
      this.log.error(`secret storage unavailable, space files open without their secret key: ${e instanceof Error ? e.message : String(e)}`);
      this.key = undefined;
      return undefined;
    });
    return this.key;
  }

  private async load(): Promise<Uint8Array | undefined> {
    const stored = await withTimeout(this.secrets.get(FILE_KEY_SECRET), 'SecretStorage.get');
    if (stored !== undefined) {
      if (KEY_RE.test(stored)) return Buffer.from(stored, 'hex');
      // Never replaced silently: secrets written with it would be lost.
      throw new Error(`the stored key ${FILE_KEY_SECRET} is not 64 hex digits`);
    }
    const fresh = randomBytes(32).toString('hex');
    await withTimeout(this.secrets.store(FILE_KEY_SECRET, fresh), 'SecretStorage.store');
    // Read back: another window may have stored its own key at the same moment.
    const back = await withTimeout(this.secrets.get(FILE_KEY_SECRET), 'SecretStorage.get');
    this.log.info('created the key for secrets in space files (kept in SecretStorage)');
    return Buffer.from(back !== undefined && KEY_RE.test(back) ? back : fresh, 'hex');
  }
}
