/**
 * An op's content digest, kept next to its id in the server's op index: a client that sends an
 * op id the server already stores with other content is refused (`conflict`) instead of being
 * acknowledged as if its op had been stored. SHA-256 of the op's wire tuple in canonical JSON
 * (object keys sorted), cut to 16 bytes; the same content always gives the same digest however
 * a relaying client ordered the keys of a value.
 */
import { createHash } from 'node:crypto';
import { encodeOp } from '../../spaces/opCodec';
import type { Op } from '../../spaces/ops';

const DIGEST_BYTES = 16;

/** JSON with every object's keys in code-point order. */
function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

export function opDigest(op: Op): Buffer {
  return createHash('sha256').update(canonicalJson(encodeOp(op))).digest().subarray(0, DIGEST_BYTES);
}
