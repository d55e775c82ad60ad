/**
 * A private PostgreSQL for tests: `initdb` into a temporary directory and a `postgres` on a free
 * port of 127.0.0.1, its socket in that directory too, so tests need no cluster of the machine
 * and leave nothing behind. As root it runs as the `postgres` user (PostgreSQL refuses root).
 * Readiness is read from the server's log line, never waited for by time.
 *
 *   const pg = await TestPostgres.start();
 *   const url = await pg.createDatabase();   // a fresh, empty database per test
 *   await pg.restart();                      // fast shutdown and start again on the same port
 *   await pg.stop();
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { freePort } from './syncClients';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

/** Where Debian's packages put the binaries; PATH is searched when none of these exist. */
const BIN_DIRS = ['/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin'];
const READY_LINE = /database system is ready to accept connections/;
const START_TIMEOUT_MS = 60_000;
const SUPERUSER = 'spaces';

function binary(name: string): string {
  for (const d of BIN_DIRS) if (fs.existsSync(path.join(d, name))) return path.join(d, name);
  return name;
}

/** uid/gid to run PostgreSQL as: the `postgres` user when we are root, else ourselves. */
function runAs(): { uid: number; gid: number } | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

export class TestPostgres {
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private dbs = 0;

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly user: { uid: number; gid: number } | undefined,
  ) {}

  static async start(): Promise<TestPostgres> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-pg-'));
    const user = runAs();
    if (user) fs.chownSync(dir, user.uid, user.gid);
    const data = path.join(dir, 'data');
    execFileSync(binary('initdb'), ['-D', data, '-U', SUPERUSER, '-A', 'trust', '-E', 'UTF8', '--no-instructions'], { stdio: 'ignore', ...(user ?? {}) });
    const t = new TestPostgres(dir, await freePort(), user);
    await t.launch();
    return t;
  }

  /** The URL of database `db` (default: the maintenance database). */
  url(db = 'postgres'): string {
    return `postgres://${SUPERUSER}@127.0.0.1:${this.port}/${db}`;
  }

  /** A new empty database; its URL. */
  async createDatabase(): Promise<string> {
    const name = `t${process.pid}_${++this.dbs}`;
    const c = new pg.Client({ connectionString: this.url() });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE ${name}`);
    } finally {
      await c.end();
    }
    return this.url(name);
  }

  /** Runs one query on `url` through its own connection. */
  async query<R extends pg.QueryResultRow>(url: string, text: string, values?: unknown[]): Promise<R[]> {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query<R>(text, values)).rows;
    } finally {
      await c.end();
    }
  }

  private launch(): Promise<void> {
    const args = ['-D', path.join(this.dir, 'data'), '-p', String(this.port), '-k', this.dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'];
    const proc = spawn(binary('postgres'), args, { stdio: ['ignore', 'ignore', 'pipe'], ...(this.user ?? {}) });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    return new Promise((resolve, reject) => {
      let log = '';
      const timer = setTimeout(() => reject(new Error(`PostgreSQL did not start within ${START_TIMEOUT_MS} ms:\n${log}`)), START_TIMEOUT_MS);
      const onData = (d: Buffer): void => {
        log += d.toString();
        if (READY_LINE.test(log)) {
          clearTimeout(timer);
          proc.stderr?.off('data', onData);
          proc.stderr?.resume(); // keep draining the log so the server never blocks on it
          resolve();
        }
      };
      proc.stderr?.on('data', onData);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`PostgreSQL exited with ${code} before it was ready:\n${log}`));
      });
    });
  }

  /** Fast shutdown (open connections are terminated); resolves when the server has exited. */
  async shutdown(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    p.kill('SIGINT');
    await this.exited;
    this.proc = undefined;
  }

  /** Starts it again on the same port and data after `shutdown`. */
  async startAgain(): Promise<void> {
    await this.launch();
  }

  async restart(): Promise<void> {
    await this.shutdown();
    await this.startAgain();
  }

  /** Stops the server and removes its directory. */
  async stop(): Promise<void> {
    await this.shutdown();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
