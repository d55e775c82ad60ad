/**
 * The peer's side: Hocuspocus in a child process (yjsServerChild.ts) and HocuspocusProvider
 * clients, each with its own Y.Doc and WebSocket (`ws` as the WebSocket of Node). The document:
 * a Y.Map root holding BUCKETS Y.Arrays; an edit pushes one Y.Map leaf with `text` into a bucket,
 * one transaction per edit (as an editor makes it).
 */
import { HocuspocusProvider, type HocuspocusProviderConfiguration } from '@hocuspocus/provider';
import path from 'node:path';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { spawnServerProc, type ServerProc } from '../serverProc';
import { BUCKETS, bucketOf, editText, scratchDir, whenTrue, type Deadline } from './harness';

/** The document every client opens. */
const DOC_NAME = 'bench-space';
const ROOT = 'root';
/** Edits between two waits for the server's acknowledgement while a writer fills a document. */
const WRITE_CHUNK = 1_000;

export function yjsDataDir(root: string, name: string): string {
  return scratchDir(root, `spaces-peers-yjs-${name}-`);
}

export function startYjsServer(dir: string): Promise<ServerProc> {
  return spawnServerProc(['--expose-gc', '--max-old-space-size=4096', path.join(__dirname, 'yjsServerChild.js'), dir], { ipc: true });
}

type Leaf = Y.Map<string>;
type Bucket = Y.Array<Leaf>;

/** A writer that makes the tree and `n` edits (one leaf each), waits until they are sent, and leaves. */
export async function fillYjs(syncUrl: string, n: number, d: Deadline): Promise<void> {
  const w = new YjsClient(syncUrl);
  try {
    await w.whenSynced(d.remaining);
    w.makeTree();
    await w.write(0, n, d.remaining);
  } finally {
    w.close();
  }
}

export class YjsClient {
  readonly doc = new Y.Doc();
  readonly provider: HocuspocusProvider;
  /** WebSocket connections made (the first one included). */
  connects = 0;

  constructor(url: string) {
    // The provider hands its configuration to the socket it makes, WebSocketPolyfill included
    // (Hocuspocus's way to run in Node); its type names only the provider's own fields.
    const config: HocuspocusProviderConfiguration & { WebSocketPolyfill: typeof WebSocket } = { url, name: DOC_NAME, document: this.doc, WebSocketPolyfill: WebSocket };
    this.provider = new HocuspocusProvider(config);
    this.provider.on('open', () => void this.connects++);
  }

  private get root(): Y.Map<Bucket> {
    return this.doc.getMap<Bucket>(ROOT);
  }

  /** Resolves at the provider's first (or next) `synced`. */
  whenSynced(timeoutMs: number): Promise<void> {
    return whenTrue('synced', timeoutMs, () => this.provider.synced, (check) => {
      this.provider.on('synced', check);
      return { dispose: () => void this.provider.off('synced', check) };
    });
  }

  /** Synced, with every bucket. */
  async whenReady(timeoutMs: number): Promise<void> {
    await this.whenSynced(timeoutMs);
    await whenTrue('the buckets', timeoutMs, () => this.root.size >= BUCKETS, (check) => {
      this.doc.on('update', check);
      return { dispose: () => this.doc.off('update', check) };
    });
  }

  /** Resolves once the socket is closed (after disconnect()). */
  whenDisconnected(timeoutMs: number): Promise<void> {
    const ws = this.provider.configuration.websocketProvider;
    return whenTrue('disconnected', timeoutMs, () => ws.status === 'disconnected', (check) => {
      ws.on('status', check);
      return { dispose: () => void ws.off('status', check) };
    });
  }

  /** The writer's setup: the buckets, in one transaction. */
  makeTree(): void {
    this.doc.transact(() => {
      for (let b = 0; b < BUCKETS; b++) this.root.set(`b${b}`, new Y.Array<Leaf>());
    });
  }

  /** Edit `i`: one leaf in bucket i mod BUCKETS. */
  edit(i: number): void {
    const bucket = this.root.get(`b${bucketOf(i)}`);
    if (!bucket) throw new Error('edit before the buckets are loaded');
    this.doc.transact(() => {
      const leaf = new Y.Map<string>();
      leaf.set('text', editText(i));
      bucket.push([leaf]);
    });
  }

  leafCount(): number {
    let n = 0;
    for (const b of this.root.values()) n += b.length;
    return n;
  }

  /** Calls `fn(text)` for every leaf another client adds (after it is in this document). */
  onRemoteLeaf(fn: (text: string) => void): void {
    this.root.observeDeep((events, tx) => {
      if (tx.local) return;
      for (const e of events) {
        if (!(e.target instanceof Y.Array)) continue;
        for (const item of e.changes.added) {
          for (const c of item.content.getContent() as unknown[]) if (c instanceof Y.Map) fn(String(c.get('text')));
        }
      }
    });
  }

  whenLeaves(n: number, timeoutMs: number): Promise<void> {
    return whenTrue(`${n} leaves`, timeoutMs, () => this.leafCount() >= n, (check) => {
      this.doc.on('update', check);
      return { dispose: () => this.doc.off('update', check) };
    });
  }

  /** Resolves when the server has acknowledged every local update. */
  whenSent(timeoutMs: number): Promise<void> {
    return whenTrue('updates acknowledged', timeoutMs, () => !this.provider.hasUnsyncedChanges, (check) => {
      this.provider.on('unsyncedChanges', check);
      return { dispose: () => void this.provider.off('unsyncedChanges', check) };
    });
  }

  /** Makes `count` edits from `from` on, waiting for the server every WRITE_CHUNK edits, then until all are acknowledged. */
  async write(from: number, count: number, timeoutMs: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      this.edit(from + i);
      if ((i + 1) % WRITE_CHUNK === 0) await this.whenSent(timeoutMs);
    }
    await this.whenSent(timeoutMs);
  }

  disconnect(): void {
    this.provider.disconnect();
  }

  reconnect(): void {
    void this.provider.connect();
  }

  close(): void {
    this.provider.destroy();
    this.doc.destroy();
  }
}
