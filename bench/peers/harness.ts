/**
 * The peer benchmark's shared parts: the document shape both sides build, sizes and flags, a
 * deadline per side, the result rows (JSON lines and the Markdown report) and waiting for a
 * condition on events.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { procMemMB, procSample } from '../serverProc';
import { round } from '../timing';

/** Buckets under the document's root; edit i goes into bucket i mod BUCKETS. */
export const BUCKETS = 256;
export const bucketOf = (i: number): number => i % BUCKETS;
/** The one short string of edit i (the same on both sides). */
export const editText = (i: number): string => `note ${i}`;

/** The Hocuspocus server's database file in its data directory (its -wal and -shm beside it). */
export const YJS_DB_FILE = 'hocuspocus.sqlite';

/** Sizes of a full run and of `--quick` (a smoke run of about a minute). */
const FULL = { edits: 10_000, 'big-edits': 100_000, readers: 50, 'fanout-edits': 1_000, rate: 200, joiners: 200, 'join-edits': 10_000, 'offline-edits': 5_000, 'row-timeout': 300 };
const QUICK: typeof FULL = { edits: 300, 'big-edits': 1_000, readers: 3, 'fanout-edits': 40, rate: 100, joiners: 4, 'join-edits': 200, 'offline-edits': 100, 'row-timeout': 60 };
export type Sizes = typeof FULL;

/** The workload groups `--only` selects, in run order. */
export const GROUPS = ['cold', 'cold100k', 'fanout', 'join', 'offline'] as const;
export type Group = (typeof GROUPS)[number];
/** Row ids `--only` also takes: each runs the group that makes it. */
const ROW_GROUPS: Readonly<Record<string, Group>> = {
  'cold-10k': 'cold',
  'storage-10k': 'cold',
  'cold-100k': 'cold100k',
  'heap-100k': 'cold100k',
  'fanout-p50': 'fanout',
  'fanout-p99': 'fanout',
  storage: 'cold',
  heap: 'cold100k',
};

export interface Options {
  readonly sizes: Sizes;
  readonly only: ReadonlySet<Group>;
  readonly quick: boolean;
  /** Where the servers' data directories and the clients' files go. */
  readonly dataRoot: string;
  /** The Markdown report (docs/benchmarks-peers.md unless --out). */
  readonly out: string;
  /** The command line as given (for the report). */
  readonly command: string;
  /** `--note TEXT`: said under the table (e.g. what else ran on the machine). */
  readonly note: string | undefined;
}

export function parseOptions(argv: readonly string[]): Options {
  const sizeFlags = Object.fromEntries(Object.keys(FULL).map((k) => [k, { type: 'string' as const }]));
  const { values } = parseArgs({
    args: [...argv],
    options: { ...sizeFlags, only: { type: 'string' }, quick: { type: 'boolean' }, 'data-root': { type: 'string' }, out: { type: 'string' }, note: { type: 'string' } },
    strict: true,
  });
  const quick = values.quick === true;
  const sizes = { ...(quick ? QUICK : FULL) };
  for (const k of Object.keys(FULL) as Array<keyof Sizes>) {
    const v = (values as Record<string, unknown>)[k];
    if (typeof v !== 'string') continue;
    const n = Number(v);
    if (!(Number.isInteger(n) && n > 0)) throw new Error(`--${k} must be a positive integer, got ${JSON.stringify(v)}`);
    sizes[k] = n;
  }
  const only = new Set<Group>();
  for (const g of typeof values.only === 'string' ? values.only.split(',') : GROUPS) {
    const group = (GROUPS as readonly string[]).includes(g) ? (g as Group) : Object.hasOwn(ROW_GROUPS, g) ? ROW_GROUPS[g] : undefined;
    if (!group) throw new Error(`--only: unknown workload ${JSON.stringify(g)} (one of ${[...GROUPS, ...Object.keys(ROW_GROUPS)].join(', ')})`);
    only.add(group);
  }
  return {
    sizes,
    only,
    quick,
    dataRoot: typeof values['data-root'] === 'string' ? values['data-root'] : os.tmpdir(),
    out: typeof values.out === 'string' ? path.resolve(values.out) : path.join(__dirname, '..', '..', '..', 'docs', 'benchmarks-peers.md'),
    command: ['npm run bench:peers', ...(argv.length ? ['--', ...argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a)))] : [])].join(' '),
    note: typeof values.note === 'string' ? values.note : undefined,
  };
}

