/**
 * The caller's side of the sql.js worker: one worker per worker script, shared by every
 * FileLayer of the process and terminated when the last one releases it.
 *
 * The worker is unref'd while idle and ref'd while a request is in flight, so a pending save
 * keeps the process alive until it is durable, but an idle open layer does not keep a process
 * from exiting.
 *
 * sql.js's WebAssembly module is compiled once per process here and handed to every worker: V8
 * shares the compiled (and tiered-up) code between instances, so a worker started after an
 * earlier one stopped runs SQLite at full speed at once instead of through baseline code.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { SpaceFileError, deserializeError } from './errors';
import { wasmApi, type WasmModule } from './wasm';
import type { WorkerMethod, WorkerParams, WorkerRequest, WorkerResponse, WorkerResult } from './workerProtocol';

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** Not a literal, so that a bundler leaves the lookup to run time (a bundle ships the wasm next to the worker). */
const SQL_WASM_MODULE = ['sql.js', 'dist', 'sql-wasm.wasm'].join('/');

/** The wasm next to the worker script (a bundle ships it there), else the one in node_modules. */
export function sqlWasmPath(workerPath: string): string {
  const local = path.join(path.dirname(workerPath), 'sql-wasm.wasm');
  return fs.existsSync(local) ? local : require.resolve(SQL_WASM_MODULE);
}

const modules = new Map<string, Promise<WasmModule | undefined>>();

/** The compiled sql.js module (cached per process), or undefined if it cannot be compiled here. */
function sqlModule(workerPath: string): Promise<WasmModule | undefined> {
  let wasm: string;
  try {
    wasm = sqlWasmPath(workerPath);
  } catch {
    return Promise.resolve(undefined); // the worker finds (or reports) it itself
  }
  let m = modules.get(wasm);
  if (!m) {
    m = fs.promises
      .readFile(wasm)
      .then((bytes) => wasmApi.compile(bytes))
      .catch(() => undefined);
    modules.set(wasm, m);
  }
  return m;
}

/** What the worker gets as `workerData`. */
export interface SqlWorkerData {
  readonly wasmModule?: WasmModule;
}

export class SqlWorkerClient {
  private worker: Worker | undefined;
  /** Requests made before the worker started. */
  private readonly queued: Array<{ req: WorkerRequest; transfer: ArrayBuffer[] }> = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: SpaceFileError | undefined;
  private terminated = false;
  /** Layers (and one-off calls) using this worker. */
  refs = 0;

  constructor(readonly workerPath: string) {
    void sqlModule(workerPath).then((wasmModule) => this.start(wasmModule));
  }

  private start(wasmModule: WasmModule | undefined): void {
    if (this.terminated) return;
    const data: SqlWorkerData = { wasmModule };
    let w: Worker;
    try {
      w = new Worker(this.workerPath, { workerData: data });
    } catch (e) {
      this.fail(new SpaceFileError(`the storage worker could not start: ${e instanceof Error ? e.message : String(e)}`, 'WORKER'));
      return;
    }
    this.worker = w;
    if (this.pending.size === 0) w.unref();
    w.on('message', (m: WorkerResponse) => this.onMessage(m));
    w.on('error', (e: Error) => this.fail(new SpaceFileError(`the storage worker failed: ${e.message}`, 'WORKER')));
    w.on('exit', (code: number) => this.fail(new SpaceFileError(`the storage worker stopped (exit code ${code})`, 'WORKER')));
    for (const { req, transfer } of this.queued.splice(0)) this.post(req, transfer);
  }

  private post(req: WorkerRequest, transfer: ArrayBuffer[]): void {
    try {
      this.worker?.postMessage(req, transfer);
    } catch (e) {
      this.settle(req.id)?.reject(e instanceof Error ? e : new Error(String(e)));
    }
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
      if (this.pending.size === 1) this.worker?.ref();
      const req = { id, method, params } as WorkerRequest;
      if (this.worker) this.post(req, transfer);
      else this.queued.push({ req, transfer });
    });
  }

  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker?.unref();
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
    this.queued.length = 0;
    await this.worker?.terminate();
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
