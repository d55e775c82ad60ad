/**
 * The storage worker of fault-injection tests (see fileFaults.ts): serves the real worker's
 * `dispatch` (src/persistence/file/sqlWorker.ts) and, for files a test armed a fault for, fails
 * the next read with an IO error or makes the next flush meet a read-only file.
 */
import fs from 'node:fs';
import { BroadcastChannel, parentPort } from 'node:worker_threads';
import { SpaceFileError } from '../../src/persistence/file/errors';
import { dispatch, serve, type Reply } from '../../src/persistence/file/sqlWorker';
import type { WorkerMethod, WorkerRequest } from '../../src/persistence/file/workerProtocol';
import { FAULT_CHANNEL, type FaultAck, type FaultRequest, type FileFault } from './fileFaults';

const READS: ReadonlySet<WorkerMethod> = new Set<WorkerMethod>(['listTrees', 'loadTree', 'loadTreeState', 'loadSecrets', 'loadSyncState']);

/** Armed faults by file (the layer's real path). */
const armed = new Map<string, Set<FileFault>>();
/** Files of the open handles. */
const files = new Map<number, string>();

const channel = new BroadcastChannel(FAULT_CHANNEL);
channel.unref();
channel.onmessage = (m: unknown) => {
  const req = (m as { data?: Partial<FaultRequest> }).data;
  if (typeof req?.id !== 'string' || typeof req.file !== 'string' || (req.fault !== 'fail-next-load' && req.fault !== 'fail-next-save')) return;
  let set = armed.get(req.file);
  if (!set) armed.set(req.file, (set = new Set()));
  set.add(req.fault);
  const ack: FaultAck = { ack: req.id };
  channel.postMessage(ack);
};

function take(handle: number, fault: FileFault): string | undefined {
  const file = files.get(handle);
  if (file !== undefined && armed.get(file)?.delete(fault)) return file;
  return undefined;
}

async function faulty(req: WorkerRequest): Promise<Reply<WorkerMethod>> {
  const handle = 'handle' in req.params ? req.params.handle : undefined;
  if (handle !== undefined && READS.has(req.method)) {
    const file = take(handle, 'fail-next-load');
    if (file !== undefined) throw new SpaceFileError(`${file}: injected read failure`, 'IO');
  }
  const saveFault = handle !== undefined && req.method === 'flush' ? take(handle, 'fail-next-save') : undefined;
  if (saveFault === undefined) return track(req, await dispatch(req));
  const mode = fs.statSync(saveFault).mode & 0o7777;
  fs.chmodSync(saveFault, mode & ~0o222);
  try {
    return await dispatch(req);
  } finally {
    fs.chmodSync(saveFault, mode);
  }
}

function track(req: WorkerRequest, reply: Reply<WorkerMethod>): Reply<WorkerMethod> {
  if (req.method === 'open' || req.method === 'create') {
    const r = reply.result as { handle: number; file: string };
    files.set(r.handle, r.file);
  }
  if (req.method === 'close') files.delete(req.params.handle);
  return reply;
}

if (parentPort) serve(parentPort, faulty);
