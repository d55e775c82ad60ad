/**
 * The `spaces` commands. Each opens the file through the same SpaceManager the extension uses,
 * makes its change, and closes the space (which flushes it to disk under the file's lock), so
 * commands can run concurrently on one file from several processes.
 */
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FileLayer } from '../persistence/file/fileLayer';
import type { AppTree, ImportNode, Position, Props } from '../spaces/appTree';
import { isJsonValue, type JsonValue } from '../spaces/ops';
import type { Space } from '../spaces/space';
import { SpaceManager } from '../spaces/spaceManager';
import { keySource } from './secretKey';
import { runSync, type SyncIo } from './sync';
import { UsageError } from './usage';

export interface CliIo extends SyncIo {
  readonly stdin: () => Promise<string>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

function parse(argv: string[], options: Options, positionals: string[]) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (parsed.positionals.length !== positionals.length) {
    throw new UsageError(`expected ${positionals.join(' ')}, got ${parsed.positionals.length ? parsed.positionals.join(' ') : 'nothing'}`);
  }
  return { values: parsed.values as Record<string, string | string[] | boolean | undefined>, args: parsed.positionals };
}

function str(values: Record<string, unknown>, name: string, required: true): string;
function str(values: Record<string, unknown>, name: string, required?: false): string | undefined;
function str(values: Record<string, unknown>, name: string, required = false): string | undefined {
  const v = values[name];
  if (v === undefined) {
    if (required) throw new UsageError(`--${name} is required`);
    return undefined;
  }
  if (typeof v !== 'string' || v.length === 0) throw new UsageError(`--${name} needs a value`);
  return v;
}

/** `key=value`; the value is JSON when it parses as JSON, else the raw string. */
export function parseAssignment(s: string): [string, JsonValue] {
  const eq = s.indexOf('=');
  if (eq <= 0) throw new UsageError(`--set expects key=value, got ${JSON.stringify(s)}`);
  const key = s.slice(0, eq);
  const raw = s.slice(eq + 1);
  try {
    const v: unknown = JSON.parse(raw);
    if (isJsonValue(v)) return [key, v];
  } catch {
    // not JSON: a plain string
  }
  return [key, raw];
}

function assignments(values: Record<string, unknown>): Props {
  const list = (values.set as string[] | undefined) ?? [];
  const props: Props = {};
  for (const s of list) {
    const [k, v] = parseAssignment(s);
    props[k] = v;
  }
  return props;
}

function position(values: Record<string, unknown>): Position | undefined {
  const after = str(values, 'after');
  const before = str(values, 'before');
  if (after && before) throw new UsageError('give --after or --before, not both');
  return after ? { after } : before ? { before } : undefined;
}

/** What a command does with its file: only reads it or also writes it; needs its secrets or not. */
interface Access {
  readonly write: boolean;
  readonly secrets?: boolean;
}

const READ: Access = { write: false };
const WRITE: Access = { write: true };
const READ_SECRETS: Access = { write: false, secrets: true };
const WRITE_SECRETS: Access = { write: true, secrets: true };

/**
 * Opens FILE's space, runs `fn`, closes (flushing); fails when anything was left unsaved.
 * Refuses before `fn` changes anything when the command writes and the file is read-only, or
 * needs secrets the key cannot read (another key: a secret set then would be lost under both).
 */
async function withSpace<T>(file: string, io: CliIo, access: Access, fn: (space: Space) => Promise<T> | T): Promise<T> {
  const manager = new SpaceManager();
  try {
    const layer = await FileLayer.open(path.resolve(file), { secretKey: io.secretKey() });
    if (access.write && layer.readOnlyReason !== undefined) {
      await layer.close();
      throw new Error(`${layer.readOnlyReason}; nothing was changed`);
    }
    const space = await manager.open(layer.spaceId, [layer]);
    if (access.secrets) {
      const blocked = manager.layerStates(space.id).find((l) => l.state.secretsError !== undefined);
      if (blocked) throw new Error(`${blocked.state.secretsError} (the key in use comes from ${keySource(io.env)}); nothing was changed`);
    }
    const result = await fn(space);
    const unsaved = await manager.close(space.id);
    if (unsaved.length) throw new Error(`could not save ${file}: ${unsaved.map((u) => u.error ?? `${u.pendingOps} ops pending`).join('; ')}`);
    return result;
  } finally {
    await manager.dispose();
  }
}

async function appTree(space: Space, treeId: string): Promise<AppTree> {
  return space.openAppTree(treeId);
}

