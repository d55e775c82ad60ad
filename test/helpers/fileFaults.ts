/**
 * Fault injection for FileLayer tests, outside src: a layer opened with `workerPath:
 * faultyWorkerPath` runs its storage worker from faultyFileWorker.ts (the real worker with a
 * wrapper around its dispatch), and `injectFileFault` arms a fault there for the layer's file:
 *
 * - 'fail-next-load': the next read of the file (listTrees, loadTree, loadTreeState,
 *   loadSecrets, loadSyncState) is answered with an IO error, the data untouched;
 * - 'fail-next-save': the next flush finds the file read-only (its write bits are cleared for
 *   that flush and restored after), so the batch is inserted in memory and its write is refused,
 *   as on a real refusal.
 *
 * The test and the worker talk over a BroadcastChannel; the fault is armed when this resolves.
 */
import path from 'node:path';
import { BroadcastChannel } from 'node:worker_threads';
import type { FileLayer } from '../../src/persistence/file/fileLayer';

export type FileFault = 'fail-next-load' | 'fail-next-save';

/** The channel name, shared with faultyFileWorker.ts. */
export const FAULT_CHANNEL = 'spaces-test-file-faults';

export interface FaultRequest {
  readonly id: string;
  readonly file: string;
  readonly fault: FileFault;
}

export interface FaultAck {
  readonly ack: string;
}

/** The worker script to pass as FileLayerOptions.workerPath. */
export const faultyWorkerPath = path.join(__dirname, 'faultyFileWorker.js');

/** How long the worker may take to acknowledge a fault. */
const ACK_TIMEOUT_MS = 10_000;

let nextId = 0;

export async function injectFileFault(layer: FileLayer, fault: FileFault): Promise<void> {
  const ch = new BroadcastChannel(FAULT_CHANNEL);
  const id = `${process.pid}-${++nextId}`;
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no storage worker acknowledged ${fault} for ${layer.realPath}: was the layer opened with faultyWorkerPath?`)), ACK_TIMEOUT_MS);
      ch.onmessage = (m: unknown) => {
        const data = (m as { data?: Partial<FaultAck> }).data;
        if (data?.ack === id) resolve();
      };
      const req: FaultRequest = { id, file: layer.realPath, fault };
      ch.postMessage(req);
    });
  } finally {
    clearTimeout(timer);
    ch.close();
  }
}
