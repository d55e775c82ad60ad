/**
 * Server counters, rendered as Prometheus text for `GET /metrics`. Every metric is prefixed
 * `spaces_server_`; labelled counters (errors, closes, HTTP answers) list the values seen so far.
 */

type Labelled = Map<string, number>;

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
  render(gauges: { connections: number; spacesLoaded: number; subscriptions: number }): string {
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
