/**
 * SpaceHost: one loaded space on the server.
 *
 * - Joins are served from storage: catch-up frames are the stored batches' JSON, encoded once and
 *   shared (frameCache.ts); no tree is built for them. The server holds a merged copy of the
 *   space tree only (opened with its SpaceManager over a SqlitePersistenceLayer: the space's
 *   name); app trees are stored and relayed, never built, so a space of 100 000 ops costs its
 *   state vectors, not a CRDT, and a join storm never waits for a tree being built.
 * - Per tree, an `OpRangeSet` state vector of what is stored (sent in `synced.trees`), which is
 *   also where admission (admission.ts) takes each tree's clock from.
 * - Subscribers, each with a position `sentSeq` in the space's batch sequence: a subscription
 *   catches up from the store (one coalesced frame at a time, sent only while the socket is under
 *   its low-water mark; frames encoded once and shared through the catch-up cache) and then goes
 *   live; a live subscriber whose socket is over its high-water mark goes back to catching up
 *   from the store, so a slow reader never makes the server queue more than the high-water mark
 *   plus one frame for it, and readers at the same position share the same bytes.
 * - Every write goes through the space's WriteQueue (see writeQueue.ts): commit, then update the
 *   state vectors, hand the ops to the SpaceManager, fan out, acknowledge.
 *
 * Ordering guarantee per socket: everything a client is sent for a space (ops, acks) is in seq
 * order, so the highest seq a client has seen in `ops`, `ack` or `synced` is a safe resume point.
 * The ack of a client's own batch therefore takes that batch's place in its stream.
 */
import type { SecretRecord } from '../persistence/contract';
import { CloseCode, PROTOCOL_LIMITS, type ErrorCode, type Role, type StateVectorRanges } from '../protocol/messages';
import { OpRangeSet } from '../spaces/opRanges';
import type { Op } from '../spaces/ops';
import type { Space } from '../spaces/space';
import type { SpaceManager } from '../spaces/spaceManager';
import type { CachedFrame, CatchUpCache } from './frameCache';
import { DEFAULT_ADMISSION_LIMITS, TreeClocks, checkCounters, checkSecretTimes, type AdmissionLimits } from './admission';
import { ackFrame, opsFrame, secretsFrame, syncedFrame } from './frames';
import { IDENTITY_LIMITS, peersFrames } from './identity';
import { errorText, type Logger } from './log';
import type { Metrics } from './metrics';
import { StoreUnavailableError, type AppendResult, type BatchInput, type BatchWriter, type SpaceStore } from './store/spaceStore';
import { decodeOps } from '../spaces/opCodec';
import { canWrite } from './store/tokenStore';
import { SqlitePersistenceLayer, type LayerWriter } from './store/sqliteLayer';
import { WriteQueue } from './writeQueue';

/**
 * A catch-up frame never passes a multiple of this many seqs, so catch-ups that started at any
 * seq send the same frames from the next multiple on (and share them, see frameCache.ts).
 */
const FRAME_ALIGN_SEQS = 256;
/**
 * Consecutive batches of one tree are sent as one `ops` frame up to this many bytes of ops.
 * Kept under the default low-water mark's distance to the high-water mark, so catch-up alone
 * does not make a socket congested.
 */
const COALESCE_BYTES = 256 * 1024;
/** Batches read per query when applying other processes' batches. */
const REMOTE_PAGE = 256;

/** The first multiple of FRAME_ALIGN_SEQS after `seq`. */
function nextAlignedSeq(seq: number): number {
  return (Math.floor(seq / FRAME_ALIGN_SEQS) + 1) * FRAME_ALIGN_SEQS;
}

