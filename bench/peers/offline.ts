/**
 * Offline merge: two clients on one space (buckets made) go offline, each makes E edits, and both
 * reconnect at once; timed from the reconnect until both trees hold all 2E leaves. The project's
 * clients go offline as the extension's Disconnect does (the ServerLayer leaves the session; the
 * edits wait in the file) and come back as its Connect does (a new ServerLayer joins); Yjs's
 * providers close and reopen their sockets.
 */
import { bounded } from '../timing';
import { cpuMeter, elapsed, kilo, type Deadline, type Figure, type Options, type Workload } from './harness';
import { ProjectClient, clientsDir, createProjectSpace, projectDataDir, startProjectServer } from './projectSide';
import { YjsClient, startYjsServer, yjsDataDir } from './yjsSide';

async function yjsOffline(o: Options, d: Deadline): Promise<Record<string, Figure>> {
  const e = o.sizes['offline-edits'];
  const dir = yjsDataDir(o.dataRoot, 'offline');
  const server = await startYjsServer(dir);
  const a = new YjsClient(server.syncUrl);
  const b = new YjsClient(server.syncUrl);
  try {
    await a.whenSynced(d.remaining);
    a.makeTree();
    await a.whenSent(d.remaining);
    await b.whenReady(d.remaining);
    for (const c of [a, b]) c.disconnect();
    await Promise.all([a.whenDisconnected(d.remaining), b.whenDisconnected(d.remaining)]);
    for (let i = 0; i < e; i++) a.edit(i);
    for (let i = 0; i < e; i++) b.edit(e + i);
    const cpu = cpuMeter(server.pid);
    const t0 = performance.now();
    for (const c of [a, b]) c.reconnect();
    await Promise.all([a.whenLeaves(2 * e, d.remaining), b.whenLeaves(2 * e, d.remaining)]);
    return { offline: { value: elapsed(t0), detail: { editsEach: e, leaves: [a.leafCount(), b.leafCount()], ...cpu() } } };
  } finally {
    a.close();
    b.close();
    await server.stop();
  }
}

async function projectOffline(o: Options, d: Deadline): Promise<Record<string, Figure>> {
  const e = o.sizes['offline-edits'];
  const { dir, token } = projectDataDir(o.dataRoot, 'offline');
  const files = clientsDir(o.dataRoot);
  const server = await startProjectServer(dir);
  const clients: ProjectClient[] = [];
  try {
    const spaceId = await createProjectSpace(server.url, token, 'Offline');
    const a = await bounded('open a', d.remaining, ProjectClient.open(files, 'a', server.url, token, spaceId));
    clients.push(a);
    a.makeTree();
    await bounded('a settle', d.remaining, a.settle());
    const b = await bounded('open b', d.remaining, ProjectClient.open(files, 'b', server.url, token, spaceId));
    clients.push(b);
    await b.notes(d.remaining);
    await bounded('disconnect', d.remaining, Promise.all([a.disconnect(), b.disconnect()]));
    await bounded('offline edits', d.remaining, a.writeOffline(0, e));
    await bounded('offline edits', d.remaining, b.writeOffline(e, e));
    const cpu = cpuMeter(server.pid);
    const t0 = performance.now();
    await bounded('reconnect', d.remaining, Promise.all([a.reconnect(), b.reconnect()]));
    await Promise.all([a.whenLeaves(2 * e, d.remaining), b.whenLeaves(2 * e, d.remaining)]);
    return { offline: { value: elapsed(t0), detail: { editsEach: e, leaves: [a.leafCount(), b.leafCount()], ...cpu() } } };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  }
}

export const offline: Workload = {
  group: 'offline',
  rows: [{ workload: 'offline', label: (s) => `offline merge: 2 clients × ${kilo(s['offline-edits'])} edits offline, reconnect, both converged`, unit: 'ms' }],
  description: (o) =>
    `**offline merge** — two clients on one space (buckets made) go offline, each makes ${o.sizes['offline-edits']} edits, both reconnect at once; timed from the reconnect until both trees hold all ${2 * o.sizes['offline-edits']} leaves. The project's clients go offline as the extension's Disconnect does (the ServerLayer leaves the session, the edits wait in the space file) and come back as its Connect does (a new ServerLayer joins the session); the Yjs providers close and reopen their sockets.`,
  yjs: yjsOffline,
  project: projectOffline,
};
