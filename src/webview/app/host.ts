/** The webview's side of the channel to the extension host (see ../protocol.ts). */
import type { ChatEdit, InspectorEdit, NotesEdit, WebviewMessage } from '../protocol';

interface VsCodeApi {
  postMessage(message: WebviewMessage): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

export type Edit = NotesEdit | ChatEdit | InspectorEdit;

export interface Pending {
  readonly treeId: string;
  readonly edit: Edit;
  readonly sentAt: number;
}

/** Typing figures the webview keeps for benchmarks and diagnostics (read by UI tests). */
export interface TypingFigures {
  /** keydown → the next frame with the character on screen (ms). */
  readonly keyToFrame: number[];
  /** setText sent → its ack back from the host (ms). */
  readonly roundTrip: number[];
}

const MAX_FIGURES = 5000;

export function record(list: number[], ms: number): void {
  list.push(ms);
  if (list.length > MAX_FIGURES) list.splice(0, list.length - MAX_FIGURES);
}

export class Host {
  readonly typing: TypingFigures = { keyToFrame: [], roundTrip: [] };

  private readonly api = acquireVsCodeApi();
  private seq = 0;
  private readonly pending = new Map<number, Pending>();

  post(m: WebviewMessage): void {
    this.api.postMessage(m);
  }

  /** Sends an edit; the host answers with an `ack` carrying the same seq. */
  edit(treeId: string, edit: Edit): number {
    const seq = ++this.seq;
    this.pending.set(seq, { treeId, edit, sentAt: performance.now() });
    this.post({ type: 'edit', seq, treeId, edit });
    return seq;
  }

  /** The edit an ack answers (and forgets it). */
  settle(seq: number): Pending | undefined {
    const p = this.pending.get(seq);
    this.pending.delete(seq);
    if (p?.edit.op === 'setText') record(this.typing.roundTrip, performance.now() - p.sentAt);
    return p;
  }

  /** True while a setText for this item has not been acknowledged: the DOM is ahead of the host. */
  typingAhead(id: string): boolean {
    for (const p of this.pending.values()) if (p.edit.op === 'setText' && p.edit.id === id) return true;
    return false;
  }

  get state(): Record<string, unknown> {
    const s = this.api.getState();
    return typeof s === 'object' && s !== null ? (s as Record<string, unknown>) : {};
  }

  saveState(patch: Record<string, unknown>): void {
    this.api.setState({ ...this.state, ...patch });
  }
}
