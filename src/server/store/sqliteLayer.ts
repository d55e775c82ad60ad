/**
 * SqlitePersistenceLayer: the `PersistenceLayer` of one space over the server's store (SQLite or
 * PostgreSQL, spaceStore.ts; the name is from when SQLite was the only one).
 *
 * The server opens every loaded space with the same SpaceManager as the extension and the CLI,
 * over this layer, so it holds a validated, merged copy of the space. Ops that clients send are
 * stored by the space's host (through its write queue) and then handed to the manager with
 * `deliver` (the layer's `onIncoming`), the way any two-way layer reports ops made elsewhere.
 *
 * Writes the manager makes itself (`saveOps`, `saveSecrets`) go to the `writer` when one is
 * given (the server passes the space's write queue, so they get seqs in order and reach the
 * subscribers), else straight into the store (one transaction each). Either way a save resolves
 * only once its transaction committed.
 */
import type { IncomingOps, LayerKind, PersistenceLayer, SecretRecord } from '../../persistence/contract';
import { Emitter } from '../../spaces/events';
import { normalizeOp, validateOps, type Op } from '../../spaces/ops';
import { validateSecretRecords } from '../../spaces/secrets';
import { StoreError } from './database';
import type { SpaceStore } from './spaceStore';

/** Where a layer's writes go instead of the store itself. */
export interface LayerWriter {
  appendOps(treeId: string, ops: readonly Op[]): Promise<void>;
  mergeSecrets(records: readonly SecretRecord[]): Promise<void>;
}

export interface SqliteLayerOptions {
  readonly writer?: LayerWriter;
}

export class SqlitePersistenceLayer implements PersistenceLayer {
  readonly id = 'server-store';
  readonly label: string;
  readonly kind: LayerKind = 'two-way';
  private closed = false;
  private readonly pending = new Set<Promise<unknown>>();
  private readonly incoming = new Emitter<IncomingOps>();
  readonly onIncoming = this.incoming.event;
  private readonly incomingSecrets = new Emitter<readonly SecretRecord[]>();
  readonly onIncomingSecrets = this.incomingSecrets.event;

  constructor(
    private readonly store: SpaceStore,
    readonly spaceId: string,
    private readonly opts: SqliteLayerOptions = {},
  ) {
    this.label = `server store (space ${spaceId})`;
  }

  private check(what: string): void {
    if (this.closed) throw new StoreError(`${this.label}: ${what}() called on a closed layer`);
  }

  async listTrees(): Promise<string[]> {
    this.check('listTrees');
    return this.store.listTrees(this.spaceId);
  }

  async loadTree(treeId: string): Promise<Op[]> {
    this.check('loadTree');
    return this.store.loadTreeOps(this.spaceId, treeId);
  }

  saveOps(treeId: string, ops: readonly Op[]): Promise<void> {
    return this.track(async () => {
      this.check('saveOps');
      validateOps(ops, treeId, this.label);
      if (ops.length === 0) return;
      if (this.opts.writer) {
        await this.opts.writer.appendOps(treeId, ops.map(normalizeOp));
        return;
      }
      await this.store.ensureSpace(this.spaceId);
      await this.store.appendBatches(this.spaceId, [{ treeId, ops }]);
    });
  }

  async loadSecrets(): Promise<SecretRecord[]> {
    this.check('loadSecrets');
    return this.store.loadSecrets(this.spaceId);
  }

  saveSecrets(records: readonly SecretRecord[]): Promise<void> {
    return this.track(async () => {
      this.check('saveSecrets');
      validateSecretRecords(records, this.label);
      if (records.length === 0) return;
      const copy = records.map((r) => ({ key: r.key, value: r.value, time: r.time, peerId: r.peerId }));
      if (this.opts.writer) {
        await this.opts.writer.mergeSecrets(copy);
        return;
      }
      await this.store.ensureSpace(this.spaceId);
      await this.store.mergeSecrets(this.spaceId, copy);
    });
  }

  /** Reports ops the server stored for this space (from a client) to the SpaceManager. */
  deliver(treeId: string, ops: readonly Op[]): void {
    if (!this.closed && ops.length > 0) this.incoming.fire({ treeId, ops });
  }

  /** Reports secret records that won on the server (from a client) to the SpaceManager. */
  deliverSecrets(records: readonly SecretRecord[]): void {
    if (!this.closed && records.length > 0) this.incomingSecrets.fire(records);
  }

  private track(fn: () => Promise<void>): Promise<void> {
    const p = fn();
    this.pending.add(p);
    const done = (): void => void this.pending.delete(p);
    p.then(done, done);
    return p;
  }

  /** Waits for saves under way, then stops; idempotent. The store stays open (it is shared). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.pending]);
    this.incoming.dispose();
    this.incomingSecrets.dispose();
  }
}
