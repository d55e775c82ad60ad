// The extension's test entry (extensionTestsPath), loaded by VS Code's extension host; see
// scripts/e2e/run.mjs. It must export run(): Promise<void>; a rejection means "tests failed".
// MOCHA_GREP selects tests by title.
import fs from 'node:fs';
import path from 'node:path';
import Mocha from 'mocha';

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'tdd', color: false, timeout: 30_000, grep: process.env.MOCHA_GREP });
  for (const f of fs.readdirSync(__dirname).sort()) {
    if (f.endsWith('.test.js')) mocha.addFile(path.join(__dirname, f));
  }
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
