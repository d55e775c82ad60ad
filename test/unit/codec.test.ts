import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { ByteReader, ByteWriter } from '../../src/codec/bytes';
import { derivedVertexId, parseDerivedVertexId } from '../../src/spaces/ids';
import { CodecError, type CodecErrorCode } from '../../src/codec/errors';
import { CODEC_VERSION, decodeBatches, encodeBatches, type CodecBatch } from '../../src/codec/opBatch';
import { decodeValidBatches } from '../../src/codec/validated';
import { seededRandom } from '../helpers/memoryLayer';
import { AppTree } from '../../src/spaces/appTree';
import { InvalidOpError, validateOps, type Op } from '../../src/spaces/ops';

const T = 'a'.repeat(32);
const P1 = '0123456789abcdef';
const P2 = 'fedcba9876543210';
const move = (counter: number, peerId: string, targetId: string, parentId: string | null): Op => ({ id: { counter, peerId }, targetId, parentId });
const prop = (counter: number, peerId: string, targetId: string, key: string, value: unknown): Op =>
  ({ id: { counter, peerId }, targetId, key, value, transient: false }) as Op;

function codeOf(fn: () => unknown): CodecErrorCode | 'none' | 'other' {
  try {
    fn();
    return 'none';
  } catch (e) {
    return e instanceof CodecError ? e.code : 'other';
  }
}

function roundTrip(batches: CodecBatch[], compress = false): void {
  const bytes = encodeBatches(batches, { compress });
  const back = decodeBatches(bytes);
  assert.deepEqual(back, batches.map((b) => ({ treeId: b.treeId, seq: b.seq, ops: b.ops })));
}

/** A random valid batch: moves (some to derived ids), sets of every value type, removes, several peers. */
function randomBatches(rnd: () => number, nBatches: number): CodecBatch[] {
  const peers = [P1, P2, 'zz9', 'p'];
  const ids = [T, 'v1', 'x'.repeat(128), '0123456789abcdef0123456789abcdef', derivedVertexId(P1, 77) as string];
  const values: unknown[] = [true, false, null, 0, 1, -1, 2 ** 53 - 1, -(2 ** 53 - 1), 0.5, -0, 1e300, '', 'hello', 'ü€😀', '\ud800x', 'x\udc00', [1, 'a', null], { a: { b: [true] } }, 'hello'];
  const pick = <X>(a: readonly X[]): X => a[Math.floor(rnd() * a.length)];
  const out: CodecBatch[] = [];
  let seq = Math.floor(rnd() * 10);
  let counter = 1;
  for (let b = 0; b < nBatches; b++) {
    const ops: Op[] = [];
    const n = Math.floor(rnd() * 20);
    for (let i = 0; i < n; i++) {
      const r = rnd();
      counter = Math.min(2 ** 53 - 1, r < 0.6 ? counter + 1 : r < 0.8 ? Math.max(1, counter - Math.floor(rnd() * 5)) : r < 0.95 ? counter + Math.floor(rnd() * 1e6) : 2 ** 53 - 1 - Math.floor(rnd() * 3));
      const peer = pick(peers);
      const k = rnd();
      const target = k < 0.3 ? (derivedVertexId(peer, counter) ?? 'v1') : pick(ids.slice(1));
      if (k < 0.5) ops.push(move(counter, peer, target, rnd() < 0.5 ? T : pick(ids)));
      else if (k < 0.9) ops.push(prop(counter, peer, target, pick(['text', 'done', 'order', 'k'.repeat(256), 'ä']), pick(values)));
      else ops.push(prop(counter, peer, target, pick(['text', 'x']), undefined));
    }
    if (rnd() < 0.1) ops.push(move(1, pick(peers), T, null));
    seq += Math.floor(rnd() * 3);
    out.push({ treeId: rnd() < 0.8 ? T : 'b'.repeat(32), seq, ops });
  }
  return out;
}

describe('codec: varints', () => {
  it('round-trips unsigned and signed integers up to 2^53-1 exactly', () => {
    const xs = [0, 1, 63, 64, 127, 128, 16383, 16384, 2 ** 31, 2 ** 32 + 1, 2 ** 52 + 1, 2 ** 53 - 2, 2 ** 53 - 1];
    const w = new ByteWriter();
    for (const x of xs) {
      w.uvarint(x);
      w.svarint(x);
      w.svarint(-x);
    }
    const r = new ByteReader(w.finish());
    for (const x of xs) {
      assert.equal(r.uvarint(), x);
      assert.equal(r.svarint(), x);
      assert.equal(r.svarint(), x === 0 ? 0 : -x);
    }
    assert.equal(r.remaining, 0);
  });

  it('refuses overlong, non-minimal and too large varints and reads past the end', () => {
    assert.equal(codeOf(() => new ByteReader(Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])).uvarint()), 'BAD_VARINT');
    assert.equal(codeOf(() => new ByteReader(Uint8Array.from([0x81, 0x00])).uvarint()), 'BAD_VARINT');
    // 2^53: seven 0x80 continuation bytes would be 2^49 per step; this is 0x..ff = 2^56-1
    assert.equal(codeOf(() => new ByteReader(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])).uvarint()), 'BAD_VARINT');
    assert.equal(codeOf(() => new ByteReader(Uint8Array.from([0x80])).uvarint()), 'TRUNCATED');
    assert.equal(codeOf(() => new ByteReader(Uint8Array.from([0x40])).svarint()), 'BAD_VARINT'); // negative zero
    const w = new ByteWriter();
    assert.throws(() => w.uvarint(2 ** 53), RangeError);
  });
});

