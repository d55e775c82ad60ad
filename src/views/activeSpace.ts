/**
 * The active space: the one the user works in now — set by the Spaces view's selection and by the
 * space editor — for UI that follows it (the sync status bar item). `set` is the whole API for
 * writers; readers use `spaceId` and `onDidChange`.
 */
import * as vscode from 'vscode';
import { isHexId } from '../spaces/ids';


export class ActiveSpace implements vscode.Disposable {
  private current: string | undefined;
  private readonly emitter = new vscode.EventEmitter<string | undefined>();
  /** Fires with the new active space id (undefined: none) when it changes. */
  readonly onDidChange: vscode.Event<string | undefined> = this.emitter.event;

  get spaceId(): string | undefined {
    return this.current;
  }

  /** Makes `spaceId` the active space (undefined: none). Throws on something that is not a space id. */
  set(spaceId: string | undefined): void {
    if (spaceId !== undefined && !isHexId(spaceId)) throw new TypeError(`not a space id: ${String(spaceId)}`);
    if (spaceId === this.current) return;
    this.current = spaceId;
    this.emitter.fire(spaceId);
  }

  dispose(): void {
    this.emitter.dispose();
  }
}
