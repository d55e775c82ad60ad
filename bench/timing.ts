/** Timing helpers of the benchmarks: rounding, percentiles, deadlines and a paced schedule. */

export const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function pcts(xs: readonly number[]): { n: number; p50: number; p95: number; p99: number; max: number } {
  const s = Float64Array.from(xs).sort();
  const at = (p: number): number => (s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN);
  return { n: s.length, p50: round(at(50), 2), p95: round(at(95), 2), p99: round(at(99), 2), max: round(s.length ? s[s.length - 1] : NaN, 2) };
}

/** Runs `fn` with a deadline; rejects with `what` when it is not done in time. */
export async function bounded<T>(what: string, ms: number, fn: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([fn, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not done in ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Calls `tick(i)` `count` times at `perSecond` on a fixed schedule (no drift); resolves with the ticks that were late. */
export async function paced(count: number, perSecond: number, tick: (i: number) => void): Promise<number> {
  const t0 = performance.now();
  let late = 0;
  for (let i = 0; i < count; i++) {
    const due = t0 + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    else if (wait < -5) late++;
    tick(i);
  }
  return late;
}
