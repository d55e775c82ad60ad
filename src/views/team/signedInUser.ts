/**
 * The user a space is signed in as on its team server: the token's user from the server's last
 * `welcome` on the space's connection (`ServerLayer.identities.self`). Chat messages carry it by
 * default (`chatAuthor` in src/views/editor/editorSession.ts), so teammates see the name the
 * server knows, not this machine's login. Set once by the extension (registerTeam.ts).
 */
import type { SyncConnections } from '../sync/connections';

let connections: Pick<SyncConnections, 'layer'> | undefined;

/** Where the users come from; undefined again on dispose. */
export function useSignedInUsers(sync: Pick<SyncConnections, 'layer'>): { dispose(): void } {
  connections = sync;
  return {
    dispose: () => {
      if (connections === sync) connections = undefined;
    },
  };
}

/** The signed-in user of a connected space, undefined when it is not connected or not welcomed yet. */
export function signedInUser(spaceId: string | undefined): string | undefined {
  return spaceId === undefined ? undefined : connections?.layer(spaceId)?.identities.self;
}
