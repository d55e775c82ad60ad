/** Runs the layer conformance suite against FileLayer: real *.space files in a temp folder. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PersistenceLayer } from '../../src/persistence/contract';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import { faultyWorkerPath, injectFileFault } from '../helpers/fileFaults';
import { describeStoreConformance, type LayerFault, type LayerHarness } from './storeConformance';

const KEY = Buffer.alloc(32, 3);
/** The storage worker with fault injection (test/helpers/fileFaults.ts); snapshots after a few ops, so the suite runs through them too. */
const OPTS = { secretKey: KEY, workerPath: faultyWorkerPath, snapshotTailOps: 20 } as const;

function asFile(layer: PersistenceLayer): FileLayer {
  if (!(layer instanceof FileLayer)) throw new TypeError(`not a FileLayer: ${layer.id}`);
  return layer;
}

function fileHarness(): LayerHarness {
  let dir: string | undefined;
  let layers: FileLayer[] = [];
  const track = (l: FileLayer): FileLayer => {
    layers.push(l);
    return l;
  };
  return {
    async create(spaceId) {
      dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-conf-'));
      return track(await FileLayer.create(path.join(dir, `${spaceId}-${layers.length}.space`), spaceId, OPTS));
    },
    async reopen(layer) {
      const f = asFile(layer);
      await f.close();
      return track(await FileLayer.open(f.path, OPTS));
    },
    async second(layer) {
      return track(await FileLayer.open(asFile(layer).path, OPTS));
    },
    async refresh(layer) {
      await asFile(layer).refresh();
    },
    async injectFault(layer, fault: LayerFault) {
      await injectFileFault(asFile(layer), fault);
    },
    async cleanup() {
      const open = layers;
      layers = [];
      await Promise.all(open.map((l) => l.close()));
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
      dir = undefined;
    },
  };
}

describeStoreConformance('FileLayer (sql.js *.space file)', fileHarness());
