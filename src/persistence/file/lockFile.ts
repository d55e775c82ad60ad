/**
 * The lock around read-merge-write of a space file: `<file>.lock`, created with O_EXCL and
 * holding `{pid, host, time, token}`.
 *
 * A lock is stale when its holder's process is gone (same host, `kill(pid, 0)` fails with
 * ESRCH) or when it is older than `staleMs` (a holder on another host, or a reused pid). A stale
 * lock is renamed aside, re-read and deleted only if it is still the lock we judged stale, so
 * two processes breaking the same stale lock do not delete each other's fresh lock.
 * Waiting uses exponential backoff with jitter (1 ms doubling to 50 ms), never a busy loop.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { SpaceFileError, ioError } from './errors';

export interface LockOptions {
  /** Give up waiting after this long (LOCKED error). */
  readonly timeoutMs: number;
  /** A lock older than this is stale whoever holds it. */
  readonly staleMs: number;
}

export interface HeldLock {
  readonly path: string;
  readonly content: string;
}

interface LockInfo {
  readonly pid: number;
  readonly host: string;
  readonly time: number;
}

function parseLock(raw: string): LockInfo | undefined {
  try {
    const v = JSON.parse(raw) as Partial<LockInfo> | null;
    if (v && typeof v.pid === 'number' && typeof v.host === 'string' && typeof v.time === 'number') return { pid: v.pid, host: v.host, time: v.time };
  } catch {
    // half-written or foreign
  }
  return undefined;
}

export function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why the lock is stale, or undefined when it is live. */
function staleReason(raw: string, mtimeMs: number, staleMs: number): string | undefined {
  const age = Date.now() - mtimeMs;
  if (age > staleMs) return `older than ${staleMs} ms`;
  const info = parseLock(raw);
  if (info && info.host === os.hostname() && !pidAlive(info.pid)) return `process ${info.pid} is gone`;
  return undefined;
}

function describe(raw: string): string {
  const info = parseLock(raw);
  return info ? `process ${info.pid} on ${info.host} since ${new Date(info.time).toISOString()}` : 'an unknown process';
}

/** Removes a stale lock unless it was replaced by a fresh one meanwhile. */
function breakStale(lockPath: string, raw: string): void {
  const aside = `${lockPath}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    fs.renameSync(lockPath, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // someone else broke it
    throw e;
  }
  let moved: string | undefined;
  try {
    moved = fs.readFileSync(aside, 'utf8');
  } catch {
    moved = undefined;
  }
  if (moved !== raw) {
    // We moved a lock taken after we looked at the old one: put it back (link never overwrites).
    try {
      fs.linkSync(aside, lockPath);
    } catch {
      // a third process took the lock meanwhile; see docs/storage.md
    }
  }
  try {
    fs.unlinkSync(aside);
  } catch {
    // removed by an orphan sweep
  }
}

export async function acquireLock(file: string, opts: LockOptions): Promise<HeldLock> {
  const lockPath = `${file}.lock`;
  const content = JSON.stringify({ pid: process.pid, host: os.hostname(), time: Date.now(), token: randomBytes(8).toString('hex') });
  const deadline = Date.now() + opts.timeoutMs;
  let delay = 1;
  for (;;) {
    let fd: number | undefined;
    try {
      fd = fs.openSync(lockPath, 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(file, 'create its lock file', e, true);
    }
    if (fd !== undefined) {
      try {
        fs.writeSync(fd, content);
      } catch (e) {
        fs.closeSync(fd);
        fs.rmSync(lockPath, { force: true });
        throw ioError(file, 'write its lock file', e);
      }
      fs.closeSync(fd);
      return { path: lockPath, content };
    }
    let raw: string;
    let mtimeMs: number;
    try {
      raw = fs.readFileSync(lockPath, 'utf8');
      mtimeMs = fs.statSync(lockPath).mtimeMs;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile: try again
      throw ioError(file, 'read its lock file', e);
    }
    if (staleReason(raw, mtimeMs, opts.staleMs) !== undefined) {
      try {
        breakStale(lockPath, raw);
      } catch (e) {
        throw ioError(file, 'remove its stale lock file', e);
      }
      continue;
    }
    if (Date.now() >= deadline) {
      throw new SpaceFileError(`${file} is locked by ${describe(raw)} (waited ${opts.timeoutMs} ms; delete ${lockPath} if that process is gone)`, 'LOCKED');
    }
    await sleep(delay * (0.5 + Math.random()));
    delay = Math.min(delay * 2, 50);
  }
}

/** Deletes the lock file if it is still ours. */
export function releaseLock(lock: HeldLock): void {
  try {
    if (fs.readFileSync(lock.path, 'utf8') === lock.content) fs.unlinkSync(lock.path);
  } catch {
    // already gone (broken as stale after a very long hold)
  }
}
