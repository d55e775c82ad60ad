/**
 * Secrets of a space, and the key that encrypts them in space files. Values are typed in password
 * boxes and never shown, listed or logged. Every prompt can be answered by an argument:
 *
 *   executeCommand('spaces.setSecret', { spaceId, name: 'openai.key', value })  → { spaceId, name }
 *   executeCommand('spaces.listSecrets', { spaceId })                           → ['openai.key', …]
 *   executeCommand('spaces.deleteSecret', { spaceId, name, confirm: false })    → true | false
 *   executeCommand('spaces.exportFileKey', { confirm: false, replace?: true })  → { file, written, replaced, backup? }
 *
 * "Export File Key for the CLI" writes the extension's key (SecretStorage) to the `spaces` CLI's key
 * file ($SPACES_KEY_FILE, else ~/.config/spaces/file.key; mode 0600), so both read the same
 * secrets. A different key already there is replaced only after a second confirmation (scripted:
 * `replace: true`), and kept next to it as `file.key.old-<time>`.
 */
import fs from 'node:fs';
import * as vscode from 'vscode';
import { readKeyFile, writeKeyFile } from '../cli/secretKey';
import { SECRET_LIMITS, isValidSecretKey } from '../spaces/secrets';
import type { Space } from '../spaces/space';
import { argsOf, commandWrapper, isNode, nodeSpaceId, pickSpace } from './commandHelpers';
import type { FileKeyStore } from './fileKey';
import type { SpacesNode } from './spacesTree';
import { errorMessage, type WorkspaceModel } from './workspaceModel';

export interface SecretArgs {
  readonly spaceId?: string;
  readonly name?: string;
  readonly value?: string;
  /** deleteSecret: false skips the confirmation. */
  readonly confirm?: boolean;
}

export interface ExportKeyArgs {
  /** false: no confirmation (scripts). */
  readonly confirm?: boolean;
  /** Scripted: replace a different key in the key file (interactive: a second confirmation). */
  readonly replace?: boolean;
}

function namingProblem(name: string): string | undefined {
  return isValidSecretKey(name) ? undefined : 'Letters, digits and _ . : / @ - (e.g. openai.key)';
}

function valueProblem(value: string): string | undefined {
  return Buffer.byteLength(value) > SECRET_LIMITS.maxValueBytes ? `At most ${SECRET_LIMITS.maxValueBytes} bytes` : undefined;
}

