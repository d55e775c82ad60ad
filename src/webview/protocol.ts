/**
 * The messages between the space editor's webview and the extension host. Both sides import this
 * module: the webview for the types, the host also for `parseWebviewMessage`, which checks every
 * message coming from the webview at runtime (it is untrusted input like any other).
 *
 * Host → webview: a `state` message when an app tree is shown (the whole view model), then
 * `patch` messages with just what changed (live edits from other windows or teammates), and
 * `ack` for every request the webview made, so it can measure and report failures.
 */
import { safeLink } from '../spaces/apps/chatMarkdown';
import { MAX_OUTLINE_DEPTH } from '../spaces/apps/notesMarkdown';
import { ID_RULES, isVertexId } from '../spaces/ids';

// ---- view models (host → webview) -----------------------------------------------------------

export interface AppTreeSummary {
  readonly treeId: string;
  readonly appId: string;
  readonly name: string;
}

/** A notes item as the outline editor shows it. `parentId` null = deleted (in patches). */
export interface NoteRow {
  readonly id: string;
  readonly parentId: string | null;
  readonly text: string;
  readonly done: boolean;
}

export interface ChatRow {
  readonly id: string;
  readonly author: string;
  readonly text: string;
  readonly time: number;
  /** In patches: the message was deleted. */
  readonly deleted?: true;
}

export interface InspectorNode {
  readonly id: string;
  readonly props: Record<string, unknown>;
  readonly children: InspectorNode[];
}

export type TreeView =
  | { readonly kind: 'notes'; readonly rootId: string; readonly items: NoteRow[]; readonly children: Record<string, string[]> }
  | { readonly kind: 'chat'; readonly rootId: string; readonly author: string; readonly messages: ChatRow[] }
  | { readonly kind: 'inspector'; readonly rootId: string; readonly root: InspectorNode; readonly truncated: boolean };

export type TreePatch =
  | { readonly kind: 'notes'; readonly items: NoteRow[]; readonly children: Record<string, string[]> }
  | { readonly kind: 'chat'; readonly messages: ChatRow[] }
  | { readonly kind: 'inspector'; readonly root: InspectorNode; readonly truncated: boolean };

export type HostMessage =
  /** The space: its name and app trees; `selected` is the tree shown (undefined: the overview). */
  | { readonly type: 'space'; readonly spaceId: string; readonly name: string; readonly trees: AppTreeSummary[]; readonly selected?: string; readonly sync?: string }
  /** The file cannot be shown as a space (not a space, locked, newer format…); nothing was written to it. */
  | { readonly type: 'fileError'; readonly file: string; readonly message: string }
  | { readonly type: 'loading'; readonly treeId: string }
  | { readonly type: 'tree'; readonly treeId: string; readonly view: TreeView }
  | { readonly type: 'patch'; readonly treeId: string; readonly patch: TreePatch }
  /** Focus an item after an edit the host made (e.g. a new item from Enter). */
  | { readonly type: 'focus'; readonly treeId: string; readonly itemId: string; readonly caret?: Caret }
  | { readonly type: 'ack'; readonly seq: number; readonly error?: string };

/** Where the caret goes in a focused item: its start, its end, or an offset in its text. */
export type Caret = 'start' | 'end' | number;

// ---- requests (webview → host) ---------------------------------------------------------------

