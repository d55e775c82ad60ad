/**
 * Structured logs: one JSON object per line, `{"time","level","msg", ...fields}`.
 * Callers pass facts as fields (ids, counts, codes), never tokens or secret values.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogValue = string | number | boolean | null | undefined;
export type LogFields = Readonly<Record<string, LogValue>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function isLogLevel(v: unknown): v is LogLevel {
  return typeof v === 'string' && v in RANK;
}

/** A logger writing JSON lines (to stdout by default) at `minLevel` and above. */
export function jsonLogger(minLevel: LogLevel = 'info', write: (line: string) => void = (l) => void process.stdout.write(l)): Logger {
  const at =
    (level: LogLevel) =>
    (msg: string, fields?: LogFields): void => {
      if (RANK[level] < RANK[minLevel]) return;
      write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n');
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
