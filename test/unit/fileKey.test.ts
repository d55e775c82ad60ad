/**
 * One key for secrets in space files, shared by the CLI and the extension: the key file helpers
 * (src/cli/secretKey.ts) and the extension's FileKeyStore (src/views/fileKey.ts, which imports
 * `vscode` types only, so it runs here with a map for SecretStorage).
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultKeyFile, loadSecretKey, readKeyFile, writeKeyFile } from '../../src/cli/secretKey';
import { FILE_KEY_SECRET, FileKeyStore, type KeyLog, type KeySecrets } from '../../src/views/fileKey';

class MapSecrets implements KeySecrets {
  readonly map = new Map<string, string>();
  failGet = false;
  async get(key: string): Promise<string | undefined> {
    if (this.failGet) throw new Error('keychain locked');
    return this.map.get(key);
  }
  async store(key: string, value: string): Promise<void> {
    this.map.set(key, value);
  }
}

function memoryLog(): KeyLog & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m: string) => void lines.push(`info ${m}`),
    warn: (m: string) => void lines.push(`warn ${m}`),
    error: (m: string) => void lines.push(`error ${m}`),
  };
}

const mode = (file: string): number => fs.statSync(file).mode & 0o777;

describe('file key shared by the CLI and the extension', function () {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spaces-filekey-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('the key file location: $SPACES_KEY_FILE, else $XDG_CONFIG_HOME or ~/.config', function () {
    assert.equal(defaultKeyFile({ SPACES_KEY_FILE: '/k/file.key', XDG_CONFIG_HOME: '/x' }), '/k/file.key');
    assert.equal(defaultKeyFile({ XDG_CONFIG_HOME: '/x' }), path.join('/x', 'spaces', 'file.key'));
    assert.equal(defaultKeyFile({}), path.join(os.homedir(), '.config', 'spaces', 'file.key'));
  });

  it('writeKeyFile: mode 0600 in a 0700 folder; refuses an existing file unless replacing; readKeyFile reads it back', function () {
    const file = path.join(dir, 'conf', 'spaces', 'file.key');
    assert.equal(readKeyFile(file), undefined);
    const a = Buffer.alloc(32, 1);
    const b = Buffer.alloc(32, 2);
    writeKeyFile(file, a);
    assert.equal(mode(file), 0o600);
    assert.equal(mode(path.dirname(file)), 0o700);
    assert.deepEqual(readKeyFile(file), a);
    assert.throws(() => writeKeyFile(file, b), (e: NodeJS.ErrnoException) => e.code === 'EEXIST');
    assert.deepEqual(readKeyFile(file), a, 'the first key stays');
    writeKeyFile(file, b, { replace: true });
    assert.deepEqual(readKeyFile(file), b);
    assert.equal(mode(file), 0o600);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['file.key'], 'no temp files left');
    assert.throws(() => writeKeyFile(file, Buffer.alloc(16), { replace: true }), /32 bytes/);
    fs.writeFileSync(file, 'not a key\n');
    assert.throws(() => readKeyFile(file), /64 hex digits/);
  });

  it('the CLI makes its key file on first use and reads the same key afterwards; $SPACES_KEY wins', function () {
    const env = { SPACES_KEY_FILE: path.join(dir, 'k', 'file.key') };
    const first = loadSecretKey(env);
    assert.equal(first.length, 32);
    assert.deepEqual(loadSecretKey(env), first);
    assert.equal(mode(env.SPACES_KEY_FILE), 0o600);
    const hex = 'ab'.repeat(32);
    assert.deepEqual(loadSecretKey({ ...env, SPACES_KEY: hex }), Buffer.from(hex, 'hex'));
  });

  it('the extension adopts the CLI key file when SecretStorage has no key, and logs where from (never the key)', async function () {
    const file = path.join(dir, 'file.key');
    const cliKey = loadSecretKey({ SPACES_KEY_FILE: file });
    const secrets = new MapSecrets();
    const log = memoryLog();
    const store = new FileKeyStore(secrets, log, () => file);
    assert.deepEqual(Buffer.from((await store.get()) as Uint8Array), cliKey);
    assert.equal(secrets.map.get(FILE_KEY_SECRET), cliKey.toString('hex'));
    assert.ok(log.lines.some((l) => l.startsWith('info adopted') && l.includes(file)), log.lines.join('\n'));
    assert.ok(!log.lines.some((l) => l.includes(cliKey.toString('hex'))), 'the key is never logged');

    // SecretStorage's key wins afterwards, even when the key file changes.
    writeKeyFile(file, Buffer.alloc(32, 9), { replace: true });
    const again = new FileKeyStore(secrets, memoryLog(), () => file);
    assert.deepEqual(Buffer.from((await again.get()) as Uint8Array), cliKey);
  });

  it('without a CLI key file the extension makes a random key; a bad key file is not adopted', async function () {
    const secrets = new MapSecrets();
    const key = await new FileKeyStore(secrets, memoryLog(), () => path.join(dir, 'none.key')).get();
    assert.equal(key?.length, 32);
    assert.ok(!fs.existsSync(path.join(dir, 'none.key')), 'the extension does not write the key file by itself');

    const bad = path.join(dir, 'bad.key');
    fs.writeFileSync(bad, 'garbage');
    const log = memoryLog();
    const other = new MapSecrets();
    const made = await new FileKeyStore(other, log, () => bad).get();
    assert.equal(made?.length, 32);
    assert.ok(log.lines.some((l) => l.startsWith('warn not adopting') && l.includes(bad)), log.lines.join('\n'));
  });

  it('SecretStorage failing: files open without a key, and the next call tries again', async function () {
    const secrets = new MapSecrets();
    secrets.failGet = true;
    const log = memoryLog();
    const store = new FileKeyStore(secrets, log, () => path.join(dir, 'none.key'));
    assert.equal(await store.get(), undefined);
    assert.ok(log.lines.some((l) => l.startsWith('error secret storage unavailable')));
    secrets.failGet = false;
    assert.equal((await store.get())?.length, 32);
  });
});
