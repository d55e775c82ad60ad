/**
 * The new file of a joined space: a file name made from the space's name (letters, digits and a
 * few safe marks, never a path: a server's name is untrusted), the first free one in a folder,
 * and the checks of a name the user typed. No `vscode` here (unit-tested).
 */
import fs from 'node:fs';
import path from 'node:path';

export const SPACE_FILE_EXTENSION = '.space';
/** Longest file name made from a space's name (before the extension). */
const MAX_FILE_STEM = 80;

/** A file name for a space's name: letters, digits and a few safe marks; never a path. */
export function fileStemFor(name: string): string {
  const stem = name
    .normalize('NFC')
    .replace(/[^\p{L}\p{N} ._-]+/gu, '-')
    .replace(/^[.\s-]+|[.\s-]+$/g, '')
    .slice(0, MAX_FILE_STEM)
    .trim();
  return stem || 'Space';
}

/** `dir/stem.space`, or `dir/stem (2).space`, … : the first that does not exist. */
export function freeSpaceFile(dir: string, stem: string): string {
  for (let i = 1; ; i++) {
    const candidate = path.join(dir, `${stem}${i === 1 ? '' : ` (${i})`}${SPACE_FILE_EXTENSION}`);
    if (!fs.existsSync(candidate)) return candidate;
  }
}

/** Undefined when `file` can be the new space file, else why not. */
export function newFileProblem(file: string): string | undefined {
  if (!file.endsWith(SPACE_FILE_EXTENSION)) return `a space file's name ends with ${SPACE_FILE_EXTENSION}`;
  if (fs.existsSync(file)) return `${path.basename(file)} exists already`;
  if (!fs.existsSync(path.dirname(file))) return `the folder ${path.dirname(file)} does not exist`;
  return undefined;
}
