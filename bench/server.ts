/**
 * Team server benchmark: an in-process server (startServer, port 0, a temporary directory) and
 * real WebSocket clients on loopback. One JSON line per result on stdout.
 *
 *   npx tsc -p . && node out/bench/server.js [--ops 200000] [--batch 500] [--window 16] [--subscribers 10]
 *
 * - write: one client pipelines batches (at most `window` unacknowledged); ops/s and ack latency.
 * - write-4: four clients on four spaces at once.
 * - fanout: one writer, N subscribers; time from send until every subscriber has the batch.
 * - catch-up: a fresh client subscribes from 0 to the space written above.
 * Each written tree is listed in the space tree as an app tree, so the server's SpaceManager merges
 * every op into its copy (the real cost). Rate limits are raised for the write runs (the defaults
 * cap a socket at 50,000 ops/s).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { PROTOCOL_VERSION, encodeMessage, parseServerMessage, type ServerMessage } from '../src/protocol/messages';
import { silentLogger } from '../src/server/log';
import { startServer, type RunningServer } from '../src/server/server';
import { ServerStore } from '../src/server/store/serverStore';
import { newVertexId } from '../src/spaces/appTree';
import { encodeOps } from '../src/spaces/opCodec';
import type { Op } from '../src/spaces/ops';

const { values: opt } = parseArgs({
  options: {
    ops: { type: 'string', default: '200000' },
    batch: { type: 'string', default: '500' },
    window: { type: 'string', default: '16' },
    subscribers: { type: 'string', default: '10' },
  },
});
const TOTAL = Number(opt.ops);
const BATCH = Number(opt.batch);
const WINDOW = Number(opt.window);
const SUBSCRIBERS = Number(opt.subscribers);

const emit = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify({ ...o, node: process.version, at: new Date().toISOString() }) + '\n');
const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};

function ops(tree: string, peer: string, first: number, n: number): Op[] {
  const out: Op[] = [];
  for (let i = 0; i < n; i++) {
    const c = first + i;
    if (c === 1) out.push({ id: { counter: 1, peerId: peer }, targetId: tree, parentId: null });
    else if (c % 2 === 0) out.push({ id: { counter: c, peerId: peer }, targetId: `v${c}`, parentId: tree });
    else out.push({ id: { counter: c, peerId: peer }, targetId: `v${c - 1}`, key: 'text', value: `item ${c} of the benchmark`, transient: false });
  }
  return out;
}

class Client {
  private handlers: Array<(m: ServerMessage) => void> = [];
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
      const m = parseServerMessage(d);
      for (const h of this.handlers) h(m);
    });
  }
  static async open(url: string, token: string, peer: string): Promise<Client> {
    const ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024 });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const c = new Client(ws);
    ws.send(encodeMessage({ type: 'hello', protocol: PROTOCOL_VERSION, token, peerIds: [peer] }));
    await c.wait((m) => m.type === 'welcome');
    return c;
  }
  on(h: (m: ServerMessage) => void): void {
    this.handlers.push(h);
  }
  wait(pred: (m: ServerMessage) => boolean): Promise<ServerMessage> {
    return new Promise((resolve) => {
      const h = (m: ServerMessage): void => {
        if (!pred(m)) return;
        this.handlers = this.handlers.filter((x) => x !== h);
        resolve(m);
      };
      this.handlers.push(h);
    });
  }
  send(m: Parameters<typeof encodeMessage>[0]): void {
    this.ws.send(encodeMessage(m));
  }
  close(): void {
    this.ws.close();
  }
}

async function createSpace(server: RunningServer, token: string, name: string): Promise<string> {
  const res = await fetch(`${server.url}/v1/spaces`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: JSON.stringify({ name }) });
  return ((await res.json()) as { id: string }).id;
}

/** Lists `tree` in the space tree as a notes app tree, so the server opens and merges it. */
async function register(c: Client, spaceId: string, tree: string, peer: string): Promise<void> {
  // Above the few ops of a new space tree, and within the server's counter gap (out-of-range beyond).
  const c0 = 1_000;
  const list: Op[] = [
    { id: { counter: c0, peerId: peer }, targetId: tree, parentId: spaceId },
    { id: { counter: c0 + 1, peerId: peer }, targetId: tree, key: 'appId', value: 'notes', transient: false },
    { id: { counter: c0 + 2, peerId: peer }, targetId: tree, key: 'name', value: 'bench', transient: false },
  ];
  const ref = 900_000_000 + Math.floor(Math.random() * 1e6);
  c.send({ type: 'ops', spaceId, treeId: spaceId, ops: encodeOps(list), ref });
  const answer = await c.wait((m) => (m.type === 'ack' || m.type === 'error') && m.ref === ref);
  if (answer.type === 'error') throw new Error(`registering the bench tree: ${answer.code}: ${answer.message}`);
}

