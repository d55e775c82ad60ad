/**
 * The chat view: the thread (author, time, text) grouped by day, and a composer. Messages from
 * teammates are added in place; the view follows new messages only when it was scrolled to the
 * bottom. Enter sends, Shift+Enter starts a new line. A message's Markdown is rendered as DOM
 * nodes built here (chatMarkdown.ts parses it; no HTML from a message ever reaches the page);
 * a link opens through VS Code (the host checks its scheme). One's own messages have Edit and
 * Delete buttons (the host refuses another author's).
 */
import { parseChatMarkdown, type Block, type Inline } from '../../spaces/apps/chatMarkdown';
import type { ChatRow, TreePatch, TreeView } from '../protocol';
import { el } from './dom';
import type { Host } from './host';

type ChatView = Extract<TreeView, { kind: 'chat' }>;
type ChatPatch = Extract<TreePatch, { kind: 'chat' }>;

const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });
const dayFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full' });
const DAY_MS = 86_400_000;

/** The local calendar day of a time, as a key ("2026-12-03"). */
function dayKey(time: number): string {
  const d = new Date(time);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** "Today", "Yesterday" or the date. */
function dayLabel(time: number, now = Date.now()): string {
  if (dayKey(time) === dayKey(now)) return 'Today';
  if (dayKey(time) === dayKey(now - DAY_MS)) return 'Yesterday';
  return dayFormat.format(time);
}

function inlineNode(s: Inline): Node {
    switch (s.t) {
      case 'text':
        return document.createTextNode(s.text);
      case 'code':
        return el('code', {}, s.text);
      case 'strong':
        return el('strong', {}, s.text);
      case 'em':
        return el('em', {}, s.text);
      case 'del':
        return el('del', {}, s.text);
      case 'link':
        return el('a', { href: s.href, title: s.href }, s.text);
    }
}

function inlineNodes(spans: readonly Inline[]): DocumentFragment {
  const f = document.createDocumentFragment();
  for (const s of spans) f.append(inlineNode(s));
  return f;
}

function linesNode<K extends 'p' | 'blockquote'>(tag: K, lines: readonly Inline[][]): HTMLElement {
  const n = el(tag);
  lines.forEach((l, i) => {
    if (i > 0) n.append(el('br'));
    n.append(inlineNodes(l));
  });
  return n;
}

/** A message's Markdown as DOM nodes. */
export function renderMarkdown(text: string): DocumentFragment {
  const f = document.createDocumentFragment();
  for (const b of parseChatMarkdown(text) as Block[]) {
    if (b.type === 'code') f.append(el('pre', {}, el('code', {}, b.text)));
    else if (b.type === 'p') f.append(linesNode('p', b.lines));
    else if (b.type === 'quote') f.append(linesNode('blockquote', b.lines));
    else {
      const list = el(b.ordered ? 'ol' : 'ul');
      for (const item of b.items) list.append(el('li', {}, inlineNodes(item)));
      f.append(list);
    }
  }
  return f;
}

export class ChatThread {
  private readonly messages = new Map<string, ChatRow>();
  private readonly nodes = new Map<string, HTMLElement>();
  /** What each message node shows (author, time, text), so an unchanged one is left alone. */
  private readonly shown = new Map<string, string>();
  private readonly days = new Map<string, HTMLElement>();
  /** The message being edited (its node holds the edit box). */
  private editing: string | undefined;
  private readonly author: string;
  private readonly list: HTMLElement;
  private readonly input: HTMLTextAreaElement;
  readonly root: HTMLElement;

  constructor(
    private readonly host: Host,
    private readonly treeId: string,
    view: ChatView,
  ) {
    for (const m of view.messages) this.messages.set(m.id, m);
    this.author = view.author;
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
    this.list.addEventListener('click', (e) => this.onClick(e));
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

  private onClick(e: MouseEvent): void {
    const t = e.target as HTMLElement | null;
    const link = t?.closest('a');
    if (link && this.list.contains(link)) {
      // Never navigated in the webview: the host opens it (after checking its scheme).
      e.preventDefault();
      this.host.post({ type: 'openLink', url: link.href });
      return;
    }
    const button = t?.closest('button');
    const id = t?.closest('article.message')?.getAttribute('data-id');
    if (!button || !id) return;
    if (button.classList.contains('edit-message')) this.startEdit(id);
    else if (button.classList.contains('delete-message')) this.host.edit(this.treeId, { op: 'deleteMessage', id });
  }

  private startEdit(id: string): void {
    const m = this.messages.get(id);
    const n = this.nodes.get(id);
    if (!m || !n) return;
    if (this.editing && this.editing !== id) this.stopEdit();
    this.editing = id;
    const box = el('textarea', { class: 'edit-input', rows: 2, 'aria-label': 'Edit message' });
    box.value = m.text;
    const save = el('button', { type: 'button', class: 'primary' }, 'Save');
    const cancel = el('button', { type: 'button' }, 'Cancel');
    const done = (keep: boolean) => {
      const text = box.value;
      this.stopEdit();
      if (keep && text.trim() && text !== m.text) this.host.edit(this.treeId, { op: 'editMessage', id, text });
    };
    save.addEventListener('click', () => done(true));
    cancel.addEventListener('click', () => done(false));
    box.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        done(true);
      } else if (e.key === 'Escape') {
        e.preventDefault();
        done(false);
      }
    });
    n.querySelector('.body')?.replaceWith(el('div', { class: 'body editing' }, box, el('div', { class: 'edit-actions' }, save, cancel)));
    box.focus();
  }

  private stopEdit(): void {
    const id = this.editing;
    this.editing = undefined;
    if (!id) return;
    this.shown.delete(id);
    this.render(false);
  }

  private node(m: ChatRow): HTMLElement {
    let n = this.nodes.get(m.id);
    if (!n) {
      n = el('article', { class: 'message', 'data-id': m.id });
      this.nodes.set(m.id, n);
    }
    const sig = JSON.stringify([m.author, m.time, m.text]);
    // A message being edited keeps its edit box; an unchanged one keeps its nodes.
    if (this.editing === m.id || this.shown.get(m.id) === sig) return n;
    this.shown.set(m.id, sig);
    const mine = m.author === this.author;
    const header = el('header', {}, el('span', { class: 'author' }, m.author || '(unknown)'), ' ', el('time', { datetime: new Date(m.time).toISOString(), title: fullFormat.format(m.time) }, timeFormat.format(m.time)));
    if (mine) {
      header.append(
        el('span', { class: 'message-actions' },
          el('button', { type: 'button', class: 'link edit-message', 'aria-label': 'Edit message', title: 'Edit your message' }, 'Edit'),
          el('button', { type: 'button', class: 'link delete-message', 'aria-label': 'Delete message', title: 'Delete your message' }, 'Delete'),
        ),
      );
    }
    const body = el('div', { class: 'body' });
    body.append(renderMarkdown(m.text));
    n.classList.toggle('mine', mine);
    n.replaceChildren(header, body);
    return n;
  }

  private dayHeader(time: number): HTMLElement {
    const key = dayKey(time);
    let h = this.days.get(key);
    if (!h) {
      h = el('h2', { class: 'day', 'data-day': key });
      this.days.set(key, h);
    }
    const label = dayLabel(time);
    if (h.textContent !== label) h.textContent = label;
    return h;
  }

  private render(scrollToEnd: boolean): void {
    const sorted = [...this.messages.values()].sort((a, b) => a.time - b.time || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    let prev: Element | null = null;
    let day = '';
    const daysShown = new Set<string>();
    const place = (n: HTMLElement) => {
      const expected: Element | null = prev ? prev.nextElementSibling : this.list.firstElementChild;
      if (expected !== n) this.list.insertBefore(n, expected);
      prev = n;
    };
    for (const m of sorted) {
      if (dayKey(m.time) !== day) {
        day = dayKey(m.time);
        daysShown.add(day);
        place(this.dayHeader(m.time));
      }
      place(this.node(m));
    }
    for (const [id, n] of this.nodes) {
      if (!this.messages.has(id)) {
        n.remove();
        this.nodes.delete(id);
        this.shown.delete(id);
        if (this.editing === id) this.editing = undefined;
      }
    }
    for (const [key, h] of this.days) {
      if (!daysShown.has(key)) {
        h.remove();
        this.days.delete(key);
      }
    }
    if (sorted.length === 0) this.list.replaceChildren(el('p', { class: 'muted' }, 'No messages yet. Say hello below.'));
    else this.list.querySelector(':scope > p.muted')?.remove();
    if (scrollToEnd) this.list.scrollTop = this.list.scrollHeight;
  }
}
