/**
 * The one error type of the layer seam: every layer (a store or a sync channel) rejects with a
 * LayerError whose `code` says what happened, so the space session, the CLI and the extension
 * tell "busy" from "not there" from "closed" without parsing messages. Layers may subclass it
 * (SpaceFileError adds the errno; ServerLoadError names the load failures of a channel), but the
 * code set is this one.
 */

/** The codes of a store's failures (the file layer's; file/errors.ts says what each means for a file). */
export type StoreErrorCode =
  /** Not a SQLite database, another SQLite schema, a truncated or damaged file. */
  | 'NOT_A_SPACE'
  /** Stored data from a newer build than this one reads. */
  | 'NEWER_SCHEMA'
  /** Stored or received data is invalid (an op or secret that fails validation). */
  | 'INVALID_DATA'
  /** The storage holds another space than the layer was opened for. */
  | 'SPACE_MISMATCH'
  /** `create` found storage already there. */
  | 'EXISTS'
  /** Another process held the storage's lock for longer than the lock timeout. */
  | 'LOCKED'
  /** Secrets are stored but no key was given, or a key of the wrong length. */
  | 'NO_KEY'
  /** The key does not decrypt the stored secrets. */
  | 'WRONG_KEY'
  /** The storage cannot be written; reading it still works. */
  | 'READ_ONLY'
  /** The storage's name now leads elsewhere than what the layer opened. */
  | 'RELINKED'
  /** A write was refused because a load of this layer failed (never write what could not be read). */
  | 'NOT_LOADED'
  /** A worker the layer runs on stopped or failed. */
  | 'WORKER'
  /** Any other I/O failure. */
  | 'IO';

export type LayerErrorCode =
  | StoreErrorCode
  // ---- every layer
  /** The layer was closed. */
  | 'CLOSED'
  // ---- the space session, over its layers
  /** Every layer answered and none holds the space (or the tree): a real "not found", nothing failed. */
  | 'NOT_FOUND'
  /** The layers' ops do not make a tree (or a layer was refused), see the message. */
  | 'UNUSABLE'
  // ---- sync channels
  /** A load made no progress for the layer's load timeout (a stalled server, not a missing space). */
  | 'STALLED'
  /** A load lost the connection to a server that is there too many times. */
  | 'RECONNECTS';

export class LayerError<C extends LayerErrorCode = LayerErrorCode> extends Error {
  constructor(
    message: string,
    readonly code: C,
  ) {
    super(message);
    this.name = 'LayerError';
  }
}

/** True when `e` is a LayerError (with one of `codes`, when given). */
export function isLayerError(e: unknown, ...codes: LayerErrorCode[]): e is LayerError {
  return e instanceof LayerError && (codes.length === 0 || codes.includes(e.code));
}

/** The code of a layer's failure, or undefined when it is not a LayerError (a bug, a foreign error). */
export function layerErrorCode(e: unknown): LayerErrorCode | undefined {
  return e instanceof LayerError ? e.code : undefined;
}