export const log = (...a: unknown[]): void => console.error('[bench:peers]', ...a);

// ---- deadlines -------------------------------------------------------------------

/** The time one side of one workload has left; every wait inside it is bounded by it. */
export class Deadline {
  private readonly end: number;
  constructor(readonly ms: number) {
    this.end = performance.now() + ms;
  }

  get remaining(): number {
    return Math.max(0, this.end - performance.now());
  }
}

/**
 * Resolves once `cond()` holds, checking it now and after events (`subscribe(check)`; several
 * events in one turn are checked once); rejects after `timeoutMs` naming `what`.
 */
export function whenTrue(what: string, timeoutMs: number, cond: () => boolean, subscribe: (check: () => void) => { dispose(): void }): Promise<void> {
  if (cond()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    let scheduled: NodeJS.Immediate | undefined;
    const finish = (e?: Error): void => {
      clearTimeout(timer);
      if (scheduled) clearImmediate(scheduled);
      sub.dispose();
      if (e) reject(e);
      else resolve();
    };
    const check = (): void => {
      scheduled = undefined;
      try {
        if (cond()) finish();
      } catch (e) {
        finish(e instanceof Error ? e : new Error(String(e)));
      }
    };
    const sub = subscribe(() => void (scheduled ??= setImmediate(check)));
    const timer = setTimeout(() => finish(new Error(`${what}: not reached in ${round(timeoutMs / 1000, 1)} s`)), timeoutMs);
  });
}

// ---- results ---------------------------------------------------------------------

/** One side's figure for a row, or why there is none. */
export type Figure = { readonly value: number; readonly detail?: Record<string, unknown> } | { readonly failed: string; readonly detail?: Record<string, unknown> };

export interface RowSpec {
  /** Row id in the JSON lines (e.g. `cold-10k`). */
  readonly workload: string;
  /** The row's label in the report, with the run's sizes. */
  readonly label: (s: Sizes) => string;
  readonly unit: 'ms' | 'bytes';
}

export interface Row extends Omit<RowSpec, 'label'> {
  readonly label: string;
  readonly yjs: Figure;
  readonly project: Figure;
  /** os.loadavg() (1, 5, 15 min) when the row's measurements started and ended. */
  readonly loadStart: readonly number[];
  readonly loadEnd: readonly number[];
}

export const valueOf = (f: Figure): number | null => ('value' in f ? f.value : null);
export const failureOf = (f: Figure): string | null => ('failed' in f ? f.failed : null);
export const loadavg = (): number[] => os.loadavg().map((l) => round(l, 2));

/** project / yjs; null when a side has no figure. */
export function ratioOf(r: Row): number | null {
  const p = valueOf(r.project);
  const y = valueOf(r.yjs);
  return p === null || y === null || y === 0 ? null : round(p / y, 2);
}

export function rowJson(r: Row): Record<string, unknown> {
  return {
    bench: 'peers',
    workload: r.workload,
    unit: r.unit,
    yjs: valueOf(r.yjs),
    project: valueOf(r.project),
    ratio: ratioOf(r),
    ...(failureOf(r.yjs) ? { yjsFailed: failureOf(r.yjs) } : {}),
    ...(failureOf(r.project) ? { projectFailed: failureOf(r.project) } : {}),
    yjsDetail: r.yjs.detail ?? {},
    projectDetail: r.project.detail ?? {},
    loadStart: r.loadStart,
    loadEnd: r.loadEnd,
    node: process.version,
    cores: os.cpus().length,
    at: new Date().toISOString(),
  };
}

/** A workload group: its rows, and one run per side giving a figure per row id. */
export interface Workload {
  readonly group: Group;
  readonly rows: readonly RowSpec[];
  /** What the workload does (for the report). */
  readonly description: (o: Options) => string;
  readonly yjs: (o: Options, d: Deadline) => Promise<Record<string, Figure>>;
  readonly project: (o: Options, d: Deadline) => Promise<Record<string, Figure>>;
}

