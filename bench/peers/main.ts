/**
 * Peer benchmark: the same workloads against this project (its real server and client stack) and
 * against Yjs + Hocuspocus, in one run on one machine. One JSON line per row on stdout (both
 * figures, the ratio project/yjs, the machine load at the row's start and end), progress on
 * stderr, and the report in docs/benchmarks-peers.md (or --out FILE).
 *
 *   npm run bench:peers -- [--only cold,cold100k,fanout,join,offline (or row ids)] [--quick] [--edits N]
 *     [--big-edits N] [--readers N] [--fanout-edits N] [--rate N] [--joiners N] [--join-edits N]
 *     [--offline-edits N] [--row-timeout S] [--data-root DIR] [--out FILE]
 *
 * Each workload module says what it does; harness.ts holds the document shape and the rows.
 */
import { cold, cold100k } from './cold';
import { fanout } from './fanout';
import { GROUPS, log, parseOptions, rowJson, runWorkload, writeReport, type Row, type Workload } from './harness';
import { join } from './join';
import { offline } from './offline';

const WORKLOADS: readonly Workload[] = [cold, cold100k, fanout, join, offline];

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const rows: Row[] = [];
  for (const group of GROUPS) {
    const w = WORKLOADS.find((x) => x.group === group);
    if (!w || !o.only.has(group)) continue;
    const t0 = performance.now();
    for (const r of await runWorkload(o, w)) {
      rows.push(r);
      process.stdout.write(JSON.stringify(rowJson(r)) + '\n');
    }
    log(`${group}: ${Math.round((performance.now() - t0) / 100) / 10} s`);
  }
  const description = WORKLOADS.filter((w) => o.only.has(w.group))
    .map((w) => w.description(o))
    .filter((t) => t)
    .join('\n\n');
  writeReport(o, rows, startedAt, `## What each workload does\n\n${description}`);
  log(`report: ${o.out}`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
