/**
 * ServerLayer: a two-way PersistenceLayer that syncs one space with a team server over the sync
 * protocol (docs/protocol.md), keeping its sync state in a SyncStateStore (usually the space's
 * FileLayer) so that it resumes where it stopped.
 *
 * - Connection (connection.ts): hello, backoff with full jitter, heartbeat, fatal auth failures.
 *   On every `welcome` it subscribes `since` the highest seq it has seen; the server sends the
 *   batches after it (a resume downloads only what is new), then `synced` with its state vector.
 * - Incoming batches (catch-up and live) are reported through `onIncoming` at once, in order, and
 *   stored with `saveIncoming` (ops + watermark in one durable write; `received` fires when it
 *   landed). Until then the watermark is before them, so a restart asks for them again: a batch
 *   shown is never lost, and no reader waits for a file flush. Duplicates are harmless.
 * - `saveOps` hands ops to the store's outbox, sends them at once (batches of at most
 *   `maxOpsPerBatch` ops, a few in flight) while connected, and resolves when the outbox write
 *   landed; they leave the outbox on `ack`. After a
 *   reconnect only what the server's state vector lacks is sent again; the rest is dropped.
 * - The server only takes ops under the peer ids announced in `hello`. Ops of other peers (edits
 *   another process made in the file) are sent by reconnecting with their peer ids announced.
 * - `loadTree` waits for the first sync and returns what the server sent for the tree, plus what
 *   the store holds (`loadOps`) and the outbox; offline (the server cannot be reached) it resolves
 *   with what it has. The wait has no fixed deadline: it goes on as long as the server shows
 *   progress (frames arrive, `onLoadProgress` reports them), rides out up to
 *   MAX_LOAD_RECONNECTS lost connections of a server that is there (dropped after `welcome`, or
 *   busy: a cap, a slow-consumer close), and fails — with an error that says so, never an empty
 *   answer — only after `loadTimeoutMs` without any progress. `missingOps` waits for the
 *   server's state vector (no timeout).
 * - A read-only token (`error forbidden` / role `read`): the ops stay in the outbox (write access
 *   may come later) and the state is `error` "read-only: N ops not sent".
 *
 * Server ordering guarantee relied on: everything sent to a socket for a space (ops, acks) comes
 * in seq order, so the highest seq seen in `ops`, `ack` or `synced` is a safe resume point: the
 * store applies writes in call order and an own batch's outbox write is handed to it before the
 * batch is sent, so a watermark past its ack never lands before the batch is durable.
 */
import type { IncomingOps, LayerConnectionState, LoadProgress, SecretRecord, SyncChannel } from '../contract';
import { CloseCode, PROTOCOL_LIMITS, type ErrorMessage, type Role, type ServerMessage, type SyncedMessage, type WelcomeMessage } from '../../protocol/messages';
import { Emitter, type Event } from '../../spaces/events';
import { decodeOps, encodeOp } from '../../spaces/opCodec';
import { OpRangeSet } from '../../spaces/opRanges';
import { isMoveOp, normalizeOp, opKey, sortAndDedupe, validateOps, type Op } from '../../spaces/ops';
import { secretWins, validateSecretRecords } from '../../spaces/secrets';
import { DEFAULT_CONNECTION_TIMINGS, SyncConnection, serverBaseUrl, type ConnectionDown, type ConnectionStats, type ConnectionTimings } from './connection';
import { FreeTimeDeadline } from '../../spaces/freeTimeDeadline';
import { Outbox } from './outbox';
import { stopCodeOfRefusal, stopReasonOf, type StopReason } from '../../protocol/stopReasons';
import { PeerIdentities } from './identity';
import type { SyncStateStore } from './syncState';
import { ID_RULES, isHexId } from '../../spaces/ids';
import { LayerError } from '../layerError';

export interface ServerLayerTimings extends ConnectionTimings {
  /**
   * `loadTree`, `listTrees` and `loadSecrets` wait for the first sync as long as it makes
   * progress; they fail after this long without any (no frame, no connection attempt) (ms).
   */
  readonly loadTimeoutMs: number;
  /** `close()` waits at most this long for what is in flight or queued to be acknowledged (ms). */
  readonly closeTimeoutMs: number;
  /** Unacknowledged `ops` messages at a time. */
  readonly maxInFlightBatches: number;
  /** Pause before sending again after `rate-limited` or `internal` (ms). */
  readonly resendPauseMs: number;
}

export const DEFAULT_SERVER_LAYER_TIMINGS: ServerLayerTimings = {
  ...DEFAULT_CONNECTION_TIMINGS,
  loadTimeoutMs: 30_000,
  closeTimeoutMs: 2_000,
  maxInFlightBatches: 4,
  resendPauseMs: 1_000,
};

/** Connections of a server that is there (see ConnectionDown.transient) a first load rides out before answering offline. */
export const MAX_LOAD_RECONNECTS = 3;
/** Load progress is reported at most this often while frames arrive (ms). */
const LOAD_PROGRESS_EVERY_MS = 250;

/** Why a load failed that is not the server's answer: it stalled, or kept losing the connection. */
export class ServerLoadError extends LayerError<'STALLED' | 'RECONNECTS'> {
  constructor(message: string, code: 'STALLED' | 'RECONNECTS') {
    super(message, code);
    this.name = 'ServerLoadError';
  }
}

