/**
 * Which store a server (or a `token` command) opens: `--store` absent → SQLite in the data
 * directory; `--store postgres://…` → PostgreSQL, with the secret key still read from (or created
 * in) the data directory — every process of one database needs a copy of the same server.key.
 */
import fs from 'node:fs';
import { StoreError } from './database';
import { PostgresSpaceStore } from './postgresStore';
import { loadOrCreateServerKey, type ServerKey } from './serverKey';
import type { SpaceStore } from './spaceStore';
import { SqliteSpaceStore } from './sqliteSpaceStore';

export interface OpenStoreOptions {
  /** The data directory: the SQLite file and server.key live here. */
  readonly dataDir: string;
  /** A `postgres://` (or `postgresql://`) URL; undefined: SQLite. */
  readonly store?: string;
  /** 32-byte key for secrets; default DIR/server.key. */
  readonly secretKey?: Buffer;
}

/** Whether `spec` names a PostgreSQL database. */
export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

export async function openSpaceStore(opts: OpenStoreOptions): Promise<SpaceStore> {
  if (opts.store === undefined) return SqliteSpaceStore.open(opts.dataDir, { secretKey: opts.secretKey });
  if (!isPostgresUrl(opts.store)) throw new StoreError('--store must be a postgres:// URL (without it the server uses SQLite in --data)');
  let key: ServerKey;
  if (opts.secretKey) {
    key = { key: opts.secretKey };
  } else {
    fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    key = loadOrCreateServerKey(opts.dataDir);
  }
  return PostgresSpaceStore.open(opts.store, { secretKey: key.key, keyFileMode: key.looseMode });
}
