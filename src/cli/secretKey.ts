/**
 * The key that encrypts secrets inside space files, for the CLI: $SPACES_KEY (64 hex digits),
 * else a key file ($SPACES_KEY_FILE, default ~/.config/spaces/file.key) made with mode 0600 on
 * first use. Never derived from anything public.
 *
 * The extension keeps its key in VS Code's SecretStorage and uses the same key file helpers
 * (src/views/fileKey.ts): it adopts the CLI's key file when it has no key yet, and its
 * "Export File Key for the CLI" command writes its key there.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const KEY_BYTES = 32;

/** Where the CLI keeps its key: $SPACES_KEY_FILE, else $XDG_CONFIG_HOME (or ~/.config)/spaces/file.key. */
export function defaultKeyFile(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SPACES_KEY_FILE) return env.SPACES_KEY_FILE;
  const config = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(config, 'spaces', 'file.key');
}

/** Where `loadSecretKey` takes the key from, for messages: "$SPACES_KEY" or "the key file …". */
export function keySource(env: NodeJS.ProcessEnv = process.env): string {
  return env.SPACES_KEY ? '$SPACES_KEY' : `the key file ${defaultKeyFile(env)}`;
}

export function parseKey(text: string, from: string): Buffer {
  const hex = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new Error(`${from} must hold 64 hex digits (a 32-byte key)`);
  return Buffer.from(hex, 'hex');
}

/** The key in `file`, or undefined when the file does not exist. Throws when it holds no key or cannot be read. */
export function readKeyFile(file: string): Buffer | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return parseKey(text, file);
}

/**
 * Writes `key` to `file` as hex, mode 0600 (its folder is made with 0700), whole or not at all:
 * written to a temp file first, then hard-linked into place — which fails with EEXIST when a file
 * is there (another process won a race) — or, with `replace`, renamed over the old file.
 */
export function writeKeyFile(file: string, key: Uint8Array, opts: { readonly replace?: boolean } = {}): void {
  if (key.length !== KEY_BYTES) throw new Error(`a file key has ${KEY_BYTES} bytes, not ${key.length}`);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, Buffer.from(key).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  try {
    if (opts.replace) fs.renameSync(tmp, file);
    else fs.linkSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

export function loadSecretKey(env: NodeJS.ProcessEnv = process.env): Buffer {
  if (env.SPACES_KEY) return parseKey(env.SPACES_KEY, 'SPACES_KEY');
  const file = defaultKeyFile(env);
  const existing = readKeyFile(file);
  if (existing) return existing;
  const key = randomBytes(KEY_BYTES);
  try {
    writeKeyFile(file, key);
    return key;
  } catch (e) {
    // Another process made the key meanwhile: use theirs.
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return parseKey(fs.readFileSync(file, 'utf8'), file);
    throw e;
  }
}