/** Pipelines `total` ops in batches with at most WINDOW unacked; resolves with ack latencies. */
async function writeAll(c: Client, spaceId: string, tree: string, peer: string, total: number): Promise<number[]> {
  const sentAt = new Map<number, number>();
  const lat: number[] = [];
  let next = 1;
  let ref = 0;
  let acked = 0;
  const batches = Math.ceil(total / BATCH);
  return new Promise((resolve) => {
    const pump = (): void => {
      while (ref - acked < WINDOW && ref < batches) {
        ref++;
        const n = Math.min(BATCH, total - next + 1);
        c.send({ type: 'ops', spaceId, treeId: tree, ops: encodeOps(ops(tree, peer, next, n)), ref });
        sentAt.set(ref, performance.now());
        next += n;
      }
    };
    c.on((m) => {
      if (m.type === 'error') throw new Error(`${m.code}: ${m.message}`);
      if (m.type !== 'ack' || m.spaceId !== spaceId) return;
      lat.push(performance.now() - (sentAt.get(m.ref) ?? 0));
      if (++acked === batches) resolve(lat);
      else pump();
    });
    pump();
  });
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-server-bench-'));
  const store = ServerStore.open(dir);
  const token = store.tokens.create({ user: 'bench', space: '*', role: 'admin' }).token;
  store.close();
  const server = await startServer({ dataDir: dir, logger: silentLogger, rateLimits: { opsPerSecond: 1e9, opsBurst: 1e9, messagesPerSecond: 1e6, messageBurst: 1e6, bytesPerSecond: 1e12, bytesBurst: 1e12 } });
  try {
    // write: one client
    const spaceId = await createSpace(server, token, 'bench');
    const tree = newVertexId();
    const w = await Client.open(server.syncUrl, token, 'w1');
    w.send({ type: 'subscribe', spaceId, since: 0 });
    await w.wait((m) => m.type === 'synced');
    await register(w, spaceId, tree, 'w1');
    let t0 = performance.now();
    const lat = await writeAll(w, spaceId, tree, 'w1', TOTAL);
    let s = (performance.now() - t0) / 1000;
    emit({ bench: 'server-write', ops: TOTAL, batch: BATCH, window: WINDOW, seconds: round(s, 2), opsPerSec: Math.round(TOTAL / s), ackMsP50: round(pct(lat, 50)), ackMsP99: round(pct(lat, 99)), commits: server.metrics.commits, batches: server.metrics.batchesStored });

    // write-4: four clients, four spaces
    const four = await Promise.all([1, 2, 3, 4].map(async (i) => ({ spaceId: await createSpace(server, token, `b${i}`), c: await Client.open(server.syncUrl, token, `q${i}`), tree: newVertexId(), peer: `q${i}` })));
    await Promise.all(four.map((x) => register(x.c, x.spaceId, x.tree, x.peer)));
    t0 = performance.now();
    const lats = await Promise.all(four.map((x) => writeAll(x.c, x.spaceId, x.tree, x.peer, TOTAL / 4)));
    s = (performance.now() - t0) / 1000;
    emit({ bench: 'server-write-4', ops: TOTAL, clients: 4, seconds: round(s, 2), opsPerSec: Math.round(TOTAL / s), ackMsP50: round(pct(lats.flat(), 50)), ackMsP99: round(pct(lats.flat(), 99)) });
    for (const x of four) x.c.close();

    // fanout: one writer, N subscribers, one small batch at a time
    const subs = await Promise.all(Array.from({ length: SUBSCRIBERS }, (_, i) => Client.open(server.syncUrl, token, `s${i}`)));
    await Promise.all(subs.map(async (c) => {
      c.send({ type: 'subscribe', spaceId, since: 0 });
      await c.wait((m) => m.type === 'synced');
    }));
    const fan: number[] = [];
    const ftree = newVertexId();
    for (let i = 0; i < 200; i++) {
      const start = performance.now();
      const all = Promise.all(subs.map((c) => c.wait((m) => m.type === 'ops' && m.treeId === ftree)));
      w.send({ type: 'ops', spaceId, treeId: ftree, ops: encodeOps(ops(ftree, 'w1', TOTAL + 1 + i * 5, 5)), ref: 1_000_000 + i });
      await all;
      fan.push(performance.now() - start);
    }
    emit({ bench: 'server-fanout', subscribers: SUBSCRIBERS, batches: 200, msP50: round(pct(fan, 50), 2), msP99: round(pct(fan, 99), 2) });
    for (const c of subs) c.close();

    // catch-up: a fresh client from 0
    const r = await Client.open(server.syncUrl, token, 'r1');
    let got = 0;
    let frames = 0;
    r.on((m) => {
      if (m.type === 'ops') {
        got += m.ops.length;
        frames++;
      }
    });
    t0 = performance.now();
    r.send({ type: 'subscribe', spaceId, since: 0 });
    await r.wait((m) => m.type === 'synced');
    s = (performance.now() - t0) / 1000;
    emit({ bench: 'server-catch-up', ops: got, frames, seconds: round(s, 2), opsPerSec: Math.round(got / s), heapMB: round(process.memoryUsage().heapUsed / 1048576) });
    r.close();
    w.close();
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
