// Helpers for code that runs inside VS Code's extension host (test/e2e/suite, test/e2e/bench).
import { execFile } from 'node:child_process';
import * as vscode from 'vscode';
import type { SpacesApi } from '../../src/extension';

export const EXT_ID = 'spaces-vscode.spaces-vscode';

/** Polls `fn` every 50 ms until it returns a truthy value; fails after `timeoutMs` with the last error. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const t0 = Date.now();
  let last: unknown;
  while (Date.now() - t0 < timeoutMs) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
}

/** Activates the extension (or gets the running one) and waits until no space file is still opening. */
export async function activateSpaces(): Promise<SpacesApi> {
  const ext = vscode.extensions.getExtension<SpacesApi>(EXT_ID);
  if (!ext) throw new Error(`extension ${EXT_ID} not found`);
  const api = await ext.activate();
  await api.model.ready;
  await until('every space file to be opened', () => api.model.entries().every((e) => e.state.kind !== 'opening'));
  return api;
}

/** Runs the built CLI (`cli`: dist/cli.js) in a child process, as another program changing the files would. */
export function runCli(cli: string, ...args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cli, ...args], { env: process.env }, (err, stdout, stderr) => {
      if (err) reject(new Error(`spaces ${args.join(' ')}: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout) as Record<string, unknown>);
    });
  });
}
