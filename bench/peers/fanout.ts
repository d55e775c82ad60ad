/**
 * Fan-out: one writer and R readers on one space (buckets made, no leaves yet); the writer makes
 * E edits at a fixed rate; each reader records the time from the writer's edit call until the
 * leaf is in its own tree (the project: the SpaceManager's change event for the notes tree; Yjs:
 * observeDeep on the document). p50 and p99 over all readers' receipts.
 */
import { bounded, paced, pcts } from '../timing';
import { cpuMeter, editText, whenTrue, type Deadline, type Figure, type Options, type Workload } from './harness';
import { ProjectClient, clientsDir, createProjectSpace, projectDataDir, startProjectServer } from './projectSide';
import { YjsClient, startYjsServer, yjsDataDir } from './yjsSide';

/** Clients opened at once while the readers connect (the connecting is not what is measured). */
const OPEN_CHUNK = 10;

/** Receipts per edit: one per reader. */
class Receipts {
  readonly sentAt = new Map<string, number>();
  readonly lat: number[] = [];
  private readonly listeners = new Set<() => void>();

  sent(text: string): void {
    this.sentAt.set(text, performance.now());
  }

  got(text: string, at: number): void {
    const t = this.sentAt.get(text);
    if (t === undefined) return;
    this.lat.push(at - t);
    for (const l of this.listeners) l();
  }

  whenCount(n: number, timeoutMs: number): Promise<void> {
    return whenTrue(`${n} receipts`, timeoutMs, () => this.lat.length >= n, (check) => {
      this.listeners.add(check);
      return { dispose: () => void this.listeners.delete(check) };
    });
  }

  figures(expected: number, late: number, used: Record<string, number>): Record<string, Figure> {
    const st = pcts(this.lat);
    const detail = { delivered: this.lat.length, expected, lateTicks: late, ...st, ...used };
    if (this.lat.length < expected) {
      const failed = `${this.lat.length} of ${expected} receipts`;
      return { 'fanout-p50': { failed, detail }, 'fanout-p99': { failed, detail } };
    }
    return { 'fanout-p50': { value: st.p50, detail }, 'fanout-p99': { value: st.p99, detail } };
  }
}

async function inChunks<T>(n: number, open: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += OPEN_CHUNK) for (const c of await Promise.all(Array.from({ length: Math.min(OPEN_CHUNK, n - i) }, (_, j) => open(i + j)))) out.push(c);
  return out;
}

/** After the last edit, the receipts get this long (within the side's deadline). */
const DRAIN_MS = 30_000;

async function yjsFanout(o: Options, d: Deadline): Promise<Record<string, Figure>> {
  const { readers, 'fanout-edits': edits, rate } = o.sizes;
  const dir = yjsDataDir(o.dataRoot, 'fanout');
  const server = await startYjsServer(dir);
  const clients: YjsClient[] = [];
  try {
    const w = new YjsClient(server.syncUrl);
    clients.push(w);
    await w.whenSynced(d.remaining);
    w.makeTree();
    await w.whenSent(d.remaining);
    const receipts = new Receipts();
    const rs = await inChunks(readers, async () => {
      const r = new YjsClient(server.syncUrl);
      clients.push(r);
      await r.whenReady(d.remaining);
      r.onRemoteLeaf((text) => receipts.got(text, performance.now()));
      return r;
    });
    const cpu = cpuMeter(server.pid);
    const late = await paced(edits, rate, (i) => {
      receipts.sent(editText(i));
      w.edit(i);
    });
    await receipts.whenCount(edits * rs.length, Math.min(DRAIN_MS, d.remaining)).catch(() => undefined);
    return receipts.figures(edits * readers, late, cpu());
  } finally {
    for (const c of clients) c.close();
    await server.stop();
  }
}

async function projectFanout(o: Options, d: Deadline): Promise<Record<string, Figure>> {
  const { readers, 'fanout-edits': edits, rate } = o.sizes;
  const { dir, token } = projectDataDir(o.dataRoot, 'fanout');
  const files = clientsDir(o.dataRoot);
  const server = await startProjectServer(dir);
  const clients: ProjectClient[] = [];
  try {
    const spaceId = await createProjectSpace(server.url, token, 'Fan-out');
    const w = await bounded('writer open', d.remaining, ProjectClient.open(files, 'writer', server.url, token, spaceId));
    clients.push(w);
    w.makeTree();
    await bounded('writer settle', d.remaining, w.settle());
    const receipts = new Receipts();
    await inChunks(readers, async (i) => {
      const r = await bounded('reader open', d.remaining, ProjectClient.open(files, `reader${i}`, server.url, token, spaceId));
      clients.push(r);
      await r.notes(d.remaining);
      r.onRemoteEdit((text, at) => receipts.got(text, at));
      return r;
    });
    const cpu = cpuMeter(server.pid);
    const late = await paced(edits, rate, (i) => {
      receipts.sent(editText(i));
      w.edit(i);
    });
    await receipts.whenCount(edits * readers, Math.min(DRAIN_MS, d.remaining)).catch(() => undefined);
    return receipts.figures(edits * readers, late, cpu());
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  }
}

export const fanout: Workload = {
  group: 'fanout',
  rows: [
    { workload: 'fanout-p50', label: (s) => `fan-out, 1 writer → ${s.readers} readers, ${s['fanout-edits']} edits at ${s.rate}/s: edit→visible p50`, unit: 'ms' },
    { workload: 'fanout-p99', label: () => '… p99', unit: 'ms' },
  ],
  description: (o) =>
    `**fan-out** — 1 writer and ${o.sizes.readers} readers on one space (buckets made, no leaves yet), each reader a full client in this process; the writer makes ${o.sizes['fanout-edits']} edits at ${o.sizes.rate}/s on a fixed schedule; each reader records the time from the writer's edit call until the leaf is in its own tree (the project: the SpaceManager's change event for the notes tree; Yjs: observeDeep on the document). p50/p99 over every reader's receipt; a side that misses a receipt fails the row.`,
  yjs: yjsFanout,
  project: projectFanout,
};
