/**
 * Decoding for callers that take ops from a file, a database or a socket: the blob is decoded
 * (strict and bounded, opBatch.ts) and every batch's ops go through `validateOps` for its tree,
 * the rules every other edge applies. Throws CodecError or InvalidOpError.
 */
import { validateOps } from '../spaces/ops';
import { DEFAULT_DECODE_LIMITS, decodeBatches, type DecodeLimits, type DecodedBatch } from './opBatch';

export function decodeValidBatches(bytes: Uint8Array, source: string, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): DecodedBatch[] {
  const batches = decodeBatches(bytes, limits);
  for (const b of batches) validateOps(b.ops, b.treeId, source);
  return batches;
}
