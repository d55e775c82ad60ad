/**
 * Who wrote an op, on the client: the peer id → user bindings a team server reports (`peers`
 * messages, src/server/identity.ts, docs/protocol.md "Identity"), kept per server layer, and the
 * user this client is signed in as (`welcome`). Bindings are written to the layer's sync state
 * store (the space file's `peer_users` table) and read back when the layer starts, so a file
 * names its ops' authors offline and after a restart.
 *
 * What the server sends is validated by the protocol parser (peer ids, user names of 1..200
 * printable characters, at most 1,000 per message); the map is bounded (`maxPeers`), and a
 * binding past the bound is dropped (counted in `dropped`), never a reason to fail the sync.
 */
import { Emitter, type Disposable, type Event } from '../../spaces/events';
import type { SyncStateStore } from './syncState';

export const CLIENT_IDENTITY_LIMITS = {
  /** Most bindings kept per server layer (the server sends at most 100,000 per space). */
  maxPeers: 200_000,
} as const;

export class PeerIdentities implements Disposable {
  private readonly users = new Map<string, string>();
  private readonly changeEmitter = new Emitter<ReadonlyArray<readonly [string, string]>>();
  /** Bindings that are new or changed (after a `peers` message or the load from the store). */
  readonly onDidChange: Event<ReadonlyArray<readonly [string, string]>> = this.changeEmitter.event;
  private selfUser: string | undefined;
  /** Bindings not kept because the map was full. */
  dropped = 0;

  constructor(
    private readonly layerId: string,
    private readonly store: SyncStateStore,
  ) {}

  /** The user the server binds `peerId` to, if it said. */
  user(peerId: string): string | undefined {
    return this.users.get(peerId);
  }

  /** Every binding known. */
  entries(): IterableIterator<[string, string]> {
    return this.users.entries();
  }

  get size(): number {
    return this.users.size;
  }

  /** The user this client is signed in as (the server's `welcome`), undefined before the first. */
  get self(): string | undefined {
    return this.selfUser;
  }

  /** The server's `welcome`: the token's user, and the peer id this client writes as. */
  welcomed(user: string, ownPeer: string | undefined): void {
    this.selfUser = user;
    if (ownPeer !== undefined) this.merge([[ownPeer, user]]);
  }

  /** What the store kept from earlier runs (not written back). */
  loaded(entries: ReadonlyArray<readonly [string, string]> | undefined): void {
    if (entries) this.merge(entries);
  }

  /** A `peers` message: merged, and the new or changed bindings written to the store. */
  async received(peers: Readonly<Record<string, string>>): Promise<void> {
    const changed = this.merge(Object.entries(peers));
    if (changed.length > 0 && this.store.savePeerUsers) await this.store.savePeerUsers(this.layerId, changed);
  }

  private merge(entries: Iterable<readonly [string, string]>): Array<readonly [string, string]> {
    const changed: Array<readonly [string, string]> = [];
    for (const [peer, user] of entries) {
      if (this.users.get(peer) === user) continue;
      if (!this.users.has(peer) && this.users.size >= CLIENT_IDENTITY_LIMITS.maxPeers) {
        this.dropped++;
        continue;
      }
      this.users.set(peer, user);
      changed.push([peer, user]);
    }
    if (changed.length > 0) this.changeEmitter.fire(changed);
    return changed;
  }

  dispose(): void {
    this.changeEmitter.dispose();
  }
}
