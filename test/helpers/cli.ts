/** Runs built scripts (dist/cli.js, dist/server.js) as child processes, as a user or a script would. */
import { spawn } from 'node:child_process';
import path from 'node:path';

export const CLI = path.resolve(__dirname, '../../../dist/cli.js');
export const TEST_KEY = 'ab'.repeat(32);

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  stdin?: string;
  env?: NodeJS.ProcessEnv;
  /** Run as this user (needs root), e.g. to see what a user without root's privileges sees. */
  user?: { readonly uid: number; readonly gid: number };
}

export function runCli(args: string[], opts: RunOptions = {}): Promise<CliResult> {
  return runScript(CLI, args, { ...opts, env: { SPACES_KEY: TEST_KEY, ...opts.env } });
}

/** Runs `node script ...args`, feeding `stdin`, and collects its output and exit code. */
export function runScript(script: string, args: string[], opts: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      ...opts.user,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.stdin ?? '');
  });
}

/** Runs the CLI and parses its JSON output; fails with the CLI's stderr when it exits non-zero. */
export async function cliJson<T = Record<string, unknown>>(args: string[], opts: RunOptions = {}): Promise<T> {
  const r = await runCli(args, opts);
  if (r.code !== 0) throw new Error(`spaces ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
