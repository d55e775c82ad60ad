/**
 * Identity: the server tells each subscriber which user writes under which peer id in the space
 * (`peers` messages, docs/protocol.md "Identity"), so clients can say who made an op. The
 * bindings are the store's (`peers` table: a peer id writes for the token user that first used it
 * as its own, bound at the first subscribe with a write role or the first write).
 *
 * - After `synced`: every binding of the space (at most `IDENTITY_LIMITS.maxPeersPerSpace`), in
 *   frames of at most `PROTOCOL_LIMITS.maxPeersPerMessage` entries.
 * - Live: when a subscriber's own peer id is bound for the first time, one entry to every other
 *   subscriber that has had its `synced`.
 */
import { encodeMessage, PROTOCOL_LIMITS, type ServerPeersMessage } from '../protocol/messages';

export const IDENTITY_LIMITS = {
  /**
   * Most bindings sent after `synced`. Each VS Code window and CLI run has a peer id of its own,
   * so a space gains one per session of each writer: 100,000 is years of a big team.
   */
  maxPeersPerSpace: 100_000,
} as const;

/** `peers` frames of the entries, each at most `maxPeersPerMessage` of them; none for none. */
export function peersFrames(spaceId: string, entries: ReadonlyArray<readonly [string, string]>): string[] {
  const frames: string[] = [];
  for (let i = 0; i < entries.length; i += PROTOCOL_LIMITS.maxPeersPerMessage) {
    const peers: Record<string, string> = {};
    for (const [peer, user] of entries.slice(i, i + PROTOCOL_LIMITS.maxPeersPerMessage)) peers[peer] = user;
    const m: ServerPeersMessage = { type: 'peers', spaceId, peers };
    frames.push(encodeMessage(m));
  }
  return frames;
}
