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
  readonly stdin?: string;
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Runs the script under this OS file-size limit (bytes, rounded down to 512-byte blocks): a write
   * past it fails with EFBIG, as on a full disk. SIGXFSZ is ignored so that the process sees the
   * error instead of being killed.
   */
  readonly fileSizeLimit?: number;
  /** Run as this user (needs root), e.g. to see what a user without root's privileges sees. */
  readonly user?: { readonly uid: number; readonly gid: number };
}

export function runCli(args: string[], opts: RunOptions = {}): Promise<CliResult> {
  return runScript(CLI, args, { ...opts, env: { SPACES_KEY: TEST_KEY, ...opts.env } });
}

/** The command line that runs `node script ...args` (under a file-size limit if asked). */
export function nodeCommand(script: string, args: readonly string[], fileSizeLimit?: number): { command: string; args: string[] } {
  if (fileSizeLimit === undefined) return { command: process.execPath, args: [script, ...args] };
  const blocks = String(Math.floor(fileSizeLimit / 512));
  return { command: 'sh', args: ['-c', 'trap "" XFSZ; ulimit -f "$1" || exit 97; shift; exec "$@"', 'sh', blocks, process.execPath, script, ...args] };
}

/** Runs `node script ...args`, feeding `stdin`, and collects its output and exit code. */
export function runScript(script: string, args: string[], opts: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const cmd = nodeCommand(script, args, opts.fileSizeLimit);
    const child = spawn(cmd.command, cmd.args, {
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