interface LoadWaiter {
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

/** An `ops` message's ops stay under this many bytes of JSON (the server's frame limit is 8 MiB). */
const MAX_BATCH_BYTES = 2 * 1024 * 1024;

export interface ServerLayerOptions {
  /** The server: http(s)://host[:port][/base] or ws(s)://…; the sync path is added. */
  readonly url: string;
  readonly token: string;
  /** The SpaceManager's peer id (`manager.peerId`): always announced in `hello`. */
  readonly peerId: string;
  readonly spaceId: string;
  readonly syncState: SyncStateStore;
  readonly timings?: Partial<ServerLayerTimings>;
  /** Free text the server logs, e.g. "spaces-cli/0.1.0". */
  readonly client?: string;
}

/** What happened, for logs and `spaces sync --watch`. */
export type SyncEvent =
  | { readonly type: 'welcome'; readonly user: string; readonly serverId: string; readonly peerIds: readonly string[] }
  | { readonly type: 'received'; readonly treeId: string; readonly ops: number; readonly seq: number }
  | { readonly type: 'synced'; readonly seq: number; readonly role: Role; readonly received: number; readonly outbox: number }
  | { readonly type: 'acked'; readonly treeId: string; readonly ops: number; readonly seq: number }
  | { readonly type: 'secrets-received'; readonly count: number }
  | { readonly type: 'secrets-acked'; readonly count: number }
  | { readonly type: 'refused'; readonly code: string; readonly message: string; readonly ops: number }
  | { readonly type: 'store-error'; readonly message: string };

export interface ServerLayerStats extends ConnectionStats {
  /** Ops received in `ops` messages (catch-up and live). */
  opsReceived: number;
  /** Ops acknowledged by the server. */
  opsAcked: number;
  /** Ops sent in `ops` messages (resends included). */
  opsSent: number;
}

interface SecretsInFlight {
  readonly records: SecretRecord[];
  readonly waiters: Array<() => void>;
}

class LayerClosedError extends LayerError<'CLOSED'> {
  constructor(id: string, op: string) {
    super(`${id}: ${op}() called on a closed layer`, 'CLOSED');
    this.name = 'LayerClosedError';
  }
}

/**
 * The layer's own copy of an op it keeps to send: what the caller does with its objects later
 * does not change what goes out. Only object values are cloned deeply (structuredClone of the
 * whole op was most of saveOps' time).
 */
function copyOp(op: Op): Op {
  const c = normalizeOp(op);
  if (isMoveOp(c) || typeof c.value !== 'object' || c.value === null) return c;
  return { ...c, value: structuredClone(c.value) };
}

export class ServerLayer implements SyncChannel {
  readonly kind = 'two-way';
  /** Decoded and validated where they arrive (decodeOps), or when saved (saveOps); the store validates what it holds. */
  readonly validatesOps = true;
  readonly id: string;
  readonly label: string;
  readonly spaceId: string;

  private readonly store: SyncStateStore;
  private readonly conn: SyncConnection;
  private readonly timings: ServerLayerTimings;
  private readonly outbox = new Outbox();
  private readonly initDone: Promise<void>;
  private initError: Error | undefined;

  /** Highest seq seen in ops/ack/synced (and handed to the store). */
  private seen = 0;
  private serverId: string | undefined;
  private seqRequested = 0;
  /** The server's state vector per tree, known after the first `synced`; kept up to date. */
  private sv: Map<string, OpRangeSet> | undefined;
  private svWaiters: Array<() => void> = [];
  private role: Role | undefined;
  /** This connection got `synced` and its barrier ack: caught up, secrets in. */
  private ready = false;
  private everReady = false;
  /** A connection attempt failed before the first sync: loads answer at once (offline). */
  private everDown = false;
  /** The last connection failed (not a planned reconnect) and no new one is open yet. */
  private offline = false;
  /** This connection got `synced` (its state vector is in): sending may start. */
  private syncedNow = false;
  /** Why the server refused ops on this connection (kept as the error state until reconnect). */
  private refusedReason: string | undefined;
  /** The last failure to write to the store, until a later write succeeds (see `storeError`). */
  private storeErrorValue: string | undefined;
  private readyWaiters: LoadWaiter[] = [];
  /** While loads wait: fails them once the first sync made no progress for `loadTimeoutMs` of free time. */
  private readonly loadWatchdog: FreeTimeDeadline;
  private loadReconnects = 0;
  private progressReportedAt = 0;
  private readyListeners: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private barrierRef: number | undefined;
  private catchUpOps = 0;
  private nextRef = 1;
  private paused: NodeJS.Timeout | undefined;
  /** Ops the server refused as invalid or too large: not resent on this connection. */
  private readonly refused = new Set<string>();
  /** `tree/op` keys of outbox ops whose outbox write has not landed (or failed): a retried saveOps writes them again. */
  private readonly undurable = new Set<string>();

  /** Ops received for trees nobody loaded yet (only when the store cannot load ops itself). */
  private readonly received = new Map<string, Op[]>();
  private readonly handedOver = new Set<string>();
  private incomingChain: Promise<void> = Promise.resolve();
  /** Incoming batches waiting for this turn's store write, per tree (see storeIncoming). */
  private readonly incomingQueue = new Map<string, Array<readonly Op[]>>();
  private incomingWrite: { readonly landed: Promise<void>; readonly resolve: () => void } | undefined;
  private pendingIncoming = 0;
  private pendingSaves = 0;
  private pendingMissing = 0;

  private readonly secrets = new Map<string, SecretRecord>();
  private readonly unsentSecrets = new Map<string, SecretRecord>();
  private readonly secretsInFlight = new Map<number, SecretsInFlight>();

  private idleWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  /** Called when a connection fails (not a planned reconnect): a closing layer stops waiting. */
  private downWaiters: Array<() => void> = [];
  private idleCheck: NodeJS.Immediate | undefined;
  private stateValue: LayerConnectionState = { status: 'offline', reason: 'connecting' };
  /** The code of the last fatal failure (see `stopCode`). */
  private fatalCode: number | undefined;
  private closedForCalls = false;
  private disposed = false;
  private closing: Promise<void> | undefined;
  private readonly counters = { opsReceived: 0, opsAcked: 0, opsSent: 0 };

