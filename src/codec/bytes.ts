/**
 * Bytes in and out: a growable writer and a bounded reader with LEB128 varints.
 *
 * Counters and lengths are JavaScript numbers up to 2^53-1, so varints are built with arithmetic
 * (bitwise operators stop at 32 bits) and hold at most 8 bytes (56 bits). The reader refuses a
 * varint that is longer, not minimal (a trailing zero byte) or past 2^53-1, and every read checks
 * the input's end first: hostile bytes give a CodecError, never a wrong number or a read past the end.
 */
import { CodecError } from './errors';

/** 8 × 7 bits = 56 ≥ 53. */
const MAX_VARINT_BYTES = 8;
const INITIAL_CAPACITY = 256;

export class ByteWriter {
  private buf = new Uint8Array(INITIAL_CAPACITY);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    const need = this.length + n;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.length++] = b;
  }

  /** An unsigned integer 0..2^53-1 as LEB128. */
  uvarint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not an unsigned safe integer: ${v}`);
    this.reserve(MAX_VARINT_BYTES);
    while (v >= 0x80) {
      this.buf[this.length++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.length++] = v;
  }

  /**
   * A signed integer with |v| ≤ 2^53-1: the sign is bit 6 of the first byte, then the magnitude
   * as LEB128 (6 bits in the first byte). Unlike zigzag this never needs 2^54, which a double
   * cannot hold exactly for odd values.
   */
  svarint(v: number): void {
    if (!Number.isSafeInteger(v)) throw new RangeError(`not a safe integer: ${v}`);
    const neg = v < 0;
    let m = Math.abs(v);
    this.reserve(MAX_VARINT_BYTES);
    const low = m % 0x40;
    m = Math.floor(m / 0x40);
    this.buf[this.length++] = low | (neg ? 0x40 : 0) | (m > 0 ? 0x80 : 0);
    while (m > 0) {
      const more = m >= 0x80;
      this.buf[this.length++] = (m % 0x80) | (more ? 0x80 : 0);
      m = Math.floor(m / 0x80);
    }
  }

  f64(v: number): void {
    this.reserve(8);
    this.view.setFloat64(this.length, v, true);
    this.length += 8;
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  /** A copy of what was written. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

export class ByteReader {
  private pos: number;
  private readonly view: DataView;

  constructor(
    private readonly buf: Uint8Array,
    start = 0,
  ) {
    this.pos = start;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, what: string): void {
    if (n > this.buf.length - this.pos) throw new CodecError(`truncated: ${what} needs ${n} bytes at offset ${this.pos}, ${this.remaining} left`, 'TRUNCATED');
  }

  byte(what = 'a byte'): number {
    this.need(1, what);
    return this.buf[this.pos++];
  }

  uvarint(what = 'a varint'): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      const b = this.byte(what);
      v += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) throw new CodecError(`${what} at offset ${this.pos - 1} is not minimal`, 'BAD_VARINT');
        if (v > Number.MAX_SAFE_INTEGER) throw new CodecError(`${what} at offset ${this.pos - 1} is past 2^53-1`, 'BAD_VARINT');
        return v;
      }
      scale *= 0x80;
    }
    throw new CodecError(`${what} at offset ${this.pos} is longer than ${MAX_VARINT_BYTES} bytes`, 'BAD_VARINT');
  }

  svarint(what = 'a signed varint'): number {
    const first = this.byte(what);
    const neg = (first & 0x40) !== 0;
    let m = first & 0x3f;
    if (first & 0x80) {
      let scale = 0x40;
      for (let i = 1; ; i++) {
        if (i >= MAX_VARINT_BYTES) throw new CodecError(`${what} at offset ${this.pos} is longer than ${MAX_VARINT_BYTES} bytes`, 'BAD_VARINT');
        const b = this.byte(what);
        m += (b & 0x7f) * scale;
        if ((b & 0x80) === 0) {
          if (b === 0) throw new CodecError(`${what} at offset ${this.pos - 1} is not minimal`, 'BAD_VARINT');
          break;
        }
        scale *= 0x80;
      }
    }
    if (m > Number.MAX_SAFE_INTEGER) throw new CodecError(`${what} at offset ${this.pos - 1} is past 2^53-1`, 'BAD_VARINT');
    if (neg && m === 0) throw new CodecError(`${what} at offset ${this.pos - 1} is a negative zero`, 'BAD_VARINT');
    return neg ? -m : m;
  }

  /** A count of items that take at least `minBytes` each: never more than the input can hold. */
  count(what: string, minBytes = 1): number {
    const n = this.uvarint(what);
    if (n * minBytes > this.remaining) throw new CodecError(`${what} ${n} at offset ${this.pos} is more than the ${this.remaining} bytes left can hold`, 'TOO_LARGE');
    return n;
  }

  f64(what = 'a float'): number {
    this.need(8, what);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A view of the next `n` bytes (no copy). */
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /** The rest of the input (no copy). */
  rest(): Uint8Array {
    const b = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return b;
  }
}
