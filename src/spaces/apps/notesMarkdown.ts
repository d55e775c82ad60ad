/**
 * A notes outline as a Markdown list and back: `- [ ] text` / `- [x] text`, two spaces per level.
 * The same flat form — one line per item with its depth — serves export, "Copy as Markdown",
 * import and paste, so the outline copied in the editor pastes back as the same subtree and a
 * list from another app (Markdown, an indented plain-text list) pastes as a subtree too.
 *
 * Pure (no DOM, no `vscode`): the webview and the extension host share it. Text to parse comes
 * from files and clipboards: it is bounded (characters, lines, line length) before any work and
 * depth is capped, and nothing here recurses, so no input can exhaust the stack or run long.
 */

/** One item of an outline in display order; `depth` 0 is the top level. */
export interface OutlineLine {
  readonly text: string;
  readonly done: boolean;
  readonly depth: number;
}

export interface OutlineLimits {
  /** Characters of the whole text. */
  readonly chars: number;
  /** Items (non-blank lines). */
  readonly lines: number;
  /** Characters of one item's text. */
  readonly lineChars: number;
  /** Deepest level kept; deeper lines become items at this level. */
  readonly depth: number;
}

/** Deepest nesting an outline keeps from a paste or an import. */
export const MAX_OUTLINE_DEPTH = 100;

/** Bounds of a Markdown file imported into a tree. */
export const IMPORT_LIMITS: OutlineLimits = { chars: 20_000_000, lines: 200_000, lineChars: 100_000, depth: MAX_OUTLINE_DEPTH };

/** Spaces per level in the Markdown written. */
const INDENT = '  ';
/** Columns a tab counts for when reading indentation (the next multiple of it). */
const TAB_COLUMNS = 4;

export class OutlineTooLargeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutlineTooLargeError';
  }
}

/** A list marker (`-`, `*`, `+`, `1.`, `1)`) and an optional task box, then the text. */
const ITEM = /^(?:[-*+]|\d{1,9}[.)])(?:[ \t]+|$)(?:\[([ xX])\](?:[ \t]+|$))?/;

/** Characters that would make a text read back as something else at the start of a list item. */
const LEADING_SPECIAL = /^(?:[-*+#>]|\d{1,9}[.)]|\[[ xX]\])(?=[ \t]|$)/;

/** The outline as a Markdown task list (one line per item, ending with a line break). */
export function outlineToMarkdown(lines: Iterable<OutlineLine>): string {
  const out: string[] = [];
  for (const l of lines) {
    // An item's text is one line; a leading marker is escaped so it reads back as text.
    let text = l.text.replace(/\r\n|\r|\n/g, ' ');
    if (LEADING_SPECIAL.test(text)) text = `\\${text}`;
    out.push(`${INDENT.repeat(Math.max(0, l.depth))}- [${l.done ? 'x' : ' '}] ${text}`.trimEnd());
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/** Width of leading whitespace, tabs to the next multiple of TAB_COLUMNS. */
function indentOf(line: string): { cols: number; rest: string } {
  let cols = 0;
  let i = 0;
  for (; i < line.length; i++) {
    const c = line[i];
    if (c === ' ') cols++;
    else if (c === '\t') cols += TAB_COLUMNS - (cols % TAB_COLUMNS);
    else break;
  }
  return { cols, rest: line.slice(i) };
}

/**
 * A Markdown list, or lines indented with spaces or tabs, as an outline. Blank lines are skipped;
 * a line without a list marker is an item too (its indentation nests it). A line indented more
 * than the one before is its child, however much more; less indented, it is the sibling of the
 * nearest line above indented as much or less. `- [x]` marks an item done. Throws
 * OutlineTooLargeError when the text is over `limits`.
 */
export function parseOutline(text: string, limits: OutlineLimits): OutlineLine[] {
  if (text.length > limits.chars) throw new OutlineTooLargeError(`the text has more than ${limits.chars} characters`);
  const out: OutlineLine[] = [];
  // Indentation columns of the open levels: stack[d] is the indentation of the latest line at depth d.
  const stack: number[] = [];
  let lineNo = 0;
  for (const raw of text.split(/\r\n|\r|\n/)) {
    lineNo++;
    if (raw.trim() === '') continue;
    if (out.length >= limits.lines) throw new OutlineTooLargeError(`the text has more than ${limits.lines} items`);
    const { cols, rest } = indentOf(raw);
    while (stack.length && stack[stack.length - 1] > cols) stack.pop();
    if (stack.length && stack[stack.length - 1] === cols) stack.pop();
    const depth = Math.min(stack.length, limits.depth);
    stack.length = depth;
    stack.push(cols);
    const m = ITEM.exec(rest);
    let body = m ? rest.slice(m[0].length) : rest;
    const done = m?.[1] === 'x' || m?.[1] === 'X';
    body = body.trimEnd();
    if (body.startsWith('\\') && LEADING_SPECIAL.test(body.slice(1))) body = body.slice(1);
    if (body.length > limits.lineChars) throw new OutlineTooLargeError(`line ${lineNo} is longer than ${limits.lineChars} characters`);
    out.push({ text: body, done, depth });
  }
  return out;
}

/** True when the lines hold any nesting (a flat list pastes as plain lines). */
export function isNested(lines: readonly OutlineLine[]): boolean {
  return lines.some((l) => l.depth > 0);
}

/** A nested item built from outline lines. */
export interface OutlineNode {
  readonly text: string;
  readonly done: boolean;
  readonly children: OutlineNode[];
}

/** Outline lines (depths as parseOutline makes them) as nested nodes, without recursion. */
export function linesToNodes(lines: readonly OutlineLine[]): OutlineNode[] {
  const top: OutlineNode[] = [];
  const open: OutlineNode[] = [];
  for (const l of lines) {
    const depth = Math.min(l.depth, open.length);
    open.length = depth;
    const node: OutlineNode = { text: l.text, done: l.done, children: [] };
    (depth === 0 ? top : open[depth - 1].children).push(node);
    open.push(node);
  }
  return top;
}

/**
 * The subtrees under `roots` in display order as outline lines, the roots at depth 0. `kids`
 * lists an item's children in order, `item` gives its text and state; nothing recurses.
 */
export function subtreeLines(roots: readonly string[], kids: (id: string) => readonly string[], item: (id: string) => { text: string; done: boolean } | undefined): OutlineLine[] {
  const out: OutlineLine[] = [];
  const stack: { id: string; depth: number }[] = [];
  for (let i = roots.length - 1; i >= 0; i--) stack.push({ id: roots[i], depth: 0 });
  while (stack.length) {
    const n = stack.pop() as { id: string; depth: number };
    const it = item(n.id);
    if (!it) continue;
    out.push({ text: it.text, done: it.done, depth: n.depth });
    const ks = kids(n.id);
    for (let i = ks.length - 1; i >= 0; i--) stack.push({ id: ks[i], depth: n.depth + 1 });
  }
  return out;
}
