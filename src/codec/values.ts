/**
 * Property values by type, in the 3 type bits of an op's header byte plus a body: booleans and
 * null cost nothing more, integers a varint, other numbers 8 bytes, strings their UTF-8 (or a
 * reference to the batch's string table when they repeat), anything else its JSON text.
 */
import type { ByteReader, ByteWriter } from './bytes';
import { CodecError } from './errors';
import { decodeUtf8, readString, writeText } from './strings';

export const ValueType = { False: 0, True: 1, Null: 2, UInt: 3, NegInt: 4, Float: 5, String: 6, Json: 7 } as const;

/** The type of a value (a JSON value, already validated by the caller). */
export function valueType(v: unknown): number {
  switch (typeof v) {
    case 'boolean':
      return v ? ValueType.True : ValueType.False;
    case 'number':
      if (Number.isSafeInteger(v) && !Object.is(v, -0)) return v >= 0 ? ValueType.UInt : ValueType.NegInt;
      return ValueType.Float;
    case 'string':
      return ValueType.String;
    default:
      return v === null ? ValueType.Null : ValueType.Json;
  }
}

/**
 * Writes the body of a value of type `t`. A string is `uvarint 0` + its text, or `uvarint i+1`
 * for entry i of the string table (`tableIndex`).
 */
export function writeValue(w: ByteWriter, t: number, v: unknown, tableIndex: (s: string) => number | undefined): void {
  switch (t) {
    case ValueType.UInt:
      w.uvarint(v as number);
      return;
    case ValueType.NegInt:
      w.uvarint(-(v as number));
      return;
    case ValueType.Float:
      w.f64(v as number);
      return;
    case ValueType.String: {
      const i = tableIndex(v as string);
      if (i !== undefined) {
        w.uvarint(i + 1);
        return;
      }
      w.uvarint(0);
      writeText(w, v as string);
      return;
    }
    case ValueType.Json: {
      const b = Buffer.from(JSON.stringify(v), 'utf8');
      w.uvarint(b.length);
      w.bytes(b);
      return;
    }
    default:
      return;
  }
}

/** Reads a value body of type `t`; `table` is the batch's string table. */
export function readValue(r: ByteReader, t: number, table: readonly string[]): unknown {
  switch (t) {
    case ValueType.False:
      return false;
    case ValueType.True:
      return true;
    case ValueType.Null:
      return null;
    case ValueType.UInt:
      return r.uvarint('an integer value');
    case ValueType.NegInt: {
      const at = r.offset;
      const m = r.uvarint('an integer value');
      if (m === 0) throw new CodecError(`negative integer at offset ${at} is zero`, 'BAD_VALUE');
      return -m;
    }
    case ValueType.Float: {
      const at = r.offset;
      const v = r.f64('a float value');
      if (!Number.isFinite(v)) throw new CodecError(`float at offset ${at} is not finite`, 'BAD_VALUE');
      return v;
    }
    case ValueType.String: {
      const at = r.offset;
      const ref = r.uvarint('a string value');
      if (ref === 0) return readString(r, 'a string value');
      const s = table[ref - 1];
      if (s === undefined) throw new CodecError(`string value at offset ${at} points past the string table (${ref - 1} of ${table.length})`, 'BAD_REF');
      return s;
    }
    default: {
      const at = r.offset;
      const n = r.count('a JSON value length');
      const text = decodeUtf8(r.bytes(n, 'a JSON value'), at);
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new CodecError(`JSON value at offset ${at} does not parse`, 'BAD_VALUE');
      }
    }
  }
}

