// The outliner's pure parts: the Markdown form of an outline (export, copy, import, paste) with
// hostile input, and the tree edits behind folding-free outliner keys — nested paste, merge,
// actions on a selection, drag and drop, moves across parents — each one undo step, and each
// merging with a teammate's concurrent edit.
import assert from 'node:assert/strict';
import { AppTree, newVertexId } from '../../src/spaces/appTree';
import { Notes } from '../../src/spaces/apps/notes';
import type { Op } from '../../src/spaces/ops';
import {
  IMPORT_LIMITS,
  MAX_OUTLINE_DEPTH,
  OutlineTooLargeError,
  linesToNodes,
  outlineToMarkdown,
  parseOutline,
  subtreeLines,
  type OutlineLine,
} from '../../src/spaces/apps/notesMarkdown';
import { TreeEditor } from '../../src/views/editor/treeEdits';
import { parseWebviewMessage } from '../../src/webview/protocol';

function fresh(): AppTree {
  return AppTree.createNew('aaaaaaaaaaaaaaaa', newVertexId());
}

/** The outline as nested text: "a(b,c),d"; checked items end with "✓". */
function shape(notes: Notes, parent = notes.rootId): string {
  return notes
    .items(parent)
    .map((i) => {
      const t = i.text + (i.done ? '✓' : '');
      return i.children.length ? `${t}(${shape(notes, i.id)})` : t;
    })
    .join(',');
}

const line = (text: string, depth: number, done = false): OutlineLine => ({ text, done, depth });

describe('outliner: Markdown', () => {
  it('an outline becomes a task list and reads back the same', () => {
    const lines = [line('a', 0), line('b', 1, true), line('c', 2), line('d', 0, true)];
    const md = outlineToMarkdown(lines);
    assert.equal(md, '- [ ] a\n  - [x] b\n    - [ ] c\n- [x] d\n');
    assert.deepEqual(parseOutline(md, IMPORT_LIMITS), lines);
    assert.equal(outlineToMarkdown([]), '');
  });

  it('texts that look like Markdown or hold line breaks read back as the same text', () => {
    const lines = [line('- not a sub-item', 0), line('[x] not done', 0), line('1. not numbered', 0), line('# not a heading', 0), line('two\nlines', 0), line('', 0)];
    const back = parseOutline(outlineToMarkdown(lines), IMPORT_LIMITS);
    assert.deepEqual(
      back.map((l) => [l.text, l.done]),
      [['- not a sub-item', false], ['[x] not done', false], ['1. not numbered', false], ['# not a heading', false], ['two lines', false], ['', false]],
    );
  });

  it('lists from other apps: any marker, tabs, odd and inconsistent indentation, plain indented lines', () => {
    const text = ['* one', '\t+ two', '\t\t3. three', '   - [X] four', '', 'five', '        six', '    seven', '  eight', '1) nine'].join('\r\n');
    const got = parseOutline(text, IMPORT_LIMITS).map((l) => `${l.depth}${l.done ? 'x' : ''}:${l.text}`);
    // "four" (3 columns) is under "one" (0) and shallower than "two" (4): a sibling of "two".
    // "seven" (4) is less than "six" (8) but more than "five" (0): it goes one level under "five".
    assert.deepEqual(got, ['0:one', '1:two', '2:three', '1x:four', '0:five', '1:six', '1:seven', '1:eight', '0:nine']);
    assert.equal(shape(notesFrom(got.length ? parseOutline(text, IMPORT_LIMITS) : [])), 'one(two(three),four✓),five(six,seven,eight),nine');
  });

  it('hostile input is bounded: too long, too many lines, a long line are refused; depth is capped', () => {
    const limits = { chars: 1000, lines: 10, lineChars: 20, depth: 3 };
    assert.throws(() => parseOutline('x'.repeat(1001), limits), OutlineTooLargeError);
    assert.throws(() => parseOutline('- a\n'.repeat(11), limits), /more than 10 items/);
    assert.throws(() => parseOutline(`- ok\n- ${'y'.repeat(21)}`, limits), /line 2 is longer than 20/);
    const deep = Array.from({ length: 8 }, (_, i) => `${' '.repeat(i * 2)}- d${i}`).join('\n');
    assert.deepEqual(
      parseOutline(deep, limits).map((l) => l.depth),
      [0, 1, 2, 3, 3, 3, 3, 3],
    );
  });

  it('a huge, deeply nested outline converts both ways without recursion (one past the import limit refused)', () => {
    const n = IMPORT_LIMITS.lines;
    // Every 1000 lines a staircase 10 levels deeper than the cap, then flat lines.
    const depthOf = (i: number) => (i % 1000 <= MAX_OUTLINE_DEPTH + 10 ? i % 1000 : 0);
    const lines: OutlineLine[] = Array.from({ length: n }, (_, i) => line(`item ${i}`, depthOf(i)));
    const md = outlineToMarkdown(lines);
    const back = parseOutline(md, IMPORT_LIMITS);
    assert.equal(back.length, n);
    // Depths over the cap are read back at the cap.
    assert.ok(back.every((l, i) => l.depth === Math.min(depthOf(i), MAX_OUTLINE_DEPTH) && l.text === `item ${i}`));
    const nodes = linesToNodes(back);
    assert.equal(nodes.length, n - (n / 1000) * (MAX_OUTLINE_DEPTH + 10));
    assert.throws(() => parseOutline(`${md}- one more\n`, IMPORT_LIMITS), OutlineTooLargeError);
    // A chain deeper than any stack: the subtree walk does not recurse either.
    const kids = new Map<string, string[]>();
    for (let i = 0; i < 200_000; i++) kids.set(String(i), [String(i + 1)]);
    const chain = subtreeLines(['0'], (id) => kids.get(id) ?? [], (id) => ({ text: id, done: false }));
    assert.equal(chain.length, 200_001);
    assert.equal(chain[chain.length - 1].depth, 200_000);
  });
});

