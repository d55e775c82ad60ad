/**
 * Which file a space file's name leads to. A name may be a symbolic link (or lie in a linked
 * folder): the layer resolves it once when it opens the file and from then on reads, locks,
 * writes (temp file + rename in the target's folder) and watches the file the link led to, so
 * the link stays a link and every process writing the same file — through the link or not —
 * takes the same lock.
 *
 * Before each read-merge-write the name is resolved again (`checkTarget`): if it now leads to
 * another file (the link was pointed elsewhere, or the name replaced by a link or another
 * file's link) the layer refuses with RELINKED instead of silently writing a file the name no
 * longer shows. When nothing is at the name any more (it was deleted), the layer keeps
 * writing the file it opened, as it does for a deleted regular file. See docs/storage.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SpaceFileError, ioError } from './errors';

/** Links followed by hand before giving up (the kernel's own limit on Linux). */
const MAX_LINK_HOPS = 40;

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

/** Where a file at `p` would be: `p` with its folder resolved (as is when the folder is missing). */
function inRealFolder(p: string): string {
  try {
    return path.join(fs.realpathSync.native(path.dirname(p)), path.basename(p));
  } catch {
    return path.resolve(p);
  }
}

/**
 * The absolute real path `name` leads to, or undefined when nothing is at `name`. A link to a
 * missing file leads to where that file would be (so a deleted target is written again).
 */
export function leadsTo(name: string): string | undefined {
  try {
    return fs.realpathSync.native(name);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw ioError(name, 'resolve its path', e);
  }
  if (!lstatOrUndefined(name)) return undefined;
  // A link (or a chain of them) to something missing: follow it by hand.
  let p = path.resolve(name);
  for (let hop = 0; hop < MAX_LINK_HOPS; hop++) {
    const st = lstatOrUndefined(p);
    if (!st?.isSymbolicLink()) return inRealFolder(p);
    p = path.resolve(path.dirname(p), fs.readlinkSync(p));
  }
  throw new SpaceFileError(`${name}: too many levels of symbolic links`, 'IO', 'ELOOP');
}

/** The file to open for `name` (its real path); a link that points nowhere is an error. */
export function resolveForOpen(name: string): string {
  const target = leadsTo(name);
  // Nothing there: opening it reports that, as for any missing file.
  if (target === undefined) return name;
  if (!fs.existsSync(target)) {
    throw new SpaceFileError(`${name} is a symbolic link to ${target}, which does not exist`, 'IO', 'ENOENT');
  }
  return target;
}

/** The file to create for `name`: nothing may be at `name`, not even a link (EXISTS). */
export function resolveForCreate(name: string): string {
  const st = lstatOrUndefined(name);
  if (st?.isSymbolicLink()) throw new SpaceFileError(`${name} already exists (a symbolic link to ${leadsTo(name) ?? '?'})`, 'EXISTS', 'EEXIST');
  if (st) throw new SpaceFileError(`${name} already exists`, 'EXISTS', 'EEXIST');
  return inRealFolder(name);
}

/** Throws RELINKED when `name` now leads to another file than `target`, the file opened for it. */
export function checkTarget(name: string, target: string): void {
  const now = leadsTo(name);
  if (now === undefined || now === target) return;
  throw new SpaceFileError(
    `${name} now leads to ${now}, not to ${target}, the file this space was opened from (a symbolic link changed); not reading or writing it: open ${name} again`,
    'RELINKED',
  );
}
