/**
 * The space editor's webview: a header with the space's name and its app trees as tabs, and the
 * editor of the selected tree (outline, chat or inspector). It talks to the extension host only
 * through the messages of ../protocol.ts.
 */
import type { AppTreeSummary, HostMessage, TreeView } from '../protocol';
import { ChatThread } from './chat';
import { clear, el } from './dom';
import { Host } from './host';
import { Inspector } from './inspector';
import { Outline } from './outline';

const host = new Host();
const app = document.getElementById('app') as HTMLElement;
const status = document.getElementById('status') as HTMLElement;

type Editor = Outline | ChatThread | Inspector;
let current: { treeId: string; editor: Editor } | undefined;
let space: { spaceId: string; name: string; trees: AppTreeSummary[]; selected?: string } | undefined;
const header = el('header', { class: 'space-header' });
const body = el('main', { class: 'space-body' });

// Plain symbols, not emoji: they render in every font, including high-contrast themes.
const ICONS: Record<string, string> = { notes: '☑', chat: '✉' };

const STATUS_MS = 5000;
let statusTimer: ReturnType<typeof setTimeout> | undefined;

function say(text: string, isError = false): void {
  status.textContent = text;
  status.classList.toggle('error', isError && text !== '');
  if (statusTimer) clearTimeout(statusTimer);
  statusTimer = text ? setTimeout(() => say(''), STATUS_MS) : undefined;
}

function select(treeId: string | null): void {
  host.post({ type: 'select', treeId });
}

function renderHeader(): void {
  if (!space) return;
  // A tab that had the focus (just clicked, or reached with the keyboard) keeps it in the new strip.
  const focused = header.contains(document.activeElement) ? document.activeElement?.getAttribute('data-tree') : null;
  const tabs = el('nav', { class: 'tabs', role: 'tablist', 'aria-label': 'App trees' });
  const tab = (label: string, treeId: string | null, title: string) => {
    const selected = (space?.selected ?? null) === treeId;
    const b = el('button', { type: 'button', role: 'tab', class: 'tab', 'aria-selected': selected ? 'true' : 'false', title, 'data-tree': treeId ?? '' }, label);
    b.addEventListener('click', () => select(treeId));
    return b;
  };
  tabs.append(tab('Overview', null, 'The space and its app trees'));
  for (const t of space.trees) tabs.append(tab(`${ICONS[t.appId] ?? '◇'} ${t.name}`, t.treeId, `${t.name} (${t.appId})`));
  const add = el('button', { type: 'button', class: 'tab add', title: 'Add an app tree', 'aria-label': 'Add an app tree' }, '+');
  add.addEventListener('click', () => host.post({ type: 'addAppTree' }));
  tabs.append(add);
  header.replaceChildren(el('h1', { class: 'space-name', title: space.spaceId }, space.name), tabs);
  if (focused !== null && focused !== undefined) tabs.querySelector<HTMLElement>(`button.tab[data-tree="${CSS.escape(focused)}"]`)?.focus();
}

function renderOverview(): void {
  if (!space) return;
  current = undefined;
  const list = el('ul', { class: 'overview' });
  for (const t of space.trees) {
    const b = el('button', { type: 'button', class: 'link' }, `${ICONS[t.appId] ?? '◇'} ${t.name}`);
    b.addEventListener('click', () => select(t.treeId));
    list.append(el('li', {}, b, ' ', el('span', { class: 'muted' }, t.appId)));
  }
  const add = el('button', { type: 'button', class: 'primary' }, 'Add App Tree…');
  add.addEventListener('click', () => host.post({ type: 'addAppTree' }));
  body.replaceChildren(
    space.trees.length ? list : el('p', { class: 'muted' }, 'This space has no app trees yet.'),
    el('p', {}, add),
    el('p', { class: 'muted small' }, `Space id ${space.spaceId}`),
  );
}

function showTree(treeId: string, view: TreeView): void {
  const t0 = performance.now();
  const editor = view.kind === 'notes' ? new Outline(host, treeId, view, space?.trees.find((t) => t.treeId === treeId)?.name ?? 'Notes', say) : view.kind === 'chat' ? new ChatThread(host, treeId, view) : new Inspector(host, treeId, view);
  current = { treeId, editor };
  body.replaceChildren(editor.root);
  const restore = host.state[`scroll:${treeId}`];
  if (typeof restore === 'number') body.scrollTop = restore;
  // Painted: after the next frame has been produced.
  requestAnimationFrame(() =>
    setTimeout(() => {
      host.post({ type: 'painted', treeId, items: editor.size, ms: performance.now() - t0 });
      if (editor instanceof ChatThread) editor.focusComposer();
    }, 0),
  );
}

function onMessage(m: HostMessage): void {
  switch (m.type) {
    case 'space':
      space = { spaceId: m.spaceId, name: m.name, trees: m.trees, selected: m.selected };
      if (!app.contains(header)) app.replaceChildren(header, body);
      renderHeader();
      if (!m.selected) renderOverview();
      else if (current && current.treeId !== m.selected) current = undefined;
      return;
    case 'fileError': {
      current = undefined;
      const open = el('button', { type: 'button' }, 'Open as Text');
      open.addEventListener('click', () => host.post({ type: 'openAsText' }));
      app.replaceChildren(
        el('div', { class: 'file-error', role: 'alert' }, el('h1', {}, `${m.file} cannot be opened as a space`), el('p', {}, m.message), el('p', { class: 'muted' }, 'The file was not changed.'), open),
      );
      return;
    }
    case 'loading':
      if (current?.treeId !== m.treeId) {
        current = undefined;
        body.replaceChildren(el('p', { class: 'muted', role: 'progressbar', 'aria-busy': 'true' }, 'Loading…'));
      }
      return;
    case 'tree':
      if (space?.selected === m.treeId) showTree(m.treeId, m.view);
      return;
    case 'patch': {
      const c = current;
      if (!c || c.treeId !== m.treeId) return;
      if (m.patch.kind === 'notes' && c.editor instanceof Outline) c.editor.applyPatch(m.patch);
      else if (m.patch.kind === 'chat' && c.editor instanceof ChatThread) c.editor.applyPatch(m.patch);
      else if (m.patch.kind === 'inspector' && c.editor instanceof Inspector) c.editor.applyPatch(m.patch);
      return;
    }
    case 'focus':
      if (current?.treeId === m.treeId && current.editor instanceof Outline) current.editor.focusItem(m.itemId, m.caret);
      return;
    case 'ack': {
      const p = host.settle(m.seq);
      if (m.error) {
        say(`Not saved: ${m.error}`, true);
        if (p?.edit.op === 'setProp' && current?.editor instanceof Inspector) current.editor.refused(p.edit.id, p.edit.key, m.error);
      } else if (status.classList.contains('error')) {
        // An edit went through: the last failure is no longer the news.
        say('');
      }
      return;
    }
  }
}

// Read-only figures for benchmarks and UI tests (through the browser's devtools protocol).
Object.defineProperty(window, 'spacesEditorFigures', { value: host.typing });

window.addEventListener('message', (e: MessageEvent<HostMessage>) => onMessage(e.data));
body.addEventListener('scroll', () => {
  if (current) host.saveState({ [`scroll:${current.treeId}`]: body.scrollTop });
});
clear(app);
app.append(el('p', { class: 'muted' }, 'Opening the space…'));
host.post({ type: 'ready' });
