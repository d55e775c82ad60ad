// The extension's test entry (extensionTestsPath), loaded by VS Code's extension host; see
// scripts/e2e/run.mjs. It must export run(): Promise<void>; a rejection means "tests failed".
// MOCHA_GREP selects tests by title.
import fs from 'node:fs';
import path from 'node:path';
import Mocha from 'mocha';

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'tdd', color: false, timeout: 30_000, grep: process.env.MOCHA_GREP });
  // extension.test.js runs last: its last test deactivates the extension.
  const files = fs.readdirSync(__dirname).filter((f) => f.endsWith('.test.js'));
  const order = (f: string): number => (f === 'extension.test.js' ? 1 : 0);
  for (const f of files.sort((a, b) => order(a) - order(b) || a.localeCompare(b))) mocha.addFile(path.join(__dirname, f));
  return new Promise((resolve, reject) => {
    mocha.run((failures) => {
      const total = mocha.suite.total();
      // A plain closing line for log readers.
      console.log(`${total - failures} passed, ${failures} failed`);
      if (failures > 0) reject(new Error(`${failures} test(s) failed.`));
      else resolve();
    });
  });
}
