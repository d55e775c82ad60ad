// The space editor's pure parts: the message checks, the tree edits with their undo records,
// and the views and patches sent to the webview.
import assert from 'node:assert/strict';
import { AppTree, newVertexId } from '../../src/spaces/appTree';
import { Notes } from '../../src/spaces/apps/notes';
import { Chat } from '../../src/spaces/apps/chat';
import { COALESCE_MS, TreeEditor, applyEdit, type EditRecord, type EditResult } from '../../src/views/editor/treeEdits';
import { EditHistory, type RecordedEdit } from '../../src/views/editor/editHistory';
import { buildPatch, buildView } from '../../src/views/editor/treeViews';
import { BadMessageError, parseWebviewMessage, type TreePatch } from '../../src/webview/protocol';

function fresh(): AppTree {
  return AppTree.createNew('aaaaaaaaaaaaaaaa', newVertexId());
}

/** The outline as nested text: "a(b,c),d". */
function shape(notes: Notes, parent = notes.rootId): string {
  return notes
    .items(parent)
    .map((i) => (i.children.length ? `${i.text}(${shape(notes, i.id)})` : i.text))
    .join(',');
}

describe('space editor: webview messages', () => {
  it('accepts every well-formed message', () => {
    const id = 'a'.repeat(32);
    for (const m of [
      { type: 'ready' },
      { type: 'select', treeId: id },
      { type: 'select', treeId: null },
      { type: 'addAppTree' },
      { type: 'openAsText' },
      { type: 'painted', treeId: id, items: 3, ms: 12.5 },
      { type: 'edit', seq: 1, treeId: id, edit: { op: 'add', text: 'x' } },
      { type: 'edit', seq: 2, treeId: id, edit: { op: 'add', afterId: id, text: '' } },
      { type: 'edit', seq: 3, treeId: id, edit: { op: 'split', id, before: 'a', after: 'b' } },
      { type: 'edit', seq: 4, treeId: id, edit: { op: 'setDone', id, done: true } },
      { type: 'edit', seq: 5, treeId: id, edit: { op: 'indent', id } },
      { type: 'edit', seq: 6, treeId: id, edit: { op: 'post', text: 'hi' } },
      { type: 'edit', seq: 7, treeId: id, edit: { op: 'setProp', id, key: 'k', json: '1' } },
      { type: 'edit', seq: 8, treeId: id, edit: { op: 'deleteVertex', id } },
      { type: 'edit', seq: 9, treeId: id, edit: { op: 'paste', id, before: 'a', lines: ['b', 'c'], after: 'd' } },
      { type: 'edit', seq: 10, treeId: id, edit: { op: 'editMessage', id, text: 'x' } },
      { type: 'edit', seq: 11, treeId: id, edit: { op: 'deleteMessage', id } },
      { type: 'edit', seq: 12, treeId: id, edit: { op: 'merge', id, intoId: id } },
      { type: 'edit', seq: 13, treeId: id, edit: { op: 'selection', action: 'cut', ids: [id] } },
      { type: 'edit', seq: 14, treeId: id, edit: { op: 'moveTo', ids: [id], parentId: id, afterId: id } },
      { type: 'openLink', url: 'https://example.com/' },
    ]) {
      assert.deepEqual(JSON.parse(JSON.stringify(parseWebviewMessage(m))), m);
    }
  });

  it('refuses bad messages with the reason', () => {
    const id = 'a'.repeat(32);
    const bad: [unknown, RegExp][] = [
      [null, /not an object/],
      ['ready', /not an object/],
      [{ type: 'launch' }, /unknown type/],
      [{ type: 'select', treeId: '../x' }, /not an id/],
      [{ type: 'edit', seq: -1, treeId: id, edit: { op: 'add', text: '' } }, /seq/],
      [{ type: 'edit', seq: 1.5, treeId: id, edit: { op: 'add', text: '' } }, /seq/],
      [{ type: 'edit', seq: 1, treeId: id, edit: { op: 'rm -rf', id } }, /unknown edit/],
      [{ type: 'edit', seq: 1, treeId: id, edit: { op: 'setText', id, text: 5 } }, /not a string/],
      [{ type: 'edit', seq: 1, treeId: id, edit: { op: 'setText', id, text: 'x'.repeat(100_001) } }, /longer than/],
      [{ type: 'edit', seq: 1, treeId: id, edit: { op: 'setDone', id, done: 'yes' } }, /boolean/],
      [{ type: 'edit', seq: 1, treeId: id, edit: [] }, /not an object/],
      [{ type: 'painted', treeId: id, items: 1, ms: Infinity }, /bad figures/],
      [{ type: 'edit', seq: 1, treeId: id, edit: { op: 'paste', id, before: '', lines: [], after: '' } }, /not a list of lines/],
      [{ type: 'edit', seq: 1, treeId: id, edit: { op: 'paste', id, before: '', lines: 'a\nb', after: '' } }, /not a list of lines/],
      [{ type: 'edit', seq: 1, treeId: id, edit: { op: 'paste', id, before: '', lines: ['a', 5], after: '' } }, /lines\[1\] is not a string/],
      [{ type: 'edit', seq: 1, treeId: id, edit: { op: 'paste', id, before: '', lines: ['a\nb'], after: '' } }, /line break/],
      [{ type: 'edit', seq: 1, treeId: id, edit: { op: 'paste', id, before: '', lines: Array.from({ length: 1001 }, () => 'x'), after: '' } }, /more than 1000 lines/],
      [{ type: 'edit', seq: 1, treeId: id, edit: { op: 'paste', id, before: '', lines: Array.from({ length: 11 }, () => 'x'.repeat(100_000)), after: '' } }, /more than 1000000 characters/],
    ];
    for (const [m, re] of bad) assert.throws(() => parseWebviewMessage(m), (e: unknown) => e instanceof BadMessageError && re.test(e.message), JSON.stringify(m));
  });
});

