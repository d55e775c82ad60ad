/**
 * Strings in the codec's tables: vertex ids, peer ids, property keys, tree ids and repeated
 * string values. Most are hex (32-digit vertex ids, 16-digit peer ids), stored as raw bytes at
 * half the size; a vertex id made from a peer id and a counter (`derivedVertexId` in src/spaces/ids.ts) is stored as
 * that pair. Text is UTF-8, except a string with an unpaired surrogate, which UTF-8 cannot hold
 * and which is stored as its JSON text (JSON escapes it), so every string comes back unchanged.
 *
 * Entry: uvarint (length × 4 + form), then the body:
 *   form 0  UTF-8, `length` bytes
 *   form 1  hex, `length` raw bytes → 2 × length lowercase hex digits
 *   form 2  JSON text of the string, `length` bytes (unpaired surrogates)
 *   form 3  derived vertex id: `length` is the peer's index in the peer table, then uvarint counter
 */
import { ByteReader, ByteWriter } from './bytes';
import { CodecError } from './errors';

const FORM_UTF8 = 0;
const FORM_HEX = 1;
const FORM_JSON = 2;
const FORM_DERIVED = 3;
const FORMS = 4;

const HEX_RE = /^(?:[0-9a-f]{2})+$/;
const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function hasLoneSurrogate(s: string): boolean {
  return LONE_SURROGATE_RE.test(s);
}

/** Text as UTF-8, or as JSON when it has an unpaired surrogate. */
export function writeText(w: ByteWriter, s: string): void {
  if (hasLoneSurrogate(s)) {
    const b = Buffer.from(JSON.stringify(s), 'utf8');
    w.uvarint(b.length * FORMS + FORM_JSON);
    w.bytes(b);
    return;
  }
  const b = Buffer.from(s, 'utf8');
  w.uvarint(b.length * FORMS + FORM_UTF8);
  w.bytes(b);
}

/** A table string: hex as raw bytes, a derived id as (peer, counter), else text. */
export function writeTableString(w: ByteWriter, s: string, derived?: { peer: number; counter: number }): void {
  if (derived) {
    w.uvarint(derived.peer * FORMS + FORM_DERIVED);
    w.uvarint(derived.counter);
    return;
  }
  if (HEX_RE.test(s)) {
    const b = Buffer.from(s, 'hex');
    w.uvarint(b.length * FORMS + FORM_HEX);
    w.bytes(b);
    return;
  }
  writeText(w, s);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeUtf8(b: Uint8Array, at: number): string {
  try {
    return utf8.decode(b);
  } catch {
    throw new CodecError(`string at offset ${at} is not valid UTF-8`, 'BAD_VALUE');
  }
}

/**
 * Reads a string written by `writeText` or `writeTableString`. `derive` turns a form-3 entry
 * (peer index, counter) into its id; without it form 3 is refused.
 */
export function readString(r: ByteReader, what: string, derive?: (peer: number, counter: number) => string): string {
  const at = r.offset;
  const head = r.uvarint(what);
  const form = head % FORMS;
  const n = Math.floor(head / FORMS);
  switch (form) {
    case FORM_UTF8:
      return decodeUtf8(r.bytes(n, what), at);
    case FORM_HEX:
      return Buffer.from(r.bytes(n, what)).toString('hex');
    case FORM_JSON: {
      const text = decodeUtf8(r.bytes(n, what), at);
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch {
        throw new CodecError(`${what} at offset ${at} is not JSON text`, 'BAD_VALUE');
      }
      if (typeof v !== 'string') throw new CodecError(`${what} at offset ${at} is not a JSON string`, 'BAD_VALUE');
      return v;
    }
    default: {
      if (!derive) throw new CodecError(`${what} at offset ${at} is a derived id where none may be`, 'BAD_KIND');
      return derive(n, r.uvarint(what));
    }
  }
}
