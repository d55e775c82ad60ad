import assert from 'node:assert/strict';
import { decodeOps, encodeOps } from '../../src/spaces/opCodec';
import { InvalidOpError, compareOps, sortAndDedupe, validateOps, type Op } from '../../src/spaces/ops';
import { mergeSecrets } from '../../src/spaces/secrets';

const T = 'a'.repeat(32);
const move = (counter: number, peerId: string, targetId: string, parentId: string | null): Op => ({ id: { counter, peerId }, targetId, parentId });
const prop = (counter: number, peerId: string, targetId: string, key: string, value: unknown): Op =>
  ({ id: { counter, peerId }, targetId, key, value, transient: false }) as Op;

describe('op validation', () => {
  it('accepts well-formed moves and property sets', () => {
    validateOps([move(1, 'p1', T, null), move(2, 'p1', 'v1', T), prop(3, 'p1', 'v1', 'text', { a: [1, 'x', null] })], T, 'test');
  });

  const bad: Array<[string, unknown]> = [
    ['a counter of 2^53', move(2 ** 53, 'p1', 'v1', T)],
    ['a zero counter', move(0, 'p1', 'v1', T)],
    ['a fractional counter', move(1.5, 'p1', 'v1', T)],
    ['an upper-case peer id', move(1, 'P1', 'v1', T)],
    ['a move of the root', move(5, 'p1', T, 'v1')],
    ['a second root', move(5, 'p1', 'v9', null)],
    ['a move of the deleted-items vertex', move(5, 'p1', '0', 'v1')],
    ['a transient property', { id: { counter: 1, peerId: 'p' }, targetId: 'v', key: 'k', value: 1, transient: true }],
    ['a non-JSON value', prop(1, 'p', 'v', 'k', new Date())],
    ['NaN', prop(1, 'p', 'v', 'k', NaN)],
    ['a __proto__ key', prop(1, 'p', 'v', '__proto__', 1)],
    ['a missing id', { targetId: 'v', parentId: 'x' }],
    ['an oversized value', prop(1, 'p', 'v', 'k', 'x'.repeat(2 * 1024 * 1024))],
    ['a bad vertex id', move(1, 'p', 'a b', T)],
  ];
  for (const [what, op] of bad) {
    it(`rejects ${what}, naming the source and the op`, () => {
      assert.throws(() => validateOps([move(1, 'p1', T, null), op], T, 'file x.space'), (e: unknown) => e instanceof InvalidOpError && /file x\.space: invalid op #1/.test(e.message));
    });
  }
});

describe('op codec', () => {
  it('round-trips moves, sets and removals', () => {
    const ops = [move(1, 'p', T, null), prop(2, 'p', T, 'k', { x: 1 }), prop(3, 'p', T, 'k', undefined)];
    const back = decodeOps(JSON.parse(JSON.stringify(encodeOps(ops))), T, 'wire');
    assert.deepEqual(back, ops);
  });

  it('rejects tuples of the wrong shape', () => {
    assert.throws(() => decodeOps([[0, 1, 'p', T]], T, 'wire'), /op #0 .* not an encoded op/);
    assert.throws(() => decodeOps([[9, 1, 'p', T, null]], T, 'wire'), /not an encoded op/);
    assert.throws(() => decodeOps({}, T, 'wire'), /must be an array/);
  });
});

describe('op order', () => {
  it('sorts by counter then peer id and drops duplicates', () => {
    const ops = [move(2, 'b', 'x', T), move(1, 'z', 'y', T), move(2, 'a', 'x', T), move(2, 'b', 'x', T)];
    sortAndDedupe(ops);
    assert.deepEqual(ops.map((o) => `${o.id.counter}@${o.id.peerId}`), ['1@z', '2@a', '2@b']);
  });

  it("agrees with RepTree's localeCompare order for valid peer ids", () => {
    const ids = ['0', '9', 'a', 'z', '0a', 'a0', 'aa', 'z9', '10', '1'];
    for (const a of ids) for (const b of ids) {
      const ours = Math.sign(compareOps(move(1, a, 'x', T), move(1, b, 'x', T)));
      assert.equal(ours, Math.sign(a.localeCompare(b)), `${a} vs ${b}`);
    }
  });
});

describe('secrets merge', () => {
  it('keeps the newest record per key, ties broken by peer id, tombstones included', () => {
    const m = mergeSecrets(
      [{ key: 'k', value: 'old', time: 1, peerId: 'a' }, { key: 'd', value: 'x', time: 1, peerId: 'a' }],
      [{ key: 'k', value: 'new', time: 2, peerId: 'a' }, { key: 'd', value: null, time: 2, peerId: 'b' }],
      [{ key: 'k', value: 'tie', time: 2, peerId: 'b' }],
    );
    assert.equal(m.get('k')?.value, 'tie');
    assert.equal(m.get('d')?.value, null);
  });
});

describe('OpRangeSet', () => {
  it('stores counters as merged ranges per peer, in any insertion order', async () => {
    const { OpRangeSet } = await import('../../src/spaces/opRanges');
    const s = new OpRangeSet();
    for (const c of [5, 1, 2, 3, 10, 4, 12, 11, 20]) s.add('p', c);
    s.add('q', 7);
    assert.deepEqual(s.toRanges(), { p: [[1, 5], [10, 12], [20, 20]], q: [[7, 7]] });
    assert.equal(s.has('p', 11), true);
    assert.equal(s.has('p', 13), false);
    assert.equal(s.has('r', 1), false);
    const copy = OpRangeSet.fromRanges(s.toRanges());
    copy.addRange('p', 6, 9);
    assert.deepEqual(copy.toRanges().p, [[1, 12], [20, 20]]);
  });
});
