/**
 * The project's side of the peer benchmark: the real server (dist/server.js in a child process)
 * and real clients, each a SpaceManager with a FileLayer (which also keeps the ServerLayer's sync
 * state, as the extension and `spaces sync` do) and a ServerLayer with its default timings — what
 * one user's editor runs. The document: a notes app tree whose root holds BUCKETS bucket items;
 * an edit is `AppTree.addItem(bucket, { text })`, as the space editor makes it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import { ServerLayer } from '../../src/persistence/server/serverLayer';
import { DB_FILE } from '../../src/server/store/database';
import { ServerStore } from '../../src/server/store/serverStore';
import type { AppTree } from '../../src/spaces/appTree';
import { isPropertyOp } from '../../src/spaces/ops';
import type { Space } from '../../src/spaces/space';
import { SpaceManager } from '../../src/spaces/spaceManager';
import { spawnServerProc, type ServerProc } from '../serverProc';
import { bounded } from '../timing';
import { BUCKETS, bucketOf, editText, scratchDir, whenTrue, type Deadline } from './harness';

/** The secret key of every bench client's space file (secrets are not used here). */
const SECRET_KEY = Buffer.alloc(32, 7);
/** Edits between two waits for the server's acknowledgement while a writer fills a space. */
const WRITE_CHUNK = 1_000;
const NOTES_APP = 'notes';

export { DB_FILE as PROJECT_DB_FILE };

/** A directory for clients' space files. */
export const clientsDir = (root: string): string => scratchDir(root, 'spaces-peers-clients-');

/** A data directory with an admin token in its store (as `spaces-server token create` makes it). */
export function projectDataDir(root: string, name: string): { dir: string; token: string } {
  const dir = scratchDir(root, `spaces-peers-${name}-`);
  const store = ServerStore.open(dir);
  try {
    return { dir, token: store.tokens.create({ user: 'bench', space: '*', role: 'admin' }).token };
  } finally {
    store.close();
  }
}

/** `dist/server.js serve --port 0` on `dir` in a child process that answers heap requests. */
export function startProjectServer(dir: string): Promise<ServerProc> {
  return spawnServerProc(['--expose-gc', '--max-old-space-size=4096', path.join(__dirname, 'projectServerChild.js'), 'serve', '--port', '0', '--data', dir, '--log-level', 'info'], { ipc: true });
}