export type NotesEdit =
  | { readonly op: 'add'; readonly afterId?: string; readonly parentId?: string; readonly text: string }
  | { readonly op: 'setText'; readonly id: string; readonly text: string }
  | { readonly op: 'setDone'; readonly id: string; readonly done: boolean }
  | { readonly op: 'indent' | 'outdent' | 'moveUp' | 'moveDown' | 'delete'; readonly id: string }
  /** Enter in the middle of an item: its text becomes `before`, a new item after it gets `after`. */
  | { readonly op: 'split'; readonly id: string; readonly before: string; readonly after: string }
  /**
   * Several lines pasted into an item at the caret: the item's text becomes `before` + the first
   * line, each further line a new item below it, the last one ending with `after`. One undo step.
   */
  | {
      readonly op: 'paste';
      readonly id: string;
      readonly before: string;
      readonly lines: string[];
      readonly after: string;
      /**
       * A pasted list's nesting: the depth of each line (the first 0, each at most one more than
       * the line before; a line at depth d > 0 goes under the nearest line above at d - 1) and
       * which lines are checked. Absent: every line at depth 0, none checked.
       */
      readonly depths?: number[];
      readonly done?: boolean[];
    }
  /**
   * Backspace at the start of an item: its text is appended to `intoId` (the item shown above it),
   * its children follow it there, and it is deleted. One undo step.
   */
  | { readonly op: 'merge'; readonly id: string; readonly intoId: string }
  /** An action on several selected items at once (items under a selected one go with it). One undo step. */
  | { readonly op: 'selection'; readonly action: SelectionAction; readonly ids: string[] }
  /** Drag and drop: the items move, in this order, under `parentId` after `afterId` (absent: first). */
  | { readonly op: 'moveTo'; readonly ids: string[]; readonly parentId: string; readonly afterId?: string };

/** `cut` is `delete` without the question first: the items are on the clipboard. */
export type SelectionAction = 'indent' | 'outdent' | 'moveUp' | 'moveDown' | 'delete' | 'cut' | 'check' | 'uncheck';

export type ChatEdit =
  | { readonly op: 'post'; readonly text: string }
  /** Edit or delete one's own message (the host refuses another author's). */
  | { readonly op: 'editMessage'; readonly id: string; readonly text: string }
  | { readonly op: 'deleteMessage'; readonly id: string };

export type InspectorEdit =
  | { readonly op: 'setProp'; readonly id: string; readonly key: string; readonly json: string }
  | { readonly op: 'deleteProp'; readonly id: string; readonly key: string }
  | { readonly op: 'addChild'; readonly parentId: string }
  | { readonly op: 'deleteVertex'; readonly id: string };

export type WebviewMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'select'; readonly treeId: string | null }
  | { readonly type: 'addAppTree' }
  | { readonly type: 'edit'; readonly seq: number; readonly treeId: string; readonly edit: NotesEdit | ChatEdit | InspectorEdit }
  /** First paint of a tree view took `ms` from the `tree` message (for benchmarks and the log). */
  | { readonly type: 'painted'; readonly treeId: string; readonly items: number; readonly ms: number }
  | { readonly type: 'openAsText' }
  /** A link clicked in a chat message: the host opens it (only http, https and mailto). */
  | { readonly type: 'openLink'; readonly url: string };

export const EDITOR_LIMITS = {
  /** Longest text of one note or chat message, in UTF-16 units. */
  text: 100_000,
  /** Longest JSON value typed into the inspector. */
  json: 1_000_000,
  /** Vertices the inspector shows (it is for small app trees). */
  inspectorNodes: 5_000,
  /** Lines one paste may turn into items. */
  pasteLines: 1_000,
  /** Characters of one paste, all lines together. */
  pasteChars: 1_000_000,
  /** Items one selection action or one drag may move. */
  selection: 100_000,
  /** Deepest level of a pasted list (see MAX_OUTLINE_DEPTH). */
  pasteDepth: MAX_OUTLINE_DEPTH,
} as const;

// ---- runtime checks (host side) ----------------------------------------------------------------

export class BadMessageError extends Error {
  constructor(message: string) {
    super(`bad message from the editor: ${message}`);
    this.name = 'BadMessageError';
  }
}


function obj(x: unknown, what: string): Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new BadMessageError(`${what} is not an object`);
  return x as Record<string, unknown>;
}

function id(o: Record<string, unknown>, k: string): string {
  const v = o[k];
  if (!isVertexId(v)) throw new BadMessageError(`${k} is not an id (${ID_RULES.vertex})`);
  return v;
}

function optId(o: Record<string, unknown>, k: string): string | undefined {
  return o[k] === undefined ? undefined : id(o, k);
}

