/**
 * A child process that is one team-sync client (SpaceManager + FileLayer + ServerLayer, as the
 * extension runs it), for crash tests that kill a client.
 *
 *   node syncWriterChild.js DIR NAME URL TOKEN SPACE NOTES
 *     opens (clones) DIR/NAME.space synced with the server at URL, opens app tree NOTES, says
 *     "ready" (IPC), waits for "go", then adds one item per EDIT_EVERY_MS to NOTES forever,
 *     with the text `NAME <n>` (the parent kills it with SIGKILL at a moment of its choosing).
 */
import { SyncClient } from './syncClients';

/** Fast enough that edits are always in flight and not yet in the file when the kill lands. */
const EDIT_EVERY_MS = 2;

async function main(): Promise<void> {
  const [dir, name, url, token, spaceId, notesId] = process.argv.slice(2);
  const client = await SyncClient.open(dir, name, url, token, spaceId);
  const notes = await client.space.openAppTree(notesId);
  await new Promise<void>((resolve) => {
    process.once('message', () => resolve());
    process.send?.('ready');
  });
  let n = 0;
  for (;;) {
    notes.addItem(notes.rootId, { text: `${name} ${n++}` });
    await new Promise((r) => setTimeout(r, EDIT_EVERY_MS));
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
