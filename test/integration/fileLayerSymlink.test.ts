/**
 * Space files reached through a symbolic link: every write goes through the link into the file
 * it points to (the link stays a link), writers using the link and writers using the target's
 * path share one lock and one file, and a link that points nowhere or is pointed elsewhere is
 * refused with a clear error instead of being replaced or silently split.
 */
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FileLayer } from '../../src/persistence/file/fileLayer';
import { opKey } from '../../src/spaces/ops';
import { cliJson, runCli } from '../helpers/cli';
import { TempDir, sha256, makeOps, newId } from '../helpers/fileFixtures';

interface DumpNode {
  id: string;
  props: Record<string, unknown>;
  children: DumpNode[];
}

/** CLI writers running at once, and the commands each runs one after the other. */
const CONCURRENT_WRITERS = 6;
const COMMANDS_PER_WRITER = 3;

function assertLink(link: string, target: string): void {
  assert.ok(fs.lstatSync(link).isSymbolicLink(), `${link} is no longer a symbolic link`);
  assert.equal(fs.realpathSync(link), fs.realpathSync(target));
}

/** Names in `dir` other than `keep`: temp files, locks or copies a write left behind. */
function strays(dir: string, keep: readonly string[]): string[] {
  return fs.readdirSync(dir).filter((n) => !keep.includes(n));
}

