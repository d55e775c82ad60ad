/**
 * Registers the space editor and its command `spaces.openAppTree`, which opens a space file in
 * the editor showing one app tree (from the Spaces view, or scripted):
 *
 *   executeCommand('spaces.openAppTree', node)                      (a space or app tree node)
 *   executeCommand('spaces.openAppTree', { spaceId, treeId, itemId }) (treeId optional: the overview;
 *                                                                      itemId: put the caret in that note)
 */
import * as vscode from 'vscode';
import type { SpacesNode } from '../spacesTree';
import { commandWrapper } from '../commandHelpers';
import type { WorkspaceModel } from '../workspaceModel';
import { EditHistory } from './editHistory';
import { SPACE_EDITOR_VIEW_TYPE, SpaceEditorProvider } from './spaceEditorProvider';

export interface OpenAppTreeArgs {
  readonly spaceId?: string;
  readonly treeId?: string;
  readonly itemId?: string;
}

/** The editor, and the undo history it shares with the Spaces view and the commands. */
export function registerSpaceEditor(model: WorkspaceModel, extensionUri: vscode.Uri, log: vscode.LogOutputChannel): { provider: SpaceEditorProvider; history: EditHistory; disposables: vscode.Disposable[] } {
  const history = new EditHistory();
  const provider = new SpaceEditorProvider(model, extensionUri, log, history);
  const open = commandWrapper(log)('spaces.openAppTree', async (arg?: SpacesNode | OpenAppTreeArgs): Promise<boolean> => {
    const spaceId = arg && 'spaceId' in arg ? arg.spaceId : undefined;
    const treeId = arg && 'treeId' in arg ? arg.treeId : undefined;
    const itemId = arg && 'itemId' in arg ? arg.itemId : undefined;
    const uri = arg && 'uri' in arg ? arg.uri : spaceId ? model.entryForSpace(spaceId)?.uri : undefined;
    if (!uri) throw new Error(spaceId ? `space ${spaceId} is not open in this window` : 'choose a space or an app tree to open');
    if (treeId) await provider.openAppTree(uri, treeId, itemId);
    else await vscode.commands.executeCommand('vscode.openWith', uri, SPACE_EDITOR_VIEW_TYPE);
    return true;
  });
  return { provider, history, disposables: [provider, history, SpaceEditorProvider.register(provider), vscode.commands.registerCommand('spaces.openAppTree', open)] };
}
