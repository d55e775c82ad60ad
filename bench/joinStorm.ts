/**
 * Join storm with real clients: `--joiners` SpaceManager + FileLayer + ServerLayer clients in
 * this process open one stored space of `--edits` leaves at once against the built server
 * (dist/server.js, a child process, default settings). One JSON line per run on stdout:
 * the time until every client had the whole tree, connects and drops, failures, and the CPU of
 * this (client) process and of the server child over the storm; progress on stderr.
 *
 *   npm run compile && npm run build && node out/bench/joinStorm.js [--joiners 200] [--edits 10000] [--runs 1]
 *
 * Compare with the Yjs + Hocuspocus peer of the same workload in the peer benchmark.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { joinStorm, seedSpace } from '../test/helpers/joinStorm';
import { makeToken, spawnServer, tempDir } from '../test/helpers/syncServer';

const { values: opt } = parseArgs({
  options: {
    joiners: { type: 'string', default: '200' },
    edits: { type: 'string', default: '10000' },
    runs: { type: 'string', default: '1' },
  },
});

const CLK_TCK = 100;
const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;
const log = (...a: unknown[]): void => console.error('[bench:join-storm]', ...a);

/** CPU seconds (user + system) of a process so far. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function main(): Promise<void> {
  const joiners = Number(opt.joiners);
  const edits = Number(opt.edits);
  const dir = tempDir('spaces-join-storm-');
  const data = path.join(dir, 'server');
  fs.mkdirSync(data);
  const admin = makeToken(data, 'admin', '*', { user: 'admin' }).token;
  const writer = makeToken(data, 'write', '*', { user: 'writer' }).token;
  const server = await spawnServer(data);
  const pid = server.child.pid as number;
  try {
    log(`seeding ${edits} edits`);
    const space = await seedSpace(server.url, admin, writer, path.join(dir, 'seed'), edits);
    for (let run = 0; run < Number(opt.runs); run++) {
      log(`run ${run + 1}: ${joiners} joiners`);
      const server0 = cpuSeconds(pid);
      const own0 = ownCpuSeconds();
      const t0 = performance.now();
      const r = await joinStorm({ url: server.url, token: writer, space, joiners, dir: path.join(dir, `run-${run}`) });
      const wallS = (performance.now() - t0) / 1000;
      const errors = [...new Set(r.joiners.flatMap((j) => (j.error ? [j.error.replace(/[0-9a-f]{32}/g, 'ID')] : [])))];
      process.stdout.write(
        JSON.stringify({
          bench: 'join-storm',
          joiners,
          edits,
          items: space.items,
          allHaveSpaceMs: round(r.allMs),
          ok: joiners - r.failed,
          failed: r.failed,
          connects: r.connects,
          drops: r.drops,
          dropReasons: r.dropReasons,
          errors: errors.slice(0, 5),
          clientCpuS: round(ownCpuSeconds() - own0, 2),
          serverCpuS: round(cpuSeconds(pid) - server0, 2),
          wallS: round(wallS, 2),
          node: process.version,
          cores: os.cpus().length,
          loadavg1: round(os.loadavg()[0], 2),
          at: new Date().toISOString(),
        }) + '\n',
      );
      fs.rmSync(path.join(dir, `run-${run}`), { recursive: true, force: true });
    }
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
