/**
 * Small helpers shared by the command modules (commands.ts, secretsCommands.ts, sync/syncCommands.ts,
 * editor/registerEditor.ts): running a command body with its errors shown and logged, telling a
 * tree node from an argument object, and choosing a space.
 */
import * as vscode from 'vscode';
import type { Space } from '../spaces/space';
import type { SpacesNode } from './spacesTree';
import { errorMessage, type WorkspaceModel } from './workspaceModel';

export function isNode(x: unknown): x is SpacesNode {
  return typeof x === 'object' && x !== null && typeof (x as { kind?: unknown }).kind === 'string';
}

/** The argument object of a scripted call (`executeCommand(id, args)` or `(id, node, args)`), else {}. */
export function argsOf<T extends object>(arg: unknown, extra?: unknown): Partial<T> {
  const a = arg && typeof arg === 'object' && !isNode(arg) ? (arg as Partial<T>) : {};
  const b = extra && typeof extra === 'object' && !isNode(extra) ? (extra as Partial<T>) : {};
  return { ...a, ...b };
}

/** The space id of a tree node, if it belongs to a space. */
export function nodeSpaceId(node: SpacesNode | undefined): string | undefined {
  return node && 'spaceId' in node ? node.spaceId : undefined;
}

/** Wraps a command body: its error is logged, shown, and rethrown to a scripted caller. */
export function commandWrapper(log: vscode.LogOutputChannel, show: (id: string, e: unknown) => void = (_id, e) => void vscode.window.showErrorMessage(`Spaces: ${errorMessage(e)}`)) {
  return <A extends unknown[], R>(id: string, fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        // eslint-disable-next-line no-restricted-syntax -- the few arguments a command was invoked with
        return await fn(...args);
      } catch (e) {
        log.error(`${id}: ${errorMessage(e)}`);
        show(id, e);
        throw e;
      }
    };
}

/**
 * The space `spaceId` (which must be open), or one the user picks among the open spaces that
 * pass `filter` (at once when there is only one; `preferred`, the active space, first and
 * marked). Undefined when the user cancelled.
 */
export async function pickSpace(
  model: WorkspaceModel,
  spaceId: string | undefined,
  title: string,
  filter: (space: Space) => boolean = () => true,
  none = 'there is no open space',
  preferred?: string,
): Promise<Space | undefined> {
  if (spaceId !== undefined) {
    const s = typeof spaceId === 'string' ? model.manager.get(spaceId) : undefined;
    if (!s) throw new Error(`space ${String(spaceId)} is not open in this window`);
    return s;
  }
  const spaces = model.entries().flatMap((e) => {
    const space = e.state.kind === 'open' ? model.manager.get(e.state.spaceId) : undefined;
    const file = vscode.workspace.asRelativePath(e.uri);
    return space && filter(space) ? [{ label: space.name, description: space.id === preferred ? `${file} · active` : file, space }] : [];
  });
  if (spaces.length === 0) throw new Error(none);
  if (spaces.length === 1) return spaces[0].space;
  // The active space first (a stable sort keeps the others in the view's order).
  spaces.sort((a, b) => Number(b.space.id === preferred) - Number(a.space.id === preferred));
  return (await vscode.window.showQuickPick(spaces, { title, placeHolder: 'The active space is first' }))?.space;
}
