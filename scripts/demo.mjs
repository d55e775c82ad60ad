#!/usr/bin/env node
// The start command's demo: builds the CLI, makes a demo workspace with a space file holding a
// notes outline and a chat thread, and prints what the file holds, all through `spaces`.
// (Launching VS Code on the demo workspace comes with the extension.)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'cli.js');
const ws = path.join(root, '.demo', 'workspace');
const file = path.join(ws, 'team.space');
const env = { ...process.env, SPACES_KEY_FILE: path.join(root, '.demo', 'file.key') };

execFileSync(process.execPath, [path.join(root, 'esbuild.mjs')], { cwd: root, stdio: 'inherit' });
const spaces = (args, input) => JSON.parse(execFileSync(process.execPath, [cli, ...args], { env, input: input ?? '', encoding: 'utf8' }));

fs.rmSync(ws, { recursive: true, force: true });
fs.mkdirSync(ws, { recursive: true });
const { spaceId } = spaces(['create', file, '--name', 'Demo team']);
const notes = spaces(['app', 'add', file, '--app', 'notes', '--name', 'Roadmap']).treeId;
spaces(['import', file, '--tree', notes], JSON.stringify([
  { props: { text: 'Ship the core', done: true }, children: [{ props: { text: 'Space + SpaceManager', done: true } }, { props: { text: 'sql.js file layer', done: true } }] },
  { props: { text: 'Team server', done: false } },
  { props: { text: 'VS Code views', done: false } },
]));
const chat = spaces(['app', 'add', file, '--app', 'chat', '--name', 'General']).treeId;
spaces(['item', 'add', file, '--tree', chat, '--set', 'author=ann', '--set', 'text=Hello team', '--set', `time=${Date.now()}`]);
// The extension keeps its file key in VS Code's SecretStorage, not in the CLI's key file, so the
// workspace `npm start` opens in VS Code gets no CLI-written secret.
const withSecret = !process.argv.includes('--no-secret');
if (withSecret) spaces(['secret', 'set', file, 'demo.api-key'], 'not-a-real-key');

console.log(`\nDemo space ${spaceId} in ${path.relative(process.cwd(), file)}:\n`);
console.log(JSON.stringify(spaces(['info', file]), null, 2));
const print = (node, depth = 0) => {
  for (const c of node.children) {
    console.log(`${'  '.repeat(depth)}- [${c.props.done ? 'x' : ' '}] ${c.props.text}`);
    print(c, depth + 1);
  }
};
console.log('\nRoadmap:');
print(spaces(['dump', file, '--tree', notes]));
if (withSecret) console.log(`\nSecrets: ${spaces(['secret', 'list', file]).keys.join(', ')} (encrypted in the file)`);
console.log(`\nTry: node dist/cli.js dump ${path.relative(process.cwd(), file)} --tree ${notes}`);