const TREE = { tree: { type: 'string' } } as const;

export async function runCommand(argv: string[], io: CliIo): Promise<unknown> {
  const [cmd, sub, ...rest] = argv;
  switch (cmd) {
    case 'create': {
      const { values, args } = parse(argv.slice(1), { name: { type: 'string' } }, ['FILE']);
      const file = path.resolve(args[0]);
      const name = str(values, 'name') ?? path.basename(file).replace(/\.space$/, '');
      const manager = new SpaceManager();
      try {
        const space = await manager.create(name, async (spaceId) => [await FileLayer.create(file, spaceId, { secretKey: io.secretKey() })]);
        const unsaved = await manager.close(space.id);
        if (unsaved.length) throw new Error(`could not save ${args[0]}: ${unsaved.map((u) => u.error).join('; ')}`);
        return { spaceId: space.id, file };
      } finally {
        await manager.dispose();
      }
    }
    case 'info': {
      const { args } = parse(argv.slice(1), {}, ['FILE']);
      return withSpace(args[0], io, READ, async (space) => {
        const refs = space.appTreeRefs();
        let opCount = space.tree.opCount;
        for (const r of refs) opCount += (await appTree(space, r.id)).opCount;
        return { spaceId: space.id, name: space.name, appTrees: refs.map((r) => ({ id: r.id, appId: r.appId, name: r.name })), opCount };
      });
    }
    case 'app':
      return runApp(sub, rest, io);
    case 'item':
      return runItem(sub, rest, io);
    case 'dump': {
      const { values, args } = parse(argv.slice(1), TREE, ['FILE']);
      const treeId = str(values, 'tree');
      return withSpace(args[0], io, READ, async (space) => (treeId ? (await appTree(space, treeId)).dump() : space.tree.dump()));
    }
    case 'import': {
      const { values, args } = parse(argv.slice(1), { ...TREE, parent: { type: 'string' } }, ['FILE']);
      const treeId = str(values, 'tree', true);
      const nodes = parseImport(await io.stdin());
      return withSpace(args[0], io, WRITE, async (space) => {
        const t = await appTree(space, treeId);
        const ids = t.importNodes(str(values, 'parent') ?? t.rootId, nodes);
        return { ids, count: countNodes(nodes) };
      });
    }
    case 'secret':
      return runSecret(sub, rest, io);
    case 'sync':
      return runSync(argv.slice(1), io);
    case undefined:
      throw new UsageError('no command given');
    default:
      throw new UsageError(`unknown command ${JSON.stringify(cmd)}`);
  }
}

async function runApp(sub: string | undefined, argv: string[], io: CliIo): Promise<unknown> {
  switch (sub) {
    case 'add': {
      const { values, args } = parse(argv, { app: { type: 'string' }, name: { type: 'string' } }, ['FILE']);
      const appId = str(values, 'app', true);
      const name = str(values, 'name') ?? appId;
      return withSpace(args[0], io, WRITE, (space) => ({ treeId: space.createAppTree(appId, name).id }));
    }
    case 'rename': {
      const { values, args } = parse(argv, { ...TREE, name: { type: 'string' } }, ['FILE']);
      const treeId = str(values, 'tree', true);
      const name = str(values, 'name', true);
      return withSpace(args[0], io, WRITE, (space) => {
        space.renameAppTree(treeId, name);
        return { treeId, name };
      });
    }
    case 'delete': {
      const { values, args } = parse(argv, TREE, ['FILE']);
      const treeId = str(values, 'tree', true);
      return withSpace(args[0], io, WRITE, (space) => {
        space.deleteAppTree(treeId);
        return { treeId, deleted: true };
      });
    }
    default:
      throw new UsageError(`unknown app command ${JSON.stringify(sub ?? '')} (add, rename, delete)`);
  }
}