/** What a host needs of a client connection. */
export interface Subscriber {
  readonly id: number;
  /** The token's user (peer ids are bound to it) and the peer id the client writes as. */
  readonly user: string | undefined;
  readonly ownPeer: string | undefined;
  /**
   * Sends one frame carrying `ops` ops; does nothing once the connection is closed. A Buffer is
   * sent as it is (never copied), so one Buffer can go to many sockets.
   */
  send(frame: string | Buffer, ops?: number): void;
  sendError(code: ErrorCode, message: string, spaceId?: string, ref?: number): void;
  /** The outgoing buffer is over its high-water mark: stop sending it live batches. */
  readonly congested: boolean;
  /** The outgoing buffer is at or under its low-water mark: catch-up may send another frame. */
  readonly wantsMore: boolean;
  /** Resolves when the outgoing buffer is under its low-water mark or the connection closed. */
  drained(): Promise<void>;
  readonly isClosed: boolean;
  /** Closes the connection after a server fault (default code: internalError). */
  fail(reason: string, code?: number): void;
}

interface PendingAck {
  readonly seq: number;
  readonly ref: number;
  /** The ack of the subscriber's own batch `seq` (sent in place of that batch). */
  readonly own: boolean;
}

export class Subscription {
  /** Everything up to `sentSeq` has been sent (or acknowledged) to this subscriber. */
  sentSeq: number;
  /** Caught up: new batches are sent as they commit. */
  live = false;
  syncedSent = false;
  pumping = false;
  closed = false;
  /** Acks waiting for their place in the stream while not live; seqs never decrease. */
  readonly pendingAcks: PendingAck[] = [];

  constructor(
    readonly host: SpaceHost,
    readonly sink: Subscriber,
    readonly role: Role,
    since: number,
  ) {
    this.sentSeq = since;
  }
}

interface JobBase {
  /** The connection that sent it (undefined: the server's own SpaceManager). */
  readonly origin?: Subscriber;
  readonly ref?: number;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}
interface OpsJob extends JobBase {
  readonly kind: 'ops';
  readonly treeId: string;
  readonly ops: readonly Op[];
}
interface SecretsJob extends JobBase {
  readonly kind: 'secrets';
  readonly records: readonly SecretRecord[];
}
/** Batches committed elsewhere (another process): apply and fan out what the store has past our seq. */
interface RemoteJob extends JobBase {
  readonly kind: 'remote';
  /** When the notice came (performance.now()), for the fan-out lag. */
  readonly noticedAt: number;
}
type Job = OpsJob | SecretsJob | RemoteJob;

export interface HostContext {
  readonly store: SpaceStore;
  readonly manager: SpaceManager;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Encoded catch-up frames, shared by the subscribers at the same seq (server-wide). */
  readonly catchUpCache: CatchUpCache;
  /** Bounds on client counters and secret times (admission.ts); default DEFAULT_ADMISSION_LIMITS. */
  readonly admission?: AdmissionLimits;
}

export class SpaceNotFoundError extends Error {
  constructor(spaceId: string) {
    super(`no space ${spaceId}`);
    this.name = 'SpaceNotFoundError';
  }
}

export class SpaceHost implements LayerWriter {
  private trees = new Map<string, OpRangeSet>();
  private lastSeq = 0;
  private name = '';
  private readonly subs = new Map<Subscriber, Subscription>();
  private readonly queue = new WriteQueue<Job>((group) => this.runGroup(group));
  private readonly layer: SqlitePersistenceLayer;
  private space: Space | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly admission: AdmissionLimits;
  private readonly clocks: TreeClocks;
  /** Peer ids no client may write under: the server's own. */
  private readonly reservedPeers: ReadonlySet<string>;
  /** Catch-up frames being read from the store, by `start:limit` (buildShared). */
  private readonly building = new Map<string, Promise<CachedFrame | undefined>>();
  /** A remote job is queued (one at a time: it reads everything past our seq). */
  private remoteQueued = false;
  /** The highest seq the fan-out bus announced. */
  private noticedSeq = 0;

  constructor(
    readonly spaceId: string,
    private readonly ctx: HostContext,
  ) {
    this.layer = new SqlitePersistenceLayer(ctx.store, spaceId, { writer: this });
    this.admission = ctx.admission ?? DEFAULT_ADMISSION_LIMITS;
    this.clocks = new TreeClocks((treeId) => this.trees.get(treeId));
    this.reservedPeers = new Set([ctx.manager.peerId]);
  }