/** A fresh outline holding `lines` (imported the way the import command does it). */
function notesFrom(lines: OutlineLine[]): Notes {
  const tree = fresh();
  const notes = new Notes(tree);
  const add = (parent: string, nodes: ReturnType<typeof linesToNodes>) => {
    for (const n of nodes) add(tree.addItem(parent, { text: n.text, done: n.done }), n.children);
  };
  add(tree.rootId, linesToNodes(lines));
  return notes;
}

describe('outliner: tree edits', () => {
  let tree: AppTree;
  let notes: Notes;
  let editor: TreeEditor;
  beforeEach(() => {
    tree = fresh();
    notes = new Notes(tree);
    editor = new TreeEditor(tree, () => 0);
  });
  afterEach(() => tree.dispose());
  const id = (text: string): string => {
    const walk = (items: ReturnType<Notes['items']>): string | undefined => {
      for (const i of items) {
        if (i.text === text) return i.id;
        const found = walk(i.children);
        if (found) return found;
      }
      return undefined;
    };
    const found = walk(notes.items());
    assert.ok(found, `no item ${text}`);
    return found;
  };
  const build = (text: string) => {
    for (const n of linesToNodes(parseOutline(text, IMPORT_LIMITS))) {
      const add = (parent: string, node: (typeof n)) => {
        const i = tree.addItem(parent, { text: node.text, done: node.done });
        for (const c of node.children) add(i, c);
      };
      add(tree.rootId, n);
    }
  };

  it('a pasted list nests: deeper lines go under the line above, one undo step', () => {
    build('- a\n- z');
    const lines = parseOutline('- p\n  - [x] q\n    - r\n  - s\n- t', IMPORT_LIMITS);
    const r = editor.notes({ op: 'paste', id: id('a'), before: 'a', lines: lines.map((l) => l.text), after: '!', depths: lines.map((l) => l.depth), done: lines.map((l) => l.done) });
    assert.equal(shape(notes), 'ap(q✓(r),s),t!,z');
    assert.equal(r.focus?.itemId, id('t!'));
    r.record?.undo();
    assert.equal(shape(notes), 'a,z');
    r.record?.redo();
    assert.equal(shape(notes), 'ap(q✓(r),s),t!,z');
  });

  it('a nested paste into an item with children: its sub-lines come first among them', () => {
    build('- a\n  - old');
    editor.notes({ op: 'paste', id: id('a'), before: 'a', lines: ['', 'new', 'sub', 'next'], after: '', depths: [0, 1, 2, 0] });
    assert.equal(shape(notes), 'a(new(sub),next,old)');
  });

  it('merge: the text joins the item above, the children follow, the caret at the join; one undo step', () => {
    build('- a\n  - a1\n- b\n  - b1\n  - b2\n- c');
    const r = editor.notes({ op: 'merge', id: id('b'), intoId: id('a1') });
    assert.equal(shape(notes), 'a(a1b(b1,b2)),c');
    assert.deepEqual(r.focus, { itemId: id('a1b'), caret: 2 });
    r.record?.undo();
    assert.equal(shape(notes), 'a(a1),b(b1,b2),c');
    // Into its parent: the children take its place among the parent's children.
    build('- p\n  - x\n    - x1\n  - y');
    editor.notes({ op: 'merge', id: id('x'), intoId: id('p') });
    assert.equal(shape(notes), 'a(a1),b(b1,b2),c,px(x1,y)');
    assert.throws(() => editor.notes({ op: 'merge', id: id('px'), intoId: id('x1') }), /own sub-item/);
  });

  it('Alt+↑/↓ cross parents: the first child goes to the end of the previous parent, the last to the start of the next', () => {
    build('- a\n  - a1\n- b\n  - b1\n  - b2\n- c');
    editor.notes({ op: 'moveUp', id: id('b1') });
    assert.equal(shape(notes), 'a(a1,b1),b(b2),c');
    editor.notes({ op: 'moveDown', id: id('b1') });
    assert.equal(shape(notes), 'a(a1),b(b1,b2),c');
    editor.notes({ op: 'moveDown', id: id('b2') });
    assert.equal(shape(notes), 'a(a1),b(b1),c(b2)');
    // No next parent: it goes just after its parent.
    editor.notes({ op: 'moveDown', id: id('b2') });
    assert.equal(shape(notes), 'a(a1),b(b1),c,b2');
    // No previous parent: just before it.
    editor.notes({ op: 'moveUp', id: id('a1') });
    assert.equal(shape(notes), 'a1,a,b(b1),c,b2');
    assert.equal(editor.notes({ op: 'moveUp', id: id('a1') }).record, undefined, 'the very top does not move');
  });

  it('actions on a selection are one undo step each; sub-items go with their selected parent', () => {
    build('- a\n- b\n  - b1\n- c\n- d');
    const sel = (action: 'indent' | 'outdent' | 'moveUp' | 'moveDown' | 'delete' | 'check' | 'uncheck', ...texts: string[]) => editor.notes({ op: 'selection', action, ids: texts.map(id) });
    const r1 = sel('indent', 'b', 'b1', 'c');
    assert.equal(shape(notes), 'a(b(b1),c),d');
    const r2 = sel('moveDown', 'b', 'c');
    assert.equal(shape(notes), 'a,d(b(b1),c)', 'the last child of a goes across into d, the block keeps its order');
    const r3 = sel('outdent', 'b', 'c');
    assert.equal(shape(notes), 'a,d,b(b1),c');
    const r4 = sel('check', 'b', 'b1');
    assert.equal(shape(notes), 'a,d,b✓(b1✓),c');
    assert.equal(sel('moveUp', 'a', 'd').record, undefined, 'the block at the top does not change shape');
    assert.equal(sel('indent', 'a', 'd').record, undefined);
    const r5 = sel('delete', 'd', 'b');
    assert.equal(shape(notes), 'a,c');
    assert.deepEqual(r5.focus, { itemId: id('a'), caret: 'end' });
    for (const r of [r5, r4, r3, r2, r1]) r.record?.undo();
    assert.equal(shape(notes), 'a,b(b1),c,d');
  });

  it('drag and drop: the items move in order under the parent after the anchor, never into themselves', () => {
    build('- a\n- b\n  - b1\n- c\n- d');
    const r = editor.notes({ op: 'moveTo', ids: [id('c'), id('a')], parentId: id('b'), afterId: id('b1') });
    assert.equal(shape(notes), 'b(b1,c,a),d');
    editor.notes({ op: 'moveTo', ids: [id('d')], parentId: tree.rootId });
    assert.equal(shape(notes), 'd,b(b1,c,a)', 'no anchor: first');
    // An anchor that is itself moving: the nearest one before it that is not.
    editor.notes({ op: 'moveTo', ids: [id('a'), id('c')], parentId: id('b'), afterId: id('c') });
    assert.equal(shape(notes), 'd,b(b1,a,c)');
    assert.throws(() => editor.notes({ op: 'moveTo', ids: [id('b')], parentId: id('b1') }), /into themselves/);
    assert.throws(() => editor.notes({ op: 'moveTo', ids: [id('d')], parentId: tree.rootId, afterId: id('b1') }), /is not under/);
    r.record?.undo();
  });

  it('a teammate\'s concurrent edit merges with a selection move and stays through its undo', () => {
    build('- a\n- b\n- c');
    const mate = AppTree.fromOps('bbbbbbbbbbbbbbbb', tree.id, tree.allOps());
    try {
      const mateNotes = new Notes(mate);
      const mineOps: Op[] = [];
      const mateOps: Op[] = [];
      const subs = [tree.onDidChange((c) => c.origin === 'local' && c.ops.forEach((o) => mineOps.push(o))), mate.onDidChange((c) => c.origin === 'local' && c.ops.forEach((o) => mateOps.push(o)))];
      const r = editor.notes({ op: 'selection', action: 'indent', ids: [id('b'), id('c')] });
      mateNotes.setText(mateNotes.items()[2].id, 'c by mate');
      mateNotes.add('new by mate');
      tree.applyRemote(mateOps);
      mate.applyRemote(mineOps);
      subs.forEach((s) => s.dispose());
      assert.equal(shape(notes), 'a(b,c by mate),new by mate');
      assert.equal(shape(mateNotes), shape(notes));
      r.record?.undo();
      assert.equal(shape(notes), 'a,b,c by mate,new by mate');
    } finally {
      mate.dispose();
    }
  });

  it('the new edits are checked at the edge', () => {
    const a = 'a'.repeat(32);
    const edit = (e: unknown) => () => parseWebviewMessage({ type: 'edit', seq: 1, treeId: a, edit: e });
    assert.deepEqual(edit({ op: 'paste', id: a, before: '', lines: ['x', 'y'], after: '', depths: [0, 1], done: [false, true] })(), {
      type: 'edit',
      seq: 1,
      treeId: a,
      edit: { op: 'paste', id: a, before: '', lines: ['x', 'y'], after: '', depths: [0, 1], done: [false, true] },
    });
    assert.throws(edit({ op: 'paste', id: a, before: '', lines: ['x', 'y'], after: '', depths: [0, 2] }), /depths\[1\]/);
    assert.throws(edit({ op: 'paste', id: a, before: '', lines: ['x', 'y'], after: '', depths: [1, 1] }), /depths\[0\]/);
    assert.throws(edit({ op: 'paste', id: a, before: '', lines: ['x'], after: '', depths: [0, 0] }), /one depth per line/);
    assert.throws(edit({ op: 'paste', id: a, before: '', lines: ['x'], after: '', done: ['yes'] }), /one boolean per line/);
    assert.throws(edit({ op: 'selection', action: 'explode', ids: [a] }), /unknown selection action/);
    assert.throws(edit({ op: 'selection', action: 'delete', ids: [] }), /not a list of ids/);
    assert.throws(edit({ op: 'selection', action: 'delete', ids: Array(100_001).fill(a) }), /more than 100000/);
    assert.throws(edit({ op: 'moveTo', ids: ['../x'], parentId: a }), /not an id/);
    assert.throws(edit({ op: 'merge', id: a }), /intoId/);
  });
});
