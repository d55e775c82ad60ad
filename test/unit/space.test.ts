import assert from 'node:assert/strict';
import { AppTree, TreeError, type TreeChange } from '../../src/spaces/appTree';
import { Chat } from '../../src/spaces/apps/chat';
import { Notes } from '../../src/spaces/apps/notes';
import type { Op } from '../../src/spaces/ops';
import { Space } from '../../src/spaces/space';

function newSpace(name = 'Team', peerId = 'p1'): { space: Space; changes: TreeChange[] } {
  const tree = Space.newSpaceTree(peerId, name);
  const space = new Space(tree, peerId, () => Promise.reject(new Error('no loader in this test')));
  const changes: TreeChange[] = [];
  space.onDidChange((c) => changes.push(c));
  tree.transact(() => undefined);
  return { space, changes };
}

describe('Space', () => {
  const spaces: Space[] = [];
  afterEach(() => spaces.splice(0).forEach((s) => s.dispose()));
  const make = (...a: Parameters<typeof newSpace>) => {
    const r = newSpace(...a);
    spaces.push(r.space);
    return r;
  };

  it('has a name, settings and emits its creation ops as local changes', () => {
    const { space, changes } = make('Design');
    assert.equal(space.name, 'Design');
    assert.ok(changes.length > 0 && changes.every((c) => c.origin === 'local' && c.treeId === space.id));
    space.setSetting('theme', 'dark');
    space.rename('Design team');
    assert.deepEqual(space.settings(), { theme: 'dark' });
    assert.equal(space.name, 'Design team');
    assert.throws(() => space.rename(''), TreeError);
  });

  it('creates, renames and deletes app trees', () => {
    const { space } = make();
    const notes = space.createAppTree('notes', 'Plans');
    const chat = space.createAppTree('chat', 'General');
    assert.deepEqual(space.appTreeRefs().map((r) => [r.appId, r.name]), [['notes', 'Plans'], ['chat', 'General']]);
    space.renameAppTree(notes.id, 'Roadmap');
    assert.equal(space.appTreeRef(notes.id)?.name, 'Roadmap');
    space.deleteAppTree(chat.id);
    assert.deepEqual(space.appTreeRefs().map((r) => r.id), [notes.id]);
    assert.throws(() => space.createAppTree('Bad App', 'x'), /bad app id/);
  });

  it('rebuilds the same space from its ops on another peer', () => {
    const { space, changes } = make();
    const t = space.createAppTree('notes', 'Plans');
    const spaceOps = changes.filter((c) => c.treeId === space.id).flatMap((c) => c.ops);
    const copy = AppTree.fromOps('p2', space.id, [...spaceOps]);
    const space2 = new Space(copy, 'p2', () => Promise.reject(new Error('x')));
    spaces.push(space2);
    assert.equal(space2.name, space.name);
    assert.deepEqual(space2.appTreeRefs(), [{ id: t.id, appId: 'notes', name: 'Plans' }]);
  });

  it('keeps secrets with last-writer-wins and tombstones', () => {
    const { space } = make();
    space.setSecret('openai.key', 'sk-1');
    space.setSecret('openai.key', 'sk-2');
    assert.equal(space.getSecret('openai.key'), 'sk-2');
    assert.deepEqual(space.secretNames(), ['openai.key']);
    assert.equal(space.deleteSecret('openai.key'), true);
    assert.equal(space.getSecret('openai.key'), undefined);
    const tomb = space.secretRecords()[0];
    assert.equal(tomb.value, null);
    assert.deepEqual(space.applySecrets([{ key: 'openai.key', value: 'stale', time: tomb.time - 1, peerId: 'zz' }]), []);
    assert.equal(space.getSecret('openai.key'), undefined);
    assert.throws(() => space.setSecret('bad name', 'x'), /bad secret name/);
  });
});

