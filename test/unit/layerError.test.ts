/**
 * One coded error at the layer seam (src/persistence/layerError.ts): every layer's failures are
 * LayerErrors with a code, and the space session passes the code on, so "not found" (nothing
 * failed) is told from a busy or broken layer without reading messages.
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import { LayerError, isLayerError, layerErrorCode } from '../../src/persistence/layerError';
import { ServerLayer, ServerLoadError } from '../../src/persistence/server/serverLayer';
import { MemorySyncStateStore } from '../../src/persistence/server/syncState';
import { SpaceManager } from '../../src/spaces/spaceManager';
import { SpaceOpenError } from '../../src/spaces/spaceSession';
import { MemoryLayer, MemoryStore } from '../helpers/memoryLayer';
import { TempDir, newId } from '../helpers/fileFixtures';

describe('LayerError: one coded error at the layer seam', function () {
  const managers: SpaceManager[] = [];
  let dir: TempDir | undefined;
  afterEach(async () => {
    await Promise.all(managers.splice(0).map((m) => m.dispose()));
    dir?.cleanup();
    dir = undefined;
  });
  const manager = (): SpaceManager => {
    const m = new SpaceManager({ loadTimeoutMs: 5_000 });
    managers.push(m);
    return m;
  };

  it('a space no layer holds: NOT_FOUND (nothing failed), a LayerError', async function () {
    const spaceId = newId();
    const err = await manager()
      .open(spaceId, [new MemoryLayer(spaceId, { store: new MemoryStore() }), new MemoryLayer(spaceId, { store: new MemoryStore(), id: 'memory:b' })])
      .then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof SpaceOpenError && err instanceof LayerError, String(err));
    assert.equal(err.code, 'NOT_FOUND');
    assert.equal(err.noOps, true);
  });

  it("a layer that fails to load: the open fails with that layer's code, not NOT_FOUND", async function () {
    const spaceId = newId();
    const stalled = new MemoryLayer(spaceId, { store: new MemoryStore() });
    stalled.faults.failLoads = 1;
    stalled.faults.error = () => new ServerLoadError('host: no progress for 5000 ms while loading the space', 'STALLED');
    const err = await manager()
      .open(spaceId, [stalled])
      .then(() => undefined, (e: unknown) => e);
    assert.ok(isLayerError(err, 'STALLED'), String(err));
    assert.equal((err as SpaceOpenError).noOps, false);
    assert.match((err as Error).message, /no progress/);
  });

  it("the layers' own failures are LayerErrors with codes: a file that is not a space, a closed server layer", async function () {
    dir = new TempDir();
    const bogus = path.join(dir.path, 'x.space');
    fs.writeFileSync(bogus, 'not a database');
    const fileErr = await FileLayer.open(bogus).then(() => undefined, (e: unknown) => e);
    assert.equal(layerErrorCode(fileErr), 'NOT_A_SPACE', String(fileErr));
    const server = new ServerLayer({ url: 'http://127.0.0.1:9', token: 't', peerId: 'me', spaceId: newId(), syncState: new MemorySyncStateStore() });
    await server.close();
    await assert.rejects(server.loadTree(server.spaceId), (e: unknown) => isLayerError(e, 'CLOSED'));
    assert.equal(layerErrorCode(new Error('plain')), undefined);
  });
});
