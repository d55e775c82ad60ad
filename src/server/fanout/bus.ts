/**
 * The cross-process fan-out bus: how one server process hears that another committed batches to a
 * space. A notice carries only the space id and the space's newest seq; the batches themselves
 * are read from the store (sequence numbers say what is missing), so a notice that is lost,
 * duplicated or late costs a read, never a wrong or doubled delivery (spaceHost.ts applies seqs
 * above its own only, in order).
 *
 * - LocalBus: one process (SQLite): nobody else writes, nothing to hear.
 * - PgBus (pgBus.ts): PostgreSQL LISTEN/NOTIFY; the store queues the notice in the batch's own
 *   transaction, so it goes out on commit.
 */
import { Emitter, type Event } from '../../spaces/events';

export interface BatchNotice {
  readonly spaceId: string;
  /** The space's newest committed seq at the time of the notice. */
  readonly seq: number;
}

export interface BusStatus {
  /** `local` or `postgres`. */
  readonly kind: string;
  /** Connected (LocalBus: always). */
  readonly ok: boolean;
  readonly error?: string;
  /** Notices received from the database. */
  readonly notices: number;
  /** Times the listener connected again after losing its connection. */
  readonly reconnects: number;
}

export interface FanoutBus {
  readonly kind: string;
  /** Batches up to `seq` are committed in `spaceId` (by any process, this one included). */
  readonly onNotice: Event<BatchNotice>;
  /**
   * Notices may have been missed (the listener connected again): every loaded space checks its
   * seq against the store.
   */
  readonly onResync: Event<void>;
  status(): BusStatus;
  close(): Promise<void>;
}

/** The bus of a single process: nothing to hear. */
export class LocalBus implements FanoutBus {
  readonly kind = 'local';
  private readonly notices = new Emitter<BatchNotice>();
  private readonly resyncs = new Emitter<void>();
  readonly onNotice = this.notices.event;
  readonly onResync = this.resyncs.event;

  status(): BusStatus {
    return { kind: this.kind, ok: true, notices: 0, reconnects: 0 };
  }

  close(): Promise<void> {
    this.notices.dispose();
    this.resyncs.dispose();
    return Promise.resolve();
  }
}
