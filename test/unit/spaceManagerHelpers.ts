/** Helpers shared by the SpaceManager tests (spaceManager.test.ts, spaceManager.fuzz.test.ts). */
import type { MemoryStore } from '../helpers/memoryLayer';
import type { Event } from '../../src/spaces/events';
import type { RetryPolicy, SlotState, SlotStatus } from '../../src/spaces/layerSlot';
import { opKey } from '../../src/spaces/ops';
import type { SpaceManager } from '../../src/spaces/spaceManager';

/** Short backoff so that retries happen within a test. */
export const FAST_RETRY: RetryPolicy = { baseMs: 5, maxMs: 20 };

/** Settles pending promise callbacks (no timers involved). */
export async function ticks(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

/** One macrotask: lets setImmediate work (hub delivery) and settled I/O run. */
export function macrotask(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

export function sleep(ms: number): Promise<void> {
  return new Promise<void>((resolve) => setTimeout(resolve, ms));
}

/** Resolves with the first value of `event` that matches; rejects after `timeoutMs` (its timer is cleared either way). */
export function nextEvent<T>(event: Event<T>, match: (v: T) => boolean, what: string, timeoutMs = 5000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const sub = event((v) => {
      if (done || !match(v)) return;
      done = true;
      clearTimeout(timer);
      sub.dispose();
      resolve(v);
    });
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      sub.dispose();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
  });
}

/** Polls `cond` every millisecond until it holds; rejects after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(1);
  }
}

/** The current state of one layer of an open space. */
export function layerState(manager: SpaceManager, spaceId: string, layerId: string): SlotState | undefined {
  return manager.layerStates(spaceId).find((s) => s.layerId === layerId)?.state;
}

/** Resolves once the layer is in `status` (at once when it already is), from the state events. */
export async function waitForLayerState(manager: SpaceManager, spaceId: string, layerId: string, status: SlotStatus, timeoutMs = 5000): Promise<SlotState> {
  const cur = layerState(manager, spaceId, layerId);
  if (cur?.status === status) return cur;
  const e = await nextEvent(
    manager.onDidChangeLayerState,
    (c) => c.spaceId === spaceId && c.layerId === layerId && c.state.status === status,
    `layer ${layerId} of space ${spaceId} to become ${status} (now ${JSON.stringify(layerState(manager, spaceId, layerId))})`,
    timeoutMs,
  );
  return e.state;
}

/** Flushes until no layer reports unsaved ops, waiting for degraded layers to come back in between. */
export async function settle(manager: SpaceManager, spaceId: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const report = await manager.flush(spaceId);
    if (report.length === 0) return;
    if (Date.now() > end) throw new Error(`space ${spaceId} did not settle: ${JSON.stringify(report)}`);
    await Promise.all(report.map((r) => waitForLayerState(manager, spaceId, r.layerId, 'ready', Math.max(1, end - Date.now()))));
  }
}

/** The op keys a store holds for one tree, sorted. */
export function storedKeys(store: MemoryStore, spaceId: string, treeId: string): string[] {
  return store.ops(spaceId, treeId).map(opKey).sort();
}

/** Sorted op keys of a list of ops. */
export function keysOf(ops: ReadonlyArray<Parameters<typeof opKey>[0]>): string[] {
  return ops.map(opKey).sort();
}

/**
 * Collects errors thrown out of event listeners (the Emitter rethrows them in a microtask, so they
 * reach process 'uncaughtException') instead of letting mocha report them against some test.
 * Call `restore()` in a finally.
 */
export function captureUncaught(): { readonly errors: unknown[]; restore(): void } {
  const saved = process.listeners('uncaughtException');
  const errors: unknown[] = [];
  const mine = (e: unknown): void => {
    errors.push(e);
  };
  process.removeAllListeners('uncaughtException');
  process.on('uncaughtException', mine);
  return {
    errors,
    restore() {
      process.removeListener('uncaughtException', mine);
      for (const l of saved) process.on('uncaughtException', l);
    },
  };
}

/**
 * Records every interval started while active, so a test can tell whether some were never cleared
 * (a leaked RepTree interval keeps the process alive). `dispose()` clears the leaked ones and
 * restores the globals.
 */
export function recordIntervals(): { readonly live: Map<unknown, string>; dispose(): void } {
  const g = globalThis as unknown as { setInterval: (...a: unknown[]) => unknown; clearInterval: (h: unknown) => void };
  const origSet = g.setInterval;
  const origClear = g.clearInterval;
  /** Interval handle → where it was started. */
  const live = new Map<unknown, string>();
  g.setInterval = (...a: unknown[]) => {
    const h = origSet(...a);
    live.set(h, (new Error().stack ?? '').split('\n').slice(2, 10).join('\n'));
    return h;
  };
  g.clearInterval = (h: unknown) => {
    live.delete(h);
    origClear(h);
  };
  return {
    live,
    dispose() {
      g.setInterval = origSet;
      g.clearInterval = origClear;
      for (const h of live.keys()) origClear(h);
      live.clear();
    },
  };
}

/** Number of active timers (setTimeout and setInterval) in the process. */
export function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}
