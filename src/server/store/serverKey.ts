/**
 * The server key: 32 random bytes in `DIR/server.key` (64 hex digits), created with mode 0600 on
 * first start. It encrypts secret values at rest (AES-256-GCM, see secretCrypto.ts). Losing the
 * file makes stored secrets unreadable; a copy of the database without it reveals no secret.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SECRET_KEY_BYTES } from '../../persistence/file/secretCrypto';
import { StoreError } from './database';

export const KEY_FILE = 'server.key';

export interface ServerKey {
  readonly key: Buffer;
  /** Set when the file is readable by group or others (the caller logs a warning). */
  readonly looseMode?: number;
}

/** Reads `DIR/server.key`, creating it (0600, exclusively) when it does not exist. */
export function loadOrCreateServerKey(dataDir: string): ServerKey {
  const file = path.join(dataDir, KEY_FILE);
  try {
    fs.writeFileSync(file, randomBytes(SECRET_KEY_BYTES).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const text = fs.readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/i.test(text)) throw new StoreError(`${KEY_FILE} in the data directory is not 64 hex digits`);
  const mode = fs.statSync(file).mode & 0o777;
  return { key: Buffer.from(text, 'hex'), looseMode: process.platform !== 'win32' && (mode & 0o077) !== 0 ? mode : undefined };
}
