// Bundles every entry point into dist/: the CLI, the sql.js worker (and, as they land, the
// extension with `vscode` external, the server and the webview). sql.js's wasm is copied
// next to the worker, which looks for it in its own folder first.
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

const candidates = [
  { in: 'src/cli/main.ts', out: 'cli', banner: '#!/usr/bin/env node' },
  { in: 'src/persistence/file/sqlWorker.ts', out: 'sqlWorker' },
  { in: 'src/extension.ts', out: 'extension' },
  { in: 'src/server/main.ts', out: 'server', banner: '#!/usr/bin/env node' },
  // The space editor's webview: runs in the browser, no Node.
  { in: 'src/webview/app/main.ts', out: 'webview', browser: true },
];
const entries = candidates.filter((e) => fs.existsSync(e.in));

fs.mkdirSync('dist', { recursive: true });
fs.copyFileSync(require.resolve('sql.js/dist/sql-wasm.wasm'), path.join('dist', 'sql-wasm.wasm'));

const contexts = await Promise.all(
  entries.map((e) =>
    esbuild.context({
      entryPoints: { [e.out]: e.in },
      outdir: 'dist',
      bundle: true,
      platform: e.browser ? 'browser' : 'node',
      format: e.browser ? 'iife' : 'cjs',
      target: e.browser ? 'chrome120' : 'node20',
      sourcemap: !production,
      minify: production,
      external: ['vscode', 'better-sqlite3', 'pg-native'],
      banner: e.banner ? { js: e.banner } : undefined,
      logLevel: 'warning',
      // The worker finds sql-wasm.wasm next to itself in dist/; require.resolve is only its fallback.
      logOverride: { 'require-resolve-not-external': 'silent' },
    }),
  ),
);
if (watch) {
  await Promise.all(contexts.map((c) => c.watch()));
} else {
  await Promise.all(contexts.map((c) => c.rebuild()));
  await Promise.all(contexts.map((c) => c.dispose()));
  for (const e of entries) {
    if (e.banner) fs.chmodSync(path.join('dist', `${e.out}.js`), 0o755);
  }
  console.log(`built ${entries.map((e) => `dist/${e.out}.js`).join(', ')}`);
}
