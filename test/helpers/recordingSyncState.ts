/** A FileLayer as SyncStateStore that records what leaves the outbox: ops the server confirmed. */
import type { FileLayer } from '../../src/persistence/file/fileLayer';
import type { SyncStateStore } from '../../src/persistence/server/syncState';
import { opKey } from '../../src/spaces/ops';

/** `confirmed` gets, per tree, the key (opKey) of every op removed from the outbox. */
export function recording(file: FileLayer, confirmed: Map<string, Set<string>>): SyncStateStore {
  return {
    loadSyncState: (id) => file.loadSyncState(id),
    saveIncoming: (id, treeId, ops, seq) => file.saveIncoming(id, treeId, ops, seq),
    addToOutbox: (id, treeId, ops) => file.addToOutbox(id, treeId, ops),
    removeFromOutbox: (id, treeId, ops) => {
      let set = confirmed.get(treeId);
      if (!set) confirmed.set(treeId, (set = new Set()));
      for (const op of ops) set.add(opKey(op));
      return file.removeFromOutbox(id, treeId, ops);
    },
  };
}
