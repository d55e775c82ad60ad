// Chat messages: their Markdown (parsed into blocks and spans the webview builds DOM nodes from,
// links only with safe schemes, linear on hostile text) and the edit and delete of one's own
// messages (refused for another author's), each one undo step.
import assert from 'node:assert/strict';
import { AppTree, newVertexId } from '../../src/spaces/appTree';
import { Chat } from '../../src/spaces/apps/chat';
import { parseChatMarkdown, parseInline, safeLink } from '../../src/spaces/apps/chatMarkdown';
import { TreeEditor, applyEdit } from '../../src/views/editor/treeEdits';
import { parseWebviewMessage } from '../../src/webview/protocol';

describe('chat: Markdown', () => {
  it('paragraphs, line breaks, lists, quotes, code blocks and inline spans', () => {
    assert.deepEqual(parseChatMarkdown('Hello **team**, see `x` and *this*\nsecond line\n\n- one\n- two ~~old~~\n\n1. first\n> quoted\n```\n<b>code</b>\n```'), [
      { type: 'p', lines: [[{ t: 'text', text: 'Hello ' }, { t: 'strong', text: 'team' }, { t: 'text', text: ', see ' }, { t: 'code', text: 'x' }, { t: 'text', text: ' and ' }, { t: 'em', text: 'this' }], [{ t: 'text', text: 'second line' }]] },
      { type: 'list', ordered: false, items: [[{ t: 'text', text: 'one' }], [{ t: 'text', text: 'two ' }, { t: 'del', text: 'old' }]] },
      { type: 'list', ordered: true, items: [[{ t: 'text', text: 'first' }]] },
      { type: 'quote', lines: [[{ t: 'text', text: 'quoted' }]] },
      { type: 'code', text: '<b>code</b>' },
    ]);
  });

  it('HTML in a message is text, never markup', () => {
    assert.deepEqual(parseInline('<img src=x onerror=alert(1)> & <script>'), [{ t: 'text', text: '<img src=x onerror=alert(1)> & <script>' }]);
  });

  it('links: [text](url) and bare URLs with http, https or mailto; any other scheme stays text', () => {
    assert.deepEqual(parseInline('see [the docs](https://example.com/a?b=1) or https://example.org/x. ok'), [
      { t: 'text', text: 'see ' },
      { t: 'link', href: 'https://example.com/a?b=1', text: 'the docs' },
      { t: 'text', text: ' or ' },
      { t: 'link', href: 'https://example.org/x', text: 'https://example.org/x' },
      { t: 'text', text: '. ok' },
    ]);
    assert.deepEqual(parseInline('[x](javascript:alert(1)) [y](command:workbench.action.quit) [z](file:///etc/passwd)'), [{ t: 'text', text: '[x](javascript:alert(1)) [y](command:workbench.action.quit) [z](file:///etc/passwd)' }]);
    assert.equal(safeLink('mailto:ann@example.com'), 'mailto:ann@example.com');
    assert.equal(safeLink('vscode://x'), undefined);
    assert.equal(safeLink(`https://e.com/${'a'.repeat(3000)}`), undefined, 'too long');
    assert.deepEqual(parseInline('2 * 3 * 4 and snake_case_name'), [{ t: 'text', text: '2 * 3 * 4 and snake_case_name' }]);
    assert.deepEqual(parseInline('\\*not em\\*'), [{ t: 'text', text: '*not em*' }]);
  });

  it('hostile text of the longest message parses in linear time (many unclosed markers)', () => {
    for (const unit of ['[', '[a](', '*a ', '`', '**', 'https://', '~~x ']) {
      const text = unit.repeat(Math.floor(100_000 / unit.length));
      const spans = parseInline(text);
      assert.equal(spans.map((s) => s.text).join('').length > 0, true);
    }
    const many = Array.from({ length: 20_000 }, (_, i) => (i % 3 === 0 ? '```' : `- item ${i}`)).join('\n');
    assert.ok(parseChatMarkdown(many).length > 0);
  });

  it('the openLink message is checked at the edge', () => {
    assert.deepEqual(parseWebviewMessage({ type: 'openLink', url: 'https://example.com' }), { type: 'openLink', url: 'https://example.com/' });
    for (const url of ['javascript:alert(1)', 'command:x', 'file:///etc/passwd', 42, 'not a url']) {
      assert.throws(() => parseWebviewMessage({ type: 'openLink', url }), /http, https or mailto/);
    }
  });
});

describe('chat: editing one\'s own messages', () => {
  let tree: AppTree;
  let editor: TreeEditor;
  beforeEach(() => {
    tree = AppTree.createNew('aaaaaaaaaaaaaaaa', newVertexId());
    editor = new TreeEditor(tree, () => 0);
  });
  afterEach(() => tree.dispose());

  it('edit and delete are one undo step each; another author\'s message is refused', () => {
    const chat = new Chat(tree);
    const mine = chat.post('ann', 'hello', 1000);
    const theirs = chat.post('bob', 'hi', 2000);
    const e = applyEdit(editor, 'chat', { op: 'editMessage', id: mine, text: 'hello **all**' }, 'ann');
    assert.equal(chat.message(mine).text, 'hello **all**');
    const d = applyEdit(editor, 'chat', { op: 'deleteMessage', id: mine }, 'ann');
    assert.equal(tree.has(mine), false);
    d.record?.undo();
    assert.equal(chat.message(mine).text, 'hello **all**');
    e.record?.undo();
    assert.equal(chat.message(mine).text, 'hello');
    assert.throws(() => applyEdit(editor, 'chat', { op: 'editMessage', id: theirs, text: 'x' }, 'ann'), /only your own/);
    assert.throws(() => applyEdit(editor, 'chat', { op: 'deleteMessage', id: theirs }, 'ann'), /only your own/);
    assert.throws(() => applyEdit(editor, 'chat', { op: 'editMessage', id: mine, text: '  ' }, 'ann'), /needs some text/);
    assert.throws(() => applyEdit(editor, 'chat', { op: 'deleteMessage', id: 'f'.repeat(32) }, 'ann'), /no message/);
    assert.equal(chat.message(theirs).text, 'hi');
  });
});
