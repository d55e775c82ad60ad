/**
 * A progress notification that appears only when the work it reports takes longer than a moment:
 * quick work shows nothing, slow work (a first sync with a server, opening a large space file)
 * shows a notification until it is done.
 */
import * as vscode from 'vscode';

export const PROGRESS_DELAY_MS = 1000;

export interface DelayedProgress extends vscode.Disposable {
  /** Updates the message shown (kept for when the notification appears). */
  report(message: string): void;
  /** Whether the notification was shown (for tests and logs). */
  readonly shown: boolean;
}

/**
 * Shows `title` as a notification with a spinner if `done` has not settled after `delayMs`, until
 * it settles or the returned handle is disposed (which also cancels the timer).
 */
export function progressAfter(title: string, done: Promise<unknown>, delayMs = PROGRESS_DELAY_MS): DelayedProgress {
  let end!: () => void;
  const ended = new Promise<void>((resolve) => (end = resolve));
  let finished = false;
  let shown = false;
  let message: string | undefined;
  let reporter: vscode.Progress<{ message?: string }> | undefined;
  const finish = (): void => {
    finished = true;
    clearTimeout(timer);
    end();
  };
  done.then(finish, finish);
  const timer = setTimeout(() => {
    if (finished) return;
    shown = true;
    void vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title }, (progress) => {
      reporter = progress;
      if (message) progress.report({ message });
      return ended;
    });
  }, delayMs);
  return {
    report(m: string) {
      message = m;
      reporter?.report({ message: m });
    },
    get shown() {
      return shown;
    },
    dispose: finish,
  };
}
