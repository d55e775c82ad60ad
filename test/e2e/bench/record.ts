// What bench suites (in VS Code's extension host) use to report figures and to read the fixture
// that scripts/bench-vscode.mjs made.
import fs from 'node:fs';

/** The bench workspace, as scripts/bench-vscode.mjs describes it in $SPACES_BENCH_FIXTURE. */
export interface BenchFixture {
  /** The workspace folder VS Code opened. */
  readonly workspace: string;
  /** The built CLI (dist/cli.js), to make more data from a suite. */
  readonly cli: string;
  /** The space files in the workspace when VS Code started. */
  readonly files: readonly { readonly file: string; readonly spaceId: string; readonly treeId: string; readonly items: number }[];
}

export function benchFixture(): BenchFixture {
  const file = process.env.SPACES_BENCH_FIXTURE;
  if (!file) throw new Error('SPACES_BENCH_FIXTURE is not set (scripts/bench-vscode.mjs sets it)');
  return JSON.parse(fs.readFileSync(file, 'utf8')) as BenchFixture;
}

/**
 * Appends one figure as a JSON line to $SPACES_BENCH_OUT; the runner adds the run number and
 * prints it. `extra` is for context (counts, the activation event), not for other figures.
 */
export function recordFigure(figure: string, value: number, unit: string, extra: Record<string, string | number | boolean> = {}): void {
  const out = process.env.SPACES_BENCH_OUT;
  if (!out) throw new Error('SPACES_BENCH_OUT is not set (scripts/bench-vscode.mjs sets it)');
  if (!Number.isFinite(value)) throw new Error(`figure ${figure}: ${value} is not a number`);
  fs.appendFileSync(out, `${JSON.stringify({ figure, value: Math.round(value * 10) / 10, unit, ...extra })}\n`);
}