  private readonly incomingEmitter = new Emitter<IncomingOps>();
  readonly onIncoming: Event<IncomingOps> = this.incomingEmitter.event;
  private readonly incomingSecretsEmitter = new Emitter<readonly SecretRecord[]>();
  readonly onIncomingSecrets: Event<readonly SecretRecord[]> = this.incomingSecretsEmitter.event;
  private readonly stateEmitter = new Emitter<LayerConnectionState>();
  readonly onStateChange: Event<LayerConnectionState> = this.stateEmitter.event;
  private readonly syncEmitter = new Emitter<SyncEvent>();
  /** Protocol-level events (received, acked, synced, refused…), for logs and the CLI. */
  readonly onSyncEvent: Event<SyncEvent> = this.syncEmitter.event;
  /** Who writes under which peer id in the space, as the server says (identity.ts). */
  readonly identities: PeerIdentities;
  private readonly progressEmitter = new Emitter<LoadProgress>();
  /** While a load waits for the first sync: what has arrived so far (see PersistenceLayer.onLoadProgress). */
  readonly onLoadProgress: Event<LoadProgress> = this.progressEmitter.event;

  constructor(opts: ServerLayerOptions) {
    if (!isHexId(opts.spaceId)) throw new TypeError(`space id must be ${ID_RULES.hex}: ${opts.spaceId}`);
    if (typeof opts.token !== 'string' || opts.token.length === 0) throw new TypeError('a token is required');
    const base = serverBaseUrl(opts.url);
    this.id = `server:${base}`;
    this.label = new URL(base).host;
    this.spaceId = opts.spaceId;
    this.store = opts.syncState;
    this.identities = new PeerIdentities(this.id, this.store);
    this.timings = { ...DEFAULT_SERVER_LAYER_TIMINGS, ...opts.timings };
    this.loadWatchdog = new FreeTimeDeadline(this.timings.loadTimeoutMs, () =>
      this.failLoads(new ServerLoadError(`${this.label}: no progress for ${this.timings.loadTimeoutMs} ms while loading the space (${this.stateValue.status})`, 'STALLED')),
    );
    this.conn = new SyncConnection({
      url: opts.url,
      token: opts.token,
      client: opts.client ?? 'spaces-vscode',
      timings: this.timings,
      peerIds: () => [opts.peerId, ...this.outbox.waitingPeers().filter((p) => p !== opts.peerId)],
    });
    this.conn.onOpen((w) => this.onWelcome(w));
    this.conn.onMessage((m) => this.onMessage(m));
    this.conn.onDown((d) => this.onDown(d));
    this.initDone = this.init();
  }

  private async init(): Promise<void> {
    try {
      const s = await this.store.loadSyncState(this.id);
      this.identities.loaded(s.peers);
      this.seen = this.seqRequested = s.seq;
      for (const [treeId, ops] of s.outbox) this.outbox.add(treeId, ops);
    } catch (e) {
      this.initError = e instanceof Error ? e : new Error(String(e));
      this.setState({ status: 'error', reason: `cannot read the sync state: ${this.initError.message}` });
      return;
    }
    if (!this.disposed) this.conn.start();
  }

  // ---- public state ------------------------------------------------------------------------

  /** The store's layer id when the store is a layer of the space (the file): it holds what this layer receives. */
  get positionStore(): string | undefined {
    return this.store.id;
  }

  get state(): LayerConnectionState {
    return this.stateValue;
  }

  /** The highest server sequence this layer has seen (and stored or is storing). */
  get seq(): number {
    return this.seen;
  }

  /** Ops in the outbox (saved, not yet acknowledged by the server). */
  get outboxSize(): number {
    return this.outbox.size;
  }

  get stats(): Readonly<ServerLayerStats> {
    return { ...this.conn.stats, ...this.counters };
  }

  /**
   * Why the last write to the sync state store failed (disk full, file not writable…), until a
   * later write succeeds: the store writes a failed write's rows with its next one, so a success
   * means nothing is missing. While set, the state is `error` and what the server sent is not
   * (all) stored: a caller must not report the sync as done. Kept after `close()`.
   */
  get storeError(): string | undefined {
    return this.storeErrorValue;
  }

  /** The connection gave up (auth failure, unknown space) and waits for `retry()`. */
  get stopped(): boolean {
    return this.conn.status === 'failed' || this.initError !== undefined;
  }

  /**
   * While `stopped` by the server: the close code (4401 unauthorized, 4403 forbidden, 4404 unknown
   * space, 4426 unsupported version) or the HTTP status of a refused upgrade (401, 403, 426).
   */
  get stopCode(): number | undefined {
    return this.conn.status === 'failed' ? this.fatalCode : undefined;
  }

  /** While `stopped` by the server: why, as a typed reason (src/protocol/stopReasons.ts). */
  get stopReason(): StopReason | undefined {
    return stopReasonOf(this.stopCode);
  }

  /**
   * The first sync is still being tried: not caught up yet, and neither unreachable nor refused
   * for good (a dropped or busy connection is ridden out, see MAX_LOAD_RECONNECTS).
   */
  get firstSyncPending(): boolean {
    return !this.everReady && !this.everDown && !this.disposed && this.initError === undefined;
  }

  /** Connects now: after an auth error (e.g. a new token is in place) or to skip a backoff wait. */
  retry(): void {
    if (this.disposed) return;
    this.conn.retry();
  }

  private setState(s: LayerConnectionState): void {
    const prev = this.stateValue;
    const reason = (x: LayerConnectionState): string | undefined => ('reason' in x ? x.reason : undefined);
    if (prev.status === s.status && reason(prev) === reason(s)) return;
    this.stateValue = s;
    if (!this.disposed) this.stateEmitter.fire(s);
  }

