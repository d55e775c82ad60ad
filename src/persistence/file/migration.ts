/**
 * Schema 1 → 2 on disk (the conversion itself is SpaceDb's, in memory). Runs in the worker when a
 * writable schema-1 file is opened, under the file's lock:
 *
 *   1. read the file again under the lock and convert that (another writer may have saved since);
 *      if it is schema 2 already, another process migrated it: nothing to do;
 *   2. hard-link the old file to `<file>.v1-backup` (a copy where links are not supported) and
 *      fsync the folder: the old bytes now have a second, durable name;
 *   3. write the new database like every save: temp file, fsync, rename over the file, fsync the
 *      folder (fileIo.ts `writeAtomically`);
 *   4. read the new file back and check it holds as many ops as the old one had rows;
 *   5. remove the backup and fsync the folder.
 *
 * A crash before 3 leaves the old file (the next open migrates again); after 3 the new one, and
 * maybe the backup, which the next open merges in (`absorbBackup`: it only ever adds ops) and
 * then removes. So every op is in `<file>` or its backup at every moment. A file this build
 * cannot write (READ_ONLY) is migrated in memory only and written as schema 2 by its first save.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { SqlJsStatic } from 'sql.js';
import { SpaceFileError, ioError } from './errors';
import { forgetSeen, fsyncDir, readWhole, writeAtomically, type SeenFile } from './fileIo';
import { acquireLock, releaseLock, type LockOptions } from './lockFile';
import { SpaceDb } from './spaceDb';

export const V1_BACKUP_SUFFIX = '.v1-backup';

export function backupName(file: string): string {
  return file + V1_BACKUP_SUFFIX;
}

function removeIfThere(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(file, 'remove the old backup', e);
  }
}

/** A second durable name for the old file's bytes. */
function keepBackup(file: string, backup: string): void {
  removeIfThere(backup); // a backup of an earlier, interrupted attempt: the file itself is newer
  try {
    fs.linkSync(file, backup);
  } catch {
    const tmp = `${backup}.partial`;
    fs.copyFileSync(file, tmp);
    const fd = fs.openSync(tmp, 'r+');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, backup);
  }
  fsyncDir(path.dirname(file));
}

export interface Migrated {
  readonly db: SpaceDb;
  readonly seen: SeenFile;
}

/**
 * Migrates `file` on disk (steps above). `key` is the secret key; returns the database that now
 * matches the file and the file as written (open). The caller closes its first database.
 */
export async function migrateOnDisk(SQL: SqlJsStatic, file: string, key: Uint8Array | undefined, lock: LockOptions): Promise<Migrated> {
  const held = await acquireLock(file, lock);
  try {
    const { bytes, seen } = readWhole(file);
    let db: SpaceDb;
    try {
      db = SpaceDb.open(SQL, bytes, file, key);
    } catch (e) {
      forgetSeen(seen);
      throw e;
    }
    if (db.migratedFrom === undefined) {
      db.dirty = false;
      return { db, seen };
    }
    try {
      keepBackup(file, backupName(file));
      const written = writeAtomically(file, db.export());
      forgetSeen(seen);
      db.dirty = false;
      const check = SpaceDb.open(SQL, fs.readFileSync(file), file, key);
      let n: number;
      try {
        n = check.countOps();
      } finally {
        check.close();
      }
      if (n !== db.migratedOps) {
        forgetSeen(written);
        throw new SpaceFileError(`${file}: the migrated file holds ${n} ops, the old one ${db.migratedOps}; the old file is kept as ${backupName(file)}`, 'IO');
      }
      removeIfThere(backupName(file));
      fsyncDir(path.dirname(file));
      return { db, seen: written };
    } catch (e) {
      db.close();
      throw e;
    }
  } finally {
    releaseLock(held);
  }
}

/**
 * A backup left by a migration that was interrupted after the new file was in place: merged into
 * `db` (it can only add ops the new file lacks, normally none; the file on disk is merged first, as
 * a flush does, in case another writer saved since `seen`), written when it added any, removed.
 * Returns the file to keep as seen. A backup that does not open as a space file is left alone: it
 * is not the space file, and a person may want it.
 */
export async function absorbBackup(file: string, db: SpaceDb, seen: SeenFile, lock: LockOptions): Promise<SeenFile> {
  const backup = backupName(file);
  if (!fs.existsSync(backup)) return seen;
  const held = await acquireLock(file, lock);
  try {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(backup);
    } catch {
      return seen; // removed by another process in the meantime
    }
    // On success the file read here replaces `seen` (closed); on a throw `seen` stays the caller's.
    const now = readWhole(file);
    let keep: SeenFile = now.seen;
    try {
      db.mergeFrom(now.bytes);
      let absorbed = true;
      try {
        if (db.mergeFrom(bytes).trees.length > 0) {
          const written = writeAtomically(file, db.export());
          forgetSeen(keep);
          keep = written;
          db.dirty = false;
        }
      } catch (e) {
        if (!(e instanceof SpaceFileError) || e.code === 'IO') throw e;
        absorbed = false; // not a readable space file: leave it
      }
      if (absorbed) {
        removeIfThere(backup);
        fsyncDir(path.dirname(file));
      }
    } catch (e) {
      forgetSeen(keep);
      throw e;
    }
    forgetSeen(seen);
    return keep;
  } finally {
    releaseLock(held);
  }
}
