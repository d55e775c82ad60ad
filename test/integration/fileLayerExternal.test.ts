import * as assert from 'node:assert/strict';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import type { IncomingOps, SecretRecord } from '../../src/persistence/contract';
import { opKey } from '../../src/spaces/ops';
import { TEST_KEY, TempDir, canonical, makeOps, newId, nextEvent } from '../helpers/fileFixtures';

describe('FileLayer: changes made by another writer', function () {
  this.timeout(60_000);
  let tmp: TempDir;
  let layers: FileLayer[];
  const track = (l: FileLayer): FileLayer => {
    layers.push(l);
    return l;
  };

  beforeEach(() => {
    tmp = new TempDir();
    layers = [];
  });
  afterEach(async () => {
    await Promise.allSettled(layers.map((l) => l.close()));
    tmp.cleanup();
  });

  async function pair(watch: boolean): Promise<[FileLayer, FileLayer]> {
    const a = track(await FileLayer.create(tmp.file(), newId(), { secretKey: TEST_KEY, watch }));
    const b = track(await FileLayer.open(tmp.file(), { secretKey: TEST_KEY, watch: false }));
    return [a, b];
  }

  it('refresh() reports ops another instance wrote, once, and loadTree includes them', async function () {
    const [a, b] = await pair(false);
    const tree = a.spaceId;
    const app = newId();
    await a.saveOps(tree, makeOps(tree, 'pa', 1, 30));
    const received: IncomingOps[] = [];
    a.onIncoming((e) => received.push(e));
    const bOps = makeOps(tree, 'pb', 1, 40);
    const bApp = makeOps(app, 'pb', 1, 5);
    await b.saveOps(tree, [...bOps, ...makeOps(tree, 'pa', 1, 30)]);
    await b.saveOps(app, bApp);
    await a.refresh();
    assert.deepEqual(
      received.map((e) => e.treeId).sort(),
      [tree, app].sort(),
    );
    assert.deepEqual(canonical(received.find((e) => e.treeId === tree)?.ops ?? []), canonical(bOps), 'only the ops A lacked');
    assert.deepEqual(canonical(received.find((e) => e.treeId === app)?.ops ?? []), canonical(bApp));
    await a.refresh();
    assert.equal(received.length, 2, 'a second refresh reported the same ops again');
    assert.equal((await a.loadTree(tree)).length, 70);
    assert.deepEqual((await a.listTrees()).sort(), [tree, app].sort());
  });

  it('the watcher reports another instance’s writes without a refresh() call', async function () {
    const [a, b] = await pair(true);
    const tree = a.spaceId;
    const bOps = makeOps(tree, 'pb', 1, 25);
    const seen = nextEvent(a.onIncoming, (e) => e.ops.some((op) => opKey(op) === opKey(bOps[24])));
    await b.saveOps(tree, bOps);
    const e = await seen;
    assert.equal(e.treeId, tree);
    assert.deepEqual(canonical(e.ops), canonical(bOps));
  });

  it('a write that merges the other writer’s ops reports them and keeps both', async function () {
    const [a, b] = await pair(false);
    const tree = a.spaceId;
    await b.saveOps(tree, makeOps(tree, 'pb', 1, 10));
    const seen = nextEvent(a.onIncoming);
    await a.saveOps(tree, makeOps(tree, 'pa', 1, 10));
    assert.equal((await seen).ops.length, 10);
    await Promise.all([a.close(), b.close()]);
    const c = track(await FileLayer.open(tmp.file()));
    assert.equal((await c.loadTree(tree)).length, 20);
  });

  it('secrets written by the other instance arrive through onIncomingSecrets and merge per key', async function () {
    const [a, b] = await pair(false);
    const rec = (key: string, value: string | null, time: number, peerId: string): SecretRecord => ({ key, value, time, peerId });
    await a.saveSecrets([rec('shared', 'a-old', 1000, 'pa'), rec('only-a', 'a', 1000, 'pa')]);
    const got = nextEvent(a.onIncomingSecrets);
    await b.saveSecrets([rec('shared', 'b-new', 2000, 'pb')]);
    await a.refresh();
    assert.deepEqual(await got, [rec('shared', 'b-new', 2000, 'pb')]);
    await a.saveSecrets([rec('shared', 'a-older', 1500, 'pa'), rec('only-b', null, 3000, 'pa')]);
    await Promise.all([a.close(), b.close()]);
    const c = track(await FileLayer.open(tmp.file(), { secretKey: TEST_KEY }));
    const byKey = new Map((await c.loadSecrets()).map((r) => [r.key, r]));
    assert.deepEqual(byKey.get('shared'), rec('shared', 'b-new', 2000, 'pb'));
    assert.deepEqual(byKey.get('only-a'), rec('only-a', 'a', 1000, 'pa'));
    assert.deepEqual(byKey.get('only-b'), rec('only-b', null, 3000, 'pa'));
  });

  it('concurrent saves from two instances in one process all land', async function () {
    const [a, b] = await pair(true);
    const tree = a.spaceId;
    const saves: Array<Promise<void>> = [];
    for (let i = 0; i < 20; i++) {
      saves.push(a.saveOps(tree, makeOps(tree, 'pa', 1 + i * 10, 10)), b.saveOps(tree, makeOps(tree, 'pb', 1 + i * 10, 10)));
    }
    await Promise.all(saves);
    await Promise.all([a.close(), b.close()]);
    const c = track(await FileLayer.open(tmp.file()));
    assert.equal((await c.loadTree(tree)).length, 400);
  });
});
