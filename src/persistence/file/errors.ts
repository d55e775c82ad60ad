/**
 * Errors of the file layer. Every error names the file; `code` lets callers (the SpaceManager,
 * the CLI, the extension) tell "not a space file" from "locked" from "wrong key" without parsing
 * messages. Errors cross the worker boundary as plain data (`SerializedError`). Each is a
 * LayerError (src/persistence/layerError.ts), the one coded error of the layer seam.
 */
import { LayerError, type StoreErrorCode } from '../layerError';

/**
 * The file layer's codes: those of every store (StoreErrorCode) and CLOSED. For a file:
 * NOT_A_SPACE is also another SQLite schema or a truncated file; READ_ONLY is checked on the
 * permission bits explicitly, so that it holds for root too, as well as the OS refusing (EACCES,
 * EPERM, EROFS); RELINKED: a symbolic link on the file's name was pointed elsewhere, or the name
 * was replaced by a link, so nothing is read or written; LOCKED: the lock file stayed held by a
 * live process for longer than the lock timeout; IO carries the errno.
 */
export type SpaceFileErrorCode = StoreErrorCode | 'CLOSED';

/** The file layer's LayerError (src/persistence/layerError.ts): its codes, and the errno. */
export class SpaceFileError extends LayerError<SpaceFileErrorCode> {
  constructor(
    message: string,
    code: SpaceFileErrorCode,
    /** The errno code of an underlying fs error (ENOENT, ENOSPC, …), when there is one. */
    readonly errno?: string,
  ) {
    super(message, code);
    this.name = 'SpaceFileError';
  }
}

export interface SerializedError {
  readonly message: string;
  readonly code: SpaceFileErrorCode;
  readonly errno?: string;
}

export function serializeError(e: unknown): SerializedError {
  if (e instanceof SpaceFileError) return { message: e.message, code: e.code, errno: e.errno };
  const errno = (e as NodeJS.ErrnoException | undefined)?.code;
  const message = e instanceof Error ? e.message : String(e);
  return { message, code: 'IO', errno: typeof errno === 'string' ? errno : undefined };
}

export function deserializeError(e: SerializedError): SpaceFileError {
  return new SpaceFileError(e.message, e.code, e.errno);
}

/** errno codes with which the OS refuses a write for lack of permission or a read-only mount. */
const READ_ONLY_ERRNOS: ReadonlySet<string> = new Set(['EACCES', 'EPERM', 'EROFS']);

export function isReadOnlyErrno(errno: string | undefined): boolean {
  return errno !== undefined && READ_ONLY_ERRNOS.has(errno);
}

/** `file is read-only (why)`: the one wording every refused write uses. */
export function readOnlyError(file: string, why: string, errno?: string): SpaceFileError {
  return new SpaceFileError(`${file} is read-only (${why})`, 'READ_ONLY', errno);
}

/**
 * Wraps an fs error so that its message names the file and what was being done. With
 * `writing`, a permission or read-only-mount refusal becomes a READ_ONLY error.
 */
export function ioError(file: string, doing: string, e: unknown, writing = false): SpaceFileError {
  if (e instanceof SpaceFileError) return e;
  const errno = (e as NodeJS.ErrnoException | undefined)?.code;
  const detail = e instanceof Error ? e.message : String(e);
  if (writing && typeof errno === 'string' && isReadOnlyErrno(errno)) return readOnlyError(file, `cannot ${doing}: ${detail}`, errno);
  return new SpaceFileError(`${file}: cannot ${doing} (${detail})`, 'IO', typeof errno === 'string' ? errno : undefined);
}