  get subscriberCount(): number {
    return this.subs.size;
  }

  get seq(): number {
    return this.lastSeq;
  }

  /** Reads the state vectors and opens the space tree with the SpaceManager; then writes may run. */
  async load(): Promise<void> {
    const info = await this.ctx.store.getSpace(this.spaceId);
    if (!info) throw new SpaceNotFoundError(this.spaceId);
    this.name = info.name;
    this.lastSeq = info.lastSeq;
    this.trees = await this.ctx.store.stateVectors(this.spaceId);
    this.space = await this.ctx.manager.open(this.spaceId, [this.layer]);
    this.queue.start();
  }

  // ---- subscriptions -----------------------------------------------------------

  /**
   * Starts sending `sink` every batch after `since`, then `synced`, then secrets. A `since` past
   * the space's seq (the client knew another database) starts from 0.
   */
  subscribe(sink: Subscriber, role: Role, since: number): Subscription {
    const sub = new Subscription(this, sink, role, since > this.lastSeq ? 0 : since);
    const previous = this.subs.get(sink);
    if (previous) {
      // A second subscribe restarts the stream; acks still waiting keep their place in it.
      previous.closed = true;
      for (const ack of previous.pendingAcks.splice(0)) sub.pendingAcks.push(ack);
    }
    this.subs.set(sink, sub);
    if (canWrite(role)) void this.bindOwnPeer(sink);
    void this.pump(sub);
    return sub;
  }

  /**
   * A writer's own peer id belongs to its user in this space from its first subscribe on, so no
   * other user can take it over before its first write.
   */
  private async bindOwnPeer(sink: Subscriber): Promise<void> {
    const { user, ownPeer } = sink;
    if (user === undefined || ownPeer === undefined || this.reservedPeers.has(ownPeer)) return;
    try {
      const known = (await this.ctx.store.peerOwner(this.spaceId, ownPeer)) !== undefined;
      const owner = await this.ctx.store.bindPeer(this.spaceId, ownPeer, user);
      if (owner !== user) this.ctx.logger.info('peer id bound to another user', { spaceId: this.spaceId, conn: sink.id, peer: ownPeer });
      // A new binding: the others learn who writes under it (src/server/identity.ts).
      else if (!known) for (const f of peersFrames(this.spaceId, [[ownPeer, user]])) for (const other of this.subs.values()) if (other.sink !== sink && other.syncedSent) other.sink.send(f);
    } catch (e) {
      // Not fatal: the binding is made by the first write as well.
      this.ctx.logger.warn('cannot bind a peer id', { spaceId: this.spaceId, conn: sink.id, error: errorText(e) });
    }
  }

  /** Ends a subscription; acks still waiting for their place are sent now. */
  unsubscribe(sub: Subscription): void {
    sub.closed = true;
    if (this.subs.get(sub.sink) !== sub) return;
    this.subs.delete(sub.sink);
    for (const a of sub.pendingAcks.splice(0)) sub.sink.send(ackFrame(this.spaceId, a.ref, a.seq));
  }