  // ---- connection events -------------------------------------------------------------------

  private onWelcome(w: WelcomeMessage): void {
    // Another database behind the same URL (restored, replaced): its seqs mean other batches.
    if (this.serverId !== undefined && w.serverId !== this.serverId) this.seen = 0;
    this.serverId = w.serverId;
    this.offline = false;
    this.ready = false;
    this.syncedNow = false;
    this.catchUpOps = 0;
    this.refused.clear();
    this.refusedReason = undefined;
    this.setState({ status: 'syncing' });
    this.loadProgressed(true, 'connected, catching up');
    this.identities.welcomed(w.user, this.conn.peerIds[0]);
    this.syncEmitter.fire({ type: 'welcome', user: w.user, serverId: w.serverId, peerIds: this.conn.peerIds });
    this.conn.send({ type: 'subscribe', spaceId: this.spaceId, since: this.seen });
  }

  private onDown(d: ConnectionDown): void {
    this.ready = false;
    this.syncedNow = false;
    this.barrierRef = undefined;
    this.outbox.requeueInFlight();
    this.clearPause();
    // Secrets in flight go back to waiting; their saves resolve (kept in memory, sent on reconnect).
    for (const f of this.secretsInFlight.values()) {
      for (const r of f.records) if (secretWins(r, this.unsentSecrets.get(r.key))) this.unsentSecrets.set(r.key, r);
      for (const w of f.waiters) w();
    }
    this.secretsInFlight.clear();
    if (d.planned) {
      this.setState({ status: 'syncing' });
      return;
    }
    this.offline = true;
    this.fatalCode = d.fatal ? d.code : undefined;
    for (const w of this.downWaiters.splice(0)) w();
    this.setState(d.fatal ? { status: 'error', reason: d.reason } : { status: 'offline', reason: d.reason });
    if (this.everReady) return;
    // A server that is there but dropped or turned away this connection: loads wait for the next one.
    if (!d.fatal && d.transient && this.loadReconnects < MAX_LOAD_RECONNECTS) {
      this.loadReconnects++;
      this.loadProgressed(true, `reconnecting (${d.reason})`);
      return;
    }
    this.everDown = true;
    if (!d.fatal && d.transient && this.readyWaiters.length > 0) {
      this.failLoads(new ServerLoadError(`${this.label}: lost the connection ${this.loadReconnects + 1} times before the space was in: ${d.reason}`, 'RECONNECTS'));
      return;
    }
    // Loads do not wait for a server that is not there (or refused for good): they answer with what this layer has.
    this.releaseReadyWaiters();
  }

  private onMessage(m: ServerMessage): void {
    if (this.disposed) return;
    if (!this.everReady) this.loadProgressed(false, 'receiving');
    if ('spaceId' in m && m.spaceId !== undefined && m.spaceId !== this.spaceId) return;
    switch (m.type) {
      case 'ops':
        return this.onOps(m.treeId, m.ops, m.seq);
      case 'synced':
        return this.onSynced(m);
      case 'ack':
        return this.onAck(m.ref, m.seq);
      case 'secrets':
        return this.onSecrets(m.records);
      case 'error':
        return this.onError(m);
      case 'welcome':
        return;
      case 'peers':
        return void this.identities.received(m.peers).catch((e: unknown) => this.syncEmitter.fire({ type: 'store-error', message: `cannot keep who writes under which peer id: ${e instanceof Error ? e.message : String(e)}` }));
    }
  }