describe('space files behind a symbolic link', function () {
  this.timeout(180_000);
  let tmp: TempDir;
  let dataDir: string;
  let linkDir: string;
  let target: string;
  let link: string;

  beforeEach(() => {
    tmp = new TempDir();
    // The link lives in another folder than its target, so that a temp file or a rename in the
    // link's folder (instead of the target's) cannot go unnoticed.
    dataDir = path.join(tmp.path, 'data');
    linkDir = path.join(tmp.path, 'links');
    fs.mkdirSync(dataDir);
    fs.mkdirSync(linkDir);
    target = path.join(dataDir, 'team.space');
    link = path.join(linkDir, 'team.space');
  });
  afterEach(() => tmp.cleanup());

  it('FileLayer: saves through the link land in the target and the link stays a link', async () => {
    const spaceId = newId();
    await (await FileLayer.create(target, spaceId)).close();
    fs.symlinkSync(path.relative(linkDir, target), link);

    const layer = await FileLayer.open(link);
    await layer.saveOps(spaceId, makeOps(spaceId, 'aaaa1111', 1, 40));
    await layer.close();

    assertLink(link, target);
    assert.equal(layer.path, link);
    assert.equal(layer.realPath, fs.realpathSync(target));
    assert.deepEqual(strays(linkDir, ['team.space']), []);
    assert.deepEqual(strays(dataDir, ['team.space']), []);
    const check = await FileLayer.open(target);
    try {
      assert.deepEqual((await check.loadTree(spaceId)).map(opKey).sort(), makeOps(spaceId, 'aaaa1111', 1, 40).map(opKey).sort());
    } finally {
      await check.close();
    }
  });

  it('CLI: an edit through the link lands in the target and the link stays a link', async () => {
    await cliJson(['create', target, '--name', 'Team']);
    fs.symlinkSync(target, link);
    const { treeId } = await cliJson<{ treeId: string }>(['app', 'add', link, '--app', 'notes', '--name', 'Plans']);
    await cliJson(['item', 'add', link, '--tree', treeId, '--set', 'text=through the link']);

    assertLink(link, target);
    assert.deepEqual(strays(linkDir, ['team.space']), []);
    const dump = await cliJson<DumpNode>(['dump', target, '--tree', treeId]);
    assert.deepEqual(
      dump.children.map((n) => n.props.text),
      ['through the link'],
    );
  });

  it('concurrent CLI writers, some through the link and some through the target, lose nothing and share one file', async () => {
    await cliJson(['create', target, '--name', 'Team']);
    fs.symlinkSync(target, link);
    const { treeId } = await cliJson<{ treeId: string }>(['app', 'add', target, '--app', 'notes', '--name', 'Plans']);

    const writers = Array.from({ length: CONCURRENT_WRITERS }, async (_, w) => {
      const via = w % 2 === 0 ? link : target;
      for (let i = 0; i < COMMANDS_PER_WRITER; i++) {
        const r = await runCli(['item', 'add', via, '--tree', treeId, '--set', `text=w${w}-${i}`]);
        assert.equal(r.code, 0, `writer ${w} (${via === link ? 'link' : 'target'}) failed: ${r.stderr}`);
      }
    });
    await Promise.all(writers);

    assertLink(link, target);
    assert.deepEqual(strays(linkDir, ['team.space']), []);
    assert.deepEqual(strays(dataDir, ['team.space']), [], 'a temp or lock file was left next to the target');
    const want: string[] = [];
    for (let w = 0; w < CONCURRENT_WRITERS; w++) for (let i = 0; i < COMMANDS_PER_WRITER; i++) want.push(`w${w}-${i}`);
    for (const via of [target, link]) {
      const dump = await cliJson<DumpNode>(['dump', via, '--tree', treeId]);
      assert.deepEqual(dump.children.map((n) => String(n.props.text)).sort(), want.sort(), `dump through ${via}`);
    }
  });

  it('the target deleted under an open link: the next save writes it again, and the link still leads to it', async () => {
    const spaceId = newId();
    await (await FileLayer.create(target, spaceId)).close();
    fs.symlinkSync(target, link);
    const layer = await FileLayer.open(link, { watch: false });
    try {
      fs.rmSync(target);
      await layer.saveOps(spaceId, makeOps(spaceId, 'aaaa1111', 1, 4));
    } finally {
      await layer.close();
    }
    assertLink(link, target);
    const check = await FileLayer.open(link, { watch: false });
    try {
      assert.equal((await check.loadTree(spaceId)).length, 4);
    } finally {
      await check.close();
    }
  });

  it('a link that points nowhere: open and every CLI command fail naming it; create refuses it; nothing is created', async () => {
    const missing = path.join(dataDir, 'missing.space');
    fs.symlinkSync(missing, link);

    await assert.rejects(FileLayer.open(link), (e: Error) => {
      assert.match(e.message, /is a symbolic link to .*missing\.space, which does not exist/);
      return true;
    });
    await assert.rejects(FileLayer.create(link, newId()), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'EXISTS');
      assert.match(e.message, /symbolic link/);
      return true;
    });
    for (const args of [['info', link], ['create', link]]) {
      const r = await runCli(args);
      assert.equal(r.code, 1, `spaces ${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, /symbolic link to .*missing\.space/);
    }
    assert.ok(fs.lstatSync(link).isSymbolicLink());
    assert.ok(!fs.existsSync(missing), 'the link target was created');
    assert.deepEqual(strays(dataDir, []), []);
  });

  it('a link pointed at another file after the layer opened: saves and refreshes fail with RELINKED, neither file changes', async () => {
    const spaceId = newId();
    await (await FileLayer.create(target, spaceId)).close();
    const other = path.join(dataDir, 'copy.space');
    fs.copyFileSync(target, other);
    fs.symlinkSync(target, link);

    const layer = await FileLayer.open(link, { watch: false });
    try {
      await layer.saveOps(spaceId, makeOps(spaceId, 'aaaa1111', 1, 4));
      const before = [sha256(target), sha256(other)];
      const retarget = path.join(linkDir, 'next.tmp-link');
      fs.symlinkSync(other, retarget);
      fs.renameSync(retarget, link);

      const isRelinked = (e: Error & { code?: string }): boolean => {
        assert.equal(e.code, 'RELINKED');
        assert.match(e.message, /copy\.space, not to .*team\.space/);
        return true;
      };
      await assert.rejects(layer.saveOps(spaceId, makeOps(spaceId, 'aaaa1111', 5, 4)), isRelinked);
      await assert.rejects(layer.refresh(), isRelinked);
      assert.deepEqual([sha256(target), sha256(other)], before);
    } finally {
      await layer.close();
    }
  });
});
