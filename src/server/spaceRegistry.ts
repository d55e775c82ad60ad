/**
 * SpaceRegistry: which spaces are loaded. `acquire` loads a space (once, however many callers
 * wait for it) and counts a reference; `release` drops one. A space nobody references (no
 * subscriber, no write under way) for `idleUnloadMs` is unloaded: its queued writes finish, then
 * the SpaceManager closes it. A space being unloaded is loaded again by the next `acquire`.
 */
import { Emitter } from '../spaces/events';
import type { SpaceManager } from '../spaces/spaceManager';
import type { AdmissionLimits } from './admission';
import { errorText, type Logger } from './log';
import type { CatchUpCache } from './frameCache';
import type { Metrics } from './metrics';
import { SpaceHost, SpaceNotFoundError } from './spaceHost';
import type { SpaceStore } from './store/spaceStore';

interface Entry {
  readonly host: SpaceHost;
  readonly ready: Promise<void>;
  refs: number;
  idleTimer?: NodeJS.Timeout;
  unloading?: Promise<void>;
}

export interface RegistryOptions {
  readonly store: SpaceStore;
  readonly manager: SpaceManager;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly catchUpCache: CatchUpCache;
  readonly idleUnloadMs: number;
  readonly admission?: AdmissionLimits;
}

export class SpaceRegistry {
  private readonly entries = new Map<string, Entry>();
  private closed = false;
  private readonly loadedEmitter = new Emitter<string>();
  /** A space finished loading (its id). */
  readonly onDidLoadSpace = this.loadedEmitter.event;
  private readonly unloadedEmitter = new Emitter<string>();
  /** A space was unloaded (its id). */
  readonly onDidUnloadSpace = this.unloadedEmitter.event;

  constructor(private readonly opts: RegistryOptions) {}

  get loadedCount(): number {
    return this.entries.size;
  }

  get subscriptionCount(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.host.subscriberCount;
    return n;
  }

  /** Seqs announced by the fan-out bus and not yet applied, over the loaded spaces. */
  get seqsBehind(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.host.seqsBehind;
    return n;
  }

  /**
   * The fan-out bus: `spaceId` has batches up to `seq` (fanout/bus.ts). A space not loaded here
   * needs nothing: it reads the store when it loads. One being loaded checks after its load.
   */
  noteCommitted(spaceId: string, seq: number): void {
    const e = this.entries.get(spaceId);
    if (e && !e.unloading) void e.ready.then(() => e.host.noteCommitted(seq), () => undefined);
  }

  /** Notices may have been missed: every loaded space checks the store for batches past its seq. */
  resyncAll(): void {
    for (const e of this.entries.values()) if (!e.unloading) void e.ready.then(() => e.host.noteCommitted(), () => undefined);
  }

  isLoaded(spaceId: string): boolean {
    return this.entries.has(spaceId);
  }

  /** The loaded host of a space, with one more reference. Rejects with SpaceNotFoundError. */
  async acquire(spaceId: string): Promise<SpaceHost> {
    for (;;) {
      if (this.closed) throw new Error('the server is shutting down');
      let e = this.entries.get(spaceId);
      if (e?.unloading) {
        await e.unloading;
        continue;
      }
      if (!e) {
        if (!(await this.opts.store.getSpace(spaceId))) throw new SpaceNotFoundError(spaceId);
        // Another acquire may have started loading it while this one read the store.
        const raced = this.entries.get(spaceId);
        if (raced || this.closed) continue;
        e = this.load(spaceId);
      }
      e.refs++;
      clearTimeout(e.idleTimer);
      e.idleTimer = undefined;
      try {
        await e.ready;
      } catch (err) {
        e.refs--;
        throw err;
      }
      return e.host;
    }
  }

  private load(spaceId: string): Entry {
    const { store, manager, metrics, logger, catchUpCache, admission } = this.opts;
    const host = new SpaceHost(spaceId, { store, manager, metrics, logger, catchUpCache, admission });
    const t0 = Date.now();
    const entry: Entry = {
      host,
      refs: 0,
      ready: host.load().then(
        () => {
          metrics.spacesLoadedTotal++;
          logger.info('space loaded', { spaceId, seq: host.seq, ms: Date.now() - t0 });
          this.loadedEmitter.fire(spaceId);
        },
        (err: unknown) => {
          if (this.entries.get(spaceId) === entry) this.entries.delete(spaceId);
          host.abandon(err instanceof Error ? err : new Error(String(err)));
          if (!(err instanceof SpaceNotFoundError)) {
            metrics.fault('load');
            logger.error('space load failed', { spaceId, error: errorText(err) });
          }
          throw err;
        },
      ),
    };
    // Waiters see the rejection; this handler only keeps it from counting as unhandled.
    entry.ready.catch(() => undefined);
    this.entries.set(spaceId, entry);
    return entry;
  }

  release(host: SpaceHost): void {
    const e = this.entries.get(host.spaceId);
    if (!e || e.host !== host) return;
    e.refs = Math.max(0, e.refs - 1);
    if (e.refs > 0 || this.closed) return;
    clearTimeout(e.idleTimer);
    e.idleTimer = setTimeout(() => void this.unload(e), this.opts.idleUnloadMs);
    e.idleTimer.unref();
  }

  private unload(e: Entry): Promise<void> {
    e.unloading ??= (async () => {
      try {
        await e.ready.catch(() => undefined);
        await e.host.close();
        this.opts.metrics.spacesUnloadedTotal++;
        this.opts.logger.info('space unloaded', { spaceId: e.host.spaceId });
      } catch (err) {
        this.opts.metrics.fault('unload');
        this.opts.logger.error('space unload failed', { spaceId: e.host.spaceId, error: errorText(err) });
      } finally {
        if (this.entries.get(e.host.spaceId) === e) this.entries.delete(e.host.spaceId);
        this.unloadedEmitter.fire(e.host.spaceId);
      }
    })();
    return e.unloading;
  }

  /** Unloads a space now if nobody references it (tests, admin); true when it was unloaded. */
  async unloadIfIdle(spaceId: string): Promise<boolean> {
    const e = this.entries.get(spaceId);
    if (!e || e.refs > 0) return false;
    clearTimeout(e.idleTimer);
    await this.unload(e);
    return true;
  }

  /** Waits until every loaded space has committed and acknowledged its queued writes. */
  async flush(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => e.ready.then(() => e.host.flush()).catch(() => undefined)));
  }

  /** Unloads every space (after their queued writes); no acquire succeeds afterwards. */
  async closeAll(): Promise<void> {
    this.closed = true;
    const all = [...this.entries.values()];
    for (const e of all) clearTimeout(e.idleTimer);
    await Promise.all(all.map((e) => this.unload(e)));
  }
}
