/**
 * Cold load: a writer client makes N edits, the server is stopped (storage is measured then) and
 * started again, and a fresh client (a new file / a new Y.Doc) opens the space; timed from the
 * client's start until its tree holds every leaf. With a heap row: the server's heap after a gc
 * while that client holds the space (the space is loaded on the server).
 */
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { bounded } from '../timing';
import { YJS_DB_FILE, cpuMeter, elapsed, kilo, sqliteBytes, type Deadline, type Figure, type Options, type Workload } from './harness';
import { requestHeap } from './heapProbe';
import { PROJECT_DB_FILE, ProjectClient, clientsDir, createProjectSpace, fillProject, projectDataDir, startProjectServer } from './projectSide';
import { YjsClient, fillYjs, startYjsServer, yjsDataDir } from './yjsSide';

interface ColdResult {
  readonly loadMs: number;
  readonly storageBytes: number;
  readonly heapBytes: number;
  readonly detail: Record<string, unknown>;
}

async function yjsCold(o: Options, n: number, d: Deadline): Promise<ColdResult> {
  const dir = yjsDataDir(o.dataRoot, `cold${n}`);
  let server = await startYjsServer(dir);
  try {
    await fillYjs(server.syncUrl, n, d);
    await server.stop();
    const storageBytes = sqliteBytes(dir, YJS_DB_FILE);
    const db = new BetterSqlite3(path.join(dir, YJS_DB_FILE), { readonly: true });
    const stored = db.prepare<[], { n: number }>('SELECT sum(length(data)) AS n FROM documents').get()?.n ?? 0;
    db.close();
    server = await startYjsServer(dir);
    const cpu = cpuMeter(server.pid);
    const t0 = performance.now();
    const r = new YjsClient(server.syncUrl);
    try {
      await r.whenSynced(d.remaining);
      await r.whenLeaves(n, d.remaining);
      const loadMs = elapsed(t0);
      const used = cpu();
      const heap = await requestHeap(server.child);
      return { loadMs, storageBytes, heapBytes: heap.heapUsed, detail: { leaves: r.leafCount(), ...used, storedUpdateBytes: stored, serverRss: heap.rss, serverExternal: heap.external } };
    } finally {
      r.close();
    }
  } finally {
    await server.stop();
  }
}

async function projectCold(o: Options, n: number, d: Deadline): Promise<ColdResult> {
  const { dir, token } = projectDataDir(o.dataRoot, `cold${n}`);
  const clients = clientsDir(o.dataRoot);
  let server = await startProjectServer(dir);
  try {
    const spaceId = await createProjectSpace(server.url, token, 'Cold');
    await fillProject(clients, server.url, token, spaceId, n, d);
    await server.stop();
    const storageBytes = sqliteBytes(dir, PROJECT_DB_FILE);
    server = await startProjectServer(dir);
    const cpu = cpuMeter(server.pid);
    const t0 = performance.now();
    const r = await bounded('fresh client open', d.remaining, ProjectClient.open(clients, 'fresh', server.url, token, spaceId));
    try {
      await r.whenLeaves(n, d.remaining);
      const loadMs = elapsed(t0);
      const used = cpu();
      const heap = await requestHeap(server.child);
      return { loadMs, storageBytes, heapBytes: heap.heapUsed, detail: { leaves: r.leafCount(), ...used, connects: r.server.stats.connects, serverRss: heap.rss, serverExternal: heap.external } };
    } finally {
      await r.close();
    }
  } finally {
    await server.stop();
  }
}

const coldRows = (r: ColdResult, withHeap: boolean, n: number): Record<string, Figure> => {
  const detail = { edits: n, ...r.detail };
  return withHeap
    ? { 'cold-100k': { value: r.loadMs, detail: { ...detail, storageBytes: r.storageBytes } }, 'heap-100k': { value: r.heapBytes, detail } }
    : { 'cold-10k': { value: r.loadMs, detail: { ...detail, heapBytes: r.heapBytes } }, 'storage-10k': { value: r.storageBytes, detail } };
};

const COLD_DESCRIPTION = (o: Options): string => `**cold ${o.sizes.edits} / ${o.sizes['big-edits']}** — a writer client makes the edits (one leaf each, edit i in bucket i mod 256) and waits until the server has them; the server is stopped and started again; a fresh client (a new space file / a new Y.Doc) opens the space, timed from its start until its tree holds every leaf. The server heap is read in the server process after a gc (\`--expose-gc\`, process.memoryUsage().heapUsed) while that client holds the 100k-edit space.

**storage** — bytes on disk of the server's SQLite database for the ${o.sizes.edits} edits, read after the server stopped (which checkpoints the WAL): the file plus -wal and -shm. Hocuspocus's side stores Y.encodeStateAsUpdate of the document in one row (as its SQLite extension does); the project's server stores its op batches (and its tokens) in spaces.db.`;

export const cold: Workload = {
  group: 'cold',
  rows: [
    { workload: 'cold-10k', label: (s) => `cold load, ${kilo(s.edits)} edits: server restarted, a fresh client holds the whole tree`, unit: 'ms' },
    { workload: 'storage-10k', label: (s) => `storage of those ${kilo(s.edits)} edits (server SQLite incl. WAL)`, unit: 'bytes' },
  ],
  description: COLD_DESCRIPTION,
  yjs: async (o, d) => coldRows(await yjsCold(o, o.sizes.edits, d), false, o.sizes.edits),
  project: async (o, d) => coldRows(await projectCold(o, o.sizes.edits, d), false, o.sizes.edits),
};

export const cold100k: Workload = {
  group: 'cold100k',
  rows: [
    { workload: 'cold-100k', label: (s) => `cold load, ${kilo(s['big-edits'])} edits (same)`, unit: 'ms' },
    { workload: 'heap-100k', label: (s) => `server heap after gc, ${kilo(s['big-edits'])}-edit space loaded`, unit: 'bytes' },
  ],
  description: () => '',
  yjs: async (o, d) => coldRows(await yjsCold(o, o.sizes['big-edits'], d), true, o.sizes['big-edits']),
  project: async (o, d) => coldRows(await projectCold(o, o.sizes['big-edits'], d), true, o.sizes['big-edits']),
};
