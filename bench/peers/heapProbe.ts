/**
 * Server heap after a full collection, asked over the IPC channel of a server child process
 * (run with --expose-gc): the parent sends `{ type: 'heap' }`, the child collects garbage and
 * answers with process.memoryUsage(). The same probe runs in both peers' server processes.
 */
import type { ChildProcess } from 'node:child_process';
import { bounded } from '../timing';

export interface HeapReading {
  readonly heapUsed: number;
  readonly rss: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

interface HeapRequest {
  readonly type: 'heap';
}

/** How long the parent waits for an answer (a collection of a big heap takes a while). */
const HEAP_ANSWER_MS = 60_000;
/** Collections per reading: a second one frees what the first one's finalizers released. */
const GC_ROUNDS = 3;

/** In the child: answers heap requests, and stops the server when the parent is gone. */
export function answerHeapRequests(): void {
  // A parent that is gone (crashed, or gave up on a side with this server still up) leaves no
  // orphan: the server stops as on SIGTERM (storing what it holds).
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  const gc = (globalThis as { gc?: () => void }).gc;
  process.on('message', (m: HeapRequest) => {
    if (m?.type !== 'heap' || !process.send) return;
    if (!gc) {
      process.send({ type: 'heap', error: 'the server process runs without --expose-gc' });
      return;
    }
    for (let i = 0; i < GC_ROUNDS; i++) gc();
    const u = process.memoryUsage();
    process.send({ type: 'heap', heapUsed: u.heapUsed, rss: u.rss, external: u.external, arrayBuffers: u.arrayBuffers });
  });
}

/** In the parent: the child's heap after a gc. */
export function requestHeap(child: ChildProcess): Promise<HeapReading> {
  return bounded(
    'heap reading',
    HEAP_ANSWER_MS,
    new Promise<HeapReading>((resolve, reject) => {
      const onMessage = (m: { type?: string; error?: string } & Partial<HeapReading>): void => {
        if (m?.type !== 'heap') return;
        child.off('message', onMessage);
        if (m.error || m.heapUsed === undefined) reject(new Error(m.error ?? 'no heap figure'));
        else resolve({ heapUsed: m.heapUsed, rss: m.rss ?? NaN, external: m.external ?? NaN, arrayBuffers: m.arrayBuffers ?? NaN });
      };
      child.on('message', onMessage);
      child.send({ type: 'heap' } satisfies HeapRequest);
    }),
  );
}
