/**
 * Join storm: a writer fills a space with N edits, the server is restarted (the space is not
 * loaded when the storm starts), then J fresh clients join at once; timed from the start until
 * every client's tree holds every leaf. A client that fails (its open rejects, or it is not
 * complete by the deadline) is counted and its error kept: a failed join is data, not a crash.
 */
import { bounded, round } from '../timing';
import { cpuMeter, elapsed, kilo, type Deadline, type Figure, type Options, type Workload } from './harness';
import { ProjectClient, clientsDir, createProjectSpace, fillProject, projectDataDir, startProjectServer } from './projectSide';
import { YjsClient, fillYjs, startYjsServer, yjsDataDir } from './yjsSide';

/** Distinct error messages kept per side (the rest are counted). */
const MAX_ERRORS = 5;

interface Storm {
  readonly done: number[];
  readonly errors: Map<string, number>;
  connects: number;
  /** Connects past each client's first. */
  reconnects: number;
}

/** Runs one client's join: its time into `done` when it completes, its error counted when not. */
async function joinOne(s: Storm, t0: number, run: () => Promise<void>): Promise<void> {
  try {
    await run();
    s.done.push(elapsed(t0));
  } catch (e) {
    const k = errorKey(e);
    s.errors.set(k, (s.errors.get(k) ?? 0) + 1);
  }
}

/** Adds each client's connects, and those past its first as reconnects. */
function countConnects(s: Storm, perClient: readonly number[]): void {
  for (const c of perClient) {
    s.connects += c;
    s.reconnects += Math.max(0, c - 1);
  }
}

function stormFigure(s: Storm, joiners: number, used: Record<string, number>): Record<string, Figure> {
  const errors = Object.fromEntries([...s.errors].slice(0, MAX_ERRORS));
  const detail = {
    joiners,
    completed: s.done.length,
    failed: joiners - s.done.length,
    reconnects: s.reconnects,
    connects: s.connects,
    lastCompletedMs: s.done.length ? s.done.reduce((a, b) => Math.max(a, b)) : null,
    errors,
    ...used,
  };
  if (s.done.length < joiners) {
    const last = detail.lastCompletedMs === null ? '' : ` (the last after ${round(detail.lastCompletedMs / 1000, 1)} s)`;
    return { join: { failed: `${s.done.length} of ${joiners} have the space${last}; ${Object.entries(errors).map(([m, n]) => `${n}× ${m}`).join('; ')}`, detail } };
  }
  return { join: { value: detail.lastCompletedMs ?? NaN, detail } };
}

/** Removes what changes per client (ids, paths, times) so that equal failures count as one. */
const errorKey = (e: unknown): string => (e instanceof Error ? e.message : String(e)).replace(/[0-9a-f]{32}/g, 'ID').replace(/\d+(\.\d+)?/g, 'N');

async function yjsJoin(o: Options, d: Deadline): Promise<Record<string, Figure>> {
  const { joiners, 'join-edits': n } = o.sizes;
  const dir = yjsDataDir(o.dataRoot, 'join');
  let server = await startYjsServer(dir);
  const clients: YjsClient[] = [];
  try {
    await fillYjs(server.syncUrl, n, d);
    await server.stop();
    server = await startYjsServer(dir);
    const storm: Storm = { done: [], errors: new Map(), connects: 0, reconnects: 0 };
    const cpu = cpuMeter(server.pid);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: joiners }, () => {
        const c = new YjsClient(server.syncUrl);
        clients.push(c);
        return joinOne(storm, t0, async () => {
          await c.whenSynced(d.remaining);
          await c.whenLeaves(n, d.remaining);
        });
      }),
    );
    countConnects(storm, clients.map((c) => c.connects));
    return stormFigure(storm, joiners, cpu());
  } finally {
    for (const c of clients) c.close();
    await server.stop();
  }
}

async function projectJoin(o: Options, d: Deadline): Promise<Record<string, Figure>> {
  const { joiners, 'join-edits': n } = o.sizes;
  const { dir, token } = projectDataDir(o.dataRoot, 'join');
  const files = clientsDir(o.dataRoot);
  let server = await startProjectServer(dir);
  const clients: ProjectClient[] = [];
  try {
    const spaceId = await createProjectSpace(server.url, token, 'Join');
    await fillProject(files, server.url, token, spaceId, n, d);
    await server.stop();
    server = await startProjectServer(dir);
    const url = server.url;
    const storm: Storm = { done: [], errors: new Map(), connects: 0, reconnects: 0 };
    const cpu = cpuMeter(server.pid);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: joiners }, (_, i) =>
        joinOne(storm, t0, async () => {
          const c = await bounded('open', d.remaining, ProjectClient.open(files, `joiner${i}`, url, token, spaceId));
          clients.push(c);
          await c.whenLeaves(n, d.remaining);
        }),
      ),
    );
    countConnects(storm, clients.map((c) => c.server.stats.connects));
    return stormFigure(storm, joiners, cpu());
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  }
}

export const join: Workload = {
  group: 'join',
  rows: [{ workload: 'join', label: (s) => `join storm: ${s.joiners} clients join a ${kilo(s['join-edits'])}-edit space at once, all have it`, unit: 'ms' }],
  description: (o) =>
    `**join storm** — a writer fills a space with ${o.sizes['join-edits']} edits, the server is restarted (the space is not loaded), then ${o.sizes.joiners} fresh clients (each its own SpaceManager + FileLayer + ServerLayer with default timings / its own HocuspocusProvider and socket) join at once in this process; timed from the start until every client's tree holds every leaf. A client whose open fails, or that is not complete by the row's deadline (${o.sizes['row-timeout']} s), counts as failed with its error; the row then fails and its detail has completed/failed counts, connects and reconnects. (A project client whose open failed made its connects uncounted.)`,
  yjs: yjsJoin,
  project: projectJoin,
};
