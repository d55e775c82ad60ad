// Activation figures on the bench workspace (20 space files with a notes tree each, made by
// scripts/bench-vscode.mjs): the extension's own timings (SpacesApi.timings) and VS Code's
// activation times for it, read from "Developer: Startup Performance".
import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { activateSpaces, EXT_ID, until } from '../util';
import { benchFixture, recordFigure } from './record';

interface VsCodeActivation {
  loadCodeMs: number;
  callActivateMs: number;
  finishActivateMs: number;
  event: string;
}

/**
 * The row of the extension in the "Extension Activation Stats" table of VS Code's startup
 * performance view (a markdown document; its provider is registered when the view is first shown).
 */
async function vscodeActivation(): Promise<VsCodeActivation> {
  await vscode.commands.executeCommand('perfview.show');
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.from({ scheme: 'perf', path: 'Startup Performance' }));
  const row = await until(
    'the extension in the startup performance view',
    () =>
      doc
        .getText()
        .split('\n')
        .map((l) => l.split('|').map((c) => c.trim()))
        .find((cells) => cells[1]?.toLowerCase() === EXT_ID),
    30_000,
  );
  // | Extension | Eager | Load Code | Call Activate | Finish Activate | Event | By |
  const [, , , load, call, finish, event] = row;
  const ms = (s: string | undefined, what: string): number => {
    const n = Number(s);
    if (!Number.isFinite(n)) throw new Error(`cannot read "${what}" from the row ${row.join('|')}`);
    return n;
  };
  await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  return { loadCodeMs: ms(load, 'Load Code'), callActivateMs: ms(call, 'Call Activate'), finishActivateMs: ms(finish, 'Finish Activate'), event: event ?? '' };
}

suite('Activation on a workspace of space files', () => {
  test('activation, opening every file, and VS Code\'s own activation times', async () => {
    const fixture = benchFixture();
    const api = await activateSpaces();
    const t = await until('the startup scan to finish', () => (api.timings.readyMs !== undefined ? api.timings : undefined));
    assert.equal(t.spaceFiles, fixture.files.length, 'every space file of the workspace was found');
    const open = api.model.entries().filter((e) => e.state.kind === 'open').length;
    assert.equal(open, fixture.files.length, 'every space file opened');
    const items = fixture.files.reduce((n, f) => n + f.items, 0);
    // items: in all the files together
    const context = { files: fixture.files.length, items };
    recordFigure('activateMs', t.activateMs, 'ms', context);
    recordFigure('readyMs', t.readyMs ?? NaN, 'ms', context);

    const v = await vscodeActivation();
    const event = { event: v.event };
    recordFigure('vscodeLoadCodeMs', v.loadCodeMs, 'ms', event);
    recordFigure('vscodeCallActivateMs', v.callActivateMs, 'ms', event);
    recordFigure('vscodeFinishActivateMs', v.finishActivateMs, 'ms', event);
    // What "Developer: Show Running Extensions" shows as the activation time.
    recordFigure('vscodeActivationMs', v.loadCodeMs + v.callActivateMs, 'ms', event);
  });
});
