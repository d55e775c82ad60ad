/**
 * Why a client's sync stopped until something changes (the token, the space, the client):
 * one typed reason for the codes the ServerLayer stops on, so UIs and the CLI never compare
 * numbers such as 4404 themselves.
 *
 * A stop code is a close code from the server (4401, 4403, 4426), the HTTP status of a refused
 * upgrade (401, 403, 426), or one the client gives itself when a subscription is refused inside a
 * live socket (`error forbidden` → 4403, `error not-found` → 4404: the server has no such space).
 */
import { CloseCode } from './messages';

/** The code a client stops with when the server answers a subscription `not-found`. */
export const UNKNOWN_SPACE_CODE = 4404;

export type StopReason = 'unauthorized' | 'forbidden' | 'unknown-space' | 'unsupported-version';

const REASONS: ReadonlyMap<number, StopReason> = new Map<number, StopReason>([
  [CloseCode.unauthorized, 'unauthorized'],
  [401, 'unauthorized'],
  [CloseCode.forbidden, 'forbidden'],
  [403, 'forbidden'],
  [UNKNOWN_SPACE_CODE, 'unknown-space'],
  [CloseCode.unsupportedVersion, 'unsupported-version'],
  [426, 'unsupported-version'],
]);

/** The reason of a stop code; undefined for a code that is not a stop (or none). */
export function stopReasonOf(code: number | undefined): StopReason | undefined {
  return code === undefined ? undefined : REASONS.get(code);
}

/** The stop code a subscription refusal (`error` with this code, no ref) stops with. */
export function stopCodeOfRefusal(code: 'forbidden' | 'not-found'): number {
  return code === 'forbidden' ? CloseCode.forbidden : UNKNOWN_SPACE_CODE;
}

/** The auth failures among the reasons: a new token (sign in) may fix them. */
export function isAuthStop(r: StopReason | undefined): r is 'unauthorized' | 'forbidden' {
  return r === 'unauthorized' || r === 'forbidden';
}
