/**
 * The key that encrypts secret values inside space files, for the extension: 32 bytes kept in
 * VS Code's SecretStorage (the OS keychain on desktop). It is never derived from a space, and the
 * extension writes it to disk only when asked to ("Spaces: Export File Key for the CLI").
 *
 * One key story with the `spaces` CLI (src/cli/secretKey.ts): when SecretStorage holds no key yet
 * and the CLI's key file exists ($SPACES_KEY_FILE, else ~/.config/spaces/file.key), that key is
 * adopted, so both read the same files' secrets; otherwise a random key is made.
 */
import { randomBytes } from 'node:crypto';
import type * as vscode from 'vscode';
import { defaultKeyFile, readKeyFile } from '../cli/secretKey';

export const FILE_KEY_SECRET = 'spaces.fileSecretKey';
const KEY_RE = /^[0-9a-f]{64}$/;
const TIMEOUT_MS = 15_000;

/** `p`, or a rejection after 15 s (SecretStorage can hang when the OS keychain does not answer). */
export function withTimeout<T>(p: Thenable<T>, what: string): Promise<T> {
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

/** What FileKeyStore needs of SecretStorage (its tests pass a map). */
export type KeySecrets = Pick<vscode.SecretStorage, 'get' | 'store'>;
/** What FileKeyStore logs (a LogOutputChannel in the extension). */
export type KeyLog = Pick<vscode.LogOutputChannel, 'info' | 'warn' | 'error'>;

export class FileKeyStore {
  private key: Promise<Uint8Array | undefined> | undefined;

  constructor(
    private readonly secrets: KeySecrets,
    private readonly log: KeyLog,
    /** The CLI's key file (read at each first load, so a changed $SPACES_KEY_FILE counts). */
    readonly cliKeyFile: () => string = () => defaultKeyFile(process.env),
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
    const cli = this.cliKey();
    const fresh = (cli ?? randomBytes(32)).toString('hex');
    await withTimeout(this.secrets.store(FILE_KEY_SECRET, fresh), 'SecretStorage.store');
    // Read back: another window may have stored its own key at the same moment.
    const back = await withTimeout(this.secrets.get(FILE_KEY_SECRET), 'SecretStorage.get');
    const key = back !== undefined && KEY_RE.test(back) ? back : fresh;
    if (key !== fresh) this.log.info('another window stored the key for secrets in space files first; using that one');
    else if (cli) this.log.info(`adopted the spaces CLI's key for secrets in space files from ${this.cliKeyFile()} (now also kept in SecretStorage)`);
    else this.log.info('created the key for secrets in space files (kept in SecretStorage)');
    return Buffer.from(key, 'hex');
  }

  /** The CLI's key, when its key file exists and holds one. */
  private cliKey(): Buffer | undefined {
    let file: string | undefined;
    try {
      file = this.cliKeyFile();
      return readKeyFile(file);
    } catch (e) {
      this.log.warn(`not adopting the spaces CLI's key file${file ? ` ${file}` : ''}: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    }
  }
}
