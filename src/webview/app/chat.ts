/**
 * The chat view: the thread (author, time, text) and a composer. Messages from teammates are
 * added in place; the view follows new messages only when it was scrolled to the bottom.
 * Enter sends, Shift+Enter starts a new line.
 */
import type { ChatRow, TreePatch, TreeView } from '../protocol';
import { el } from './dom';
import type { Host } from './host';

type ChatView = Extract<TreeView, { kind: 'chat' }>;
type ChatPatch = Extract<TreePatch, { kind: 'chat' }>;

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export class ChatThread {
  private readonly messages = new Map<string, ChatRow>();
  private readonly nodes = new Map<string, HTMLElement>();
  private readonly list: HTMLElement;
  private readonly input: HTMLTextAreaElement;
  readonly root: HTMLElement;

  constructor(
    private readonly host: Host,
    private readonly treeId: string,
    view: ChatView,
  ) {
    for (const m of view.messages) this.messages.set(m.id, m);
    this.list = el('div', { class: 'chat-list', role: 'log', 'aria-label': 'Messages', 'aria-live': 'polite', tabindex: 0 });
    this.input = el('textarea', { class: 'composer-input', rows: 2, placeholder: `Message as ${view.author} (Enter to send, Shift+Enter for a new line)`, 'aria-label': 'Message' });
    const send = el('button', { type: 'button', class: 'primary' }, 'Send');
    send.addEventListener('click', () => this.send());
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.send();
      }
    });
    this.root = el('div', { class: 'chat' }, this.list, el('div', { class: 'composer' }, this.input, send));
    this.render(true);
  }

  get size(): number {
    return this.messages.size;
  }

  focusComposer(): void {
    this.input.focus();
  }

  private send(): void {
    const text = this.input.value;
    if (!text.trim()) {
      // A blank message is not sent, and its spaces must not start the next one.
      this.input.value = '';
      return;
    }
    this.host.edit(this.treeId, { op: 'post', text });
    this.input.value = '';
  }

  applyPatch(p: ChatPatch): void {
    for (const m of p.messages) {
      if (m.deleted) this.messages.delete(m.id);
      else this.messages.set(m.id, m);
    }
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 24;
    this.render(atBottom);
  }

  private node(m: ChatRow): HTMLElement {
    let n = this.nodes.get(m.id);
    if (!n) {
      n = el('article', { class: 'message', 'data-id': m.id });
      this.nodes.set(m.id, n);
    }
    n.replaceChildren(
      el('header', {}, el('span', { class: 'author' }, m.author || '(unknown)'), ' ', el('time', { datetime: new Date(m.time).toISOString() }, timeFormat.format(m.time))),
      el('div', { class: 'body' }, m.text),
    );
    return n;
  }

  private render(scrollToEnd: boolean): void {
    const sorted = [...this.messages.values()].sort((a, b) => a.time - b.time || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    let prev: Element | null = null;
    for (const m of sorted) {
      const n = this.node(m);
      const expected: Element | null = prev ? prev.nextElementSibling : this.list.firstElementChild;
      if (expected !== n) this.list.insertBefore(n, expected);
      prev = n;
    }
    for (const [id, n] of this.nodes) {
      if (!this.messages.has(id)) {
        n.remove();
        this.nodes.delete(id);
      }
    }
    if (sorted.length === 0) this.list.replaceChildren(el('p', { class: 'muted' }, 'No messages yet. Say hello below.'));
    else this.list.querySelector(':scope > p.muted')?.remove();
    if (scrollToEnd) this.list.scrollTop = this.list.scrollHeight;
  }
}
