/**
 * The key that encrypts secrets inside space files, for the CLI: $SPACES_KEY (64 hex digits),
 * else a key file ($SPACES_KEY_FILE, default ~/.config/spaces/file.key) made with mode 0600 on
 * first use. Never derived from anything public.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const KEY_BYTES = 32;

export function defaultKeyFile(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SPACES_KEY_FILE) return env.SPACES_KEY_FILE;
  const config = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(config, 'spaces', 'file.key');
}

function parseKey(text: string, from: string): Buffer {
  const hex = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new Error(`${from} must hold 64 hex digits (a 32-byte key)`);
  return Buffer.from(hex, 'hex');
}

export function loadSecretKey(env: NodeJS.ProcessEnv = process.env): Buffer {
  if (env.SPACES_KEY) return parseKey(env.SPACES_KEY, 'SPACES_KEY');
  const file = defaultKeyFile(env);
  try {
    return parseKey(fs.readFileSync(file, 'utf8'), file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const key = randomBytes(KEY_BYTES);
  // Written whole to a temp file, then hard-linked into place: link fails when another process
  // won the race, and a reader never sees a half-written key.
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  try {
    fs.linkSync(tmp, file);
    return key;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return parseKey(fs.readFileSync(file, 'utf8'), file);
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
