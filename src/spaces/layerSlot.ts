/**
 * LayerSlot: the SpaceManager's view of one persistence layer of one open space.
 *
 * It owns the layer's save queue (ops per tree and secret records not yet confirmed durable
 * by this layer), pumps it independently of every other layer (a slow layer never delays
 * another), with several saves in flight (the layer applies calls in order), and retries
 * failures with exponential backoff and jitter. The queue and the saves in flight are the
 * layer's watermark: everything ever given to the slot and in neither is durable there.
 *
 * A slot whose load failed is 'degraded': it receives no writes at all (so a layer that could
 * not be read is never written as if it were empty) until a retried load succeeds and the
 * manager reconciles it.
 */
import { randomInt } from 'node:crypto';
import type { PersistenceLayer, SecretRecord } from '../persistence/contract';
import { Emitter } from './events';
import type { Op } from './ops';
import { secretWins } from './secrets';

export type SlotStatus = 'loading' | 'ready' | 'degraded' | 'closed';

export interface SlotState {
  readonly status: SlotStatus;
  /** Why the layer is degraded, or the last save error. */
  readonly error?: string;
  /** Ops waiting to be saved to this layer. */
  readonly pendingOps: number;
  /** Why this layer's secrets cannot be read (e.g. another key); its ops still sync. */
  readonly secretsError?: string;
}

export interface RetryPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 250, maxMs: 30_000 };

/**
 * Saves a slot has handed to its layer and not seen settle. Each is small (what was queued when
 * it started); a file layer puts all of them in one flush anyway. Past this, edits wait in the
 * queue and go as one save when one settles.
 */
export const MAX_SAVES_IN_FLIGHT = 256;

/** Exponential backoff with full jitter (never a fixed interval: no thundering herd). */
export function backoffDelay(attempt: number, p: RetryPolicy): number {
  const cap = Math.min(p.maxMs, p.baseMs * 2 ** Math.min(attempt, 20));
  return Math.floor(cap / 2) + randomInt(Math.max(1, Math.ceil(cap / 2)));
}

export class LayerSlot {
  status: SlotStatus = 'loading';
  error: string | undefined;
  secretsError: string | undefined;
  private readonly queue = new Map<string, Op[]>();
  private queuedSecrets = new Map<string, SecretRecord>();
  /** Saves handed to the layer and not settled yet. */
  private readonly inFlight = new Set<Promise<void>>();
  private drainWaiters: Array<() => void> = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private readonly stateEmitter = new Emitter<SlotState>();
  readonly onDidChangeState = this.stateEmitter.event;

  constructor(
    readonly layer: PersistenceLayer,
    private readonly retry: RetryPolicy,
    /** Called when a degraded slot's retry timer fires; resolves true when the layer recovered. */
    private readonly recover: (slot: LayerSlot) => Promise<boolean>,
  ) {}

  get pendingOps(): number {
    let n = 0;
    for (const ops of this.queue.values()) n += ops.length;
    return n;
  }

  state(): SlotState {
    return { status: this.status, error: this.error, pendingOps: this.pendingOps, secretsError: this.secretsError };
  }

  /**
   * Secrets this layer holds cannot be read (another key, damaged records): the layer keeps
   * storing ops, but gets no secret writes, which could not be merged with what it holds.
   */
  blockSecrets(reason: string): void {
    if (this.secretsError === reason) return;
    this.secretsError = reason;
    this.queuedSecrets.clear();
    this.stateEmitter.fire(this.state());
  }

  unblockSecrets(): void {
    if (this.secretsError === undefined) return;
    this.secretsError = undefined;
    this.stateEmitter.fire(this.state());
  }

  setStatus(status: SlotStatus, error?: string): void {
    if (this.status === 'closed') return;
    const changed = status !== this.status || error !== this.error;
    this.status = status;
    this.error = error;
    // Waiters for a drain are released when the slot stops saving: nothing more will drain.
    if (status !== 'ready') this.resolveDrain();
    if (changed) this.stateEmitter.fire(this.state());
  }

  /** Queues ops for this layer; they are pumped when the slot is ready. */
  enqueue(treeId: string, ops: readonly Op[]): void {
    if (this.status === 'closed' || ops.length === 0) return;
    let q = this.queue.get(treeId);
    if (!q) this.queue.set(treeId, (q = []));
    for (const op of ops) q.push(op);
    this.kick();
  }

