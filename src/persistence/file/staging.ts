/**
 * A new space file built under a temporary name next to its final one and put in place only when
 * complete, so that a clone killed or failing half-way leaves nothing at the final name (a file
 * there that "no layer holds" would refuse to open, and a rerun would refuse to overwrite it).
 *
 * The staging name is `<file>.<pid>-<hex>.partial`: in the same directory (the final step is a
 * link within one file system) and not `*.space` (editors and workspace scans skip it). A staging
 * file whose process is gone (SIGKILL, power loss) is removed by the next staging of the same file;
 * one whose pid was reused by another process stays until that process ends, and is harmless: every
 * staging file has its own name.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ioError } from './errors';
import { fsyncDir, placeNew } from './fileIo';
import { acquireLock, pidAlive, releaseLock, type LockOptions } from './lockFile';

const SUFFIX = '.partial';

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A fresh staging name for `file` (absolute), owned by this process. */
export function stagingPath(file: string): string {
  return `${file}.${process.pid}-${randomBytes(6).toString('hex')}${SUFFIX}`;
}

/**
 * Deletes the staging files of `file` (and the lock and temp files next to them) that processes
 * now gone left behind. Returns how many files it removed.
 */
export function removeStaleStaging(file: string): number {
  const dir = path.dirname(file);
  const re = new RegExp(`^${escapeRe(path.basename(file))}\\.(\\d+)-[0-9a-f]+${escapeRe(SUFFIX)}(\\..*)?$`);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const m = re.exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    try {
      fs.unlinkSync(path.join(dir, name));
      removed++;
    } catch {
      // removed by someone else meanwhile
    }
  }
  return removed;
}

/** Deletes a staging file and what its writer left next to it (lock, temp files). */
export function discardStaged(staged: string): void {
  const dir = path.dirname(staged);
  const base = path.basename(staged);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (name !== base && !name.startsWith(`${base}.`)) continue;
    try {
      fs.unlinkSync(path.join(dir, name));
    } catch {
      // gone already
    }
  }
}

/**
 * Puts the complete staging file (closed by its writer) at `file`: fsyncs it, links it to `file`
 * under `file`'s lock — failing with EXISTS when a file appeared there meanwhile, never replacing
 * one — removes the staging name and fsyncs the directory, so the new file survives a power loss.
 */
export async function placeStaged(staged: string, file: string, lock: LockOptions): Promise<void> {
  let fd: number;
  try {
    fd = fs.openSync(staged, 'r');
  } catch (e) {
    throw ioError(staged, 'open the new file', e);
  }
  try {
    fs.fsyncSync(fd);
  } catch (e) {
    throw ioError(staged, 'sync the new file', e);
  } finally {
    fs.closeSync(fd);
  }
  const held = await acquireLock(file, lock);
  try {
    placeNew(staged, file);
  } catch (e) {
    throw ioError(file, 'put the new file in place', e);
  } finally {
    releaseLock(held);
  }
  try {
    fsyncDir(path.dirname(file));
  } catch (e) {
    throw ioError(file, 'sync its directory', e);
  }
}
