/**
 * One server per data directory. The server keeps the state vectors and seqs of its loaded spaces
 * in memory, so a second server on the same directory would serve stale state.
 *
 * The lock is an OS file lock, not a pid: `DIR/server.lock.db` is a tiny SQLite database that the
 * server opens in `locking_mode = EXCLUSIVE` and writes once, so its connection holds SQLite's
 * exclusive (fcntl) lock for the server's whole life. The kernel drops that lock when the process
 * dies, however it dies (SIGKILL, OOM, a container stopped), so a restart never finds a stale
 * lock — even when the new process gets the same pid (pid 1 in a container) or the old pid now
 * belongs to an unrelated process. SQLite tracks its locks per file inside a process too, so a
 * second server in the same process is refused as well.
 *
 * `DIR/server.lock` only notes the holder's pid, for the error message of a refused start (the
 * locked database cannot be read by anyone else). It is information, never the lock: a leftover
 * one (from a killed server or an older version) is overwritten.
 *
 * The `token` commands do not take the lock: they use the main database next to the server.
 * Never open `server.lock.db` with plain file calls in this process: closing any descriptor of it
 * would drop the process's fcntl locks on it.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { StoreError } from './database';

/** The SQLite database whose lock is the directory's lock. */
export const LOCK_DB_FILE = 'server.lock.db';
/** Notes the pid of the server holding the lock (information only). */
export const LOCK_NOTE_FILE = 'server.lock';

/** SQLite's answer when another connection holds the lock. */
const BUSY_CODES: ReadonlySet<string> = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED']);

function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The pid the holder noted, or undefined when there is no readable note. */
function notedPid(dataDir: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(path.join(dataDir, LOCK_NOTE_FILE), 'utf8').trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function refusal(dataDir: string): StoreError {
  const pid = notedPid(dataDir);
  return new StoreError(`another server${pid === undefined ? '' : ` (pid ${pid})`} is using this data directory (${LOCK_DB_FILE} is locked)`);
}

/** Writes the note atomically (a reader sees the old pid or the new one, never half of one). */
function writeNote(dataDir: string): void {
  const file = path.join(dataDir, LOCK_NOTE_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${process.pid}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/**
 * Takes the directory's lock; returns its release function (idempotent). Throws StoreError when
 * another server holds it. Never waits: a held lock is refused at once.
 */
export function lockDataDir(dataDir: string): () => void {
  const file = path.join(dataDir, LOCK_DB_FILE);
  let db: Database.Database;
  try {
    db = new Database(file, { timeout: 0 });
  } catch (e) {
    throw new StoreError(`cannot open ${LOCK_DB_FILE} in the data directory: ${(e as Error).message}`);
  }
  try {
    fs.chmodSync(file, 0o600);
    db.pragma('locking_mode = EXCLUSIVE');
    // The content does not matter (it is rewritten by each holder): no journal file on disk.
    db.pragma('journal_mode = MEMORY');
    db.transaction(() => {
      db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, started INTEGER NOT NULL)');
      db.exec('DELETE FROM holder');
      db.prepare('INSERT INTO holder (pid, started) VALUES (?, ?)').run(process.pid, Date.now());
    }).exclusive();
    // From here until close, this connection holds the exclusive lock (locking_mode EXCLUSIVE).
    writeNote(dataDir);
  } catch (e) {
    db.close();
    const code = errorCode(e);
    if (code !== undefined && BUSY_CODES.has(code)) throw refusal(dataDir);
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') throw new StoreError(`${LOCK_DB_FILE} in the data directory is not a lock database; remove it (no server may be running on the directory)`);
    throw e;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    // Remove the note while the lock is still held, so it never names a server that is gone.
    fs.rmSync(path.join(dataDir, LOCK_NOTE_FILE), { force: true });
    db.close();
  };
}
