/**
 * WriteQueue: the serialisation point of one space's writes.
 *
 * Every write to a loaded space — client op batches, client secrets, and the ops the server's own
 * SpaceManager makes — is a job on the space's queue, and nothing else writes that space. Jobs
 * run in arrival order, one group at a time: the jobs queued when the queue gets its turn (at
 * most `maxGroup`) are handed to `run` together, which commits them in one SQLite transaction
 * (one fsync) and then acknowledges and fans them out in order. The next group starts only once
 * `run` (synchronous, or its promise) has finished, so a group's seqs, the space's state vectors
 * and what its subscribers are sent change in exactly seq order, and no two groups of one space
 * ever overlap. Between groups the queue yields to the event loop (setImmediate), so sockets keep
 * being read and written while a space is busy. `run` must not throw or reject.
 *
 * A queue starts stopped: jobs wait until the space has loaded (`start`).
 */
export class WriteQueue<J> {
  private jobs: J[] = [];
  private started = false;
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly run: (group: J[]) => void | Promise<void>,
    private readonly maxGroup = 256,
  ) {}

  get size(): number {
    return this.jobs.length;
  }

  push(job: J): void {
    this.jobs.push(job);
    this.schedule();
  }

  start(): void {
    this.started = true;
    this.schedule();
  }

  /** Resolves once every job queued so far has run (and the queue is empty). */
  whenIdle(): Promise<void> {
    if (this.jobs.length === 0 && !this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drops the jobs that have not run (after a failed load); returns them. */
  drain(): J[] {
    const dropped = this.jobs;
    this.jobs = [];
    this.settleIdle();
    return dropped;
  }

  private schedule(): void {
    if (!this.started || this.scheduled || this.jobs.length === 0) return;
    this.scheduled = true;
    setImmediate(() => this.turn());
  }

  private turn(): void {
    const group = this.jobs.splice(0, this.maxGroup);
    const done = group.length > 0 ? this.run(group) : undefined;
    // Still `scheduled` while an async group runs: no other group starts, whenIdle waits.
    if (done) void done.then(() => this.next());
    else this.next();
  }

  private next(): void {
    this.scheduled = false;
    if (this.jobs.length > 0) this.schedule();
    else this.settleIdle();
  }

  private settleIdle(): void {
    if (this.jobs.length > 0 || this.scheduled) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