describe('codec: derived vertex ids', () => {
  it('derives 32 hex digits from a 16-hex-digit peer id and a counter, and parses them back', () => {
    const id = derivedVertexId(P1, 0x1234) as string;
    assert.equal(id, `${P1}0000000000001234`);
    assert.deepEqual(parseDerivedVertexId(id), { peerId: P1, counter: 0x1234 });
    assert.equal(derivedVertexId('zz9', 5), undefined);
    assert.equal(parseDerivedVertexId(`${P1}ffffffffffffffff`), undefined); // past 2^53-1
    assert.equal(parseDerivedVertexId(`${P1}0000000000000000`), undefined); // counter 0
  });

  it('AppTree gives a new item the id derived from the move that creates it', () => {
    const t = AppTree.createNew(P1, T);
    try {
      const ops: Op[] = [];
      t.onDidChange((c) => {
        for (const op of c.ops) ops.push(op);
      });
      const id = t.addItem(T, { text: 'x' });
      const mv = ops.find((op) => 'parentId' in op && op.parentId === T) as Op;
      assert.equal(mv.targetId, id);
      assert.equal(id, derivedVertexId(P1, mv.id.counter));
    } finally {
      t.dispose();
    }
  });

  it('AppTree falls back to a random id when the derived one is taken or the peer id has another shape', () => {
    const t = AppTree.fromOps(P1, T, [move(1, P1, T, null), move(2, P2, derivedVertexId(P1, 3) as string, T)]);
    try {
      const id = t.addItem(T, { text: 'x' });
      assert.notEqual(id, derivedVertexId(P1, 3));
      assert.match(id, /^[0-9a-f]{32}$/);
      assert.equal(t.tree.getVertex(derivedVertexId(P1, 3) as string)?.parentId, T, 'the other peer vertex is not moved');
    } finally {
      t.dispose();
    }
    const u = AppTree.createNew('zz9', T);
    try {
      assert.match(u.addItem(T, { text: 'y' }), /^[0-9a-f]{32}$/);
    } finally {
      u.dispose();
    }
  });
});

