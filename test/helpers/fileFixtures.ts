/**
 * Helpers for the file layer's tests: temp dirs, cheap valid ops, file hashes, and a way to run
 * the compiled child-process writer (fileWriterChild.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { opKey, type Op } from '../../src/spaces/ops';

export class TempDir {
  readonly path = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-file-test-'));

  file(name = 'test.space'): string {
    return path.join(this.path, name);
  }

  cleanup(): void {
    fs.rmSync(this.path, { recursive: true, force: true });
  }
}

export function newId(): string {
  return randomBytes(16).toString('hex');
}

export const TEST_KEY = Buffer.alloc(32, 7);
export const OTHER_KEY = Buffer.alloc(32, 9);

/** `count` valid ops by `peerId` with counters `first…`: moves and property sets/removals. */
export function makeOps(treeId: string, peerId: string, first: number, count: number): Op[] {
  const ops: Op[] = [];
  for (let i = 0; i < count; i++) {
    const c = first + i;
    const v = `v${peerId}-${c >> 2}`;
    switch (c % 4) {
      case 0:
        ops.push({ id: { counter: c, peerId }, targetId: v, parentId: treeId });
        break;
      case 1:
        ops.push({ id: { counter: c, peerId }, targetId: v, key: 'name', value: `item ${c}`, transient: false });
        break;
      case 2:
        ops.push({ id: { counter: c, peerId }, targetId: v, key: 'data', value: { n: c, list: [1, 'two', null, true], f: 0.1 + 0.2 }, transient: false });
        break;
      default:
        ops.push({ id: { counter: c, peerId }, targetId: v, key: 'name', value: undefined, transient: false });
    }
  }
  return ops;
}

export function rootOp(treeId: string, peerId: string, counter = 1): Op {
  return { id: { counter, peerId }, targetId: treeId, parentId: null };
}

export function keysOf(ops: readonly Op[]): Set<string> {
  return new Set(ops.map(opKey));
}

/** Ops as sorted canonical JSON, for exact comparisons. */
export function canonical(ops: readonly Op[]): string[] {
  return ops
    .map((op) => JSON.stringify(op, (_k, v: unknown) => (v === undefined ? '<undefined>' : v)))
    .sort();
}

export function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** The compiled child-process writer (test/helpers/fileWriterChild.ts → out/…/fileWriterChild.js). */
export const WRITER_CHILD = path.join(__dirname, 'fileWriterChild.js');

/** Resolves with the first value `event` delivers that matches `pred`. */
export function nextEvent<T>(event: (listener: (v: T) => void) => { dispose(): void }, pred: (v: T) => boolean = () => true): Promise<T> {
  return new Promise<T>((resolve) => {
    const sub = event((v) => {
      if (!pred(v)) return;
      sub.dispose();
      resolve(v);
    });
  });
}