describe('AppTree', () => {
  let tree: AppTree;
  beforeEach(() => {
    tree = AppTree.createNew('p1', 'f'.repeat(32));
    tree.transact(() => undefined); // emit the creation ops before the test listens
  });
  afterEach(() => tree.dispose());

  it('orders children by position and dumps them in that order', () => {
    const a = tree.addItem(tree.rootId, { text: 'a' });
    const c = tree.addItem(tree.rootId, { text: 'c' });
    const b = tree.addItem(tree.rootId, { text: 'b' }, { after: a });
    const z = tree.addItem(tree.rootId, { text: 'z' }, { before: a });
    assert.deepEqual(tree.childIds(), [z, a, b, c]);
    const d = tree.dump();
    assert.deepEqual(d.children.map((n) => n.props.text), ['z', 'a', 'b', 'c']);
  });

  it('keeps order stable when bisecting the same gap many times', () => {
    const first = tree.addItem(tree.rootId, { n: 0 });
    tree.addItem(tree.rootId, { n: 1000 });
    let after = first;
    for (let i = 1; i <= 80; i++) after = tree.addItem(tree.rootId, { n: i }, { after });
    const ns = tree.childIds().map((id) => tree.getProp(id, 'n'));
    assert.deepEqual(ns, [0, ...Array.from({ length: 80 }, (_, i) => i + 1), 1000]);
  });

  it('refuses to move an item into its own subtree, or to touch the root', () => {
    const a = tree.addItem(tree.rootId);
    const b = tree.addItem(a);
    assert.throws(() => tree.move(a, b), /itself or one of its descendants/);
    assert.throws(() => tree.delete(tree.rootId), /root/);
    assert.throws(() => tree.setProps('nope', { x: 1 }), /no item nope/);
  });

  it('deleted items and their subtrees are gone', () => {
    const a = tree.addItem(tree.rootId);
    const b = tree.addItem(a);
    tree.delete(a);
    assert.equal(tree.has(b), false);
    assert.equal(tree.get(a), undefined);
    assert.deepEqual(tree.dump().children, []);
  });

  it('imports a nested tree in one change', () => {
    const seen: TreeChange[] = [];
    tree.onDidChange((c) => seen.push(c));
    tree.importNodes(tree.rootId, [{ props: { text: 'x' }, children: [{ props: { text: 'y' } }] }, { props: { text: 'z' } }]);
    assert.equal(seen.length, 1);
    const d = tree.dump();
    assert.deepEqual(d.children.map((n) => [n.props.text, n.children.map((c) => c.props.text)]), [['x', ['y']], ['z', []]]);
  });

  it('converges with a replica after exchanging concurrent edits', () => {
    const ops = tree.allOps();
    const other = AppTree.fromOps('p2', tree.id, [...ops]);
    try {
      const mine: TreeChange[] = [];
      const theirs: TreeChange[] = [];
      tree.onDidChange((c) => mine.push(c));
      other.onDidChange((c) => theirs.push(c));
      const x = tree.addItem(tree.rootId, { text: 'mine' });
      other.addItem(other.rootId, { text: 'theirs' });
      tree.setProps(x, { text: 'mine 2' });
      const fresh = other.applyRemote(mine.flatMap((c) => c.ops));
      tree.applyRemote(theirs.filter((c) => c.origin === 'local').flatMap((c) => c.ops));
      assert.equal(fresh.length, mine.filter((c) => c.origin === 'local').flatMap((c) => c.ops).length);
      assert.deepEqual(other.dump(), tree.dump());
      assert.deepEqual(other.applyRemote(mine.flatMap((c) => c.ops)), [], 'known ops are not applied twice');
    } finally {
      other.dispose();
    }
  });
});

describe('notes and chat apps', () => {
  it('outline: add, indent, outdent, move, check', () => {
    const t = AppTree.createNew('p1', 'e'.repeat(32));
    try {
      const n = new Notes(t);
      const a = n.add('a');
      const b = n.add('b');
      const c = n.add('c');
      assert.equal(n.indent(b), true);
      assert.equal(n.indent(a), false, 'the first item cannot be indented');
      assert.deepEqual(n.items().map((i) => [i.text, i.children.map((x) => x.text)]), [['a', ['b']], ['c', []]]);
      assert.equal(n.outdent(b), true);
      assert.deepEqual(n.items().map((i) => i.text), ['a', 'b', 'c']);
      assert.equal(n.moveUp(c), true);
      assert.equal(n.moveDown(a), true);
      assert.deepEqual(n.items().map((i) => i.text), ['c', 'a', 'b']);
      n.setDone(a, true);
      assert.equal(n.item(a).done, true);
    } finally {
      t.dispose();
    }
  });

  it('chat: messages in time order', () => {
    const t = AppTree.createNew('p1', 'd'.repeat(32));
    try {
      const chat = new Chat(t);
      chat.post('bob', 'second', 2000);
      chat.post('ann', 'first', 1000);
      assert.deepEqual(chat.messages().map((m) => `${m.author}: ${m.text}`), ['ann: first', 'bob: second']);
      assert.throws(() => chat.post(' ', 'x'), /author/);
    } finally {
      t.dispose();
    }
  });
});

describe('AppTree.fromSnapshot', () => {
  it('opens a snapshot plus the ops after it as the same tree; refuses a snapshot of another tree', () => {
    const a = AppTree.createNew('p1', 'c'.repeat(32));
    const other = AppTree.createNew('p1', 'd'.repeat(32));
    try {
      const n = new Notes(a);
      const x = n.add('x');
      n.indent(n.add('y', undefined, x));
      const snap = a.snapshot();
      a.transact(() => undefined);
      const later: Op[] = [];
      a.onDidChange((c) => {
        for (const op of c.ops) later.push(op);
      });
      n.setDone(n.add('z'), true);
      const b = AppTree.fromSnapshot('p2', a.id, snap, later);
      try {
        assert.deepEqual(b.dump(), a.dump());
        assert.deepEqual(b.applyRemote(a.allOps()), [], 'every op is known');
      } finally {
        b.dispose();
      }
      assert.throws(() => AppTree.fromSnapshot('p2', a.id, other.snapshot()), TreeError);
    } finally {
      a.dispose();
      other.dispose();
    }
  });
});

describe('AppTree.fromOps', () => {
  it('a tree loaded from ops converges with the one that made them', () => {
    const a = AppTree.createNew('p1', 'c'.repeat(32));
    try {
      const n = new Notes(a);
      const x = n.add('x');
      n.add('y');
      n.indent(n.add('z'));
      n.setDone(x, true);
      const b = AppTree.fromOps('p2', a.id, a.allOps());
      try {
        assert.deepEqual(b.dump(), a.dump());
        assert.deepEqual(b.applyRemote(a.allOps()), [], 'every op is known after load');
      } finally {
        b.dispose();
      }
    } finally {
      a.dispose();
    }
  });
});
