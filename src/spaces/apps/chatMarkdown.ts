/**
 * The Markdown of chat messages, as a small tree of blocks and inline spans that the webview
 * turns into DOM nodes (never HTML: a message is a teammate's text, so no tag in it can reach
 * the page). Supported: paragraphs and line breaks, ``` code blocks, `- ` / `* ` / `1. ` lists,
 * `> ` quotes, **bold**, *italic* / _italic_, `code`, ~~strike~~, [links](https://…) and bare
 * http(s) URLs. A link is kept only with an http, https or mailto URL; any other is text. Pure
 * and linear in the text (no backtracking regexes over the whole message).
 */

export type Inline =
  | { readonly t: 'text'; readonly text: string }
  | { readonly t: 'code'; readonly text: string }
  | { readonly t: 'strong' | 'em' | 'del'; readonly text: string }
  | { readonly t: 'link'; readonly href: string; readonly text: string };

export type Block =
  | { readonly type: 'p'; readonly lines: Inline[][] }
  | { readonly type: 'code'; readonly text: string }
  | { readonly type: 'quote'; readonly lines: Inline[][] }
  | { readonly type: 'list'; readonly ordered: boolean; readonly items: Inline[][] };

/** URL schemes a link may have; the host checks again before opening one. */
export const LINK_SCHEMES: ReadonlySet<string> = new Set(['http:', 'https:', 'mailto:']);

/** The longest URL kept as a link. */
export const MAX_LINK_LENGTH = 2048;

/** `href` if it is a URL with an allowed scheme (normalised), else undefined. */
export function safeLink(href: string): string | undefined {
  if (href.length > MAX_LINK_LENGTH) return undefined;
  let u: URL;
  try {
    u = new URL(href);
  } catch {
    return undefined;
  }
  return LINK_SCHEMES.has(u.protocol) ? u.href : undefined;
}

const LIST_ITEM = /^\s{0,3}(?:[-*+]|(\d{1,9})[.)])\s+/;
const QUOTE = /^\s{0,3}>\s?/;
const FENCE = /^\s{0,3}```/;

/** Parses a message into blocks. */
export function parseChatMarkdown(text: string): Block[] {
  const lines = text.split(/\r\n|\r|\n/);
  const out: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (FENCE.test(line)) {
      const body: string[] = [];
      i++;
      while (i < lines.length && !FENCE.test(lines[i])) body.push(lines[i++]);
      i++; // the closing fence (or the end)
      out.push({ type: 'code', text: body.join('\n') });
      continue;
    }
    if (line.trim() === '') {
      i++;
      continue;
    }
    const item = LIST_ITEM.exec(line);
    if (item) {
      const ordered = item[1] !== undefined;
      const items: Inline[][] = [];
      for (let m = LIST_ITEM.exec(lines[i] ?? ''); i < lines.length && m && (m[1] !== undefined) === ordered; m = LIST_ITEM.exec(lines[i] ?? '')) {
        items.push(parseInline(lines[i].slice(m[0].length)));
        i++;
      }
      out.push({ type: 'list', ordered, items });
      continue;
    }
    if (QUOTE.test(line)) {
      const q: Inline[][] = [];
      while (i < lines.length && QUOTE.test(lines[i])) q.push(parseInline(lines[i++].replace(QUOTE, '')));
      out.push({ type: 'quote', lines: q });
      continue;
    }
    const p: Inline[][] = [];
    while (i < lines.length && lines[i].trim() !== '' && !FENCE.test(lines[i]) && !LIST_ITEM.test(lines[i]) && !QUOTE.test(lines[i])) p.push(parseInline(lines[i++]));
    out.push({ type: 'p', lines: p });
  }
  return out;
}

const SPANS: readonly { readonly open: string; readonly t: 'strong' | 'em' | 'del' }[] = [
  { open: '**', t: 'strong' },
  { open: '__', t: 'strong' },
  { open: '~~', t: 'del' },
  { open: '*', t: 'em' },
  { open: '_', t: 'em' },
];

/** Inline spans of one line, scanned left to right once (each closing marker found by indexOf). */
export function parseInline(line: string): Inline[] {
  const out: Inline[] = [];
  let text = '';
  const flush = () => {
    if (text) out.push({ t: 'text', text });
    text = '';
  };
  let i = 0;
  // The next "](" at or after i: found once and reused, so many "[" cost one scan, not one each.
  let linkClose = -2;
  let linkEnd = -1;
  while (i < line.length) {
    const c = line[i];
    if (c === '\\' && i + 1 < line.length && /[\\`*_~[\]()]/.test(line[i + 1])) {
      text += line[i + 1];
      i += 2;
      continue;
    }
    if (c === '`') {
      const end = line.indexOf('`', i + 1);
      if (end > i + 1) {
        flush();
        out.push({ t: 'code', text: line.slice(i + 1, end) });
        i = end + 1;
        continue;
      }
    }
    if (c === '[') {
      if (linkClose !== -1 && linkClose <= i) {
        linkClose = line.indexOf('](', i + 1);
        linkEnd = linkClose < 0 ? -1 : line.indexOf(')', linkClose + 2);
      }
      const close = linkClose;
      const end = close > i ? linkEnd : -1;
      const href = end > 0 ? safeLink(line.slice(close + 2, end).trim()) : undefined;
      if (href) {
        flush();
        out.push({ t: 'link', href, text: line.slice(i + 1, close) || href });
        i = end + 1;
        continue;
      }
    }
    if ((c === 'h' || c === 'H') && /^https?:\/\//i.test(line.slice(i, i + 8)) && (i === 0 || /[\s(]/.test(line[i - 1]))) {
      let end = i;
      while (end < line.length && !/\s/.test(line[end])) end++;
      // Trailing punctuation ends a sentence, not the URL.
      while (end > i && /[.,;:!?)'"]/.test(line[end - 1])) end--;
      const href = safeLink(line.slice(i, end));
      if (href) {
        flush();
        out.push({ t: 'link', href, text: line.slice(i, end) });
        i = end;
        continue;
      }
    }
    const span = SPANS.find((s) => line.startsWith(s.open, i));
    if (span) {
      const from = i + span.open.length;
      const end = line.indexOf(span.open, from);
      // A span needs text right inside both markers ("2 * 3 * 4" stays text).
      // Underscores inside a word (snake_case) are not emphasis.
      const wordy = span.open[0] === '_' && ((i > 0 && /\w/.test(line[i - 1])) || /\w/.test(line[end + span.open.length] ?? ''));
      if (end > from && !/\s/.test(line[from]) && !/\s/.test(line[end - 1]) && !wordy) {
        flush();
        out.push({ t: span.t, text: line.slice(from, end) });
        i = end + span.open.length;
        continue;
      }
    }
    text += c;
    i++;
  }
  flush();
  return out;
}