export function registerSecretsCommands(model: WorkspaceModel, keys: FileKeyStore, log: vscode.LogOutputChannel, treeView: vscode.TreeView<SpacesNode>): vscode.Disposable[] {
  const manager = model.manager;
  const wrap = commandWrapper(log);

  const spaceOf = async (arg: unknown, a: SecretArgs, title: string): Promise<Space | undefined> => {
    if (a.spaceId !== undefined && typeof a.spaceId !== 'string') throw new Error('spaceId must be a string');
    const node = isNode(arg) ? arg : arg === undefined ? treeView.selection[0] : undefined;
    return pickSpace(model, a.spaceId ?? nodeSpaceId(node), title);
  };

  /** Secrets can be written only where every layer of the space can store them. */
  const checkWritable = async (space: Space): Promise<void> => {
    if (!(await keys.get())) throw new Error('secrets cannot be saved: the key for space files is unavailable (VS Code\'s secret storage did not answer; see the "Spaces" log)');
    const blocked = manager.layerStates(space.id).filter((l) => l.state.secretsError);
    if (blocked.length) {
      throw new Error(
        `the secrets of "${space.name}" cannot be written: ${blocked.map((l) => `${l.label}: ${l.state.secretsError}`).join('; ')}. ` +
          'The file was written with another key (see "Secrets and keys" in the README: "Spaces: Export File Key for the CLI", or adopt the CLI\'s key).',
      );
    }
  };

  const setSecret = wrap('spaces.setSecret', async (arg?: SpacesNode | SecretArgs, extra?: SecretArgs) => {
    const a = argsOf<SecretArgs>(arg, extra);
    const space = await spaceOf(arg, a, 'Set a secret in which space?');
    if (!space) return undefined;
    if (a.name !== undefined && typeof a.name !== 'string') throw new Error('name must be a string');
    if (a.value !== undefined && typeof a.value !== 'string') throw new Error('value must be a string');
    await checkWritable(space);
    const name =
      a.name ??
      (await vscode.window.showInputBox({ title: `New secret in "${space.name}"`, prompt: 'Name of the secret', placeHolder: 'openai.key', ignoreFocusOut: true, validateInput: namingProblem }));
    if (name === undefined) return undefined;
    const nameProblem = namingProblem(name);
    if (nameProblem) throw new Error(`bad secret name ${JSON.stringify(name.slice(0, 100))}: ${nameProblem}`);
    const value =
      a.value ??
      (await vscode.window.showInputBox({
        title: `Value of ${name} in "${space.name}"`,
        prompt: 'Stored encrypted in the space file and synced to the space\'s team server; never shown again',
        password: true,
        ignoreFocusOut: true,
        validateInput: valueProblem,
      }));
    if (value === undefined) return undefined;
    const problem = valueProblem(value);
    if (problem) throw new Error(`the value of ${name} is too large: ${problem}`);
    const existed = space.getSecret(name) !== undefined;
    space.setSecret(name, value);
    log.info(`${existed ? 'changed' : 'set'} secret ${name} in space ${space.id} ("${space.name}")`);
    return { spaceId: space.id, name };
  });

  const deleteSecret = wrap('spaces.deleteSecret', async (arg?: SpacesNode | SecretArgs, extra?: SecretArgs) => {
    const a = argsOf<SecretArgs>(arg, extra);
    const space = await spaceOf(arg, a, 'Delete a secret of which space?');
    if (!space) return undefined;
    if (a.name !== undefined && typeof a.name !== 'string') throw new Error('name must be a string');
    const names = space.secretNames();
    const name = a.name ?? (names.length ? await vscode.window.showQuickPick(names, { title: `Delete which secret of "${space.name}"?` }) : undefined);
    if (name === undefined) {
      if (!names.length) void vscode.window.showInformationMessage(`Spaces: "${space.name}" has no secrets.`);
      return undefined;
    }
    if (space.getSecret(name) === undefined) throw new Error(`"${space.name}" has no secret named ${JSON.stringify(name.slice(0, 100))}`);
    await checkWritable(space);
    if (a.confirm !== false) {
      const button = 'Delete';
      const pick = await vscode.window.showWarningMessage(`Delete the secret ${name} of "${space.name}"?`, { modal: true, detail: 'It is deleted for everyone the space syncs with.' }, button);
      if (pick !== button) return false;
    }
    const deleted = space.deleteSecret(name);
    log.info(`deleted secret ${name} of space ${space.id} ("${space.name}")`);
    return deleted;
  });

  const listSecrets = wrap('spaces.listSecrets', async (arg?: SpacesNode | SecretArgs, extra?: SecretArgs) => {
    const a = argsOf<SecretArgs>(arg, extra);
    const space = await spaceOf(arg, a, 'List the secrets of which space?');
    if (!space) return undefined;
    const names = space.secretNames();
    const scripted = arg !== undefined && !isNode(arg);
    if (scripted) return names;
    const add = { label: '$(add) Add a secret…', name: undefined as string | undefined };
    const picked = await vscode.window.showQuickPick([...names.map((n) => ({ label: n, description: 'value hidden', name: n as string | undefined })), add], {
      title: `Secrets of "${space.name}" (${names.length})`,
      placeHolder: 'Pick a secret to change or delete it',
    });
    if (!picked) return names;
    if (picked === add) {
      await vscode.commands.executeCommand('spaces.setSecret', { spaceId: space.id });
      return names;
    }
    const change = 'Change Value…';
    const remove = 'Delete';
    const action = await vscode.window.showQuickPick([change, remove], { title: picked.label });
    if (action === change) await vscode.commands.executeCommand('spaces.setSecret', { spaceId: space.id, name: picked.name });
    if (action === remove) await vscode.commands.executeCommand('spaces.deleteSecret', { spaceId: space.id, name: picked.name });
    return names;
  });

  const exportFileKey = wrap('spaces.exportFileKey', async (args?: ExportKeyArgs) => {
    const a = argsOf<ExportKeyArgs>(args);
    const key = await keys.get();
    if (!key) throw new Error('the key for space files is unavailable: VS Code\'s secret storage did not answer (see the "Spaces" log)');
    const file = keys.cliKeyFile();
    let existing: Buffer | undefined;
    let unreadable: string | undefined;
    try {
      existing = readKeyFile(file);
    } catch (e) {
      unreadable = errorMessage(e);
    }
    if (existing && existing.equals(Buffer.from(key))) {
      log.info(`the CLI's key file ${file} already holds the extension's key`);
      if (a.confirm !== false) void vscode.window.showInformationMessage(`Spaces: ${file} already holds this key.`);
      return { file, written: false, replaced: false };
    }
    const different = existing !== undefined || unreadable !== undefined;
    if (a.confirm !== false) {
      const write = 'Write Key File';
      const pick = await vscode.window.showWarningMessage(
        `Write the key for secrets in space files to ${file}?`,
        {
          modal: true,
          detail: 'The spaces CLI then reads and writes the secrets of space files with the same key as VS Code. The file is readable by your user only (mode 0600), but anyone who can read it can decrypt the secrets in your space files.',
        },
        write,
      );
      if (pick !== write) return undefined;
      if (different) {
        const replace = 'Replace the Key';
        const again = await vscode.window.showWarningMessage(
          `${file} already holds ${unreadable ? `something that is not a key (${unreadable})` : 'a different key'}. Replace it?`,
          {
            modal: true,
            detail: 'Secrets the CLI wrote with the old key can then no longer be read by the CLI. The old file is kept next to it (.old-<time>), so it can be put back.',
          },
          replace,
        );
        if (again !== replace) return undefined;
      }
    } else if (different && a.replace !== true) {
      throw new Error(`${file} already holds a different key: pass replace: true to overwrite it (the old file is kept as a backup)`);
    }
    let backup: string | undefined;
    if (different) {
      backup = `${file}.old-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      fs.copyFileSync(file, backup, fs.constants.COPYFILE_EXCL);
      fs.chmodSync(backup, 0o600);
    }
    writeKeyFile(file, key, { replace: different });
    log.info(`wrote the key for secrets in space files to ${file} (mode 0600)${backup ? `; the previous file is kept as ${backup}` : ''}`);
    if (process.env.SPACES_KEY) log.warn('$SPACES_KEY is set in this environment: a CLI started with it set uses that key, not the key file');
    if (a.confirm !== false) void vscode.window.showInformationMessage(`Spaces: the CLI now uses the same key as VS Code (${file}).`);
    return { file, written: true, replaced: different, backup };
  });

  return [
    vscode.commands.registerCommand('spaces.setSecret', setSecret),
    vscode.commands.registerCommand('spaces.listSecrets', listSecrets),
    vscode.commands.registerCommand('spaces.deleteSecret', deleteSecret),
    vscode.commands.registerCommand('spaces.exportFileKey', exportFileKey),
  ];
}
