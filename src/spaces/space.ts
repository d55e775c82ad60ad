/**
 * Space: the business logic of one space, with no knowledge of storage.
 *
 * The space tree (tree id = space id) holds the space's name and settings as root properties
 * and one child vertex per app tree, whose vertex id is the app tree's id and whose properties
 * are its `appId`, `name` and app config. App trees are separate RepTrees, loaded lazily
 * through the loader the SpaceManager gives (`openAppTree`).
 */
import type { SecretRecord } from '../persistence/contract';
import { AppTree, TreeError, newVertexId, type Props, type TreeChange } from './appTree';
import { Emitter, type Disposable } from './events';
import type { JsonValue } from './ops';
import { SECRET_LIMITS, isInertSecretTime, isValidSecretKey, secretWins } from './secrets';

export const SPACE_FORMAT = 'spaces-vscode';
const SETTING_PREFIX = 'setting.';
const APP_ID_RE = /^[a-z][a-z0-9._-]{0,63}$/;
const MAX_NAME_LENGTH = 200;

export interface AppTreeRef {
  readonly id: string;
  readonly appId: string;
  readonly name: string;
}

export interface SecretsChange {
  readonly records: readonly SecretRecord[];
  readonly origin: 'local' | 'remote';
}

export type AppTreeLoader = (treeId: string) => Promise<AppTree>;

export class Space implements Disposable {
  private readonly changeEmitter = new Emitter<TreeChange>();
  /** Any change to the space tree or a loaded app tree, local or remote. */
  readonly onDidChange = this.changeEmitter.event;
  private readonly secretsEmitter = new Emitter<SecretsChange>();
  readonly onDidChangeSecrets = this.secretsEmitter.event;

  private readonly appTrees = new Map<string, AppTree>();
  private readonly appTreeLoads = new Map<string, Promise<AppTree>>();
  private readonly secrets = new Map<string, SecretRecord>();
  private disposed = false;

  constructor(
    readonly tree: AppTree,
    readonly peerId: string,
    private readonly loader: AppTreeLoader,
  ) {
    tree.onDidChange((c) => this.changeEmitter.fire(c));
  }

  /** A new space tree with its name; the creation ops are local ops of the returned tree. */
  static newSpaceTree(peerId: string, name: string, spaceId: string = newVertexId()): AppTree {
    checkName(name, 'space name');
    return AppTree.createNew(peerId, spaceId, { name, format: SPACE_FORMAT, createdAt: new Date().toISOString() });
  }

  get id(): string {
    return this.tree.id;
  }

  get name(): string {
    const n = this.tree.getProp(this.id, 'name');
    return typeof n === 'string' ? n : '';
  }

  rename(name: string): void {
    checkName(name, 'space name');
    this.tree.setProps(this.id, { name });
  }

  // ---- settings ------------------------------------------------------------

  getSetting(key: string): JsonValue | undefined {
    return this.tree.getProp(this.id, SETTING_PREFIX + key);
  }

  settings(): Record<string, JsonValue> {
    const out: Record<string, JsonValue> = {};
    for (const [k, v] of Object.entries(this.tree.propsOf(this.id))) {
      if (k.startsWith(SETTING_PREFIX)) out[k.slice(SETTING_PREFIX.length)] = v;
    }
    return out;
  }

  /** Sets one setting; `undefined` removes it. Settings merge per key. */
  setSetting(key: string, value: JsonValue | undefined): void {
    if (!key || key.length > 200) throw new TreeError('bad setting name');
    this.tree.setProps(this.id, { [SETTING_PREFIX + key]: value });
  }

  // ---- app trees -------------------------------------------------------------

  appTreeRefs(): AppTreeRef[] {
    return this.tree.childIds(this.id).flatMap((id) => {
      const appId = this.tree.getProp(id, 'appId');
      if (typeof appId !== 'string') return [];
      const name = this.tree.getProp(id, 'name');
      return [{ id, appId, name: typeof name === 'string' ? name : appId }];
    });
  }

  appTreeRef(treeId: string): AppTreeRef | undefined {
    return this.appTreeRefs().find((r) => r.id === treeId);
  }

  /** Creates an app tree and registers it in the space tree. */
  createAppTree(appId: string, name: string, config?: Props): AppTree {
    if (!APP_ID_RE.test(appId)) throw new TreeError(`bad app id ${JSON.stringify(appId)} (lowercase letters, digits, . _ -)`);
    checkName(name, 'app tree name');
    const treeId = newVertexId();
    const appTree = AppTree.createNew(this.peerId, treeId, { appId });
    this.adoptAppTree(appTree);
    const order = this.tree.appendOrder(this.id);
    this.tree.transact((t) => {
      t.moveVertex(treeId, this.id);
      t.setVertexProperties(treeId, { appId, name, order, _c: new Date().toISOString(), ...(config ? { config } : {}) });
    });
    // The app tree's own creation ops go out after its ref, so a reader never sees a ref without ops for long.
    appTree.transact(() => undefined);
    return appTree;
  }

