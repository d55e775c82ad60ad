/**
 * A child process that writes to a space file, for the file layer's multi-process tests.
 *
 *   node fileWriterChild.js count FILE TREE PEER COUNT BATCH
 *     opens FILE, waits for a "go" message from the parent (IPC), saves COUNT ops in batches of
 *     BATCH (awaiting each), closes, prints "done", exits.
 *   node fileWriterChild.js forever FILE TREE PEER BATCH
 *     opens FILE and saves batches forever; after each batch resolves prints "ok <last counter>"
 *     (the parent kills it with SIGKILL at a random moment).
 *   node fileWriterChild.js open FILE
 *     opens FILE (which migrates a schema-1 file), prints "opened", closes, exits.
 */
import { FileLayer } from '../../src/persistence/file/fileLayer';
import { makeOps } from './fileFixtures';

async function main(): Promise<void> {
  const [mode, file, tree, peer, a, b] = process.argv.slice(2);
  const layer = await FileLayer.open(file, { debounceMs: 2, maxWaitMs: 20, watch: false });
  if (mode === 'open') {
    process.stdout.write('opened\n');
    await layer.close();
    return;
  }
  if (mode === 'count') {
    const count = Number(a);
    const batch = Number(b);
    await new Promise<void>((resolve) => {
      process.once('message', () => resolve());
      process.send?.('ready');
    });
    for (let c = 1; c <= count; c += batch) await layer.saveOps(tree, makeOps(tree, peer, c, Math.min(batch, count - c + 1)));
    await layer.close();
    process.stdout.write('done\n');
    process.disconnect?.();
    return;
  }
  if (mode === 'forever') {
    const batch = Number(a);
    for (let c = 1; ; c += batch) {
      await layer.saveOps(tree, makeOps(tree, peer, c, batch));
      process.stdout.write(`ok ${c + batch - 1}\n`);
    }
  }
  throw new Error(`unknown mode ${mode}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
