/**
 * File primitives of the file layer, used by the worker: whole-file reads that remember which
 * file (inode) was read, crash-safe replacement (temp file → fsync → rename → fsync dir), and
 * removal of temp files a killed writer left behind.
 *
 * "Has the file changed since we last read or wrote it?" is answered by keeping the file we
 * last saw open: while our descriptor is open its inode cannot be freed, so a file renamed over
 * it necessarily has another inode number. Size and mtime catch writers that modify in place.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SpaceFileError, ioError, isReadOnlyErrno, readOnlyError } from './errors';

/** The file we last read or wrote, kept open (see above). */
export interface SeenFile {
  readonly fd: number;
  readonly dev: bigint;
  readonly ino: bigint;
  readonly size: bigint;
  readonly mtimeNs: bigint;
}

export interface FileStamp {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly size: bigint;
  readonly mtimeNs: bigint;
}

function stampOf(st: fs.BigIntStats): FileStamp {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs };
}

/** The current stamp of `file`, or undefined when it does not exist. */
export function statFile(file: string): FileStamp | undefined {
  try {
    const st = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
    return st ? stampOf(st) : undefined;
  } catch (e) {
    throw ioError(file, 'read the file status', e);
  }
}

export function sameFile(seen: FileStamp, now: FileStamp): boolean {
  return seen.dev === now.dev && seen.ino === now.ino && seen.size === now.size && seen.mtimeNs === now.mtimeNs;
}

export function forgetSeen(seen: SeenFile | undefined): void {
  if (!seen) return;
  try {
    fs.closeSync(seen.fd);
  } catch {
    // already closed
  }
}

/** The write permission bits of owner, group and others. */
const WRITE_BITS = 0o222;
/** The permission bits shown in a message (rwx of owner, group, others). */
const PERMISSION_BITS = 0o777;

/**
 * Why `file` may not be written, or undefined when it may (or does not exist: then writing
 * creates it). A file with no write permission bit for anyone is read-only even for root, who
 * passes every access check; access checks of the file and of its folder (where the temp file,
 * the lock and the rename go) cover other users and read-only mounts. Replacing the file by
 * rename would succeed in a writable folder, so this is checked before every write.
 */
export function writeRefusal(file: string): SpaceFileError | undefined {
  let mode: number;
  try {
    mode = fs.statSync(file).mode;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(file, 'read the file status', e);
  }
  if ((mode & WRITE_BITS) === 0) return readOnlyError(file, `mode ${(mode & PERMISSION_BITS).toString(8).padStart(4, '0')}: no write permission`, 'EACCES');
  return accessRefusal(file, file, 'this user has no write permission') ?? accessRefusal(file, path.dirname(file), 'this user cannot write its folder');
}

/** A READ_ONLY error for `file` when this user may not write `p` (the file or its folder). */
function accessRefusal(file: string, p: string, why: string): SpaceFileError | undefined {
  try {
    fs.accessSync(p, fs.constants.W_OK);
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).code;
    if (errno === 'EROFS') return readOnlyError(file, 'on a read-only file system', errno);
    if (isReadOnlyErrno(errno)) return readOnlyError(file, why, errno);
    throw ioError(file, 'check its write permission', e);
  }
  return undefined;
}

function openForRead(file: string): number {
  try {
    return fs.openSync(file, 'r');
  } catch (e) {
    throw ioError(file, 'open the file', e);
  }
}

/** Reads all of `file`; the returned descriptor stays open (the caller keeps or forgets it). */
export function readWhole(file: string): { bytes: Buffer; seen: SeenFile } {
  const fd = openForRead(file);
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    if (st.isDirectory()) throw new SpaceFileError(`${file} is a directory, not a Spaces file`, 'NOT_A_SPACE');
    const size = Number(st.size);
    const bytes = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const n = fs.readSync(fd, bytes, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    // A file that shrank while we read (someone writing in place) is read as what we got.
    return { bytes: off === size ? bytes : bytes.subarray(0, off), seen: { fd, ...stampOf(st) } };
  } catch (e) {
    fs.closeSync(fd);
    throw ioError(file, 'read the file', e);
  }
}