  renameAppTree(treeId: string, name: string): void {
    this.requireRef(treeId);
    checkName(name, 'app tree name');
    this.tree.setProps(treeId, { name });
  }

  setAppConfig(treeId: string, config: JsonValue): void {
    this.requireRef(treeId);
    this.tree.setProps(treeId, { config });
  }

  getAppConfig(treeId: string): JsonValue | undefined {
    return this.tree.getProp(treeId, 'config');
  }

  /** Removes the app tree from the space (its ops stay in storage, unreachable). */
  deleteAppTree(treeId: string): void {
    this.requireRef(treeId);
    this.tree.delete(treeId);
    const t = this.appTrees.get(treeId);
    this.appTrees.delete(treeId);
    t?.dispose();
  }

  private requireRef(treeId: string): void {
    if (!this.appTreeRef(treeId)) throw new TreeError(`no app tree ${treeId} in space ${this.id}`);
  }

  /** The app tree if already loaded. */
  loadedAppTree(treeId: string): AppTree | undefined {
    return this.appTrees.get(treeId);
  }

  loadedAppTreeIds(): string[] {
    return [...this.appTrees.keys()];
  }

  /** Loads (once) and returns an app tree of this space. */
  openAppTree(treeId: string): Promise<AppTree> {
    const loaded = this.appTrees.get(treeId);
    if (loaded) return Promise.resolve(loaded);
    if (!this.appTreeRef(treeId)) return Promise.reject(new TreeError(`no app tree ${treeId} in space ${this.id}`));
    let p = this.appTreeLoads.get(treeId);
    if (!p) {
      p = this.loader(treeId).then(
        (t) => {
          this.appTreeLoads.delete(treeId);
          if (this.disposed) {
            t.dispose();
            throw new TreeError(`space ${this.id} was closed`);
          }
          this.adoptAppTree(t);
          return t;
        },
        (e: unknown) => {
          this.appTreeLoads.delete(treeId);
          throw e;
        },
      );
      this.appTreeLoads.set(treeId, p);
    }
    return p;
  }

  private adoptAppTree(t: AppTree): void {
    this.appTrees.set(t.id, t);
    t.onDidChange((c) => this.changeEmitter.fire(c));
  }

  /** The loaded tree with this id: the space tree or a loaded app tree. */
  loadedTree(treeId: string): AppTree | undefined {
    return treeId === this.id ? this.tree : this.appTrees.get(treeId);
  }

  // ---- secrets -------------------------------------------------------------

  secretNames(): string[] {
    return [...this.secrets.values()].filter((r) => r.value !== null).map((r) => r.key).sort();
  }

  getSecret(key: string): string | undefined {
    return this.secrets.get(key)?.value ?? undefined;
  }

  setSecret(key: string, value: string): void {
    if (!isValidSecretKey(key)) throw new TreeError(`bad secret name ${JSON.stringify(key)} (letters, digits and _ . : / @ -)`);
    if (Buffer.byteLength(value) > SECRET_LIMITS.maxValueBytes) throw new TreeError(`secret ${key} is larger than ${SECRET_LIMITS.maxValueBytes} bytes`);
    this.writeSecret(key, value);
  }

  /** Deletes a secret (a tombstone, so the delete wins over older copies elsewhere). */
  deleteSecret(key: string): boolean {
    if (this.getSecret(key) === undefined) return false;
    this.writeSecret(key, null);
    return true;
  }

  private writeSecret(key: string, value: string | null): void {
    const prev = this.secrets.get(key);
    // After the current winner even when its writer's clock was ahead of ours. The winner is never
    // inert (see secrets.ts), so this is over the bound only if a record sits right at it.
    const time = Math.max(Date.now(), prev ? prev.time + 1 : 0);
    if (isInertSecretTime(time)) throw new TreeError(`secret ${key} holds a record dated at the end of the time range (${prev?.time}); it cannot be overwritten`);
    const rec: SecretRecord = { key, value, time, peerId: this.peerId };
    this.secrets.set(key, rec);
    this.secretsEmitter.fire({ records: [rec], origin: 'local' });
  }

  /** All records, tombstones included (what layers store). */
  secretRecords(): SecretRecord[] {
    return [...this.secrets.values()];
  }

  /** Merges records from elsewhere; returns the ones that won (changed this space). */
  applySecrets(records: readonly SecretRecord[], origin: 'local' | 'remote' = 'remote'): SecretRecord[] {
    const won: SecretRecord[] = [];
    for (const r of records) {
      if (secretWins(r, this.secrets.get(r.key))) {
        this.secrets.set(r.key, r);
        won.push(r);
      }
    }
    if (won.length && origin === 'remote') this.secretsEmitter.fire({ records: won, origin });
    return won;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.appTrees.values()) t.dispose();
    this.appTrees.clear();
    this.tree.dispose();
    this.changeEmitter.dispose();
    this.secretsEmitter.dispose();
  }
}

function checkName(name: unknown, what: string): void {
  if (typeof name !== 'string' || name.trim().length === 0 || name.length > MAX_NAME_LENGTH) {
    throw new TreeError(`${what} must be 1..${MAX_NAME_LENGTH} characters`);
  }
}
