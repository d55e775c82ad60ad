/**
 * Runs the layer conformance suite against SqlitePersistenceLayer: each layer over its own
 * connection (ServerStore) to a database in a fresh temporary directory; `reopen` closes the
 * connection and opens a new one (like a server restart); `second` is another connection to the
 * same file (like the `token` commands or a second process next to the server).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PersistenceLayer } from '../../src/persistence/contract';
import { SqlitePersistenceLayer } from '../../src/server/store/sqliteLayer';
import { ServerStore } from '../../src/server/store/serverStore';
import { SqliteSpaceStore } from '../../src/server/store/sqliteSpaceStore';
import { describeStoreConformance, type LayerHarness } from './storeConformance';

function sqliteHarness(): LayerHarness {
  const dirs: string[] = [];
  const opened = new Map<PersistenceLayer, { store: ServerStore; dir: string }>();

  const open = (dir: string, spaceId: string): PersistenceLayer => {
    const store = ServerStore.open(dir);
    const layer = new SqlitePersistenceLayer(new SqliteSpaceStore(store), spaceId);
    opened.set(layer, { store, dir });
    return layer;
  };
  const entry = (layer: PersistenceLayer): { store: ServerStore; dir: string } => {
    const e = opened.get(layer);
    if (!e) throw new TypeError(`not a layer of this harness: ${layer.id}`);
    return e;
  };

  return {
    async create(spaceId) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-sqlite-layer-'));
      dirs.push(dir);
      return open(dir, spaceId);
    },
    async reopen(layer) {
      const { store, dir } = entry(layer);
      await layer.close();
      store.close();
      return open(dir, layer.spaceId);
    },
    async second(layer) {
      return open(entry(layer).dir, layer.spaceId);
    },
    async refresh() {
      // Every read goes to the database: nothing is cached but row ids.
    },
    async cleanup() {
      for (const [layer, { store }] of opened) {
        await layer.close();
        store.close();
      }
      opened.clear();
      for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
    },
  };
}

describeStoreConformance('SqlitePersistenceLayer (server store)', sqliteHarness());