/** Directories made by the running side (servers' data, clients' files); removed when it ends. */
const scratch: string[] = [];

/** A new directory under `root`, removed when the side that made it ends (however it ends). */
export function scratchDir(root: string, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(root, prefix));
  scratch.push(dir);
  return dir;
}

/** Time a side's cleanup gets past its deadline before the side is given up. */
const CLEANUP_GRACE_MS = 30_000;

/** Runs one side of a workload within `ms`; an error or a timeout fails every row of that side. */
export async function runSide(what: string, ms: number, fn: (d: Deadline) => Promise<Record<string, Figure>>): Promise<Record<string, Figure> | { readonly failed: string }> {
  const d = new Deadline(ms);
  // The side's own waits are bounded by `d`; this outer bound (with time for its cleanup) is the backstop.
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([fn(d), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not done in ${round(ms / 1000)} s`)), ms + CLEANUP_GRACE_MS)))]);
  } catch (e) {
    const failed = e instanceof Error ? e.message : String(e);
    log(`${what} failed: ${failed}`);
    return { failed };
  } finally {
    clearTimeout(timer);
    for (const dir of scratch.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs both sides of a workload, the peer first, and makes its rows. */
export async function runWorkload(o: Options, w: Workload): Promise<Row[]> {
  const ms = o.sizes['row-timeout'] * 1000;
  const loadStart = loadavg();
  log(`${w.group}: Yjs + Hocuspocus (load ${loadStart.join(' ')})`);
  const yjs = await runSide(`${w.group} (yjs)`, ms, (d) => w.yjs(o, d));
  log(`${w.group}: this project (load ${loadavg().join(' ')})`);
  const project = await runSide(`${w.group} (project)`, ms, (d) => w.project(o, d));
  const loadEnd = loadavg();
  const pick = (r: Record<string, Figure> | { readonly failed: string }, id: string): Figure =>
    typeof r.failed === 'string' ? { failed: r.failed } : ((r as Record<string, Figure>)[id] ?? { failed: 'no figure' });
  return w.rows.map((spec) => ({ ...spec, label: spec.label(o.sizes), yjs: pick(yjs, spec.workload), project: pick(project, spec.workload), loadStart, loadEnd }));
}

/** Bytes of an SQLite database on disk: the file, its -wal and its -shm. */
export function sqliteBytes(dir: string, dbFile: string): number {
  let n = 0;
  for (const suffix of ['', '-wal', '-shm']) {
    const f = path.join(dir, dbFile + suffix);
    if (fs.existsSync(f)) n += fs.statSync(f).size;
  }
  return n;
}

/** 10000 → "10k" (labels). */
export const kilo = (n: number): string => (n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n));

/** Milliseconds of CPU per clock tick in /proc/<pid>/stat. */
const MS_PER_TICK = 10;

/**
 * Starts counting CPU: the server process's (from /proc) and this process's (the clients'); the
 * returned function reads both since the start, and the server's RSS.
 */
export function cpuMeter(serverPid: number): () => { serverCpuMs: number; clientCpuMs: number; serverRssMB: number } {
  const s0 = procSample(serverPid);
  const c0 = process.cpuUsage();
  return () => {
    const c = process.cpuUsage(c0);
    return { serverCpuMs: (procSample(serverPid).cpuTicks - s0.cpuTicks) * MS_PER_TICK, clientCpuMs: round((c.user + c.system) / 1000), serverRssMB: procMemMB(serverPid).rssMB };
  };
}

export const elapsed = (t0: number): number => round(performance.now() - t0, 1);

// ---- the report ------------------------------------------------------------------

const fmt = (unit: Row['unit'], f: Figure): string => {
  const v = valueOf(f);
  if (v === null) return `**failed**: ${(failureOf(f) ?? '').replace(/\|/g, '\\|')}`;
  if (unit === 'bytes') return v >= 1024 * 1024 ? `${round(v / 1048576, 1)} MiB` : `${round(v / 1024, 1)} KiB`;
  return v >= 10_000 ? `${round(v / 1000, 2)} s` : `${round(v, 1)} ms`;
};

/** How both sides are set up: said in every report, so that a figure is read with it. */
const SETUP = `
## Setup

- **Document shape, both sides**: a root holding 256 buckets; edit *i* adds one leaf holding one short string (\`note i\`) to bucket *i* mod 256.
  Yjs: a \`Y.Map\` root of 256 \`Y.Array\` buckets, each edit one transaction pushing a \`Y.Map\` leaf with \`text\`. This project: a notes app tree
  in a space, 256 bucket items under its root, each edit \`AppTree.addItem(bucket, { text })\` (what the space editor does: a move, \`text\` and \`order\`).
- **Servers**, each in its own child process (its CPU and RSS read from /proc, its heap by a gc and process.memoryUsage() inside it, run with
  \`--expose-gc\`): the project's real \`dist/server.js serve --port 0\`; Hocuspocus 4 (\`@hocuspocus/server\`) with \`@hocuspocus/extension-database\`
  storing Y.encodeStateAsUpdate per document in SQLite through better-sqlite3, as Hocuspocus's SQLite extension does (its \`sqlite3\` package cannot
  be installed offline here; the schema and the one-row-per-document upsert are the same). Hocuspocus stores after its default 2 s debounce and on
  shutdown.
- **Clients**, all in the bench process: the project's are the real client stack — each a \`SpaceManager\` with a \`FileLayer\` (its own space file,
  which also keeps the \`ServerLayer\`'s sync state, as the extension and \`spaces sync\` do) and a \`ServerLayer\` with its default timings.
  Yjs's are \`HocuspocusProvider\`s, each with its own \`Y.Doc\` and WebSocket (\`ws\`), keeping no local copy on disk.
  So the project's clients do more work than the peer's (every client persists what it receives), and all clients share this process:
  the space files' SQLite runs on one worker thread shared by every FileLayer of the process, and the clients' CPU competes with both servers
  for the machine's cores. A real user runs one client per process.
- Rows run one after the other, the peer first, each side with a deadline (\`--row-timeout\`); a side that fails or times out is reported as
  **failed** with its reason, and the run goes on.
`;

/** The report: the table, the machine and its load, and what each workload does. */
export function writeReport(o: Options, rows: readonly Row[], startedAt: Date, description: string): void {
  const ratio = (r: Row): string => {
    const x = ratioOf(r);
    return x === null ? '—' : `${x}×`;
  };
  const loads = rows.flatMap((r) => [r.loadStart[0], r.loadEnd[0]]);
  const lines = [
    '# Peer benchmark: this project vs Yjs + Hocuspocus',
    '',
    `Written by \`${o.command}\` on ${startedAt.toISOString()} (Node ${process.version}, ${os.cpus().length} cores, ` +
      `${round(os.totalmem() / 2 ** 30, 0)} GiB${o.quick ? ', **quick sizes: a smoke run, not figures to compare**' : ''}).`,
    `Machine load (1-minute load average) during the rows: ${loads.length ? `${loads.reduce((x, y) => Math.min(x, y))}–${loads.reduce((x, y) => Math.max(x, y))}` : '—'}.`,
    `Sizes: ${Object.entries(o.sizes).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
    'Both sides run in this one process (clients) against a server in a child process, on the same machine, one after the other per row.',
    'Ratio: this project / Yjs (below 1 is better for the project).',
    '',
    '| workload | Yjs + Hocuspocus | this project | project / Yjs | load 1 min, start → end |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.label} | ${fmt(r.unit, r.yjs)} | ${fmt(r.unit, r.project)} | ${ratio(r)} | ${r.loadStart[0]} → ${r.loadEnd[0]} |`),
    '',
    ...(o.note ? [o.note, ''] : []),
    SETUP.trim(),
    '',
    description.trim(),
    '',
    '## Details per row',
    '',
    'The JSON lines the run printed, one per row (figures in ms or bytes; `*Detail` holds the side figures).',
    '',
    '```json',
    ...rows.map((r) => JSON.stringify(rowJson(r))),
    '```',
    '',
  ];
  fs.writeFileSync(o.out, lines.join('\n'));
}
