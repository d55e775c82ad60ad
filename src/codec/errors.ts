/**
 * The one error the codec throws. Every way bytes can be wrong has a code, so a caller can tell
 * "damaged or hostile input" from a bug, and "written by a newer build" from damage.
 */

export type CodecErrorCode =
  /** The input ends before what it announces. */
  | 'TRUNCATED'
  /** A varint is longer than 8 bytes, not minimal, or past 2^53-1. */
  | 'BAD_VARINT'
  /** A count or length is larger than the input (or a limit) allows. */
  | 'TOO_LARGE'
  /** The first byte names a codec version this build does not read. */
  | 'VERSION'
  /** A reference points outside its table, or to nothing (no previous op). */
  | 'BAD_REF'
  /** An unknown op kind, value type, string form or flag. */
  | 'BAD_KIND'
  /** A value that does not decode (bad UTF-8, bad JSON, bad number). */
  | 'BAD_VALUE'
  /** Bytes left over after the last op. */
  | 'TRAILING'
  /** The compressed body does not inflate. */
  | 'BAD_COMPRESSION';

export class CodecError extends Error {
  constructor(
    message: string,
    readonly code: CodecErrorCode,
  ) {
    super(message);
    this.name = 'CodecError';
  }
}