  private onOps(treeId: string, encoded: unknown[], seq: number): void {
    let ops: Op[];
    try {
      ops = decodeOps(encoded, treeId, `${this.label} (seq ${seq})`);
    } catch (e) {
      // Not stored, so the watermark stays before it: the next connection asks for it again.
      this.conn.abort(CloseCode.badMessage, `the server sent invalid ops: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    if (seq > this.seen) this.seen = seq;
    this.counters.opsReceived += ops.length;
    if (!this.ready) this.catchUpOps += ops.length;
    this.addToSv(treeId, ops);
    if (!this.store.loadOps && !this.handedOver.has(treeId)) {
      const cached = this.received.get(treeId);
      if (cached) for (const op of ops) cached.push(op);
      else this.received.set(treeId, [...ops]);
    }
    // Reported at once (in order: messages arrive in order), stored beside it: the ops and the
    // watermark go into the store in one durable write, so until that write lands the watermark
    // stays before them and a restart asks for them again; nothing shown is ever lost. Waiting for
    // the write before showing them cost every reader a file flush per batch on the path from a
    // teammate's keystroke to the screen. `received` still fires once they are stored.
    this.incomingEmitter.fire({ treeId, ops });
    const stored = this.storeIncoming(treeId, ops);
    this.pendingIncoming++;
    this.incomingChain = this.incomingChain
      .then(() => stored)
      .then(() => {
        this.pendingIncoming--;
        if (this.disposed) return;
        this.syncEmitter.fire({ type: 'received', treeId, ops: ops.length, seq });
        this.scheduleIdleCheck();
      });
  }

  /**
   * Hands ops and the current watermark to the store; never rejects (failures set `storeError`).
   * What arrives in one turn of the event loop goes to the store together (writeIncoming): one
   * call per tree, not one per batch — a client that fell behind (many readers in one process, a
   * catch-up) then catches up in a few writes instead of paying a store call per frame.
   */
  private storeIncoming(treeId: string, ops: readonly Op[]): Promise<void> {
    if (ops.length === 0 && this.seen <= this.seqRequested && !this.incomingWrite) return Promise.resolve();
    if (ops.length > 0) {
      const q = this.incomingQueue.get(treeId);
      if (q) q.push(ops);
      else this.incomingQueue.set(treeId, [ops]);
    }
    if (!this.incomingWrite) {
      let resolve!: () => void;
      const landed = new Promise<void>((r) => (resolve = r));
      this.incomingWrite = { landed, resolve };
      // Runs once per turn; close() waits for it (incomingChain).
      setImmediate(() => this.writeIncoming());
    }
    return this.incomingWrite.landed;
  }

  /**
   * The turn's incoming writes, per tree in arrival order; the watermark (everything seen so far,
   * all of it in these writes or earlier ones) goes with the last, so it never lands before the
   * ops it covers (the store applies calls in order).
   */
  private writeIncoming(): void {
    const w = this.incomingWrite;
    if (!w) return;
    this.incomingWrite = undefined;
    const trees = [...this.incomingQueue.entries()];
    this.incomingQueue.clear();
    if (trees.length === 0) trees.push([this.spaceId, []]);
    this.seqRequested = Math.max(this.seqRequested, this.seen);
    const seq = this.seen;
    const writes = trees.map(([treeId, batches], i) => {
      let ops: readonly Op[] = batches[0] ?? [];
      if (batches.length > 1) {
        const all: Op[] = [];
        for (const b of batches) for (const op of b) all.push(op);
        ops = all;
      }
      return this.store.saveIncoming(this.id, treeId, ops, i === trees.length - 1 ? seq : 0).then(
        () => this.storeSucceeded(),
        (e: unknown) => this.storeFailed('saveIncoming', e),
      );
    });
    void Promise.all(writes).then(w.resolve);
  }

  private storeSucceeded(): void {
    if (this.storeErrorValue === undefined) return;
    this.storeErrorValue = undefined;
    this.updateState();
  }

  /** A store write failed: kept as `storeError` (and the error state) until one succeeds. */
  private storeFailed(what: string, e: unknown): void {
    const message = `${what}: ${e instanceof Error ? e.message : String(e)}`;
    this.storeErrorValue = message;
    if (this.disposed) return;
    this.syncEmitter.fire({ type: 'store-error', message });
    this.updateState();
  }

  private onSynced(m: SyncedMessage): void {
    // The server's whole state as of this `synced` (what it sent before is included): it replaces
    // what this layer believed, which matters if the server lost data.
    const known = new Map<string, OpRangeSet>();
    for (const [treeId, ranges] of Object.entries(m.trees)) known.set(treeId, OpRangeSet.fromRanges(ranges));
    this.sv = known;
    this.syncedNow = true;
    this.role = m.role;
    if (m.seq > this.seen) this.seen = m.seq;
    void this.storeIncoming(this.spaceId, []);
    this.conn.markHealthy();
    for (const w of this.svWaiters.splice(0)) w();
    // What the server already has leaves the outbox without being sent again.
    for (const treeId of this.outbox.treeIds()) {
      const sv = known.get(treeId);
      if (!sv) continue;
      const have = this.outbox.ops(treeId).filter((op) => sv.hasOp(op));
      if (have.length) this.dropFromOutbox(treeId, have);
    }
    this.syncEmitter.fire({ type: 'synced', seq: m.seq, role: m.role, received: this.catchUpOps, outbox: this.outbox.size });
    // A barrier: the server answers it after everything sent before it (the secrets frame after
    // `synced` included). It also carries the secrets saved while offline.
    const records = [...this.unsentSecrets.values()];
    this.unsentSecrets.clear();
    const ref = this.nextRef++;
    this.barrierRef = ref;
    this.secretsInFlight.set(ref, { records, waiters: [] });
    this.conn.send({ type: 'secrets', spaceId: this.spaceId, records, ref });
    this.pump();
  }

  private onAck(ref: number, seq: number): void {
    if (seq > this.seen) this.seen = seq;
    const secrets = this.secretsInFlight.get(ref);
    if (secrets) {
      this.secretsInFlight.delete(ref);
      if (secrets.records.length) this.syncEmitter.fire({ type: 'secrets-acked', count: secrets.records.length });
      for (const w of secrets.waiters) w();
      void this.storeIncoming(this.spaceId, []);
      if (ref === this.barrierRef) this.becomeReady();
      this.scheduleIdleCheck();
      return;
    }
    const batch = this.outbox.settle(ref);
    if (batch) {
      this.addToSv(batch.treeId, batch.ops);
      this.counters.opsAcked += batch.ops.length;
      this.dropFromOutbox(batch.treeId, batch.ops);
      this.syncEmitter.fire({ type: 'acked', treeId: batch.treeId, ops: batch.ops.length, seq });
    }
    void this.storeIncoming(this.spaceId, []);
    this.pump();
    this.scheduleIdleCheck();
  }

  private becomeReady(): void {
    this.barrierRef = undefined;
    this.ready = true;
    this.everReady = true;
    this.releaseReadyWaiters();
    for (const w of this.readyListeners.splice(0)) w.resolve();
    this.updateState();
  }

  private releaseReadyWaiters(): void {
    this.stopLoadWatchdog();
    for (const w of this.readyWaiters.splice(0)) w.resolve();
  }

  private failLoads(e: Error): void {
    this.stopLoadWatchdog();
    for (const w of this.readyWaiters.splice(0)) w.reject(e);
  }

  /** The first sync moved on (a frame, a connection): the stall clock restarts; reported now or throttled. */
  private loadProgressed(now: boolean, what: string): void {
    if (this.everReady || this.disposed) return;
    if (this.loadWatchdog.running) this.loadWatchdog.reset();
    const at = Date.now();
    if (!now && at - this.progressReportedAt < LOAD_PROGRESS_EVERY_MS) return;
    this.progressReportedAt = at;
    const { bytesIn } = this.conn.stats;
    const ops = this.catchUpOps;
    const message = what === 'receiving' ? `receiving from ${this.label}: ${ops} ops (${formatBytes(bytesIn)})` : `${this.label}: ${what}`;
    this.progressEmitter.fire({ message, ops, bytes: bytesIn });
  }

  private stopLoadWatchdog(): void {
    this.loadWatchdog.stop();
  }

  private onSecrets(records: SecretRecord[]): void {
    const won = records.filter((r) => secretWins(r, this.secrets.get(r.key)));
    for (const r of won) {
      this.secrets.set(r.key, r);
      const unsent = this.unsentSecrets.get(r.key);
      if (unsent && !secretWins(unsent, r)) this.unsentSecrets.delete(r.key);
    }
    if (won.length === 0) return;
    this.incomingSecretsEmitter.fire(won);
    this.syncEmitter.fire({ type: 'secrets-received', count: won.length });
  }

  private onError(m: ErrorMessage): void {
    const ref = m.ref;
    if (ref !== undefined && this.secretsInFlight.has(ref)) {
      const f = this.secretsInFlight.get(ref) as SecretsInFlight;
      this.secretsInFlight.delete(ref);
      // Refused for what they are (`out-of-range`, `invalid`): an error, not sent again on this connection.
      const final = m.code !== 'forbidden' && m.code !== 'rate-limited' && m.code !== 'internal';
      if (final && f.records.length) this.refusedReason = `the server refused ${f.records.length} secrets (${m.code}): ${m.message}`;
      else for (const r of f.records) if (secretWins(r, this.unsentSecrets.get(r.key))) this.unsentSecrets.set(r.key, r);
      for (const w of f.waiters) w();
      if (f.records.length) this.syncEmitter.fire({ type: 'refused', code: m.code, message: m.message, ops: 0 });
      if (ref === this.barrierRef) this.becomeReady();
      if (m.code === 'forbidden' || final) this.updateState();
      return;
    }
    const batch = ref === undefined ? undefined : this.outbox.settle(ref);
    if (!batch) {
      // A refused subscription (unknown space, no access) or a general complaint.
      if (m.code === 'rate-limited') return this.pauseSending();
      if (m.code === 'forbidden' || m.code === 'not-found') {
        // Not retried until retry(): the token or the space has to change first.
        this.conn.fail(stopCodeOfRefusal(m.code), `${this.label}: ${m.message}`);
        return;
      }
      this.syncEmitter.fire({ type: 'refused', code: m.code, message: m.message, ops: 0 });
      return;
    }
    this.syncEmitter.fire({ type: 'refused', code: m.code, message: m.message, ops: batch.ops.length });
    switch (m.code) {
      case 'forbidden':
        // Kept: the user may get write access later.
        this.role = 'read';
        this.updateState();
        return;
      case 'rate-limited':
      case 'internal':
        return this.pauseSending();
      default:
        for (const op of batch.ops) this.refused.add(`${batch.treeId}/${opKey(op)}`);
        this.refusedReason = `the server refused ${this.refused.size} ops (${m.code}): ${m.message}`;
        this.updateState();
        this.pump();
    }
  }

  private pauseSending(): void {
    if (this.paused) return;
    this.paused = setTimeout(() => {
      this.paused = undefined;
      this.pump();
    }, this.timings.resendPauseMs);
  }

  private clearPause(): void {
    if (this.paused) clearTimeout(this.paused);
    this.paused = undefined;
  }

  /**
   * syncing (catch-up, then the outbox after a connect) → connected; live edits afterwards do not
   * flip it back. Errors while connected: read-only with ops waiting, ops the server refused.
   */
  private updateState(): void {
    if (this.disposed || !this.conn.isOpen) return;
    if (this.storeErrorValue !== undefined) {
      this.setState({ status: 'error', reason: `cannot store what the server sent: ${this.storeErrorValue}` });
      return;
    }
    if (this.role === 'read' && this.outbox.size > 0) {
      this.setState({ status: 'error', reason: `read-only: ${this.outbox.size} ops not sent` });
      return;
    }
    if (this.refusedReason) {
      this.setState({ status: 'error', reason: this.refusedReason });
      return;
    }
    if (!this.ready) {
      this.setState({ status: 'syncing' });
      return;
    }
    if (this.stateValue.status !== 'connected' && this.outbox.size > 0 && this.stateValue.status !== 'error') return;
    this.setState(this.outbox.size === 0 || this.stateValue.status === 'connected' ? { status: 'connected' } : { status: 'syncing' });
  }

  private addToSv(treeId: string, ops: readonly Op[]): void {
    if (!this.sv) return;
    let set = this.sv.get(treeId);
    if (!set) this.sv.set(treeId, (set = new OpRangeSet()));
    set.addOps(ops);
  }

  private dropFromOutbox(treeId: string, ops: readonly Op[]): void {
    const gone = this.outbox.remove(treeId, ops);
    if (gone.length === 0) return;
    if (this.undurable.size) for (const op of gone) this.undurable.delete(`${treeId}/${opKey(op)}`);
    this.store.removeFromOutbox(this.id, treeId, gone).then(
      () => this.storeSucceeded(),
      (e: unknown) => this.storeFailed('removeFromOutbox', e),
    );
  }

  // ---- sending -----------------------------------------------------------------------------

  /** Sends outbox batches while connected, synced, writable, and under the in-flight limit. */
  private pump(): void {
    if (this.disposed || !this.conn.isOpen || !this.syncedNow || this.role === undefined || this.paused) return;
    if (this.role === 'read') {
      this.updateState();
      return;
    }
    const allowed = new Set(this.conn.peerIds);
    const refused = this.refused;
    while (this.outbox.inFlightBatches < this.timings.maxInFlightBatches) {
      const ref = this.nextRef;
      const batch = this.outbox.take(ref, PROTOCOL_LIMITS.maxOpsPerBatch, MAX_BATCH_BYTES, allowed, refused.size ? (treeId, op) => refused.has(`${treeId}/${opKey(op)}`) : undefined);
      if (!batch) break;
      this.nextRef++;
      if (!this.conn.send({ type: 'ops', spaceId: this.spaceId, treeId: batch.treeId, ops: batch.encoded, ref })) {
        this.outbox.settle(ref);
        return;
      }
      this.counters.opsSent += batch.ops.length;
    }
    // Ops of peers this connection did not announce: reconnect announcing them (at most 16 per hello).
    if (this.outbox.inFlightBatches === 0 && this.outbox.waitingPeers().some((p) => !allowed.has(p))) {
      this.conn.reconnect('announcing the peer ids of ops to send', true);
      return;
    }
    this.updateState();
  }

  // ---- PersistenceLayer --------------------------------------------------------------------

  private assertOpen(op: string): void {
    if (this.closedForCalls) throw new LayerClosedError(this.id, op);
  }

  private checkTreeId(treeId: string): void {
    if (!isHexId(treeId)) throw new TypeError(`${this.label}: tree ids must be ${ID_RULES.hex}: ${JSON.stringify(treeId)}`);
  }

  /**
   * Waits for this layer's first sync as long as it makes progress (see the header); at once
   * when the server cannot be reached. Rejects (ServerLoadError) when it stalls.
   */
  private async waitForFirstSync(): Promise<void> {
    await this.initDone;
    if (this.initError) throw this.initError;
    if (this.everReady || this.everDown || this.disposed) return;
    await new Promise<void>((resolve, reject) => {
      if (!this.loadWatchdog.running) this.loadWatchdog.reset();
      this.readyWaiters.push({ resolve, reject });
    });
  }

  async listTrees(): Promise<string[]> {
    this.assertOpen('listTrees');
    await this.waitForFirstSync();
    const trees = new Set<string>();
    for (const [t, set] of this.sv ?? []) if (Object.keys(set.toRanges()).length) trees.add(t);
    for (const t of this.outbox.treeIds()) trees.add(t);
    for (const [t, ops] of this.received) if (ops.length) trees.add(t);
    return [...trees];
  }

  async loadTree(treeId: string): Promise<Op[]> {
    this.assertOpen('loadTree');
    this.checkTreeId(treeId);
    await this.waitForFirstSync();
    // concat, not push(...): a tree's ops can be millions, more than fit as call arguments.
    const stored = this.store.loadOps ? await this.store.loadOps(this.id, treeId) : [];
    const out = stored.concat(this.received.get(treeId) ?? [], this.outbox.ops(treeId));
    // From now on the caller gets this tree's news through onIncoming only.
    this.received.delete(treeId);
    this.handedOver.add(treeId);
    return sortAndDedupe(out);
  }

  async missingOps(treeId: string, ops: readonly Op[]): Promise<Op[]> {
    this.assertOpen('missingOps');
    this.pendingMissing++;
    try {
      await this.initDone;
      if (!this.sv && !this.disposed) await new Promise<void>((resolve) => this.svWaiters.push(resolve));
      if (this.disposed || !this.sv) return [];
      const sv = this.sv.get(treeId);
      return ops.filter((op) => !sv?.hasOp(op) && !this.outbox.has(treeId, op));
    } finally {
      this.pendingMissing--;
      this.scheduleIdleCheck();
    }
  }

  async saveOps(treeId: string, ops: readonly Op[]): Promise<void> {
    this.assertOpen('saveOps');
    this.checkTreeId(treeId);
    validateOps(ops, treeId, `saveOps to ${this.label}`);
    if (ops.length === 0) return;
    // Copied before the first await: the caller may change its objects as soon as this returns.
    const mine = ops.map(copyOp);
    this.pendingSaves++;
    try {
      await this.initDone;
      if (this.initError) throw this.initError;
      const sv = this.sv?.get(treeId);
      const fresh: Op[] = [];
      // An op already in the outbox whose outbox write failed is written again (a retry of this call).
      for (const op of mine) if (!sv?.hasOp(op) && (!this.outbox.has(treeId, op) || this.undurable.has(`${treeId}/${opKey(op)}`))) fresh.push(op);
      // In op id order (deduplicated): batches then go out, and are acked, with counters rising,
      // which every state vector (here and on the server) adds in O(1) per op.
      sortAndDedupe(fresh);
      if (fresh.length === 0) return;
      // Sent before the write lands (as Yjs does): on a busy store (one SQL worker shared by many
      // files) a teammate otherwise waits for this file's flush. Nothing acknowledged is lost:
      // the write is handed to the store first, and the store applies calls in order (a failed
      // write's rows go with the next one), so the watermark that an `ack` advances is never
      // durable before these ops are; after a crash before it lands, the next run subscribes from
      // before their ack and the server sends them back (docs/sync-client.md, "Outgoing").
      const written = this.store.addToOutbox(this.id, treeId, fresh);
      for (const op of fresh) this.undurable.add(`${treeId}/${opKey(op)}`);
      this.outbox.add(treeId, fresh);
      this.pump();
      try {
        await written;
      } catch (e) {
        this.storeFailed('addToOutbox', e);
        throw e;
      }
      for (const op of fresh) this.undurable.delete(`${treeId}/${opKey(op)}`);
      this.storeSucceeded();
    } finally {
      this.pendingSaves--;
      this.scheduleIdleCheck();
    }
  }

  async loadSecrets(): Promise<SecretRecord[]> {
    this.assertOpen('loadSecrets');
    await this.waitForFirstSync();
    return [...this.secrets.values()];
  }

  /**
   * Resolves once the server acknowledged the records, or at once while offline or read-only
   * (then they wait in memory and go out on the next connect; the file layer keeps them durably).
   */
  async saveSecrets(records: readonly SecretRecord[]): Promise<void> {
    this.assertOpen('saveSecrets');
    validateSecretRecords(records, `saveSecrets to ${this.label}`);
    if (records.length === 0) return;
    await this.waitForFirstSync();
    const won: SecretRecord[] = [];
    for (const r of records) {
      const c = { key: r.key, value: r.value, time: r.time, peerId: r.peerId };
      if (!secretWins(c, this.secrets.get(c.key))) continue;
      this.secrets.set(c.key, c);
      won.push(c);
    }
    if (won.length === 0) return;
    if (!this.ready || this.role === 'read' || !this.conn.isOpen) {
      for (const r of won) if (secretWins(r, this.unsentSecrets.get(r.key))) this.unsentSecrets.set(r.key, r);
      this.updateState();
      return;
    }
    const ref = this.nextRef++;
    await new Promise<void>((resolve) => {
      this.secretsInFlight.set(ref, { records: won, waiters: [resolve] });
      if (!this.conn.send({ type: 'secrets', spaceId: this.spaceId, records: won, ref })) {
        this.secretsInFlight.delete(ref);
        for (const r of won) this.unsentSecrets.set(r.key, r);
        resolve();
      }
    });
  }

  // ---- waiting -----------------------------------------------------------------------------

  /**
   * Resolves when this layer is caught up and has nothing left to send: connected and synced,
   * outbox empty, no secrets waiting, every received batch stored and reported. Rejects when the
   * layer is closed first. It does not time out (the caller bounds it).
   */
  whenIdle(): Promise<void> {
    if (this.closedForCalls) return Promise.reject(new LayerClosedError(this.id, 'whenIdle'));
    return new Promise((resolve, reject) => {
      this.idleWaiters.push({ resolve, reject });
      this.scheduleIdleCheck();
    });
  }

  /**
   * Resolves when a connection is caught up (`synced` and the round trip behind it), now or
   * later; rejects when the layer is closed first. It does not time out (the caller bounds it).
   */
  whenReady(): Promise<void> {
    if (this.closedForCalls) return Promise.reject(new LayerClosedError(this.id, 'whenReady'));
    if (this.ready) return Promise.resolve();
    return new Promise((resolve, reject) => this.readyListeners.push({ resolve, reject }));
  }

  /**
   * Waits until everything the server had stored when this was called has been received and
   * stored (a round trip behind the stream); bounded by `loadTimeoutMs` while not connected.
   */
  async refresh(): Promise<void> {
    this.assertOpen('refresh');
    await this.waitForFirstSync();
    if (this.ready && this.conn.isOpen) {
      const ref = this.nextRef++;
      await new Promise<void>((resolve) => {
        this.secretsInFlight.set(ref, { records: [], waiters: [resolve] });
        if (!this.conn.send({ type: 'secrets', spaceId: this.spaceId, records: [], ref })) {
          this.secretsInFlight.delete(ref);
          resolve();
        }
      });
    }
    await this.incomingChain;
  }

  private isIdle(): boolean {
    return (
      this.ready &&
      this.conn.isOpen &&
      this.outbox.size === 0 &&
      this.unsentSecrets.size === 0 &&
      this.secretsInFlight.size === 0 &&
      this.pendingIncoming === 0 &&
      this.pendingSaves === 0 &&
      this.pendingMissing === 0
    );
  }

  /** Checks idleness after the current tick (so that a missingOps answer reaches saveOps first). */
  private scheduleIdleCheck(): void {
    if (this.idleCheck || this.disposed || this.idleWaiters.length === 0) return;
    this.idleCheck = setImmediate(() => {
      this.idleCheck = undefined;
      if (this.isIdle()) for (const w of this.idleWaiters.splice(0)) w.resolve();
    });
  }

  // ---- close -------------------------------------------------------------------------------

  /**
   * Waits (at most `closeTimeoutMs`) for the outbox to drain while connected, stores what is
   * still arriving, then closes the socket (1000) and clears every timer. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.closedForCalls = true;
    await this.initDone;
    const work = this.outbox.size > 0 || this.secretsInFlight.size > 0 || this.unsentSecrets.size > 0 || this.pendingSaves > 0;
    const reachable = !this.offline && this.conn.status !== 'failed' && this.conn.status !== 'closed';
    if (work && reachable && this.role !== 'read' && !this.initError) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve, reject) => {
          this.idleWaiters.push({ resolve, reject });
          this.scheduleIdleCheck();
        }).catch(() => undefined),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, this.timings.closeTimeoutMs))),
        new Promise<void>((resolve) => this.downWaiters.push(resolve)),
      ]);
      clearTimeout(timer);
    }
    this.disposed = true;
    this.downWaiters = [];
    this.conn.close();
    this.clearPause();
    if (this.idleCheck) clearImmediate(this.idleCheck);
    this.idleCheck = undefined;
    await this.incomingChain;
    for (const w of this.idleWaiters.splice(0)) w.reject(new LayerClosedError(this.id, 'whenIdle'));
    for (const w of this.readyListeners.splice(0)) w.reject(new LayerClosedError(this.id, 'whenReady'));
    for (const w of this.svWaiters.splice(0)) w();
    this.releaseReadyWaiters();
    for (const f of this.secretsInFlight.values()) for (const w of f.waiters) w();
    this.secretsInFlight.clear();
    this.incomingEmitter.dispose();
    this.incomingSecretsEmitter.dispose();
    this.stateEmitter.dispose();
    this.syncEmitter.dispose();
    this.progressEmitter.dispose();
    this.identities.dispose();
  }
}

function formatBytes(n: number): string {
  return n < 1024 * 1024 ? `${(n / 1024).toFixed(0)} KiB` : `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

/** For tests and tools: the encoded size of an op as sent. */
export function encodedOpBytes(op: Op): number {
  return JSON.stringify(encodeOp(op)).length;
}