/** Reads at most `max` bytes from the start of `file`, and the file's size. */
export function readPrefix(file: string, max: number): { bytes: Buffer; size: number } {
  const fd = openForRead(file);
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(Math.min(max, size));
    max = buf.length;
    let off = 0;
    while (off < max) {
      const n = fs.readSync(fd, buf, off, max - off, off);
      if (n === 0) break;
      off += n;
    }
    return { bytes: buf.subarray(0, off), size };
  } catch (e) {
    throw ioError(file, 'read the file', e);
  } finally {
    fs.closeSync(fd);
  }
}

function tempName(file: string): string {
  return `${file}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** fsync of a directory, so a rename in it survives a power loss. Unsupported on Windows. */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch (e) {
    if (isUnsupportedDirSync(e)) return;
    throw e;
  }
  try {
    fs.fsyncSync(fd);
  } catch (e) {
    if (!isUnsupportedDirSync(e)) throw e;
  } finally {
    fs.closeSync(fd);
  }
}

function isUnsupportedDirSync(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'EISDIR' || code === 'EINVAL' || code === 'EPERM' || code === 'EACCES' || code === 'ENOTSUP';
}

/**
 * Replaces `file` with `bytes` so that a crash at any moment leaves either the old or the new
 * content, never a mix: write a temp file in the same directory, fsync it, rename it over the
 * file, fsync the directory. With `noClobber` the file must not exist (hard link instead of
 * rename; EXISTS when it does). Keeps the file's permission bits. Returns the new file, open.
 */
export function writeAtomically(file: string, bytes: Uint8Array, noClobber = false): SeenFile {
  const dir = path.dirname(file);
  let mode: number | undefined;
  if (!noClobber) {
    try {
      mode = fs.statSync(file).mode & 0o7777;
    } catch {
      mode = undefined;
    }
  }
  const tmp = tempName(file);
  let fd: number;
  try {
    fd = fs.openSync(tmp, 'wx', 0o666);
  } catch (e) {
    throw ioError(file, 'write a temporary file next to it', e, true);
  }
  try {
    if (mode !== undefined) {
      try {
        fs.fchmodSync(fd, mode);
      } catch {
        // best effort (not supported everywhere)
      }
    }
    let off = 0;
    while (off < bytes.length) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    fs.fsyncSync(fd);
    if (noClobber) placeNew(tmp, file);
    else fs.renameSync(tmp, file);
  } catch (e) {
    fs.closeSync(fd);
    try {
      fs.unlinkSync(tmp);
    } catch {
      // gone already
    }
    throw e instanceof SpaceFileError ? e : ioError(file, 'write the file', e, true);
  }
  try {
    fsyncDir(dir);
    return { fd, ...stampOf(fs.fstatSync(fd, { bigint: true })) };
  } catch (e) {
    fs.closeSync(fd);
    throw ioError(file, 'sync its directory', e);
  }
}

/** Moves `tmp` to `file` only if `file` does not exist. */
export function placeNew(tmp: string, file: string): void {
  try {
    fs.linkSync(tmp, file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new SpaceFileError(`${file} already exists`, 'EXISTS', code);
    // No hard links on this file system: check, then rename (we hold the lock).
    if (fs.existsSync(file)) throw new SpaceFileError(`${file} already exists`, 'EXISTS', 'EEXIST');
    fs.renameSync(tmp, file);
    return;
  }
  fs.unlinkSync(tmp);
}

/**
 * Deletes temp files and set-aside lock files of `file` that a killed process left behind.
 * Only call while holding the lock: every cooperating writer creates temp files under it.
 */
export function removeOrphans(file: string): number {
  const dir = path.dirname(file);
  const base = escapeRe(path.basename(file));
  const re = new RegExp(`^${base}\\.(\\d+-[0-9a-f]+\\.tmp|lock\\.stale-\\d+-[0-9a-f]+)$`);
  let removed = 0;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (!re.test(name)) continue;
    try {
      fs.unlinkSync(path.join(dir, name));
      removed++;
    } catch {
      // someone else removed it
    }
  }
  return removed;
}
