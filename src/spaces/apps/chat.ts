/**
 * The built-in `chat` app: a thread of messages, each a child of the root with `author`,
 * `text` and `time` (ms since the epoch). Messages are shown by time, then id.
 */
import { TreeError, type AppTree } from '../appTree';

export const CHAT_APP_ID = 'chat';

export interface ChatMessage {
  readonly id: string;
  readonly author: string;
  readonly text: string;
  readonly time: number;
}

export class Chat {
  constructor(readonly tree: AppTree) {}

  messages(): ChatMessage[] {
    const out = this.tree.childIds().map((id) => this.message(id));
    out.sort((a, b) => a.time - b.time || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return out;
  }

  message(id: string): ChatMessage {
    const p = this.tree.propsOf(id);
    return {
      id,
      author: typeof p.author === 'string' ? p.author : '',
      text: typeof p.text === 'string' ? p.text : '',
      time: typeof p.time === 'number' ? p.time : 0,
    };
  }

  /** Posts a message; `time` defaults to now. Messages carry no `order`: time orders them. */
  post(author: string, text: string, time: number = Date.now()): string {
    if (!author.trim()) throw new TreeError('a chat message needs an author');
    if (!Number.isSafeInteger(time) || time < 0) throw new TreeError('bad message time');
    return this.tree.addItem(this.tree.rootId, { author, text, time }, undefined, false);
  }

  edit(id: string, text: string): void {
    this.tree.setProps(id, { text });
  }

  delete(id: string): void {
    this.tree.delete(id);
  }
}