function text(o: Record<string, unknown>, k: string, max: number = EDITOR_LIMITS.text): string {
  const v = o[k];
  if (typeof v !== 'string') throw new BadMessageError(`${k} is not a string`);
  if (v.length > max) throw new BadMessageError(`${k} is longer than ${max} characters`);
  return v;
}

function pastedLines(x: unknown): string[] {
  if (!Array.isArray(x) || x.length === 0) throw new BadMessageError('lines is not a list of lines');
  if (x.length > EDITOR_LIMITS.pasteLines) throw new BadMessageError(`a paste of more than ${EDITOR_LIMITS.pasteLines} lines`);
  let total = 0;
  return x.map((line: unknown, i) => {
    const v = text({ [`lines[${i}]`]: line }, `lines[${i}]`);
    if (v.includes('\n')) throw new BadMessageError('a pasted line holds a line break');
    total += v.length;
    if (total > EDITOR_LIMITS.pasteChars) throw new BadMessageError(`a paste of more than ${EDITOR_LIMITS.pasteChars} characters`);
    return v;
  });
}

function idList(x: unknown, k: string): string[] {
  if (!Array.isArray(x) || x.length === 0) throw new BadMessageError(`${k} is not a list of ids`);
  if (x.length > EDITOR_LIMITS.selection) throw new BadMessageError(`${k} holds more than ${EDITOR_LIMITS.selection} ids`);
  return x.map((v: unknown, i) => id({ [`${k}[${i}]`]: v }, `${k}[${i}]`));
}

/** The optional nesting of a paste: as many depths (and done flags) as lines, each a step at most. */
function pastedShape(e: Record<string, unknown>, n: number): { depths?: number[]; done?: boolean[] } {
  const out: { depths?: number[]; done?: boolean[] } = {};
  if (e.depths !== undefined) {
    const d = e.depths;
    if (!Array.isArray(d) || d.length !== n) throw new BadMessageError('depths is not one depth per line');
    let prev = -1;
    out.depths = d.map((v: unknown, i) => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > prev + 1 || v > EDITOR_LIMITS.pasteDepth || (i === 0 && v !== 0)) {
        throw new BadMessageError(`depths[${i}] is not a depth after ${prev}`);
      }
      return (prev = v);
    });
  }
  if (e.done !== undefined) {
    const d = e.done;
    if (!Array.isArray(d) || d.length !== n || !d.every((v) => typeof v === 'boolean')) throw new BadMessageError('done is not one boolean per line');
    out.done = d as boolean[];
  }
  return out;
}

const SELECTION_ACTIONS: ReadonlySet<string> = new Set<SelectionAction>(['indent', 'outdent', 'moveUp', 'moveDown', 'delete', 'cut', 'check', 'uncheck']);

function parseNotesEdit(e: Record<string, unknown>): NotesEdit {
  switch (e.op) {
    case 'add':
      return { op: 'add', afterId: optId(e, 'afterId'), parentId: optId(e, 'parentId'), text: text(e, 'text') };
    case 'setText':
      return { op: 'setText', id: id(e, 'id'), text: text(e, 'text') };
    case 'setDone':
      if (typeof e.done !== 'boolean') throw new BadMessageError('done is not a boolean');
      return { op: 'setDone', id: id(e, 'id'), done: e.done };
    case 'indent':
    case 'outdent':
    case 'moveUp':
    case 'moveDown':
    case 'delete':
      return { op: e.op, id: id(e, 'id') };
    case 'split':
      return { op: 'split', id: id(e, 'id'), before: text(e, 'before'), after: text(e, 'after') };
    case 'paste': {
      const lines = pastedLines(e.lines);
      return { op: 'paste', id: id(e, 'id'), before: text(e, 'before'), lines, after: text(e, 'after'), ...pastedShape(e, lines.length) };
    }
    case 'merge':
      return { op: 'merge', id: id(e, 'id'), intoId: id(e, 'intoId') };
    case 'selection':
      if (typeof e.action !== 'string' || !SELECTION_ACTIONS.has(e.action)) throw new BadMessageError(`unknown selection action ${JSON.stringify(e.action)}`);
      return { op: 'selection', action: e.action as SelectionAction, ids: idList(e.ids, 'ids') };
    case 'moveTo':
      return { op: 'moveTo', ids: idList(e.ids, 'ids'), parentId: id(e, 'parentId'), afterId: optId(e, 'afterId') };
    default:
      throw new BadMessageError(`unknown notes edit ${JSON.stringify(e.op)}`);
  }
}

