/** Item history and space activity from the op log (src/spaces/history.ts), on real trees of two peers. */
import * as assert from 'node:assert/strict';
import { AppTree } from '../../src/spaces/appTree';
import { itemHistory, recentActivity } from '../../src/spaces/history';
import { compareOps, opKey } from '../../src/spaces/ops';

const TREE = 'e'.repeat(32);
const ALICE = 'a1a1a1a1a1a1a1a1';
const BOB = 'b2b2b2b2b2b2b2b2';
const USERS = new Map([
  [ALICE, 'alice'],
  [BOB, 'bob'],
]);
const authorOf = (p: string) => USERS.get(p);

/** Alice and Bob share a tree; `sync` brings each the other's ops. */
function pair(): { a: AppTree; b: AppTree; sync(): void } {
  const a = AppTree.createNew(ALICE, TREE, { name: 'Plan' });
  const b = AppTree.fromOps(BOB, TREE, a.allOps());
  return {
    a,
    b,
    sync() {
      b.applyRemote(a.allOps());
      a.applyRemote(b.allOps());
    },
  };
}

describe('history: one item from the op log', () => {
  it('lists who changed its text, check state and place, in op order, superseded values included', () => {
    const { a, b, sync } = pair();
    const list = a.addItem(a.id, { text: 'List', done: false });
    const item = a.addItem(a.id, { text: 'Call Bob', done: false });
    sync();
    b.setProps(item, { text: 'Call Bob today' });
    sync();
    // Concurrent edits: one of them loses last-writer-wins but stays in the history.
    a.setProps(item, { text: 'alice version' });
    b.setProps(item, { text: 'bob version' });
    sync();
    b.setProps(item, { done: true });
    a.move(item, list);
    sync();
    const h = itemHistory(a.itemOps(item), item, authorOf);
    const texts = h.filter((e) => e.kind === 'text');
    assert.deepEqual(texts.map((e) => e.value).slice(0, 2), ['Call Bob', 'Call Bob today']);
    assert.deepEqual(new Set(texts.slice(2).map((e) => e.value)), new Set(['alice version', 'bob version']));
    assert.deepEqual(texts.map((e) => e.author).slice(0, 2), ['alice', 'bob']);
    const winner = String(a.getProp(item, 'text'));
    assert.deepEqual(texts.filter((e) => e.current).map((e) => e.value), [winner], 'exactly the value in force is current');
    const done = h.filter((e) => e.kind === 'done');
    assert.deepEqual(done.map((e) => [e.value, e.author, e.current]), [
      [false, 'alice', false],
      [true, 'bob', true],
    ]);
    assert.equal(h[0].kind, 'created');
    assert.equal(h[0].author, 'alice');
    const places = h.filter((e) => e.kind === 'place' || e.kind === 'created');
    const last = places[places.length - 1];
    assert.equal(last.current, true);
    assert.deepEqual(last.placement, a.placement(item), 'the current place is where the item is');
    // Op order, the same on both replicas.
    assert.deepEqual(itemHistory(b.itemOps(item), item, authorOf), h);
    for (let i = 1; i < h.length; i++) assert.ok(h[i - 1].counter < h[i].counter || (h[i - 1].counter === h[i].counter && h[i - 1].peerId < h[i].peerId));
  });

  it('a delete is an entry whose placement has no parent; unknown peers have no author', () => {
    const a = AppTree.createNew('c3c3c3c3c3c3c3c3', TREE, {});
    const item = a.addItem(a.id, { text: 'gone soon' });
    a.delete(item);
    const h = itemHistory(a.itemOps(item), item, authorOf);
    const del = h.find((e) => e.kind === 'deleted');
    assert.ok(del);
    assert.equal(del.placement?.parentId, null);
    assert.equal(del.current, true);
    assert.ok(h.every((e) => e.author === undefined));
    assert.deepEqual(itemHistory(a.itemOps('f'.repeat(32)), 'f'.repeat(32), authorOf), []);
  });

  it('itemOps holds exactly the item\'s ops of the whole log (moves, winners, superseded)', () => {
    const { a, b, sync } = pair();
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(a.addItem(a.id, { text: `i${i}`, done: false }));
    sync();
    for (let r = 0; r < 5; r++) {
      for (const id of ids.slice(0, 10)) {
        a.setProps(id, { text: `a${r}` });
        b.setProps(id, { text: `b${r}`, done: r % 2 === 0 });
      }
      b.move(ids[r], ids[19 - r]);
      sync();
    }
    for (const id of ids) {
      const fromLog = a
        .allOps()
        .filter((op) => op.targetId === id)
        .sort(compareOps)
        .map(opKey);
      assert.deepEqual(a.itemOps(id).sort(compareOps).map(opKey), fromLog, id);
    }
  });

  it('limit keeps the newest entries', () => {
    const a = AppTree.createNew(ALICE, TREE, {});
    const item = a.addItem(a.id, { text: '0' });
    for (let i = 1; i <= 50; i++) a.setProps(item, { text: String(i) });
    const h = itemHistory(a.itemOps(item), item, authorOf, 10);
    assert.equal(h.length, 10);
    assert.equal(h[h.length - 1].value, '50');
  });
});

describe('history: the space\'s recent activity', () => {
  it('the newest changes first, with their authors, bounded', () => {
    const { a, b, sync } = pair();
    const item = a.addItem(a.id, { text: 'x', done: false });
    sync();
    b.setProps(item, { text: 'y' });
    sync();
    b.setProps(item, { done: true });
    const act = recentActivity([{ treeId: TREE, ops: b.allOps() }], authorOf, 2);
    assert.equal(act.length, 2);
    assert.deepEqual(act.map((e) => [e.kind, e.author, e.itemId]), [
      ['done', 'bob', item],
      ['text', 'bob', item],
    ]);
    const all = recentActivity([{ treeId: TREE, ops: b.allOps() }], authorOf, 1000);
    assert.equal(all.length, b.opCount);
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1].counter >= all[i].counter);
  });
});
