/**
 * One size past the 100k-item target: 1,000,000-element arrays through the functions that used to
 * spread arrays into call arguments (`push(...xs)`: "Maximum call stack size exceeded" from about
 * 100k elements) or that added a batch one op at a time (quadratic for a tree's order of ops).
 * The lint rule `no-restricted-syntax` (eslint.config.mjs) keeps such spreads out of src/.
 */
import * as assert from 'node:assert/strict';
import { ServerLayer } from '../../src/persistence/server/serverLayer';
import type { SyncStateStore } from '../../src/persistence/server/syncState';
import { AppTree } from '../../src/spaces/appTree';
import { OpRangeSet } from '../../src/spaces/opRanges';
import type { Op } from '../../src/spaces/ops';
import { newId } from '../helpers/fileFixtures';
import { freePort } from '../helpers/syncClients';

const N = 1_000_000;

/** `count` items under the root of `treeId` made by `peerId` (move ops, counters from `first`); vertex ids start with `prefix`. */
function items(treeId: string, peerId: string, prefix: string, first: number, count: number): Op[] {
  const ops: Op[] = [];
  for (let i = 0; i < count; i++) ops.push({ id: { counter: first + i, peerId }, targetId: prefix + (first + i).toString(16).padStart(31, '0'), parentId: treeId });
  return ops;
}

describe('1M-element arrays (one size past the 100k target)', function () {
  this.timeout(5 * 60_000);

  it('ServerLayer.loadTree returns 1M stored ops plus 1M outbox ops', async function () {
    const spaceId = newId();
    const treeId = newId();
    const stored = items(treeId, 'a', 'a', 1, N);
    const waiting = items(treeId, 'b', 'b', 1, N);
    const store: SyncStateStore = {
      loadSyncState: async () => ({ seq: 0, outbox: new Map([[treeId, waiting]]) }),
      saveIncoming: async () => undefined,
      addToOutbox: async () => undefined,
      removeFromOutbox: async () => undefined,
      loadOps: async (_layer, t) => (t === treeId ? stored : []),
    };
    // No server there: the load answers with what the layer has.
    const layer = new ServerLayer({ url: `http://127.0.0.1:${await freePort()}`, token: 'spt_x', peerId: 'me', spaceId, syncState: store, timings: { backoffBaseMs: 60_000 } });
    try {
      const ops = await layer.loadTree(treeId);
      assert.equal(ops.length, 2 * N);
      assert.equal(layer.outboxSize, N);
    } finally {
      await layer.close();
    }
  });

  it('AppTree.countItems counts 1M children of one item', function () {
    const treeId = newId();
    const tree = AppTree.fromOps('me', treeId, [{ id: { counter: 1, peerId: 'p' }, targetId: treeId, parentId: null }, ...items(treeId, 'p', 'c', 2, N)]);
    try {
      assert.equal(tree.countItems(), N);
    } finally {
      tree.dispose();
    }
  });

  it('OpRangeSet.addOps takes 1M ops in a tree\'s order (moves, then properties) into one range', function () {
    const peer = 'p';
    const ops: Op[] = [];
    // A tree's ops as RepTree lists them: the moves (odd counters here), then the properties.
    for (let c = 1; c <= N; c += 2) ops.push({ id: { counter: c, peerId: peer }, targetId: 'x', parentId: 'y' });
    for (let c = 2; c <= N; c += 2) ops.push({ id: { counter: c, peerId: peer }, targetId: 'x', key: 'k', value: c, transient: false });
    const set = new OpRangeSet();
    set.addOps(ops.slice(0, N / 2));
    set.addOps(ops.slice(N / 2));
    assert.deepEqual(set.toRanges(), { [peer]: [[1, N]] });
    assert.deepEqual(OpRangeSet.fromOps(ops).toRanges(), { [peer]: [[1, N]] });
    assert.ok(set.has(peer, N) && !set.has(peer, N + 1));
  });
});
