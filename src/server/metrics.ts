/**
 * Server counters, rendered as Prometheus text for `GET /metrics`. Every metric is prefixed
 * `spaces_server_`; labelled counters (errors, closes, HTTP answers) list the values seen so far.
 */

type Labelled = Map<string, number>;

/** Upper bounds (seconds) of the fan-out lag histogram's buckets. */
const FANOUT_LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

/** A Prometheus histogram: cumulative counts per upper bound, sum and count. */
export class Histogram {
  private readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = bounds.map(() => 0);
  }

  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.bounds.length; i++) if (v <= this.bounds[i]) this.counts[i]++;
  }

  render(name: string, help: string): string[] {
    const out = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
    this.bounds.forEach((b, i) => out.push(`${name}_bucket{le="${b}"} ${this.counts[i]}`));
    out.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${Number(this.sum.toFixed(6))}`, `${name}_count ${this.count}`);
    return out;
  }
}

/** What /metrics says about the store and the fan-out bus. */
export interface ClusterGauges {
  readonly store: string;
  readonly storeOk: boolean;
  readonly bus: { readonly kind: string; readonly ok: boolean; readonly notices: number; readonly reconnects: number };
  /** Seqs announced by the bus and not yet applied, over the loaded spaces. */
  readonly seqsBehind: number;
}

/** Values read when /metrics is asked for. */
export interface Gauges {
  readonly connections: number;
  readonly spacesLoaded: number;
  readonly subscriptions: number;
  /** Bytes queued for all sockets, and for the socket with the most. */
  readonly bytesQueued?: number;
  readonly socketBytesQueuedMax?: number;
  /** The catch-up frame cache (frameCache.ts). */
  readonly catchUp?: { readonly bytes: number; readonly frames: number; readonly hits: number; readonly misses: number };
  readonly cluster?: ClusterGauges;
}

export class Metrics {
  connectionsTotal = 0;
  messagesReceived = 0;
  messagesSent = 0;
  bytesReceived = 0;
  bytesSent = 0;
  opsReceived = 0;
  opsStored = 0;
  opsSent = 0;
  batchesStored = 0;
  /** SQLite transactions that stored client writes (several batches share one when they queue up). */
  commits = 0;
  commitSeconds = 0;
  rateLimited = 0;
  /** Times a live subscriber's socket fell behind and it went back to catching up from the store. */
  subscribersBehind = 0;
  spacesLoadedTotal = 0;
  spacesUnloadedTotal = 0;
  /** Sockets closed because they did not read what they were sent (4001). */
  slowConsumersClosed = 0;
  /** Connections refused by a cap, by which (total, address, token). */
  readonly connectionsRefused: Labelled = new Map();
  /** `error` messages sent, by code. */
  readonly errors: Labelled = new Map();
  /** Sockets the server closed, by close code. */
  readonly closes: Labelled = new Map();
  /** Server-side faults (exceptions), by where they happened. */
  readonly faults: Labelled = new Map();
  readonly httpResponses: Labelled = new Map();
  /** Batches other processes committed, applied and fanned out here (fanout/bus.ts). */
  remoteBatches = 0;
  /** Fan-out lag: from a bus notice to its batches sent to this process's subscribers. */
  readonly fanoutLag = new Histogram(FANOUT_LAG_BUCKETS);

  observeFanoutLag(seconds: number): void {
    this.fanoutLag.observe(seconds);
  }

  static inc(m: Labelled, label: string | number, n = 1): void {
    const k = String(label);
    m.set(k, (m.get(k) ?? 0) + n);
  }

  fault(where: string): void {
    Metrics.inc(this.faults, where);
  }

  /** Prometheus text exposition (format 0.0.4). */
  render(gauges: Gauges): string {
    const out: string[] = [];
    const one = (name: string, type: 'counter' | 'gauge', help: string, value: number): void => {
      out.push(`# HELP spaces_server_${name} ${help}`, `# TYPE spaces_server_${name} ${type}`, `spaces_server_${name} ${value}`);
    };
    const labelled = (name: string, label: string, help: string, m: Labelled): void => {
      out.push(`# HELP spaces_server_${name} ${help}`, `# TYPE spaces_server_${name} counter`);
      for (const [k, v] of [...m].sort()) out.push(`spaces_server_${name}{${label}="${k.replace(/["\\\n]/g, '_')}"} ${v}`);
    };
    one('connections', 'gauge', 'Open WebSocket connections.', gauges.connections);
    one('connections_total', 'counter', 'WebSocket connections accepted.', this.connectionsTotal);
    one('subscriptions', 'gauge', 'Active space subscriptions.', gauges.subscriptions);
    one('spaces_loaded', 'gauge', 'Spaces loaded in memory.', gauges.spacesLoaded);
    one('spaces_loaded_total', 'counter', 'Space loads.', this.spacesLoadedTotal);
    one('spaces_unloaded_total', 'counter', 'Space unloads (idle or shutdown).', this.spacesUnloadedTotal);
    one('messages_received_total', 'counter', 'WebSocket messages received.', this.messagesReceived);
    one('messages_sent_total', 'counter', 'WebSocket messages sent.', this.messagesSent);
    one('bytes_received_total', 'counter', 'WebSocket payload bytes received.', this.bytesReceived);
    one('bytes_sent_total', 'counter', 'WebSocket payload bytes sent.', this.bytesSent);
    one('ops_received_total', 'counter', 'Ops received in valid client batches.', this.opsReceived);
    one('ops_stored_total', 'counter', 'Ops stored (new ops only).', this.opsStored);
    one('ops_sent_total', 'counter', 'Ops sent to clients (catch-up and fan-out).', this.opsSent);
    one('batches_stored_total', 'counter', 'Batches stored under a new seq.', this.batchesStored);
    one('commits_total', 'counter', 'SQLite write transactions for client writes.', this.commits);
    one('commit_seconds_total', 'counter', 'Time spent in those transactions.', Number(this.commitSeconds.toFixed(6)));
    one('rate_limited_total', 'counter', 'Times a connection was paused by its rate limit.', this.rateLimited);
    one('subscribers_behind_total', 'counter', 'Times a subscriber fell behind and was caught up from the store.', this.subscribersBehind);
    one('slow_consumers_closed_total', 'counter', 'Sockets closed (4001) because they did not read what they were sent.', this.slowConsumersClosed);
    labelled('connections_refused_total', 'reason', 'Connections refused by a cap: total (503), address (429), token (4002).', this.connectionsRefused);
    if (gauges.bytesQueued !== undefined) one('bytes_queued', 'gauge', 'Bytes queued for all sockets, not yet taken by the kernel.', gauges.bytesQueued);
    if (gauges.socketBytesQueuedMax !== undefined) one('socket_bytes_queued_max', 'gauge', 'Bytes queued for the socket with the most.', gauges.socketBytesQueuedMax);
    if (gauges.catchUp) {
      one('catchup_cache_bytes', 'gauge', 'Encoded catch-up frames kept for sharing.', gauges.catchUp.bytes);
      one('catchup_cache_frames', 'gauge', 'Catch-up frames kept.', gauges.catchUp.frames);
      one('catchup_cache_hits_total', 'counter', 'Catch-up frames sent from the cache (shared bytes).', gauges.catchUp.hits);
      one('catchup_cache_misses_total', 'counter', 'Catch-up frames read from the store and encoded.', gauges.catchUp.misses);
    }
    if (gauges.cluster) {
      const c = gauges.cluster;
      out.push(`# HELP spaces_server_store_up Whether the store answered its last health check (label: kind).`, `# TYPE spaces_server_store_up gauge`, `spaces_server_store_up{kind="${c.store}"} ${c.storeOk ? 1 : 0}`);
      out.push(`# HELP spaces_server_fanout_up Whether the fan-out bus is connected (label: kind).`, `# TYPE spaces_server_fanout_up gauge`, `spaces_server_fanout_up{kind="${c.bus.kind}"} ${c.bus.ok ? 1 : 0}`);
      one('fanout_notices_total', 'counter', 'Batch notices the fan-out bus received.', c.bus.notices);
      one('fanout_reconnects_total', 'counter', 'Times the fan-out listener connected again.', c.bus.reconnects);
      one('fanout_seqs_behind', 'gauge', 'Seqs announced by the bus that loaded spaces have not applied yet.', c.seqsBehind);
    }
    one('remote_batches_total', 'counter', 'Batches committed by other processes and fanned out here.', this.remoteBatches);
    for (const line of this.fanoutLag.render('spaces_server_fanout_lag_seconds', 'From a fan-out notice to its batches sent to this process’s subscribers.')) out.push(line);
    out.push('# HELP spaces_server_process_id This process (label: pid).', '# TYPE spaces_server_process_id gauge', `spaces_server_process_id{pid="${process.pid}"} 1`);
    labelled('errors_total', 'code', 'Error messages sent to clients, by code.', this.errors);
    labelled('closes_total', 'code', 'Sockets closed by the server, by close code.', this.closes);
    labelled('faults_total', 'where', 'Server faults, by where they happened.', this.faults);
    labelled('http_responses_total', 'status', 'HTTP responses, by status.', this.httpResponses);
    const mem = process.memoryUsage();
    out.push('# HELP process_heap_used_bytes V8 heap in use.', '# TYPE process_heap_used_bytes gauge', `process_heap_used_bytes ${mem.heapUsed}`);
    out.push('# HELP process_resident_memory_bytes Resident set size.', '# TYPE process_resident_memory_bytes gauge', `process_resident_memory_bytes ${mem.rss}`);
    return out.join('\n') + '\n';
  }
}
