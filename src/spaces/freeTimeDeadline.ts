/**
 * FreeTimeDeadline: a deadline counted in time this process's event loop was free to notice
 * what it waits for, not in wall-clock time.
 *
 * A client busy building trees or storing a catch-up (200 of them in one process, or one on a
 * loaded machine) reads its sockets late; a plain `setTimeout` then fires before the bytes that
 * would have cancelled it are read (timers run before the poll phase), and a busy client takes
 * its own stall for a dead or silent server. Here the deadline advances in ticks: a tick that
 * fires late adds at most two tick lengths (the rest was the loop's own busy time), and when the
 * time is up the verdict waits for `setImmediate` — after the poll phase — so input that was
 * waiting is read (and can `reset()` the deadline) first.
 */

/** Ticks per deadline: its resolution. */
const TICKS_PER_DEADLINE = 8;
const MIN_TICK_MS = 10;
const MAX_TICK_MS = 1_000;
/** A late tick counts for at most this many tick lengths. */
const MAX_TICKS_PER_FIRING = 2;

export class FreeTimeDeadline {
  private readonly tickMs: number;
  private elapsed = 0;
  private lastTick = 0;
  private timer: NodeJS.Timeout | undefined;
  private verdict: NodeJS.Immediate | undefined;

  constructor(
    readonly ms: number,
    private readonly onExpire: () => void,
  ) {
    this.tickMs = Math.max(MIN_TICK_MS, Math.min(MAX_TICK_MS, Math.floor(ms / TICKS_PER_DEADLINE)));
  }

  /** Free time counted so far (ms). */
  get counted(): number {
    return this.elapsed;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Starts counting from zero (again); also what a sign of progress calls. */
  reset(): void {
    this.elapsed = 0;
    this.lastTick = Date.now();
    if (this.verdict) clearImmediate(this.verdict);
    this.verdict = undefined;
    this.timer ??= setInterval(() => this.tick(), this.tickMs);
  }

  /** Stops counting; `reset()` starts again. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.verdict) clearImmediate(this.verdict);
    this.timer = undefined;
    this.verdict = undefined;
  }

  private tick(): void {
    const now = Date.now();
    this.elapsed += Math.min(now - this.lastTick, this.tickMs * MAX_TICKS_PER_FIRING);
    this.lastTick = now;
    if (this.elapsed < this.ms || this.verdict) return;
    this.verdict = setImmediate(() => {
      this.verdict = undefined;
      if (this.elapsed < this.ms || !this.timer) return;
      this.stop();
      this.onExpire();
    });
  }
}
