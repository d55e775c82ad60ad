/**
 * Server counters, rendered as Prometheus text for `GET /metrics`. Every metric is prefixed
 * `spaces_server_`; labelled counters (errors, closes, HTTP answers) list the values seen so far.
 */

type Labelled = Map<string, number>;

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