  enqueueSecrets(records: readonly SecretRecord[]): void {
    if (this.status === 'closed' || this.secretsError !== undefined) return;
    for (const r of records) {
      if (secretWins(r, this.queuedSecrets.get(r.key))) this.queuedSecrets.set(r.key, r);
    }
    this.kick();
  }

  /**
   * Hands what is queued to the layer when the slot is ready, without waiting for the saves
   * already in flight (up to MAX_SAVES_IN_FLIGHT): a layer applies its calls in order (the
   * contract), and a two-way layer sends what it is given at once, so an edit never waits for
   * the previous edit's disk write to land before it goes to a teammate.
   */
  kick(): void {
    if (this.status !== 'ready') return;
    if (this.queue.size === 0 && this.queuedSecrets.size === 0) {
      if (this.inFlight.size === 0) this.resolveDrain();
      return;
    }
    while (this.status === 'ready' && this.inFlight.size < MAX_SAVES_IN_FLIGHT && (this.queue.size > 0 || this.queuedSecrets.size > 0)) {
      const save = this.saveQueued().finally(() => {
        this.inFlight.delete(save);
        this.kick();
      });
      this.inFlight.add(save);
    }
  }

  /** One save of everything queued now: every tree's ops and the secrets, in parallel. */
  private async saveQueued(): Promise<void> {
    const trees = [...this.queue.entries()];
    this.queue.clear();
    const secrets = [...this.queuedSecrets.values()];
    this.queuedSecrets = new Map();
    const results = await Promise.allSettled([
      ...trees.map(([treeId, ops]) => this.layer.saveOps(treeId, ops)),
      secrets.length ? this.layer.saveSecrets(secrets) : Promise.resolve(),
    ]);
    let failure: unknown;
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      failure ??= r.reason;
      // Put back what was not confirmed, ahead of anything queued meanwhile.
      if (i < trees.length) this.requeueFront(trees[i][0], trees[i][1]);
      else this.enqueueSecrets(secrets);
    });
    if ((this.status as SlotStatus) === 'closed') return;
    if (failure === undefined) {
      this.attempt = 0;
      if (this.error && this.status === 'ready') this.setStatus('ready');
      return;
    }
    this.setStatus('degraded', `save failed: ${errorMessage(failure)}`);
    this.scheduleRetry();
  }

  private requeueFront(treeId: string, ops: Op[]): void {
    const later = this.queue.get(treeId) ?? [];
    this.queue.set(treeId, ops.concat(later));
  }

  /** Marks the slot degraded and retries `recover` with backoff until it succeeds or the slot closes. */
  degrade(reason: string): void {
    this.setStatus('degraded', reason);
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.status === 'closed') return;
    const delay = backoffDelay(this.attempt++, this.retry);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.runRecovery();
    }, delay);
  }

  /** Runs the recovery now (e.g. a user asked to retry); no-op unless degraded. */
  retryNow(): void {
    if (this.status !== 'degraded') return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.attempt = 0;
    this.runRecovery();
  }

  /** One recovery attempt: on success the backoff resets and saving resumes, else the next retry is scheduled. */
  private runRecovery(): void {
    this.recover(this).then(
      (ok) => {
        if (!ok) return this.scheduleRetry();
        // A load that works proves the layer readable, not writable (a read-only file): with work
        // queued or in flight, the backoff resets only when a save succeeds (pump).
        if (this.inFlight.size === 0 && this.queue.size === 0 && this.queuedSecrets.size === 0) this.attempt = 0;
        this.kick();
      },
      () => this.scheduleRetry(),
    );
  }

  /** Resolves when nothing is queued or in flight (or the slot is not ready: then at once). */
  drained(): Promise<void> {
    if (this.status !== 'ready' || (this.inFlight.size === 0 && this.queue.size === 0 && this.queuedSecrets.size === 0)) return Promise.resolve();
    return new Promise((resolve) => {
      this.drainWaiters.push(resolve);
      this.kick();
    });
  }

  private resolveDrain(): void {
    for (const w of this.drainWaiters.splice(0)) w();
  }

  /** Stops retrying, drains what can be saved, closes the layer. Idempotent. */
  async close(): Promise<void> {
    if (this.status === 'closed') return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.status === 'ready') await this.drained();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    this.status = 'closed';
    this.stateEmitter.fire(this.state());
    this.stateEmitter.dispose();
    this.resolveDrain();
    await this.layer.close();
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