describe('codec: op batches', () => {
  it('round-trips every op shape, value type and counter edge', () => {
    roundTrip([
      {
        treeId: T,
        seq: 0,
        ops: [
          move(1, P1, T, null),
          move(2, P1, derivedVertexId(P1, 2) as string, T),
          prop(3, P1, derivedVertexId(P1, 2) as string, 'text', 'a'),
          prop(4, P1, derivedVertexId(P1, 2) as string, 'done', false),
          prop(5, P1, derivedVertexId(P1, 2) as string, 'order', 1.5),
          prop(2 ** 53 - 1, P2, 'v1', 'x', { deep: [1, -2, 'ü'] }),
          prop(1, 'zz9', 'v1', 'x', undefined),
          move(9, P2, 'v1', derivedVertexId(P1, 2) as string),
          move(10, P2, 'v2', derivedVertexId(P1, 2) as string),
          prop(11, P2, 'v2', 'lone', '\ud83d'),
          prop(12, P2, 'v2', '\udc00key', -0),
          move(13, P2, '0', null),
        ],
      },
      { treeId: 'b'.repeat(32), seq: 2 ** 53 - 1, ops: [] },
      { treeId: T, seq: 7, ops: [prop(12, P2, 'v2', 'text', 'a')] },
    ]);
  });

  it('round-trips random valid batches, compressed and not', () => {
    const rnd = seededRandom(42);
    for (let i = 0; i < 300; i++) {
      const batches = randomBatches(rnd, 1 + Math.floor(rnd() * 6));
      roundTrip(batches, i % 2 === 0);
    }
  });

  it('stores a typical edit (move + text + done + order) in a few bytes once batches share a blob', () => {
    const t = AppTree.createNew(P1, T);
    try {
      const batches: CodecBatch[] = [];
      t.onDidChange((c) => batches.push({ treeId: T, seq: batches.length + 1, ops: c.ops.slice() }));
      const buckets = Array.from({ length: 16 }, (_, i) => t.addItem(T, { text: `b${i}` }));
      for (let i = 0; i < 1000; i++) t.addItem(buckets[i % 16], { text: `edit ${i}`, done: false });
      const plain = encodeBatches(batches);
      const packed = encodeBatches(batches, { compress: true });
      assert.ok(plain.length / batches.length < 30, `${plain.length / batches.length} bytes per edit`);
      assert.ok(packed.length < plain.length / 2, `deflate: ${packed.length} of ${plain.length}`);
      assert.deepEqual(decodeBatches(packed), batches);
    } finally {
      t.dispose();
    }
  });

  it('refuses an unknown version, unknown flags and a truncated blob with a typed error', () => {
    const good = encodeBatches([{ treeId: T, seq: 1, ops: [move(1, P1, T, null), prop(2, P1, T, 'name', 'x')] }]);
    const newer = good.slice();
    newer[0] = CODEC_VERSION + 1;
    assert.equal(codeOf(() => decodeBatches(newer)), 'VERSION');
    const flags = good.slice();
    flags[1] = 0x80;
    assert.equal(codeOf(() => decodeBatches(flags)), 'BAD_KIND');
    for (let n = 0; n < good.length; n++) {
      const code = codeOf(() => decodeBatches(good.subarray(0, n)));
      assert.ok(code === 'TRUNCATED' || code === 'TOO_LARGE' || code === 'BAD_REF', `prefix ${n}: ${code}`);
    }
    const extra = new Uint8Array(good.length + 1);
    extra.set(good);
    assert.equal(codeOf(() => decodeBatches(extra)), 'TRAILING');
  });

  it('refuses huge counts and lengths before allocating, and a body that inflates past the limit', () => {
    const w = new ByteWriter();
    w.byte(CODEC_VERSION);
    w.byte(0);
    w.uvarint(2 ** 53 - 1); // peer count
    assert.equal(codeOf(() => decodeBatches(w.finish())), 'TOO_LARGE');
    const zeros = zlib.deflateRawSync(Buffer.alloc(4 * 1024 * 1024));
    const blob = new Uint8Array(2 + zeros.length);
    blob[0] = CODEC_VERSION;
    blob[1] = 1;
    blob.set(zeros, 2);
    assert.equal(codeOf(() => decodeBatches(blob, { maxBodyBytes: 1024 * 1024, maxOps: 1000 })), 'TOO_LARGE');
    const junk = Uint8Array.from([CODEC_VERSION, 1, 0xff, 0xff, 0x00]);
    assert.equal(codeOf(() => decodeBatches(junk)), 'BAD_COMPRESSION');
  });

  it('refuses more ops than the limit', () => {
    const ops = Array.from({ length: 50 }, (_, i) => prop(i + 1, P1, 'v1', 'k', i));
    const blob = encodeBatches([{ treeId: T, seq: 0, ops }]);
    assert.equal(codeOf(() => decodeBatches(blob, { maxBodyBytes: 1 << 20, maxOps: 49 })), 'TOO_LARGE');
  });

  it('leaves value rules to validateOps: a decoded batch with a moved root is an InvalidOpError', () => {
    const blob = encodeBatches([{ treeId: T, seq: 0, ops: [move(1, P1, T, 'v1')] }]);
    assert.throws(() => decodeValidBatches(blob, 'test'), InvalidOpError);
  });

  it('fuzz: random bytes and mutated blobs decode or fail with a CodecError, never hang or throw anything else', function () {
    this.timeout(120_000);
    const rnd = seededRandom(7);
    const limits = { maxBodyBytes: 1 << 20, maxOps: 100_000 };
    const seeds = Array.from({ length: 20 }, (_, i) => encodeBatches(randomBatches(rnd, 3), { compress: i % 2 === 0 }));
    let decoded = 0;
    for (let i = 0; i < 20_000; i++) {
      let bytes: Uint8Array;
      if (i % 3 === 0) {
        bytes = new Uint8Array(Math.floor(rnd() * 64));
        for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(rnd() * 256);
        if (bytes.length > 1 && rnd() < 0.8) {
          bytes[0] = CODEC_VERSION;
          bytes[1] = rnd() < 0.8 ? 0 : 1;
        }
      } else {
        bytes = seeds[i % seeds.length].slice();
        const flips = 1 + Math.floor(rnd() * 4);
        for (let f = 0; f < flips; f++) bytes[Math.floor(rnd() * bytes.length)] = Math.floor(rnd() * 256);
        if (rnd() < 0.3) bytes = bytes.subarray(0, Math.floor(rnd() * bytes.length));
      }
      try {
        const batches = decodeBatches(bytes, limits);
        for (const b of batches) {
          try {
            validateOps(b.ops, b.treeId, 'fuzz');
          } catch (e) {
            assert.ok(e instanceof InvalidOpError, String(e));
          }
        }
        decoded++;
      } catch (e) {
        assert.ok(e instanceof CodecError, `input #${i}: ${String(e)}`);
      }
    }
    assert.ok(decoded > 0, 'some mutations still decode');
  });
});