async function runItem(sub: string | undefined, argv: string[], io: CliIo): Promise<unknown> {
  const common = { ...TREE, id: { type: 'string' }, parent: { type: 'string' }, after: { type: 'string' }, before: { type: 'string' } } as const;
  switch (sub) {
    case 'add': {
      const { values, args } = parse(argv, { ...common, set: { type: 'string', multiple: true } }, ['FILE']);
      const treeId = str(values, 'tree', true);
      const props = assignments(values);
      return withSpace(args[0], io, WRITE, async (space) => {
        const t = await appTree(space, treeId);
        return { id: t.addItem(str(values, 'parent') ?? t.rootId, props, position(values)) };
      });
    }
    case 'set': {
      const { values, args } = parse(argv, { ...common, set: { type: 'string', multiple: true }, unset: { type: 'string', multiple: true } }, ['FILE']);
      const treeId = str(values, 'tree', true);
      const id = str(values, 'id', true);
      const props: Record<string, JsonValue | undefined> = assignments(values);
      for (const k of (values.unset as string[] | undefined) ?? []) props[k] = undefined;
      if (Object.keys(props).length === 0) throw new UsageError('give at least one --set key=value or --unset key');
      return withSpace(args[0], io, WRITE, async (space) => {
        (await appTree(space, treeId)).setProps(id, props);
        return { id };
      });
    }
    case 'move': {
      const { values, args } = parse(argv, common, ['FILE']);
      const treeId = str(values, 'tree', true);
      const id = str(values, 'id', true);
      const parent = str(values, 'parent');
      return withSpace(args[0], io, WRITE, async (space) => {
        const t = await appTree(space, treeId);
        const item = t.get(id);
        t.move(id, parent ?? item?.parentId ?? t.rootId, position(values));
        return { id };
      });
    }
    case 'delete': {
      const { values, args } = parse(argv, common, ['FILE']);
      const treeId = str(values, 'tree', true);
      const id = str(values, 'id', true);
      return withSpace(args[0], io, WRITE, async (space) => {
        (await appTree(space, treeId)).delete(id);
        return { id, deleted: true };
      });
    }
    default:
      throw new UsageError(`unknown item command ${JSON.stringify(sub ?? '')} (add, set, move, delete)`);
  }
}

async function runSecret(sub: string | undefined, argv: string[], io: CliIo): Promise<unknown> {
  switch (sub) {
    case 'set': {
      const { args } = parse(argv, {}, ['FILE', 'KEY']);
      const value = (await io.stdin()).replace(/\r?\n$/, '');
      return withSpace(args[0], io, WRITE_SECRETS, (space) => {
        space.setSecret(args[1], value);
        return { key: args[1] };
      });
    }
    case 'get': {
      const { args } = parse(argv, {}, ['FILE', 'KEY']);
      return withSpace(args[0], io, READ_SECRETS, (space) => {
        const value = space.getSecret(args[1]);
        if (value === undefined) throw new Error(`no secret named ${args[1]} in ${args[0]}`);
        return { key: args[1], value };
      });
    }
    case 'list': {
      const { args } = parse(argv, {}, ['FILE']);
      return withSpace(args[0], io, READ_SECRETS, (space) => ({ keys: space.secretNames() }));
    }
    case 'delete': {
      const { args } = parse(argv, {}, ['FILE', 'KEY']);
      return withSpace(args[0], io, WRITE_SECRETS, (space) => ({ key: args[1], deleted: space.deleteSecret(args[1]) }));
    }
    default:
      throw new UsageError(`unknown secret command ${JSON.stringify(sub ?? '')} (set, get, list, delete)`);
  }
}

/** Validates the nested JSON tree given to `import` (dump's shape; ids optional). */
export function parseImport(text: string): ImportNode[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`stdin is not JSON: ${(e as Error).message}`);
  }
  const nodes = Array.isArray(data) ? data : [data];
  let count = 0;
  const check = (n: unknown, where: string): ImportNode => {
    if (++count > 1_000_000) throw new UsageError('import is limited to 1,000,000 nodes');
    if (typeof n !== 'object' || n === null || Array.isArray(n)) throw new UsageError(`${where}: a node must be an object`);
    const o = n as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['id', 'props', 'children'].includes(k)) throw new UsageError(`${where}: unknown field ${JSON.stringify(k)}`);
    if (o.id !== undefined && typeof o.id !== 'string') throw new UsageError(`${where}.id must be a string`);
    if (o.props !== undefined && (typeof o.props !== 'object' || o.props === null || Array.isArray(o.props) || !isJsonValue(o.props))) {
      throw new UsageError(`${where}.props must be an object of JSON values`);
    }
    if (o.children !== undefined && !Array.isArray(o.children)) throw new UsageError(`${where}.children must be an array`);
    return {
      id: o.id as string | undefined,
      props: o.props as Props | undefined,
      children: ((o.children as unknown[] | undefined) ?? []).map((c, i) => check(c, `${where}.children[${i}]`)),
    };
  };
  return nodes.map((n, i) => check(n, `node[${i}]`));
}

function countNodes(nodes: readonly ImportNode[]): number {
  return nodes.reduce((n, x) => n + 1 + countNodes(x.children ?? []), 0);
}
