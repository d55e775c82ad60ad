// The .vsix that `npm run package` makes: vsce packs what .vscodeignore lets through, and this
// checks the archive itself (its zip directory): the bundles, the wasm, the README and its images,
// the media — and nothing else (no node_modules, no sources, no source maps).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

const ROOT = path.resolve(__dirname, '../../..');
const VSCE = path.join(ROOT, 'node_modules/@vscode/vsce/vsce');
/** The flags of `npm run package` (see package.json). */
const VSCE_FLAGS = ['--no-dependencies', '--allow-missing-repository', '--no-rewrite-relative-links'];

/** Entries every package must hold (vsce renames README.md and LICENSE). */
const REQUIRED = [
  '[Content_Types].xml',
  'extension.vsixmanifest',
  'extension/package.json',
  'extension/readme.md',
  'extension/LICENSE.txt',
  'extension/dist/extension.js',
  'extension/dist/sqlWorker.js',
  'extension/dist/sql-wasm.wasm',
  'extension/media/spaces.svg',
  'extension/docs/images/spaces-view.png',
  'extension/docs/images/editor-notes.png',
  'extension/docs/images/editor-chat.png',
];
/** Entries it may hold besides: the webview's bundle and styles, other media. */
const ALLOWED = [/^extension\/media\/[^/]+$/, /^extension\/dist\/webview\.(js|css)$/, /^extension\/dist\/[^/]+\.css$/];
const MAX_BYTES = 2 * 1024 * 1024;

interface ZipEntry {
  readonly name: string;
  readonly size: number;
  /** Offset of its local header. */
  readonly offset: number;
  /** 0 stored, 8 deflated. */
  readonly method: number;
  readonly compressedSize: number;
}

/** The entries of a zip file, from its central directory (no zip64: a .vsix is small). */
function zipEntries(file: string): ZipEntry[] {
  const buf = fs.readFileSync(file);
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${file} is not a zip file (no end of central directory)`);
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const entries: ZipEntry[] = [];
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error(`${file}: bad central directory entry ${i}`);
    const nameLength = buf.readUInt16LE(p + 28);
    entries.push({
      name: buf.toString('utf8', p + 46, p + 46 + nameLength),
      method: buf.readUInt16LE(p + 10),
      compressedSize: buf.readUInt32LE(p + 20),
      size: buf.readUInt32LE(p + 24),
      offset: buf.readUInt32LE(p + 42),
    });
    p += 46 + nameLength + buf.readUInt16LE(p + 30) + buf.readUInt16LE(p + 32);
  }
  return entries;
}

/** The content of one entry. */
function zipRead(file: string, entry: ZipEntry): Buffer {
  const buf = fs.readFileSync(file);
  const h = entry.offset;
  if (buf.readUInt32LE(h) !== 0x04034b50) throw new Error(`${file}: bad local header for ${entry.name}`);
  const start = h + 30 + buf.readUInt16LE(h + 26) + buf.readUInt16LE(h + 28);
  const data = buf.subarray(start, start + entry.compressedSize);
  if (entry.method === 0) return data;
  if (entry.method === 8) return zlib.inflateRawSync(data);
  throw new Error(`${file}: ${entry.name} uses compression method ${entry.method}`);
}

function vsce(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [VSCE, ...args], { cwd: ROOT }, (err, stdout, stderr) => {
      if (err) reject(new Error(`vsce ${args.join(' ')}: ${stderr || stdout || err.message}`));
      else resolve(stdout);
    });
  });
}

describe('the .vsix package', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    for (const f of ['dist/extension.js', 'dist/sqlWorker.js', 'dist/sql-wasm.wasm']) {
      assert.ok(fs.existsSync(path.join(ROOT, f)), `${f} is missing: run npm run build first`);
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-vsix-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('packs the bundles, the wasm, the README and the media, and nothing else', async () => {
    const out = path.join(dir, 'spaces.vsix');
    await vsce(['package', ...VSCE_FLAGS, '--out', out]);
    const entries = zipEntries(out);
    const entry = (name: string): ZipEntry => {
      const e = entries.find((x) => x.name === name);
      if (!e) throw new Error(`${name} is not in the package`);
      return e;
    };
    const names = entries.map((e) => e.name);
    for (const r of REQUIRED) assert.ok(names.includes(r), `${r} is in the package; it holds ${names.join(', ')}`);
    const unexpected = names.filter((n) => !REQUIRED.includes(n) && !ALLOWED.some((re) => re.test(n)));
    assert.deepEqual(unexpected, [], 'nothing else is packed');
    assert.deepEqual(names.filter((n) => n.endsWith('.map')), [], 'no source maps');
    const bytes = fs.statSync(out).size;
    assert.ok(bytes < MAX_BYTES, `the package is ${bytes} bytes`);

    // The packed manifest's entry point is in the package, and the bundle is the one in dist/.
    const manifest = JSON.parse(zipRead(out, entry('extension/package.json')).toString('utf8')) as { main?: unknown };
    assert.equal(manifest.main, './dist/extension.js');
    assert.ok(zipRead(out, entry('extension/dist/extension.js')).equals(fs.readFileSync(path.join(ROOT, 'dist/extension.js'))));
  });
});
