/**
 * WorkspaceModel: the `*.space` files of the open workspace, each opened with a FileLayer into
 * the one SpaceManager of the window, and kept current with a FileSystemWatcher:
 * create → open, change → `layer.refresh()` (other writers' ops merge and fire the manager's
 * change events), delete → close. A file that cannot be opened (not a space, newer schema,
 * locked, …) becomes an error entry with the reason; the file itself is never touched.
 *
 * Work on one file is serialized (a create event during an open, a delete during a refresh).
 */
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { FileLayer, SpaceFileError } from '../persistence/file/fileLayer';
import type { Space } from '../spaces/space';
import type { SpaceManager } from '../spaces/spaceManager';
import type { FileKeyStore } from './fileKey';

export const SPACE_GLOB = '**/*.space';
const EXCLUDE_GLOB = '**/node_modules/**';
const SWEEP_MS = 2000;

export type SpaceFileState =
  | { readonly kind: 'opening' }
  | { readonly kind: 'open'; readonly spaceId: string; readonly layer: FileLayer }
  | { readonly kind: 'error'; readonly message: string; readonly code?: string };

export interface SpaceFileEntry {
  readonly uri: vscode.Uri;
  readonly state: SpaceFileState;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class WorkspaceModel implements vscode.Disposable {
  private readonly files = new Map<string, SpaceFileEntry>();
  private readonly queues = new Map<string, Promise<void>>();
  private readonly changeEmitter = new vscode.EventEmitter<void>();
  /** The list of files or the state of one changed (space contents: `manager.onDidChangeSpace`). */
  readonly onDidChange = this.changeEmitter.event;
  private readonly disposables: vscode.Disposable[] = [];
  private scanning: Promise<void> | undefined;
  private disposed = false;

  constructor(
    readonly manager: SpaceManager,
    private readonly keys: FileKeyStore,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** Starts watching and scans the workspace; resolves when every file found has been tried. */
  start(): Promise<void> {
    const watcher = vscode.workspace.createFileSystemWatcher(SPACE_GLOB);
    this.disposables.push(
      watcher,
      watcher.onDidCreate((uri) => void this.openFile(uri)),
      watcher.onDidChange((uri) => void this.fileChanged(uri)),
      watcher.onDidDelete((uri) => void this.fileDeleted(uri)),
      vscode.workspace.onDidChangeWorkspaceFolders(() => void this.rescan()),
    );
    // VS Code's watcher drops an "added" + "deleted" pair that falls in one batch, and a save by
    // another process (write + rename) is reported as "added": a delete right after such a save
    // is never reported. Files that vanish are found by this sweep instead (a few stats).
    const sweep = setInterval(() => this.sweep(), SWEEP_MS);
    sweep.unref();
    this.disposables.push({ dispose: () => clearInterval(sweep) });
    return this.rescan();
  }

  /** Resolves once the current scan (if any) is done. */
  get ready(): Promise<void> {
    return this.scanning ?? Promise.resolve();
  }

  entries(): SpaceFileEntry[] {
    return [...this.files.values()].sort((a, b) => a.uri.fsPath.localeCompare(b.uri.fsPath));
  }

  entry(uri: vscode.Uri): SpaceFileEntry | undefined {
    return this.files.get(uri.fsPath);
  }

  entryForSpace(spaceId: string): SpaceFileEntry | undefined {
    return this.entries().find((e) => e.state.kind === 'open' && e.state.spaceId === spaceId);
  }

  space(spaceId: string): Space | undefined {
    return this.manager.get(spaceId);
  }

  /** Closes the spaces of files that are gone. */
  private sweep(): void {
    for (const e of this.files.values()) {
      if (e.uri.scheme === 'file' && !this.queues.has(e.uri.fsPath) && !fs.existsSync(e.uri.fsPath)) void this.fileDeleted(e.uri);
    }
  }

  /** Finds every `*.space` file again: opens new ones, retries failed ones, refreshes open ones, drops vanished ones. */
  rescan(): Promise<void> {
    const run = async (): Promise<void> => {
      // The storage worker starts while VS Code searches (the first open then finds it running).
      const release = FileLayer.prewarm();
      try {
        const found = await vscode.workspace.findFiles(SPACE_GLOB, EXCLUDE_GLOB);
        const keys = new Set(found.map((u) => u.fsPath));
        this.log.info(`found ${found.length} space file(s) in the workspace`);
        await Promise.all([
          ...found.map((u) => (this.files.get(u.fsPath)?.state.kind === 'open' ? this.fileChanged(u) : this.openFile(u))),
          ...[...this.files.values()].filter((e) => !keys.has(e.uri.fsPath)).map((e) => this.fileDeleted(e.uri)),
        ]);
      } finally {
        await release();
      }
    };
    const p = (this.scanning ?? Promise.resolve()).then(run).catch((e: unknown) => this.log.error(`scanning the workspace failed: ${errorMessage(e)}`));
    this.scanning = p;
    void p.finally(() => {
      if (this.scanning === p) this.scanning = undefined;
    });
    return p;
  }

  private enqueue(key: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.queues.get(key) ?? Promise.resolve();
    const next = prev.then(fn).catch((e: unknown) => this.log.error(`${key}: ${errorMessage(e)}`));
    this.queues.set(key, next);
    void next.finally(() => {
      if (this.queues.get(key) === next) this.queues.delete(key);
    });
    return next;
  }

  private set(uri: vscode.Uri, state: SpaceFileState): void {
    this.files.set(uri.fsPath, { uri, state });
    this.changeEmitter.fire();
  }

  /** Opens a file found or created by someone else (a no-op refresh when it is open already). */
  openFile(uri: vscode.Uri): Promise<void> {
    return this.enqueue(uri.fsPath, async () => {
      if (this.disposed) return;
      const cur = this.files.get(uri.fsPath);
      if (cur?.state.kind === 'open') return this.refreshLayer(uri, cur.state.layer);
      if (uri.scheme === 'file' && !fs.existsSync(uri.fsPath)) {
        // Gone again before we got to it (a delete event follows, or already came).
        if (this.files.delete(uri.fsPath)) this.changeEmitter.fire();
        return;
      }
      if (uri.scheme !== 'file') {
        this.set(uri, { kind: 'error', message: `${uri.toString()}: only files on disk can be opened (scheme ${uri.scheme})` });
        return;
      }
      this.set(uri, { kind: 'opening' });
      let layer: FileLayer;
      try {
        // The VS Code watcher reports changes; the layer's own watcher would only duplicate them.
        layer = await FileLayer.open(uri.fsPath, { secretKey: await this.keys.get(), watch: false });
      } catch (e) {
        const code = e instanceof SpaceFileError ? e.code : undefined;
        this.log.warn(`cannot open ${uri.fsPath}: ${errorMessage(e)}`);
        this.set(uri, { kind: 'error', message: errorMessage(e), code });
        return;
      }
      await this.adopt(uri, layer);
    });
  }

  /** Registers an open layer: opens its space in the manager, or records why not. */
  private async adopt(uri: vscode.Uri, layer: FileLayer): Promise<Space | undefined> {
    if (this.disposed) {
      await layer.close();
      return undefined;
    }
    const twin = this.entryForSpace(layer.spaceId);
    if (twin && twin.uri.fsPath !== uri.fsPath) {
      await layer.close();
      const message = `${path.basename(uri.fsPath)} holds the same space as ${vscode.workspace.asRelativePath(twin.uri)} (a copy?); only that file is open`;
      this.log.warn(`${uri.fsPath}: ${message}`);
      this.set(uri, { kind: 'error', message, code: 'DUPLICATE' });
      return undefined;
    }
    try {
      const space = await this.manager.open(layer.spaceId, [layer]);
      layer.onError((e) => this.log.warn(`${uri.fsPath}: ${e.message}`));
      this.set(uri, { kind: 'open', spaceId: layer.spaceId, layer });
      this.log.info(`opened ${uri.fsPath} (space ${space.id}, "${space.name}")`);
      if (layer.readOnlyReason !== undefined) {
        // Shown, not only logged: edits of this space stay unsaved (the view marks its layer) until the file is writable.
        this.log.warn(layer.readOnlyReason);
        void vscode.window.showWarningMessage(`Spaces: ${path.basename(uri.fsPath)} is read-only. It is shown, but edits to "${space.name}" cannot be saved to it.`);
      }
      return space;
    } catch (e) {
      this.log.warn(`cannot open the space in ${uri.fsPath}: ${errorMessage(e)}`);
      this.set(uri, { kind: 'error', message: errorMessage(e) });
      return undefined;
    }
  }

  private async refreshLayer(uri: vscode.Uri, layer: FileLayer): Promise<void> {
    try {
      await layer.refresh();
    } catch (e) {
      this.log.warn(`refreshing ${uri.fsPath} failed: ${errorMessage(e)}`);
    }
  }

  /** Another writer changed the file: merge what it added (or retry a file that failed to open). */
  fileChanged(uri: vscode.Uri): Promise<void> {
    const cur = this.files.get(uri.fsPath);
    if (!cur || cur.state.kind === 'error') return this.openFile(uri);
    return this.enqueue(uri.fsPath, async () => {
      const e = this.files.get(uri.fsPath);
      if (e?.state.kind === 'open') await this.refreshLayer(uri, e.state.layer);
    });
  }

  /**
   * The file is gone: close its space. Saves replace the file atomically (write + rename), which
   * some watchers report as delete + create, so a file that still exists is refreshed instead.
   */
  fileDeleted(uri: vscode.Uri): Promise<void> {
    return this.enqueue(uri.fsPath, async () => {
      const cur = this.files.get(uri.fsPath);
      if (!cur) return;
      if (fs.existsSync(uri.fsPath)) {
        if (cur.state.kind === 'open') await this.refreshLayer(uri, cur.state.layer);
        return;
      }
      await this.closeEntry(cur);
      this.files.delete(uri.fsPath);
      this.changeEmitter.fire();
      this.log.info(`${uri.fsPath} was deleted; its space is closed`);
    });
  }

  private async closeEntry(e: SpaceFileEntry): Promise<void> {
    if (e.state.kind !== 'open') return;
    const unsaved = await this.manager.close(e.state.spaceId);
    for (const u of unsaved) this.log.warn(`${e.uri.fsPath}: closed with unsaved changes (${u.error ?? `${u.pendingOps} ops pending`})`);
  }

  /** Creates a new space file at `uri` and opens it; fails when a file is there. */
  async createSpace(uri: vscode.Uri, name: string): Promise<Space> {
    if (uri.scheme !== 'file') throw new Error(`${uri.toString()}: spaces can only be created on disk`);
    let created: Space | undefined;
    let failure: unknown;
    await this.enqueue(uri.fsPath, async () => {
      try {
        const secretKey = await this.keys.get();
        let layer: FileLayer | undefined;
        const space = await this.manager.create(name, async (spaceId) => [(layer = await FileLayer.create(uri.fsPath, spaceId, { secretKey, watch: false }))]);
        if (!layer) throw new Error('no layer was created');
        const l: FileLayer = layer;
        l.onError((e) => this.log.warn(`${uri.fsPath}: ${e.message}`));
        // Written now, so the file on disk is a complete space before anyone (the watcher) reads it.
        await this.manager.flush(space.id);
        this.set(uri, { kind: 'open', spaceId: space.id, layer: l });
        this.log.info(`created ${uri.fsPath} (space ${space.id}, "${name}")`);
        created = space;
      } catch (e) {
        failure = e;
      }
    });
    if (!created) throw failure instanceof Error ? failure : new Error(String(failure));
    return created;
  }

  /**
   * Closes the space and moves its file to the trash. When the trash is not available (some
   * remote file systems), `permanently` is asked whether to delete the file for good; if not, or
   * when deleting fails, the file is opened again. Resolves false when the file was kept.
   */
  async deleteSpaceFile(uri: vscode.Uri, permanently: (why: string) => Promise<boolean>): Promise<boolean> {
    let failure: unknown;
    let deleted = false;
    await this.enqueue(uri.fsPath, async () => {
      const cur = this.files.get(uri.fsPath);
      if (cur) await this.closeEntry(cur);
      this.files.delete(uri.fsPath);
      this.changeEmitter.fire();
      try {
        try {
          await vscode.workspace.fs.delete(uri, { useTrash: true });
          this.log.info(`moved ${uri.fsPath} to the trash`);
          deleted = true;
        } catch (e) {
          this.log.warn(`cannot move ${uri.fsPath} to the trash: ${errorMessage(e)}`);
          if (await permanently(errorMessage(e))) {
            await vscode.workspace.fs.delete(uri, { useTrash: false });
            this.log.info(`deleted ${uri.fsPath}`);
            deleted = true;
          }
        }
      } catch (e) {
        failure = e;
      }
    });
    // Still there: open it again so the tree shows what is on disk.
    if (!deleted && fs.existsSync(uri.fsPath)) void this.openFile(uri);
    if (failure) throw failure instanceof Error ? failure : new Error(String(failure));
    return deleted;
  }

  /** Stops watching, closes every space (flushing pending saves) and disposes the manager. */
  async close(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const d of this.disposables.splice(0)) d.dispose();
    await Promise.allSettled([...this.queues.values()]);
    const unsaved = await this.manager.closeAll();
    for (const u of unsaved) this.log.warn(`${u.label}: closed with unsaved changes (${u.error ?? `${u.pendingOps} ops pending`})`);
    await this.manager.dispose();
    this.files.clear();
    this.changeEmitter.dispose();
  }

  dispose(): void {
    void this.close();
  }
}
