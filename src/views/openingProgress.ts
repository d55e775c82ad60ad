/**
 * A progress notification while space files are being opened for longer than a moment (large
 * files: reading and merging their ops takes a while): one notification for all the files being
 * opened, naming them, until none is left. Follows the WorkspaceModel's entries in `opening` state.
 */
import * as vscode from 'vscode';
import { PROGRESS_DELAY_MS, progressAfter, type DelayedProgress } from './progress';
import type { WorkspaceModel } from './workspaceModel';

export class OpeningProgress implements vscode.Disposable {
  private current: { progress: DelayedProgress; done: () => void } | undefined;
  private readonly sub: vscode.Disposable;

  constructor(
    private readonly model: WorkspaceModel,
    private readonly delayMs = PROGRESS_DELAY_MS,
  ) {
    this.sub = model.onDidChange(() => this.update());
    this.update();
  }

  /** Whether a notification is showing now (for tests). */
  get shown(): boolean {
    return this.current?.progress.shown ?? false;
  }

  private update(): void {
    const opening = this.model.entries().filter((e) => e.state.kind === 'opening');
    if (opening.length === 0) {
      this.current?.done();
      this.current = undefined;
      return;
    }
    if (!this.current) {
      let done!: () => void;
      const finished = new Promise<void>((resolve) => (done = resolve));
      this.current = { progress: progressAfter('Spaces: opening space files', finished, this.delayMs), done };
    }
    const names = opening.map((e) => vscode.workspace.asRelativePath(e.uri));
    this.current.progress.report(names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${names.length - 3} more` : names.join(', '));
  }

  dispose(): void {
    this.sub.dispose();
    this.current?.done();
    this.current = undefined;
  }
}
