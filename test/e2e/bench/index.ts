// The benchmark entry (extensionTestsPath) for scripts/bench-vscode.mjs, loaded by VS Code's
// extension host like test/e2e/suite/index.ts, but kept out of the normal test run.
// It runs one `*.bench.js` file of this folder: $SPACES_BENCH_SUITE (its name without
// `.bench.js`), so that each figure comes from a fresh VS Code window. MOCHA_GREP filters tests.
// Figures are written with `recordFigure` (./record.ts) to $SPACES_BENCH_OUT.
import fs from 'node:fs';
import path from 'node:path';
import Mocha from 'mocha';

export function run(): Promise<void> {
  const name = process.env.SPACES_BENCH_SUITE;
  if (!name) return Promise.reject(new Error('SPACES_BENCH_SUITE is not set (scripts/bench-vscode.mjs sets it)'));
  const file = path.join(__dirname, `${name}.bench.js`);
  if (!fs.existsSync(file)) return Promise.reject(new Error(`no bench suite ${file}`));
  const mocha = new Mocha({ ui: 'tdd', color: false, timeout: 120_000, grep: process.env.MOCHA_GREP });
  mocha.addFile(file);
  return new Promise((resolve, reject) => {
    mocha.run((failures) => {
      console.log(`${mocha.suite.total() - failures} passed, ${failures} failed`);
      if (failures > 0) reject(new Error(`${failures} bench test(s) failed.`));
      else resolve();
    });
  });
}