  /**
   * Catch-up: sends stored batches after `sub.sentSeq`, one frame at a time and only while the
   * socket is under its low-water mark, then goes live.
   */
  private async pump(sub: Subscription): Promise<void> {
    if (sub.pumping) return;
    sub.pumping = true;
    try {
      while (!sub.closed && !sub.sink.isClosed && !this.closed) {
        if (!sub.sink.wantsMore) {
          await sub.sink.drained();
          continue;
        }
        if (!(await this.sendNextFrame(sub))) {
          this.goLive(sub);
          return;
        }
        // SQLite reads are synchronous: let other sockets and requests in between frames.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } catch (e) {
      if (!sub.closed && !this.closed) {
        this.ctx.metrics.fault('catch-up');
        this.ctx.logger.error('catch-up failed', { spaceId: this.spaceId, conn: sub.sink.id, error: errorText(e) });
        sub.sink.fail('the server could not read the space');
      }
    } finally {
      sub.pumping = false;
    }
  }

  /**
   * Sends the next step of a catch-up: the ack of the subscriber's own batch when that is next in
   * its stream, else one `ops` frame (shared through the catch-up cache). False when nothing is
   * stored after `sub.sentSeq`.
   */
  private async sendNextFrame(sub: Subscription): Promise<boolean> {
    this.sendDueAcks(sub);
    const start = sub.sentSeq;
    const head = sub.pendingAcks[0];
    if (head?.own && head.seq === start + 1) {
      sub.pendingAcks.shift();
      sub.sink.send(ackFrame(this.spaceId, head.ref, head.seq));
      sub.sentSeq = head.seq;
      this.sendDueAcks(sub);
      return true;
    }
    if (start >= this.lastSeq) return false; // caught up (every stored batch went through this host)
    // The frame must stop before the subscriber's own batch (its ack takes that place).
    const cut = head?.own ? head.seq - 1 : Infinity;
    const cache = this.ctx.catchUpCache;
    let f = cache.get(this.spaceId, start);
    if (!f || f.end > cut) {
      // Never past the host's seq: a batch committed but not yet applied is sent by its fan-out.
      const limit = Math.min(nextAlignedSeq(start), cut, this.lastSeq);
      const built = await this.buildShared(start, limit);
      if (sub.closed) return true; // the pump's loop ends on it
      if (!built) return false;
      f = built;
      // A frame cut short by an own ack is this subscriber's; any other is the frame at `start`.
      if (!(built.end === limit && limit === cut)) cache.put(this.spaceId, start, built);
    }
    sub.sink.send(f.frame, f.nOps);
    sub.sentSeq = f.end;
    this.sendDueAcks(sub);
    return true;
  }

  /**
   * The `ops` frame of the stored batches after `start`, up to seq `limit`: consecutive batches of
   * one tree, within the op and byte budget (a single batch over the budget is a frame alone).
   * Frames depend only on (space, start), so subscribers at the same seq share them; and since
   * `limit` never passes the next multiple of FRAME_ALIGN_SEQS, subscribers that started at other
   * seqs reach the same frame boundaries there. Undefined when nothing is stored after `start`.
   */
  /**
   * buildFrame, shared by the subscribers that ask for the same frame while it is being read: a
   * store read is async (PostgreSQL), so a join storm would otherwise read the same frame once per
   * subscriber before the first copy reached the cache.
   */
  private buildShared(start: number, limit: number): Promise<CachedFrame | undefined> {
    const key = `${start}:${limit}`;
    let p = this.building.get(key);
    if (!p) {
      p = this.buildFrame(start, limit).finally(() => this.building.delete(key));
      this.building.set(key, p);
    }
    return p;
  }

  private async buildFrame(start: number, limit: number): Promise<CachedFrame | undefined> {
    let treeId = '';
    const parts: string[] = [];
    let nOps = 0;
    let bytes = 0;
    let end = start;
    await this.ctx.store.readBatches(this.spaceId, start, Math.max(1, limit - start), (b) => {
      if (b.seq > limit) return false;
      if (parts.length > 0 && (b.treeId !== treeId || nOps + b.nOps > PROTOCOL_LIMITS.maxOpsPerBatch || bytes + b.opsJson.length > COALESCE_BYTES)) return false;
      treeId = b.treeId;
      parts.push(b.opsJson);
      nOps += b.nOps;
      bytes += b.opsJson.length;
      end = b.seq;
      return true;
    });
    if (parts.length === 0) return undefined;
    return { frame: Buffer.from(opsFrame(this.spaceId, treeId, parts, end)), end, nOps };
  }

  /** Sends the acks whose place in the stream has been reached. */
  private sendDueAcks(sub: Subscription): void {
    while (sub.pendingAcks.length > 0 && sub.pendingAcks[0].seq <= sub.sentSeq) {
      const a = sub.pendingAcks.shift() as PendingAck;
      sub.sink.send(ackFrame(this.spaceId, a.ref, a.own ? a.seq : sub.sentSeq));
    }
  }

  private goLive(sub: Subscription): void {
    sub.live = true;
    this.sendDueAcks(sub);
    if (sub.syncedSent) return;
    sub.syncedSent = true;
    sub.sink.send(syncedFrame(this.spaceId, sub.sentSeq, sub.role, this.stateVectorRanges()));
    void this.sendStoredSecretsAndPeers(sub);
  }

  private async sendStoredSecretsAndPeers(sub: Subscription): Promise<void> {
    try {
      const secrets = await this.ctx.store.loadSecrets(this.spaceId);
      if (secrets.length > 0 && !sub.closed) sub.sink.send(secretsFrame(this.spaceId, secrets));
      const peers = await this.ctx.store.peerUsers(this.spaceId, IDENTITY_LIMITS.maxPeersPerSpace);
      if (!sub.closed) for (const f of peersFrames(this.spaceId, peers)) sub.sink.send(f);
    } catch (e) {
      this.ctx.logger.error('cannot read the secrets or peers', { spaceId: this.spaceId, conn: sub.sink.id, error: errorText(e) });
      sub.sink.fail('the server could not read the space');
    }
  }

  stateVectorRanges(): Record<string, StateVectorRanges> {
    const out: Record<string, StateVectorRanges> = {};
    for (const [treeId, set] of this.trees) out[treeId] = set.toRanges();
    return out;
  }

  // ---- writes ------------------------------------------------------------------------

  /** Queues a validated client batch; resolves once it is stored and acknowledged. */
  enqueueOps(treeId: string, ops: readonly Op[], origin?: Subscriber, ref?: number): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`space ${this.spaceId} is closed`));
    return new Promise((resolve, reject) => this.queue.push({ kind: 'ops', treeId, ops, origin, ref, resolve, reject }));
  }

  /** Queues validated secret records; resolves once they are merged, stored and acknowledged. */
  enqueueSecrets(records: readonly SecretRecord[], origin?: Subscriber, ref?: number): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`space ${this.spaceId} is closed`));
    return new Promise((resolve, reject) => this.queue.push({ kind: 'secrets', records, origin, ref, resolve, reject }));
  }

  /** LayerWriter: the SpaceManager's own ops (e.g. none today; a server-side app later). */
  appendOps(treeId: string, ops: readonly Op[]): Promise<void> {
    return this.enqueueOps(treeId, ops);
  }

  mergeSecrets(records: readonly SecretRecord[]): Promise<void> {
    return this.enqueueSecrets(records);
  }

  /** Runs one group of the write queue; never throws (failures are reported to the jobs). */
  private async runGroup(group: Job[]): Promise<void> {
    let touchedRefs = false;
    for (let i = 0; i < group.length; ) {
      const job = group[i];
      if (job.kind === 'secrets') {
        await this.commitSecrets(job);
        i++;
        continue;
      }
      if (job.kind === 'remote') {
        if (await this.runRemote(job)) touchedRefs = true;
        i++;
        continue;
      }
      let j = i;
      while (j < group.length && group[j].kind === 'ops') j++;
      if (await this.commitOps(group.slice(i, j) as OpsJob[])) touchedRefs = true;
      i = j;
    }
    if (touchedRefs) this.afterTreeChanges();
  }

  /** Commits consecutive ops jobs in one transaction; true when a tree the host tracks changed. */
  private async commitOps(group: OpsJob[]): Promise<boolean> {
    const admitted = this.admitOps(group);
    const jobs = admitted.map((a) => a.job);
    const inputs = admitted.map((a) => a.input);
    let results: AppendResult[];
    if (inputs.every((b) => b.ops.length === 0)) {
      results = inputs.map(() => ({ seq: undefined, fresh: [], opsJson: undefined }));
    } else {
      const t0 = performance.now();
      try {
        results = await this.ctx.store.appendBatches(this.spaceId, inputs);
      } catch (e) {
        this.failJobs(jobs, e);
        return false;
      }
      this.ctx.metrics.commits++;
      this.ctx.metrics.commitSeconds += (performance.now() - t0) / 1000;
    }
    let touched = false;
    // Seqs other processes took since our last: theirs go out first, so every stream stays in seq order.
    const first = results.find((r) => r.seq !== undefined)?.seq;
    if (first !== undefined && first > this.lastSeq + 1) {
      try {
        touched = await this.applyRemote(first - 1);
      } catch (e) {
        // Stored, but not in order yet: the next catch-up sends them; the clients resend and get acks.
        this.failJobs(jobs, e);
        return touched;
      }
    }
    jobs.forEach((job, k) => {
      const r = results[k];
      if (r.refused) return this.refuse(job, r.refused.code, r.refused.message);
      try {
        if (r.seq !== undefined && r.opsJson !== undefined) {
          this.applyStored(job, r.seq, r.fresh, r.opsJson);
          if (job.treeId === this.spaceId) touched = true;
        } else {
          this.ackPosition(job.origin, job.ref);
        }
      } catch (e) {
        this.ctx.metrics.fault('fan-out');
        this.ctx.logger.error('fan-out failed', { spaceId: this.spaceId, seq: r.seq, error: errorText(e) });
      }
      job.resolve();
    });
    return touched;
  }

  /**
   * The jobs to store, each with its ops the tree lacks and its writer. A client's batch whose
   * counters jump too far (admission.ts) is refused here, whole, and left out.
   */
  private admitOps(jobs: readonly OpsJob[]): Array<{ job: OpsJob; input: BatchInput }> {
    const gap = this.admission.maxCounterGap;
    // Clocks as they will be once the earlier jobs of the group are stored.
    const ahead = new Map<string, number>();
    const out: Array<{ job: OpsJob; input: BatchInput }> = [];
    for (const job of jobs) {
      const known = this.trees.get(job.treeId);
      const ops = known ? job.ops.filter((op) => !known.hasOp(op)) : job.ops;
      if (job.origin && ops.length > 0) {
        const r = checkCounters(ahead.get(job.treeId) ?? this.clocks.get(job.treeId), ops, gap);
        if (!r.ok) {
          this.refuse(job, 'out-of-range', r.message);
          continue;
        }
        ahead.set(job.treeId, r.clock);
      }
      // A client's ops go to the store whole: one it has under the same id must be identical (conflict otherwise).
      out.push({ job, input: job.origin ? { treeId: job.treeId, ops: job.ops, writer: this.writerOf(job.origin) } : { treeId: job.treeId, ops } });
    }
    return out;
  }

  private writerOf(origin: Subscriber): BatchWriter {
    // A connection writes only after hello, so it has a user; without one it binds nothing.
    return { user: origin.user ?? '', ownPeer: origin.user === undefined ? undefined : origin.ownPeer, reservedPeers: this.reservedPeers };
  }

  /** Answers a refused write with `code` (the server's own write is rejected); nothing of it was stored. */
  private refuse(job: Job, code: ErrorCode, message: string): void {
    this.ctx.logger.info('write refused', { spaceId: this.spaceId, conn: job.origin?.id, code, message });
    if (!job.origin) return job.reject(new Error(`space ${this.spaceId}: ${message}`));
    if (job.ref !== undefined) job.origin.sendError(code, message, this.spaceId, job.ref);
    job.resolve();
  }

  private applyStored(job: OpsJob, seq: number, fresh: readonly Op[], opsJson: string): void {
    this.lastSeq = seq;
    this.clocks.advance(job.treeId, fresh);
    let set = this.trees.get(job.treeId);
    if (!set) this.trees.set(job.treeId, (set = new OpRangeSet()));
    set.addOps(fresh);
    this.ctx.metrics.batchesStored++;
    this.ctx.metrics.opsStored += fresh.length;
    // The SpaceManager merges what clients wrote to the space tree (its own ops are in it
    // already); app trees are not built on the server.
    if (job.origin && job.treeId === this.spaceId) this.layer.deliver(job.treeId, fresh);
    this.fanOut(seq, job.treeId, opsJson, fresh.length, job.origin, job.ref);
  }

  private fanOut(seq: number, treeId: string, opsJson: string, nOps: number, origin: Subscriber | undefined, ref: number | undefined): void {
    let frame: Buffer | undefined;
    for (const sub of this.subs.values()) {
      if (sub.sink === origin) {
        if (ref === undefined) continue;
        if (sub.live) {
          sub.sentSeq = seq;
          sub.sink.send(ackFrame(this.spaceId, ref, seq));
        } else {
          sub.pendingAcks.push({ seq, ref, own: true });
        }
        continue;
      }
      if (!sub.live) continue; // catching up: it reads this batch from the store
      if (sub.sink.congested) {
        sub.live = false;
        this.ctx.metrics.subscribersBehind++;
        void this.pump(sub);
        continue;
      }
      // Encoded once: every live subscriber's socket gets the same Buffer (no copy per socket).
      frame ??= Buffer.from(opsFrame(this.spaceId, treeId, [opsJson], seq));
      sub.sink.send(frame, nOps);
      sub.sentSeq = seq;
    }
    if (origin && ref !== undefined && !this.subs.has(origin)) origin.send(ackFrame(this.spaceId, ref, seq));
  }

  /**
   * Acknowledges a request that stored no batch (duplicates, secrets) with the position the
   * client has reached in this space's stream (the space's seq when it is not subscribed).
   */
  private ackPosition(origin: Subscriber | undefined, ref: number | undefined): void {
    if (!origin || ref === undefined) return;
    const sub = this.subs.get(origin);
    if (!sub) {
      origin.send(ackFrame(this.spaceId, ref, this.lastSeq));
      return;
    }
    const last = sub.pendingAcks[sub.pendingAcks.length - 1];
    if (sub.live || !last) {
      origin.send(ackFrame(this.spaceId, ref, sub.sentSeq));
      return;
    }
    sub.pendingAcks.push({ seq: last.seq, ref, own: false });
  }

  private async commitSecrets(job: SecretsJob): Promise<void> {
    const tooLate = job.origin ? checkSecretTimes(job.records, Date.now(), this.admission.maxSecretSkewMs) : undefined;
    if (tooLate) return this.refuse(job, 'out-of-range', tooLate);
    let won: SecretRecord[];
    try {
      won = await this.ctx.store.mergeSecrets(this.spaceId, job.records);
    } catch (e) {
      this.failJobs([job], e);
      return;
    }
    try {
      if (won.length > 0) {
        if (job.origin) this.layer.deliverSecrets(won);
        const frame = secretsFrame(this.spaceId, won);
        for (const sub of this.subs.values()) if (sub.sink !== job.origin && sub.syncedSent) sub.sink.send(frame);
      }
      this.ackPosition(job.origin, job.ref);
    } catch (e) {
      this.ctx.metrics.fault('fan-out');
      this.ctx.logger.error('secrets fan-out failed', { spaceId: this.spaceId, error: errorText(e) });
    }
    job.resolve();
  }

  private failJobs(jobs: readonly Job[], e: unknown): void {
    this.ctx.metrics.fault('write');
    this.ctx.logger.error('write failed', { spaceId: this.spaceId, jobs: jobs.length, error: errorText(e) });
    const err = e instanceof Error ? e : new Error(String(e));
    const down = e instanceof StoreUnavailableError;
    for (const job of jobs) {
      // The database is away: the client is told so by its close code and sends it again after reconnecting.
      if (down) job.origin?.fail('the store is unavailable; reconnect and send it again', CloseCode.storeUnavailable);
      else if (job.origin && job.ref !== undefined) job.origin.sendError('internal', 'the server could not store this; send it again later', this.spaceId, job.ref);
      job.reject(err);
    }
  }

  // ---- batches other processes committed (fanout/bus.ts) --------------------------------

  /** The fan-out bus says the space has batches up to `seq` (undefined: maybe; check the store). */
  noteCommitted(seq?: number): void {
    if (this.closed || this.remoteQueued || (seq !== undefined && seq <= this.lastSeq)) return;
    if (seq !== undefined) this.noticedSeq = Math.max(this.noticedSeq, seq);
    this.remoteQueued = true;
    this.queue.push({ kind: 'remote', noticedAt: performance.now(), resolve: () => undefined, reject: () => undefined });
  }

  /** Seqs the bus announced that this host has not applied yet. */
  get seqsBehind(): number {
    return Math.max(0, this.noticedSeq - this.lastSeq);
  }

  private async runRemote(job: RemoteJob): Promise<boolean> {
    this.remoteQueued = false;
    try {
      const touched = await this.applyRemote(Infinity);
      this.ctx.metrics.observeFanoutLag((performance.now() - job.noticedAt) / 1000);
      return touched;
    } catch (e) {
      // Not lost: the next notice or the bus's resync after reconnecting reads from the same seq.
      this.ctx.metrics.fault('remote-catch-up');
      this.ctx.logger.warn('cannot read batches of other processes', { spaceId: this.spaceId, seq: this.lastSeq, error: errorText(e) });
      return false;
    } finally {
      job.resolve();
    }
  }

  /** Applies and fans out the stored batches after this host's seq, up to `upTo`; true when the space tree changed. */
  private async applyRemote(upTo: number): Promise<boolean> {
    let touched = false;
    while (this.lastSeq < upTo && !this.closed) {
      const batches = await this.ctx.store.batchesAfter(this.spaceId, this.lastSeq, Math.min(REMOTE_PAGE, upTo - this.lastSeq));
      if (batches.length === 0) break;
      for (const b of batches) {
        if (b.seq !== this.lastSeq + 1) throw new Error(`space ${this.spaceId}: the store has seq ${b.seq} after ${this.lastSeq}`);
        const ops = decodeOps(JSON.parse(b.opsJson), b.treeId, `batch ${b.seq} of space ${this.spaceId}`);
        this.lastSeq = b.seq;
        this.clocks.advance(b.treeId, ops);
        let set = this.trees.get(b.treeId);
        if (!set) this.trees.set(b.treeId, (set = new OpRangeSet()));
        set.addOps(ops);
        this.ctx.metrics.remoteBatches++;
        if (b.treeId === this.spaceId) {
          this.layer.deliver(b.treeId, ops);
          touched = true;
        }
        this.fanOut(b.seq, b.treeId, b.opsJson, b.nOps, undefined, undefined);
      }
    }
    return touched;
  }

  // ---- the merged copy of the space tree ---------------------------------------------

  /** After the space tree changed: its name, as GET /v1/spaces lists it. */
  private afterTreeChanges(): void {
    const space = this.space;
    if (!space || this.closed) return;
    const name = space.name;
    if (name && name !== this.name) {
      this.name = name;
      this.ctx.store.setSpaceName(this.spaceId, name).catch((e: unknown) => {
        this.ctx.logger.warn('cannot store the space name', { spaceId: this.spaceId, error: errorText(e) });
      });
    }
  }

  // ---- lifecycle -----------------------------------------------------------------------

  /** Waits until every queued write has been committed and acknowledged. */
  flush(): Promise<void> {
    return this.queue.whenIdle();
  }

  /** Finishes queued writes, drops subscribers and closes the space in the SpaceManager; idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.queue.whenIdle();
      this.closed = true;
      for (const sub of this.subs.values()) sub.closed = true;
      this.subs.clear();
      this.ctx.catchUpCache.dropSpace(this.spaceId);
      await this.ctx.manager.close(this.spaceId);
    })();
    return this.closing;
  }

  /** After a failed load: fails anything queued. */
  abandon(e: Error): void {
    this.closed = true;
    for (const job of this.queue.drain()) job.reject(e);
  }
}
