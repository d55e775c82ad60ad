/**
 * Errors of the file layer. Every error names the file; `code` lets callers (the SpaceManager,
 * the CLI, the extension) tell "not a space file" from "locked" from "wrong key" without parsing
 * messages. Errors cross the worker boundary as plain data (`SerializedError`). Each is a
 * LayerError (src/persistence/layerError.ts), the one coded error of the layer seam.
 */
import { LayerError } from '../layerError';

export type SpaceFileErrorCode =
  /** Not a SQLite database, another SQLite schema, a truncated or damaged file. */
  | 'NOT_A_SPACE'
  /** A Spaces file whose schema_version is newer than this build reads. */
  | 'NEWER_SCHEMA'
  /** A Spaces file whose data is invalid (an op or secret that fails validation). */
  | 'INVALID_DATA'
  /** The file holds another space than the layer was opened for. */
  | 'SPACE_MISMATCH'
  /** `create` found a file already there. */
  | 'EXISTS'
  /** The lock file stayed held by a live process for longer than the lock timeout. */
  | 'LOCKED'
  /** Secrets are stored but no key was given, or a key was given with the wrong length. */
  | 'NO_KEY'
  /** The key does not decrypt this file's secrets. */
  | 'WRONG_KEY'
  /**
   * The file cannot be written: no write permission bit is set (checked explicitly, so that it
   * holds for root too), or the OS refuses (EACCES, EPERM, EROFS). Reading it still works.
   */
  | 'READ_ONLY'
  /**
   * The file's name now leads to another file than the one the layer opened (a symbolic link
   * was pointed elsewhere, or the name was replaced by a link): nothing is read or written.
   */
  | 'RELINKED'
  /** The layer was closed. */
  | 'CLOSED'
  /** A write was refused because a load of this layer failed (never write what could not be read). */
  | 'NOT_LOADED'
  /** The storage worker stopped or failed. */
  | 'WORKER'
  /** Any other I/O failure (permissions, disk full, …); `cause` holds the errno code. */
  | 'IO';

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