describe('space editor: edits and undo', () => {
  let tree: AppTree;
  let notes: Notes;
  let now: number;
  let editor: TreeEditor;
  const records: EditRecord[] = [];
  const run = (r: EditResult): EditResult => {
    if (r.record) records.push(r.record);
    return r;
  };

  beforeEach(() => {
    tree = fresh();
    notes = new Notes(tree);
    now = 1_000_000;
    editor = new TreeEditor(tree, () => now);
    records.length = 0;
  });
  afterEach(() => tree.dispose());

  it('add, split, indent, outdent and moves undo and redo step by step', () => {
    const a = notes.add('a');
    const r1 = run(editor.notes({ op: 'split', id: a, before: 'a', after: 'b' }));
    const b = r1.focus?.itemId ?? assert.fail('no focus');
    assert.equal(r1.focus?.caret, 'start');
    run(editor.notes({ op: 'add', afterId: b, text: 'c' }));
    const c = notes.items()[2].id;
    run(editor.notes({ op: 'indent', id: b }));
    run(editor.notes({ op: 'indent', id: c }));
    assert.equal(shape(notes), 'a(b,c)');
    run(editor.notes({ op: 'moveUp', id: c }));
    assert.equal(shape(notes), 'a(c,b)');
    run(editor.notes({ op: 'outdent', id: c }));
    assert.equal(shape(notes), 'a(b),c');
    run(editor.notes({ op: 'setDone', id: b, done: true }));
    run(editor.notes({ op: 'delete', id: a }));
    assert.equal(shape(notes), 'c');

    const states = ['c', 'a(b),c', 'a(b),c', 'a(c,b)', 'a(b,c)', 'a(b),c', 'a,b,c', 'a,b', 'a'];
    for (let i = records.length - 1; i >= 0; i--) {
      records[i].undo();
      assert.equal(shape(notes), states[records.length - i], `after undoing ${records[i].label}`);
    }
    assert.equal(notes.item(b).done, false);
    for (let i = 0; i < records.length; i++) {
      records[i].redo();
      assert.equal(shape(notes), states[records.length - 1 - i], `after redoing ${records[i].label}`);
    }
    assert.equal(notes.item(b).done, true);
  });

  it('a split of an item with children makes the new item its first child', () => {
    const a = notes.add('ab');
    notes.add('child', a);
    const r = editor.notes({ op: 'split', id: a, before: 'a', after: 'b' });
    assert.equal(shape(notes), 'a(b,child)');
    r.record?.undo();
    assert.equal(shape(notes), 'ab(child)');
  });

  it('typing into one item coalesces into one undo step until a pause or another item', () => {
    const a = notes.add('');
    const b = notes.add('');
    const steps = ['h', 'he', 'hel'].map((text) => run(editor.notes({ op: 'setText', id: a, text })));
    assert.equal(steps.filter((s) => s.record).length, 1);
    now += COALESCE_MS + 1;
    run(editor.notes({ op: 'setText', id: a, text: 'hell' }));
    run(editor.notes({ op: 'setText', id: b, text: 'x' }));
    run(editor.notes({ op: 'setText', id: a, text: 'hello' }));
    assert.equal(records.length, 4);
    records[3].undo();
    assert.equal(notes.item(a).text, 'hell');
    records[1].undo();
    assert.equal(notes.item(a).text, 'hel');
    records[0].undo();
    assert.equal(notes.item(a).text, '');
    records[0].redo();
    assert.equal(notes.item(a).text, 'hel', 'redo restores all the coalesced typing');
    assert.deepEqual(editor.notes({ op: 'setText', id: b, text: 'x' }), {}, 'no change, no undo step');
  });

  it('delete focuses the item above; undo brings the subtree back', () => {
    const a = notes.add('a');
    const b = notes.add('b');
    notes.add('b1', b);
    const r = editor.notes({ op: 'delete', id: b });
    assert.deepEqual(r.focus, { itemId: a, caret: 'end' });
    assert.equal(shape(notes), 'a');
    r.record?.undo();
    assert.equal(shape(notes), 'a,b(b1)');
  });

  it('delete of the first item, which has none above, focuses the item below its subtree', () => {
    const a = notes.add('a');
    notes.add('a1', a);
    const b = notes.add('b');
    const r = editor.notes({ op: 'delete', id: a });
    assert.deepEqual(r.focus, { itemId: b, caret: 'start' });
    assert.equal(editor.notes({ op: 'delete', id: b }).focus, undefined, 'the last item: nothing left to focus');
  });

  it('lines pasted into an item: the first joins it at the caret, each other one is an item, one undo step', () => {
    const a = notes.add('ab');
    const z = notes.add('z');
    const r = editor.notes({ op: 'paste', id: a, before: 'a', lines: ['1', '2', '3'], after: 'b' });
    assert.equal(shape(notes), 'a1,2,3b,z');
    const last = notes.items()[2].id;
    assert.deepEqual(r.focus, { itemId: last, caret: 1 }, 'the caret after the last pasted line');
    r.record?.undo();
    assert.equal(shape(notes), 'ab,z');
    r.record?.redo();
    assert.equal(shape(notes), 'a1,2,3b,z');
    assert.equal(z, notes.items()[3].id);
    // Into an item with children: the new items come first among them, like Enter.
    const p = notes.add('p');
    notes.add('child', p);
    editor.notes({ op: 'paste', id: p, before: 'p', lines: ['x', 'y'], after: '' });
    assert.equal(shape(notes), 'a1,2,3b,z,px(y,child)');
  });

  it('one history for every source: an edit from the view ends typing\'s step and is announced in order', () => {
    const history = new EditHistory(() => now);
    const seen: RecordedEdit[] = [];
    history.onDidRecord((e) => seen.push(e));
    const spaceId = 'b'.repeat(32);
    const a = notes.add('');
    const b = notes.add('b');
    const ed = history.editor(spaceId, tree);
    assert.equal(history.editor(spaceId, tree), ed, 'one editor per tree');
    history.push(spaceId, ed.notes({ op: 'setText', id: a, text: 'h' }).record);
    history.push(spaceId, ed.notes({ op: 'setText', id: a, text: 'hi' }).record);
    // The Spaces view deletes b (its context menu), then the user types on in a.
    history.run(spaceId, tree, (e) => e.notes({ op: 'delete', id: b }).record);
    history.push(spaceId, ed.notes({ op: 'setText', id: a, text: 'hi!' }).record);
    assert.deepEqual(seen.map((e) => e.record.label), ['Typing', 'Delete Item', 'Typing'], 'the typing after the delete is a step of its own');
    seen[2].record.undo();
    assert.equal(shape(notes), 'hi');
    seen[1].record.undo();
    assert.equal(shape(notes), 'hi,b', 'the next undo is the view\'s delete');
    seen[0].record.undo();
    assert.equal(shape(notes), ',b');
    const view = history.run(spaceId, tree, (e) => e.edit('Move Item', [b], () => tree.move(b, a)));
    assert.equal(shape(notes), '(b)');
    view?.undo();
    assert.equal(shape(notes), ',b');
    history.forget(spaceId);
    assert.notEqual(history.editor(spaceId, tree), ed, 'a closed space starts a new history');
    history.dispose();
  });

  it('undo and redo leave what a teammate changed since: only the edit\'s own traces are taken back', () => {
    const a = notes.add('a');
    const b = notes.add('b');
    const typed = run(editor.notes({ op: 'setText', id: a, text: 'a typed' }));
    const checked = run(editor.notes({ op: 'setDone', id: a, done: true }));
    const moved = run(editor.notes({ op: 'moveDown', id: a }));
    assert.equal(shape(notes), 'b,a typed');
    // A teammate's ops: a's text and its place (as another peer would send them).
    const mate = AppTree.fromOps('cccccccccccccccc', tree.id, tree.allOps());
    try {
      new Notes(mate).setText(a, 'teammate wrote this');
      new Notes(mate).moveUp(a);
      tree.applyRemote(mate.allOps());
    } finally {
      mate.dispose();
    }
    assert.equal(shape(notes), 'teammate wrote this,b');
    moved.record?.undo();
    assert.equal(shape(notes), 'teammate wrote this,b', 'the teammate moved it since: the move is not undone over theirs');
    checked.record?.undo();
    assert.equal(notes.item(a).done, false, 'the check, which nobody changed since, is undone');
    typed.record?.undo();
    assert.equal(notes.item(a).text, 'teammate wrote this', 'the teammate\'s text stays');
    typed.record?.redo();
    assert.equal(notes.item(a).text, 'teammate wrote this');
    checked.record?.redo();
    assert.equal(notes.item(a).done, true);
    void b;
  });

  it('edits of another kind, unknown items and bad JSON are refused and change nothing', () => {
    const a = notes.add('a');
    const before = tree.opCount;
    assert.throws(() => applyEdit(editor, 'notes', { op: 'post', text: 'x' }, 'me'), /does not apply/);
    assert.throws(() => applyEdit(editor, 'notes', { op: 'setText', id: 'f'.repeat(32), text: 'x' }, 'me'), /no item/);
    assert.throws(() => applyEdit(editor, 'inspector', { op: 'setProp', id: a, key: 'k', json: '{' }, 'me'), /not valid JSON/);
    assert.throws(() => applyEdit(editor, 'chat', { op: 'post', text: '   ' }, 'me'), /needs some text/);
    assert.equal(tree.opCount, before);
  });

  it('chat posts and inspector edits undo', () => {
    const chat = new Chat(tree);
    const r = applyEdit(editor, 'chat', { op: 'post', text: 'hello' }, 'ann');
    assert.deepEqual(chat.messages().map((m) => [m.author, m.text]), [['ann', 'hello']]);
    r.record?.undo();
    assert.equal(chat.messages().length, 0);
    const s = applyEdit(editor, 'inspector', { op: 'setProp', id: tree.rootId, key: 'cols', json: '[1,2]' }, 'ann');
    assert.deepEqual(tree.getProp(tree.rootId, 'cols'), [1, 2]);
    s.record?.undo();
    assert.equal(tree.getProp(tree.rootId, 'cols'), undefined);
    s.record?.redo();
    assert.deepEqual(tree.getProp(tree.rootId, 'cols'), [1, 2]);
  });
});

