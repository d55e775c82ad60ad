/**
 * The peer's server: Hocuspocus (@hocuspocus/server) with the database extension persisting each
 * document as Y.encodeStateAsUpdate in SQLite (better-sqlite3), as Hocuspocus's SQLite extension
 * does (one row per document, replaced on every store; the `sqlite3` package it uses cannot be
 * installed here, better-sqlite3 is the same SQLite). Prints the `listening` line the bench waits
 * for, answers heap requests, and on SIGTERM stores and unloads every document (Server.destroy),
 * checkpoints the WAL and exits.
 *
 *   node --expose-gc out/bench/peers/yjsServerChild.js DATA_DIR
 */
import { Database } from '@hocuspocus/extension-database';
import { Server } from '@hocuspocus/server';
import BetterSqlite3 from 'better-sqlite3';
import path from 'node:path';
import { answerHeapRequests } from './heapProbe';
import { YJS_DB_FILE } from './harness';


async function main(dataDir: string): Promise<void> {
  const db = new BetterSqlite3(path.join(dataDir, YJS_DB_FILE));
  db.pragma('journal_mode = WAL');
  // The schema of Hocuspocus's SQLite extension.
  db.exec('CREATE TABLE IF NOT EXISTS "documents" ("name" varchar(255) NOT NULL, "data" blob NOT NULL, UNIQUE(name))');
  const select = db.prepare<[string], { data: Buffer }>('SELECT data FROM documents WHERE name = ? ORDER BY rowid DESC');
  const upsert = db.prepare<[string, Buffer]>('INSERT INTO documents ("name", "data") VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET data = excluded.data');
  const server = new Server({
    port: 0,
    address: '127.0.0.1',
    quiet: true,
    stopOnSignals: false,
    extensions: [
      new Database({
        fetch: async ({ documentName }) => select.get(documentName)?.data ?? null,
        store: async ({ documentName, state }) => void upsert.run(documentName, state),
      }),
    ],
  });
  answerHeapRequests();
  await server.listen();
  const url = `http://127.0.0.1:${server.address.port}`;
  process.stdout.write(JSON.stringify({ msg: 'listening', url, syncUrl: url.replace(/^http/, 'ws') }) + '\n');
  const stop = (): void => {
    void server.destroy().then(() => {
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main(process.argv[2]).catch((e: unknown) => {
  process.stderr.write(`hocuspocus child: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
