/** Tiny DOM helpers for the space editor's webview (no framework: the bundle stays small). */

type Attrs = Record<string, string | number | boolean | undefined>;

/** Creates an element with attributes (`class`, `aria-*`, `data-*`, …) and children. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Node | string | undefined)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== undefined) e.append(c);
  return e;
}

/** The caret's offset in the text of `e`, or undefined when the caret is elsewhere. */
export function caretOffset(e: HTMLElement): number | undefined {
  const sel = window.getSelection();
  if (!sel || sel.rangeCount === 0 || !e.contains(sel.focusNode)) return undefined;
  const r = sel.getRangeAt(0);
  const pre = document.createRange();
  pre.selectNodeContents(e);
  pre.setEnd(r.endContainer, r.endOffset);
  return pre.toString().length;
}

/** Puts the caret at `offset` in the text of `e` (clamped to its length). */
export function setCaret(e: HTMLElement, offset: number): void {
  const sel = window.getSelection();
  if (!sel) return;
  const r = document.createRange();
  const node = e.firstChild;
  if (node && node.nodeType === Node.TEXT_NODE) {
    r.setStart(node, Math.max(0, Math.min(offset, node.textContent?.length ?? 0)));
  } else {
    r.setStart(e, 0);
  }
  r.collapse(true);
  sel.removeAllRanges();
  sel.addRange(r);
}

/** Sets an element's text, keeping the caret where it was when the element has focus. */
export function setTextKeepingCaret(e: HTMLElement, text: string): void {
  if (e.textContent === text) return;
  const at = document.activeElement === e ? caretOffset(e) : undefined;
  e.textContent = text;
  if (at !== undefined) setCaret(e, at);
}

export function clear(e: HTMLElement): void {
  while (e.firstChild) e.firstChild.remove();
}
