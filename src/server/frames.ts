/**
 * Server → client frames. `ops` frames are spliced from the JSON the store keeps (the ops were
 * validated and encoded by the server before they were stored), so catch-up and fan-out never
 * parse or re-encode op arrays. Everything else goes through `encodeMessage`.
 */
import { encodeMessage, type ErrorCode, type Role, type ServerSecretsMessage, type StateVectorRanges } from '../protocol/messages';
import type { SecretRecord } from '../persistence/contract';

/** An `ops` frame for one tree, from one or more stored JSON arrays of encoded ops. */
export function opsFrame(spaceId: string, treeId: string, opsJsonParts: readonly string[], seq: number): string {
  const ops = opsJsonParts.length === 1 ? opsJsonParts[0] : `[${opsJsonParts.map((p) => p.slice(1, -1)).join(',')}]`;
  return `{"type":"ops","spaceId":"${spaceId}","treeId":"${treeId}","ops":${ops},"seq":${seq}}`;
}

export function ackFrame(spaceId: string, ref: number, seq: number): string {
  return encodeMessage({ type: 'ack', spaceId, ref, seq });
}

export function syncedFrame(spaceId: string, seq: number, role: Role, trees: Record<string, StateVectorRanges>): string {
  return encodeMessage({ type: 'synced', spaceId, seq, role, trees });
}

export function secretsFrame(spaceId: string, records: readonly SecretRecord[]): string {
  const m: ServerSecretsMessage = { type: 'secrets', spaceId, records: [...records] };
  return encodeMessage(m);
}

export function errorFrame(code: ErrorCode, message: string, spaceId?: string, ref?: number): string {
  return encodeMessage({ type: 'error', code, message, ...(spaceId === undefined ? {} : { spaceId }), ...(ref === undefined ? {} : { ref }) });
}
