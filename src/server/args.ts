/** Command-line parsing for `spaces-server`: subcommands, `--flag value` / `--flag=value`, usage errors. */

export const USAGE = `spaces-server — the Spaces team sync server

Usage:
  spaces-server [serve] --data DIR [--store postgres://…] [--port N] [--host HOST] [--idle-seconds N] [--ping-seconds N] [--log-level LEVEL]
                [--max-connections N] [--max-connections-per-address N] [--max-connections-per-token N]
                [--slow-consumer-seconds N] [--max-counter-gap N] [--max-secret-skew-seconds N]
      Serves WebSocket sync at /v1/sync and HTTP (/healthz, /metrics, /v1/spaces) on one port.
      --port 0 picks a free port. Defaults: port 8420, host 127.0.0.1, idle 60, ping 30, level info,
      connections 10000 in all, 1000 per address, 500 per token; slow consumers closed after 30 s;
      op counters at most 1000000 above their tree's clock, secret times at most 86400 s ahead.
      Logs are JSON lines on stdout; the first is {"msg":"listening","url":…}.
      Without --store the spaces are in DIR/spaces.db (SQLite, one process). With --store they are
      in that PostgreSQL database, which any number of server processes may share; DIR then holds
      only server.key, and every process of one database needs a copy of the same file.
      Every token command takes --store too.
  spaces-server token create --data DIR --user NAME --space ID|'*' --role read|write|admin [--expires DAYS]
      Prints the new token once (JSON); only its SHA-256 is stored.
  spaces-server token list --data DIR        (ids, users, spaces, roles, dates; never tokens)
  spaces-server token revoke --data DIR ID
  spaces-server token set-role --data DIR --role read|write|admin ID
      Revocations and role changes reach open sockets of a running server within about 250 ms.

Exit codes: 0 ok, 1 failure, 2 usage error. SIGTERM or SIGINT stops the server gracefully.
`;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface Parsed {
  readonly positionals: string[];
  readonly flags: Map<string, string>;
}

/** Splits `argv` into positionals and `--name value` flags; only `known` flag names are allowed. */
export function parseArgs(argv: readonly string[], known: readonly string[]): Parsed {
  const positionals: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    if (!known.includes(name)) throw new UsageError(`unknown option --${name}`);
    let value: string | undefined;
    if (eq >= 0) value = a.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) value = argv[++i];
    if (value === undefined || value === '') throw new UsageError(`--${name} needs a value`);
    if (flags.has(name)) throw new UsageError(`--${name} given twice`);
    flags.set(name, value);
  }
  return { positionals, flags };
}

export function required(p: Parsed, name: string): string {
  const v = p.flags.get(name);
  if (v === undefined) throw new UsageError(`--${name} is required`);
  return v;
}

/** A flag parsed as a number in [min, max] (integers only when `integer`). */
export function numberFlag(p: Parsed, name: string, min: number, max: number, integer: boolean): number | undefined {
  const v = p.flags.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max} (got ${JSON.stringify(v)})`);
  }
  return n;
}

export function noMorePositionals(p: Parsed, used: number, command: string): void {
  if (p.positionals.length > used) throw new UsageError(`unexpected argument ${JSON.stringify(p.positionals[used])} for ${command}`);
}