describe('space editor: views and patches', () => {
  it('a notes view lists every item with its children in order; patches carry only what changed', () => {
    const tree = fresh();
    const notes = new Notes(tree);
    try {
      const a = notes.add('a');
      const a1 = notes.add('a1', a);
      const b = notes.add('b');
      const view = buildView('notes', tree, 'me');
      assert.equal(view.kind, 'notes');
      if (view.kind !== 'notes') return;
      assert.equal(view.items.length, 3);
      assert.deepEqual(view.children[tree.rootId], [a, b]);
      assert.deepEqual(view.children[a], [a1]);

      const changes: TreePatch[] = [];
      tree.onDidChange((c) => {
        const p = buildPatch('notes', tree, c.ops);
        if (p) changes.push(p);
      });
      notes.setText(b, 'B');
      notes.moveUp(b);
      notes.delete(a);
      const [text, move, del] = changes.map((p) => (p.kind === 'notes' ? p : assert.fail('not notes')));
      assert.deepEqual(text.items, [{ id: b, parentId: tree.rootId, text: 'B', done: false }]);
      assert.deepEqual(Object.keys(text.children), []);
      assert.deepEqual(move.children[tree.rootId], [b, a]);
      assert.deepEqual(del.items.map((r) => [r.id, r.parentId]), [[a, null]]);
    } finally {
      tree.dispose();
    }
  });

  it('a remote batch of many ops becomes one patch', () => {
    const src = fresh();
    const dst = AppTree.fromOps('bbbbbbbbbbbbbbbb', src.id, src.allOps());
    try {
      const n = new Notes(src);
      for (let i = 0; i < 50; i++) n.add(`item ${i}`);
      const patches: TreePatch[] = [];
      dst.onDidChange((c) => {
        const p = buildPatch('notes', dst, c.ops);
        if (p) patches.push(p);
      });
      dst.applyRemote(src.allOps());
      assert.equal(patches.length, 1);
      const p = patches[0];
      assert.equal(p.kind === 'notes' ? p.items.length : 0, 50);
    } finally {
      src.dispose();
      dst.dispose();
    }
  });
});
