/**
 * PgBus: the fan-out bus over PostgreSQL LISTEN/NOTIFY (bus.ts). One dedicated connection per
 * process LISTENs on BATCH_CHANNEL; the store sends `"<space id> <seq>"` there in each batch's
 * transaction (postgresStore.ts), so a notice arrives only after its commit, in commit order.
 *
 * The connection is pinged every PING_MS (a dead TCP peer shows no error by itself). When it
 * fails the bus reports not-ok (/healthz), connects again with a growing delay, and on success
 * fires `onResync`: notices sent while it was gone are lost, so every loaded space compares its
 * seq with the store's. A payload that does not parse (nothing but our store writes this channel,
 * but the database is not this process) is counted and dropped.
 */
import pg from 'pg';
import { Emitter } from '../../spaces/events';
import { isHexId } from '../../spaces/ids';
import { BATCH_CHANNEL } from '../store/postgresSchema';
import { pgConfig } from '../store/postgresStore';
import type { BatchNotice, BusStatus, FanoutBus } from './bus';

/** How often the listening connection proves it is alive. */
const PING_MS = 2_000;
/** First delay before connecting again, doubled per failure up to RECONNECT_MAX_MS. */
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;

/** Parses `"<space id> <seq>"`; undefined when it is anything else. */
export function parseNotice(payload: string | undefined): BatchNotice | undefined {
  if (payload === undefined) return undefined;
  const m = /^(\S+) (\d{1,16})$/.exec(payload);
  if (!m || !isHexId(m[1])) return undefined;
  const seq = Number(m[2]);
  return Number.isSafeInteger(seq) && seq > 0 ? { spaceId: m[1], seq } : undefined;
}

export class PgBus implements FanoutBus {
  readonly kind = 'postgres';
  private readonly notices = new Emitter<BatchNotice>();
  private readonly resyncs = new Emitter<void>();
  readonly onNotice = this.notices.event;
  readonly onResync = this.resyncs.event;
  private client: pg.Client | undefined;
  private ok = false;
  private error: string | undefined;
  private received = 0;
  private reconnects = 0;
  private malformed = 0;
  private delay = RECONNECT_MIN_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(private readonly url: string) {}

  /** Connects and listens; rejects when the first connection fails (the server does not start). */
  static async start(url: string): Promise<PgBus> {
    const bus = new PgBus(url);
    await bus.connect();
    bus.pingTimer = setInterval(() => bus.ping(), PING_MS);
    bus.pingTimer.unref();
    return bus;
  }

  status(): BusStatus {
    return { kind: this.kind, ok: this.ok, error: this.ok ? undefined : this.error, notices: this.received, reconnects: this.reconnects };
  }

  /** Notices that did not parse. */
  get malformedNotices(): number {
    return this.malformed;
  }

  private async connect(): Promise<void> {
    const c = new pg.Client({ ...pgConfig(this.url), keepAlive: true });
    c.on('error', (e) => this.lost(c, e));
    c.on('end', () => this.lost(c, new Error('the listening connection ended')));
    c.on('notification', (n) => {
      if (n.channel !== BATCH_CHANNEL) return;
      const notice = parseNotice(n.payload);
      if (!notice) {
        this.malformed++;
        return;
      }
      this.received++;
      this.notices.fire(notice);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${BATCH_CHANNEL}`);
    } catch (e) {
      c.removeAllListeners('end');
      await c.end().catch(() => undefined);
      throw e;
    }
    if (this.closed) {
      await c.end().catch(() => undefined);
      return;
    }
    this.client = c;
    this.ok = true;
    this.error = undefined;
    this.delay = RECONNECT_MIN_MS;
  }

  private ping(): void {
    const c = this.client;
    if (!c || !this.ok) return;
    c.query('SELECT 1').catch((e: unknown) => this.lost(c, e instanceof Error ? e : new Error(String(e))));
  }

  private lost(c: pg.Client, e: Error): void {
    if (this.client !== c || this.closed) return;
    this.client = undefined;
    this.ok = false;
    this.error = e.message;
    c.removeAllListeners('end');
    c.end().catch(() => undefined);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect().then(
        () => {
          if (this.closed) return;
          this.reconnects++;
          this.resyncs.fire();
        },
        (e: unknown) => {
          this.error = e instanceof Error ? e.message : String(e);
          this.delay = Math.min(RECONNECT_MAX_MS, this.delay * 2);
          this.scheduleReconnect();
        },
      );
    }, this.delay);
    this.retryTimer.unref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ok = false;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    const c = this.client;
    this.client = undefined;
    if (c) {
      c.removeAllListeners('end');
      await c.end().catch(() => undefined);
    }
    this.notices.dispose();
    this.resyncs.dispose();
  }
}
