// First paint of a large notes tree in the space editor (issue target: a 10k-item notes tree
// ≤ 1 s to first paint). The suite adds a space file with one notes tree of $SPACES_BENCH_BIG_ITEMS
// items (default 10,000: 1,000 top-level items with 9 children each) to the bench workspace, waits
// for the extension to open it, then opens the tree in the editor the way a click in the Spaces
// view does (`spaces.openAppTree`) and records the editor's own figure: from the command until the
// webview reports the frame after rendering every row (webview start-up and the tree's load from
// the file included), and the webview's share of it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import * as vscode from 'vscode';
import { activateSpaces, until } from '../util';
import { benchFixture, recordFigure } from './record';

function outline(count: number): unknown[] {
  const nodes: { props: Record<string, unknown>; children: unknown[] }[] = [];
  for (let made = 0; made < count; ) {
    const top = { props: { text: `Item ${nodes.length + 1}`, done: false }, children: [] as unknown[] };
    made++;
    for (let c = 1; c <= 9 && made < count; c++, made++) top.children.push({ props: { text: `Item ${nodes.length + 1}.${c} with some words of text`, done: c % 3 === 0 } });
    nodes.push(top);
  }
  return nodes;
}

suite('First paint of a large notes tree', () => {
  test('opening a 10k-item notes tree in the editor: in a new window, then with a webview opened before', async () => {
    const fixture = benchFixture();
    const count = Number(process.env.SPACES_BENCH_BIG_ITEMS ?? 10_000);
    const api = await activateSpaces();
    const cli = (args: string[], input?: string): { spaceId?: string; treeId?: string; count?: number } =>
      JSON.parse(execFileSync(process.execPath, [fixture.cli, ...args], { input, env: process.env, encoding: 'utf8', maxBuffer: 64 << 20 })) as { spaceId?: string; treeId?: string; count?: number };
    const json = JSON.stringify(outline(count));
    const big = ['big-a', 'big-b'].map((name) => {
      const file = path.join(fixture.workspace, `${name}.space`);
      const { spaceId } = cli(['create', file, '--name', name]);
      const { treeId } = cli(['app', 'add', file, '--app', 'notes', '--name', 'Big outline']);
      assert.equal(cli(['import', file, '--tree', treeId ?? ''], json).count, count);
      return { spaceId: spaceId ?? '', treeId: treeId ?? '' };
    });
    for (const b of big) await until('the big spaces to open', () => api.manager.get(b.spaceId)?.appTreeRefs().length === 1, 60_000);

    // Cold: the first webview of the window (code-server sets up its webview service worker).
    // Warm: a webview was shown before, as in a window that has been in use.
    for (const [b, when] of [[big[0], 'firstWebview'], [big[1], 'warm']] as const) {
      const before = api.editor.figures.firstPaint.length;
      await vscode.commands.executeCommand('spaces.openAppTree', b);
      const paint = await until('the first paint of the big tree', () => api.editor.figures.firstPaint.slice(before).find((p) => p.treeId === b.treeId), 60_000);
      assert.equal(paint.items, count, 'the webview has every item');
      recordFigure(`firstPaintMs.${when}`, paint.ms, 'ms', { items: count });
      recordFigure(`webviewRenderMs.${when}`, paint.renderMs, 'ms', { items: count });
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    }
  });
});
