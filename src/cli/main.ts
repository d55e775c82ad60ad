/** `spaces` CLI entry: JSON on stdout, a one-line error on stderr, exit 1 (2 for usage errors). */
import { runCommand } from './commands';
import { loadSecretKey } from './secretKey';
import { USAGE, UsageError } from './usage';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(USAGE);
    return argv.length === 0 ? 2 : 0;
  }
  let key: Buffer | undefined;
  try {
    const result = await runCommand(argv, {
      stdin: readStdin,
      secretKey: () => (key ??= loadSecretKey()),
      env: process.env,
      out: (value) => process.stdout.write(JSON.stringify(value) + '\n'),
      untilSignal: () => new Promise((resolve) => ['SIGINT', 'SIGTERM'].forEach((sig) => process.once(sig, () => resolve(sig)))),
      // Progress of a slow first sync, for people: only on a terminal (as git does), never into a log or a pipe.
      progress: process.stderr.isTTY ? (line) => process.stderr.write(`spaces: ${line}\n`) : undefined,
    });
    process.stdout.write(JSON.stringify(result) + '\n');
    return 0;
  } catch (e) {
    const usage = e instanceof UsageError;
    process.stderr.write(`spaces: ${e instanceof Error ? e.message : String(e)}\n${usage ? 'Run `spaces --help` for usage.\n' : ''}`);
    return usage ? 2 : 1;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