function parseOtherEdit(e: Record<string, unknown>): ChatEdit | InspectorEdit {
  switch (e.op) {
    case 'post':
      return { op: 'post', text: text(e, 'text') };
    case 'editMessage':
      return { op: 'editMessage', id: id(e, 'id'), text: text(e, 'text') };
    case 'deleteMessage':
      return { op: 'deleteMessage', id: id(e, 'id') };
    case 'setProp':
      return { op: 'setProp', id: id(e, 'id'), key: text(e, 'key', 256), json: text(e, 'json', EDITOR_LIMITS.json) };
    case 'deleteProp':
      return { op: 'deleteProp', id: id(e, 'id'), key: text(e, 'key', 256) };
    case 'addChild':
      return { op: 'addChild', parentId: id(e, 'parentId') };
    case 'deleteVertex':
      return { op: 'deleteVertex', id: id(e, 'id') };
    default:
      throw new BadMessageError(`unknown edit ${JSON.stringify(e.op)}`);
  }
}

const NOTES_OPS: ReadonlySet<string> = new Set<NotesEdit['op']>(['add', 'setText', 'setDone', 'indent', 'outdent', 'moveUp', 'moveDown', 'delete', 'split', 'paste', 'merge', 'selection', 'moveTo']);
const INSPECTOR_OPS: ReadonlySet<string> = new Set<InspectorEdit['op']>(['setProp', 'deleteProp', 'addChild', 'deleteVertex']);

export function isNotesEdit(e: NotesEdit | ChatEdit | InspectorEdit): e is NotesEdit {
  return NOTES_OPS.has(e.op);
}

export function isChatEdit(e: NotesEdit | ChatEdit | InspectorEdit): e is ChatEdit {
  return e.op === 'post' || e.op === 'editMessage' || e.op === 'deleteMessage';
}

export function isInspectorEdit(e: NotesEdit | ChatEdit | InspectorEdit): e is InspectorEdit {
  return INSPECTOR_OPS.has(e.op);
}

/** Checks a message from the webview; throws BadMessageError with the reason. */
export function parseWebviewMessage(x: unknown): WebviewMessage {
  const m = obj(x, 'the message');
  switch (m.type) {
    case 'ready':
    case 'addAppTree':
    case 'openAsText':
      return { type: m.type };
    case 'select':
      return { type: 'select', treeId: m.treeId === null ? null : id(m, 'treeId') };
    case 'openLink': {
      const url = typeof m.url === 'string' ? safeLink(m.url) : undefined;
      if (!url) throw new BadMessageError('url is not an http, https or mailto link');
      return { type: 'openLink', url };
    }
    case 'edit': {
      if (typeof m.seq !== 'number' || !Number.isSafeInteger(m.seq) || m.seq < 0) throw new BadMessageError('seq is not a counter');
      const e = obj(m.edit, 'edit');
      const edit = typeof e.op === 'string' && NOTES_OPS.has(e.op) ? parseNotesEdit(e) : parseOtherEdit(e);
      return { type: 'edit', seq: m.seq, treeId: id(m, 'treeId'), edit };
    }
    case 'painted':
      if (typeof m.ms !== 'number' || !Number.isFinite(m.ms) || typeof m.items !== 'number' || !Number.isSafeInteger(m.items)) throw new BadMessageError('bad figures');
      return { type: 'painted', treeId: id(m, 'treeId'), items: m.items, ms: m.ms };
    default:
      throw new BadMessageError(`unknown type ${JSON.stringify(m.type)}`);
  }
}