/** Creates a space on the server (POST /v1/spaces, as the CLI's push of a new space does). */
export async function createProjectSpace(url: string, token: string, name: string): Promise<string> {
  const res = await fetch(`${url}/v1/spaces`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ name }) });
  if (res.status !== 201) throw new Error(`POST /v1/spaces: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** A writer client that makes the tree and `n` edits (one leaf each), waits until the server has them, and leaves. */
export async function fillProject(dir: string, url: string, token: string, spaceId: string, n: number, d: Deadline): Promise<void> {
  const w = await bounded('writer open', d.remaining, ProjectClient.open(dir, 'writer', url, token, spaceId));
  try {
    w.makeTree();
    await bounded(`writing ${n} edits`, d.remaining, w.write(0, n));
  } finally {
    await w.close();
  }
}

export class ProjectClient {
  private notesTree: AppTree | undefined;
  private buckets: string[] = [];
  private constructor(
    readonly manager: SpaceManager,
    readonly file: FileLayer,
    public server: ServerLayer,
    readonly space: Space,
    private readonly opts: { url: string; token: string },
  ) {}

  /** Opens (a new file: clones) `dir/name.space`, synced with the server at `url`. */
  static async open(dir: string, name: string, url: string, token: string, spaceId: string): Promise<ProjectClient> {
    const file = path.join(dir, `${name}.space`);
    const manager = new SpaceManager();
    const layer = fs.existsSync(file) ? await FileLayer.open(file, { secretKey: SECRET_KEY }) : await FileLayer.create(file, spaceId, { secretKey: SECRET_KEY });
    const server = ProjectClient.serverLayer(manager, layer, url, token, spaceId);
    try {
      const space = await manager.open(spaceId, [layer, server]);
      return new ProjectClient(manager, layer, server, space, { url, token });
    } catch (e) {
      await manager.dispose();
      await server.close();
      await layer.close();
      throw e;
    }
  }

  private static serverLayer(manager: SpaceManager, layer: FileLayer, url: string, token: string, spaceId: string): ServerLayer {
    return new ServerLayer({ url, token, peerId: manager.peerId, spaceId, syncState: layer, client: 'spaces-bench' });
  }

  /** The writer's setup: the notes app tree and its buckets. */
  makeTree(): void {
    const notes = this.space.createAppTree(NOTES_APP, 'Notes');
    this.buckets = Array.from({ length: BUCKETS }, (_, b) => notes.addItem(notes.rootId, { text: `bucket ${b}` }));
    this.notesTree = notes;
  }

  /** The notes tree once the space lists it and it is loaded (from the layers). */
  async notes(timeoutMs: number): Promise<AppTree> {
    if (this.notesTree) return this.notesTree;
    const ref = (): string | undefined => this.space.appTreeRefs().find((r) => r.appId === NOTES_APP)?.id;
    await whenTrue('the notes tree listed in the space', timeoutMs, () => ref() !== undefined, (check) => this.manager.onDidChangeSpace(check));
    const tree = await this.space.openAppTree(ref() as string);
    await whenTrue('the buckets', timeoutMs, () => tree.childIds(tree.rootId).length >= BUCKETS, (check) => this.manager.onDidChangeSpace(check));
    this.notesTree = tree;
    this.buckets = tree.childIds(tree.rootId);
    return tree;
  }

  /** Edit `i`: one item in bucket i mod BUCKETS. */
  edit(i: number): void {
    const notes = this.notesTree;
    if (!notes || this.buckets.length !== BUCKETS) throw new Error('edit before the notes tree and its buckets are loaded');
    notes.addItem(this.buckets[bucketOf(i)], { text: editText(i) });
  }

  /** Leaves under the buckets (every item but the buckets). */
  leafCount(): number {
    const notes = this.notesTree;
    return notes ? notes.countItems(notes.rootId) - notes.childIds(notes.rootId).length : 0;
  }

  /** Resolves once the tree holds `n` leaves. */
  async whenLeaves(n: number, timeoutMs: number): Promise<void> {
    await this.notes(timeoutMs);
    await whenTrue(`${n} leaves`, timeoutMs, () => this.leafCount() >= n, (check) => this.manager.onDidChangeSpace(check));
  }

  /** Makes `count` edits from `from` on, waiting for the server every WRITE_CHUNK edits, then until all are acknowledged. */
  async write(from: number, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      this.edit(from + i);
      if ((i + 1) % WRITE_CHUNK === 0) await this.settle();
    }
    await this.settle();
  }

  /** Makes `count` edits from `from` on while offline, saving them in the file every WRITE_CHUNK edits. */
  async writeOffline(from: number, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      this.edit(from + i);
      if ((i + 1) % WRITE_CHUNK === 0) await this.manager.flush(this.space.id);
    }
    await this.manager.flush(this.space.id);
    await this.file.flush();
  }

  /** Calls `fn(text, at)` for each edit another client made, once it is in this client's tree. */
  onRemoteEdit(fn: (text: string, at: number) => void): { dispose(): void } {
    return this.manager.onDidChangeSpace((c) => {
      if (c.origin !== 'remote' || c.treeId !== this.notesTree?.id) return;
      const at = performance.now();
      for (const op of c.ops) if (isPropertyOp(op) && op.key === 'text' && typeof op.value === 'string') fn(op.value, at);
    });
  }

  /** Everything local is saved in the file and acknowledged by the server. */
  async settle(): Promise<void> {
    await this.manager.flush(this.space.id);
    await this.server.whenIdle();
    await this.file.flush();
  }

  /** Offline: the server layer leaves the session (the extension's Disconnect). */
  async disconnect(): Promise<void> {
    await this.manager.removeLayer(this.space.id, this.server.id);
    await this.server.close();
  }

  /** Online again: a new server layer joins the session (the extension's Connect). */
  async reconnect(): Promise<void> {
    this.server = ProjectClient.serverLayer(this.manager, this.file, this.opts.url, this.opts.token, this.space.id);
    await this.manager.addLayer(this.space.id, this.server);
  }

  async close(): Promise<void> {
    await this.manager.dispose();
    await this.server.close();
    await this.file.close();
  }
}
