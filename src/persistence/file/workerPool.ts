/**
 * The caller's side of the sql.js worker: one worker per worker script, shared by every
 * FileLayer of the process and terminated when the last one releases it.
 *
 * The worker is unref'd while idle and ref'd while a request is in flight, so a pending save
 * keeps the process alive until it is durable, but an idle open layer does not keep a process
 * from exiting.
 */
import { Worker } from 'node:worker_threads';
import { SpaceFileError, deserializeError } from './errors';
import type { WorkerMethod, WorkerParams, WorkerRequest, WorkerResponse, WorkerResult } from './workerProtocol';

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

export class SqlWorkerClient {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: SpaceFileError | undefined;
  private terminated = false;
  /** Layers (and one-off calls) using this worker. */
  refs = 0;

  constructor(readonly workerPath: string) {
    this.worker = new Worker(workerPath);
    this.worker.unref();
    this.worker.on('message', (m: WorkerResponse) => this.onMessage(m));
    this.worker.on('error', (e: Error) => this.fail(new SpaceFileError(`the storage worker failed: ${e.message}`, 'WORKER')));
    this.worker.on('exit', (code: number) => this.fail(new SpaceFileError(`the storage worker stopped (exit code ${code})`, 'WORKER')));
  }

  get alive(): boolean {
    return this.failure === undefined && !this.terminated;
  }

  request<M extends WorkerMethod>(method: M, params: WorkerParams<M>, transfer: ArrayBuffer[] = []): Promise<WorkerResult<M>> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.terminated) return Promise.reject(new SpaceFileError('the storage worker was stopped', 'WORKER'));
    const id = this.nextId++;
    return new Promise<WorkerResult<M>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      if (this.pending.size === 1) this.worker.ref();
      const req = { id, method, params } as WorkerRequest;
      try {
        this.worker.postMessage(req, transfer);
      } catch (e) {
        this.settle(id);
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
    return p;
  }

  private onMessage(m: WorkerResponse): void {
    const p = this.settle(m.id);
    if (!p) return;
    if (m.ok) p.resolve(m.result);
    else p.reject(deserializeError(m.error));
  }

  private fail(e: SpaceFileError): void {
    if (this.terminated) return;
    this.failure ??= e;
    if (pool.get(this.workerPath) === this) pool.delete(this.workerPath);
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(this.failure);
  }

  async terminate(): Promise<void> {
    if (this.terminated) return;
    this.terminated = true;
    if (pool.get(this.workerPath) === this) pool.delete(this.workerPath);
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(new SpaceFileError('the storage worker was stopped', 'WORKER'));
    await this.worker.terminate();
  }
}

const pool = new Map<string, SqlWorkerClient>();

/** The worker for `workerPath` (started on first use), with one more reference. */
export function acquireWorker(workerPath: string): SqlWorkerClient {
  let client = pool.get(workerPath);
  if (!client || !client.alive) {
    client = new SqlWorkerClient(workerPath);
    pool.set(workerPath, client);
  }
  client.refs++;
  return client;
}

/** Drops a reference; the last one terminates the worker. */
export async function releaseWorker(client: SqlWorkerClient): Promise<void> {
  client.refs--;
  if (client.refs <= 0) await client.terminate();
}

/** Number of running workers (for tests: 0 once every layer is closed). */
export function runningWorkers(): number {
  return pool.size;
}
