/**
 * Op and secret builders for layer tests: valid RepTree ops of every shape, built cheaply so
 * that batches of 100k ops cost little, plus comparison helpers keyed by `opKey`.
 */
import * as assert from 'node:assert/strict';
import type { SecretRecord } from '../../src/persistence/contract';
import { encodeOp } from '../../src/spaces/opCodec';
import { DELETED_PARENT_ID, opKey, validateOps, type JsonValue, type Op } from '../../src/spaces/ops';

let treeCounter = 0;

/**
 * A fresh tree id in the data model's shape (32 lowercase hex digits, which the sync protocol
 * requires), unique within the process: a per-prefix tag, the pid, the time and a counter.
 */
export function newTreeId(prefix = 'tree'): string {
  let tag = 0;
  for (const c of prefix) tag = (tag * 31 + c.charCodeAt(0)) >>> 0;
  const hex = (n: number, width: number): string => (n >>> 0).toString(16).padStart(width, '0').slice(-width);
  return `${hex(tag, 8)}${hex(process.pid, 8)}${Date.now().toString(16).padStart(12, '0').slice(-12)}${hex(++treeCounter, 4)}`;
}

/** The move that creates a tree's root (the only move with a null parent). */
export function rootOp(treeId: string, counter: number, peerId: string): Op {
  return { id: { counter, peerId }, targetId: treeId, parentId: null };
}

export function moveOp(counter: number, peerId: string, targetId: string, parentId: string): Op {
  return { id: { counter, peerId }, targetId, parentId };
}

export function setOp(counter: number, peerId: string, targetId: string, key: string, value: JsonValue | undefined): Op {
  return { id: { counter, peerId }, targetId, key, value, transient: false };
}

const SAMPLE_VALUES: ReadonlyArray<JsonValue | undefined> = [
  'plain',
  '',
  'ünïcødé ✓ \u{1F600} "quoted" \\ \n',
  0,
  -1.5,
  1e300,
  true,
  false,
  null,
  [],
  [1, 'two', null, [false]],
  {},
  { nested: { deeper: [1, { x: 'y' }] }, n: 2 },
  undefined, // property removal
];

/** A fresh copy of sample value `i` (modulo the list): ops never share value objects. */
function sampleValue(i: number): JsonValue | undefined {
  const v = SAMPLE_VALUES[i % SAMPLE_VALUES.length];
  return typeof v === 'object' && v !== null ? structuredClone(v) : v;
}

/**
 * `count` valid ops for `treeId` by `peerId` with counters from `firstCounter` on: vertex moves
 * (under the root, under other vertices, to the deleted parent) and property sets and removals
 * with every JSON value shape. Cheap enough for 100k ops.
 */
export function makeOps(treeId: string, peerId: string, firstCounter: number, count: number): Op[] {
  const ops: Op[] = new Array<Op>(count);
  for (let i = 0; i < count; i++) {
    const c = firstCounter + i;
    const v = `v${c >> 2}`;
    switch (c % 4) {
      case 0:
        ops[i] = moveOp(c, peerId, v, c % 64 === 0 || c < 8 ? treeId : `v${c >> 3}`);
        break;
      case 1:
        ops[i] = setOp(c, peerId, v, 'name', `vertex ${c}`);
        break;
      case 2:
        ops[i] = c % 32 === 2 ? setOp(c, peerId, v, 'data', sampleValue(c >> 5)) : setOp(c, peerId, v, 'n', c);
        break;
      default:
        ops[i] = c % 128 === 3 ? moveOp(c, peerId, v, DELETED_PARENT_ID) : setOp(c, peerId, v, 'name', undefined);
        break;
    }
  }
  return ops;
}

/** A small tree with one op of every shape: root, moves, deletion, every value kind, removal. */
export function sampleTree(treeId: string, peerId: string, firstCounter = 1): Op[] {
  let c = firstCounter;
  const ops: Op[] = [rootOp(treeId, c++, peerId)];
  ops.push(moveOp(c++, peerId, 'child-a', treeId));
  ops.push(moveOp(c++, peerId, 'child-b', 'child-a'));
  ops.push(moveOp(c++, peerId, 'child-c', treeId));
  ops.push(moveOp(c++, peerId, 'child-c', DELETED_PARENT_ID));
  for (let i = 0; i < SAMPLE_VALUES.length; i++) ops.push(setOp(c++, peerId, 'child-a', 'prop', sampleValue(i)));
  ops.push(setOp(c++, peerId, treeId, 'name', 'root name'));
  return ops;
}

/** Fisher–Yates with a seeded generator, so failures reproduce. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function stableStringify(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v !== 'object' || v === null) return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`)
    .join(',')}}`;
}

/** The op's content in a canonical string: kind, id, target, parent or key and value. */
export function canonicalOp(op: Op): string {
  return stableStringify(encodeOp(op));
}

/**
 * Asserts that `actual` holds exactly the ops of `expected` as a set (order free): no op missing,
 * none extra, none twice, each with the same content, and all of them valid for the tree.
 */
export function assertSameOps(actual: readonly Op[], expected: readonly Op[], treeId: string, what = 'loaded ops'): void {
  assert.ok(Array.isArray(actual), `${what}: not an array`);
  validateOps(actual, treeId, what);
  const want = new Map<string, string>();
  for (const op of expected) want.set(opKey(op), canonicalOp(op));
  const seen = new Set<string>();
  const duplicate: string[] = [];
  const extra: string[] = [];
  const changed: string[] = [];
  for (const op of actual) {
    const key = opKey(op);
    if (seen.has(key)) duplicate.push(key);
    seen.add(key);
    const w = want.get(key);
    if (w === undefined) extra.push(key);
    else if (w !== canonicalOp(op)) changed.push(`${key}: got ${canonicalOp(op)}, want ${w}`);
  }
  const missing = [...want.keys()].filter((k) => !seen.has(k));
  const few = (list: string[]): string => `${list.length} (${list.slice(0, 5).join('; ')}${list.length > 5 ? '; …' : ''})`;
  const problems: string[] = [];
  if (missing.length) problems.push(`missing ${few(missing)}`);
  if (extra.length) problems.push(`unexpected ${few(extra)}`);
  if (duplicate.length) problems.push(`duplicated ${few(duplicate)}`);
  if (changed.length) problems.push(`changed ${few(changed)}`);
  assert.ok(problems.length === 0, `${what} in tree ${treeId} (${actual.length} loaded, ${want.size} expected): ${problems.join(', ')}`);
}

/** Asserts that every op of `expected` is in `actual` (extra ops allowed). */
export function assertHasOps(actual: readonly Op[], expected: readonly Op[], what = 'loaded ops'): void {
  const have = new Map(actual.map((op) => [opKey(op), canonicalOp(op)]));
  const missing = expected.filter((op) => have.get(opKey(op)) !== canonicalOp(op)).map(opKey);
  assert.ok(missing.length === 0, `${what}: ${missing.length} ops missing or changed (${missing.slice(0, 5).join('; ')})`);
}

export function secret(key: string, value: string | null, time: number, peerId: string): SecretRecord {
  return { key, value, time, peerId };
}

/** Secret records as a key → record map, asserting one record per key and only known fields. */
export function secretsByKey(records: readonly SecretRecord[]): Map<string, SecretRecord> {
  const out = new Map<string, SecretRecord>();
  for (const r of records) {
    assert.ok(!out.has(r.key), `secret ${r.key} loaded twice`);
    out.set(r.key, { key: r.key, value: r.value, time: r.time, peerId: r.peerId });
  }
  return out;
}
