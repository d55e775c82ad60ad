/**
 * A server in a child process for the benchmarks: spawn it, wait for its `listening` log line,
 * read its CPU and memory from /proc/<pid>, scrape its /metrics, stop it. Shared by bench/sync.ts
 * and bench/peers/ (one copy of the process handling).
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { bounded, round } from './timing';

/** dist/server.js of this checkout (from out/bench/). */
export const SERVER_JS = path.join(__dirname, '..', '..', 'dist', 'server.js');
/** How long a child gets to print `listening`, and to exit after SIGTERM. */
const START_MS = 60_000;
const STOP_MS = 30_000;
const METRICS_MS = 5_000;

const CLK_TCK = 100;

export interface ProcSample {
  cpuTicks: number;
  at: number;
}

export function procSample(pid: number): ProcSample {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { cpuTicks: Number(f[11]) + Number(f[12]), at: performance.now() };
}

export function procMemMB(pid: number): { rssMB: number; peakRssMB: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMB: round(kb('VmRSS') / 1024), peakRssMB: round(kb('VmHWM') / 1024) };
}

/** CPU % of one core between two samples. */
export const cpuPct = (a: ProcSample, b: ProcSample): number => round((((b.cpuTicks - a.cpuTicks) / CLK_TCK) * 1000 * 100) / (b.at - a.at));

export interface ServerProc {
  readonly pid: number;
  readonly child: ChildProcess;
  readonly syncUrl: string;
  readonly url: string;
  /** Spawn → `listening` line, ms. */
  readonly startMs: number;
  /** Resolves when the process has exited (a crash included). */
  readonly exited: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Spawns `node ARGS` and resolves once it prints a JSON `listening` line with `url` and `syncUrl`
 * on stdout (the server's log); warnings and errors of that log go to stderr. `ipc`: the child
 * gets an IPC channel (for requests such as a gc and a heap reading).
 */
export async function spawnServerProc(args: readonly string[], opts: { ipc?: boolean } = {}): Promise<ServerProc> {
  const t0 = performance.now();
  const stdio: StdioOptions = opts.ipc ? ['ignore', 'pipe', 'inherit', 'ipc'] : ['ignore', 'pipe', 'inherit'];
  const child: ChildProcess = spawn(process.execPath, args, { stdio });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const listening = await bounded(
    'server start',
    START_MS,
    new Promise<{ url: string; syncUrl: string }>((resolve, reject) => {
      let buf = '';
      child.stdout?.on('data', (d: Buffer) => {
        buf += d.toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          try {
            const m = JSON.parse(line) as { msg?: string; level?: string; url?: string; syncUrl?: string };
            if (m.msg === 'listening' && m.url && m.syncUrl) resolve({ url: m.url, syncUrl: m.syncUrl });
            else if (m.level === 'warn' || m.level === 'error') process.stderr.write(`[server] ${line}\n`);
          } catch {
            process.stderr.write(`[server] ${line}\n`);
          }
        }
      });
      child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening`)));
    }),
  );
  const startMs = performance.now() - t0;
  return {
    pid: child.pid as number,
    child,
    ...listening,
    startMs,
    exited,
    stop: async () => {
      child.kill('SIGTERM');
      await bounded('server stop', STOP_MS, exited).catch(() => child.kill('SIGKILL'));
    },
  };
}

/** One sample of `GET /metrics` (prefix included), or undefined. */
export async function metricsOf(url: string): Promise<Map<string, number> | undefined> {
  try {
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(METRICS_MS) })).text();
    const out = new Map<string, number>();
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const i = line.lastIndexOf(' ');
      out.set(line.slice(0, i), Number(line.slice(i + 1)));
    }
    return out;
  } catch {
    return undefined;
  }
}
