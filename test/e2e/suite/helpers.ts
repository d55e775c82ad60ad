// Helpers for the extension's test suites (they run inside VS Code's extension host on the fixture
// made by scripts/e2e/run.mjs). Not a test file itself: index.ts loads *.test.js only.
import { execFile } from 'node:child_process';
import fs from 'node:fs';

export const EXT_ID = 'spaces-vscode.spaces-vscode';

export interface Fixture {
  workspace: string;
  cli: string;
  /** The team server started for the tests, and its admin token. */
  server: { url: string; token: string };
  /** The CLI key file ($SPACES_KEY_FILE): the same key as $SPACES_KEY. */
  keyFile: string;
  alpha: { file: string; spaceId: string; todoId: string; chatId: string; boardId: string; milkId: string };
  beta: { file: string; spaceId: string };
  broken: { file: string };
}

export function loadFixture(): Fixture {
  return JSON.parse(fs.readFileSync(process.env.SPACES_E2E_FIXTURE ?? '', 'utf8')) as Fixture;
}

/** Runs the built CLI in a child process, as another program would; resolves with its JSON output. */
export function runCli(cli: string, ...args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cli, ...args], { env: process.env }, (err, stdout, stderr) => {
      if (err) reject(new Error(`spaces ${args.join(' ')}: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout) as Record<string, unknown>);
    });
  });
}

/** Polls `fn` (every 50 ms) until it returns something truthy; fails after `timeoutMs` with the last error. */
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
