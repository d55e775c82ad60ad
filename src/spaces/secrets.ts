/**
 * Secrets merge: last-writer-wins per key by (time, peerId), deletes kept as tombstones so a
 * delete on one layer is not undone by an older value on another.
 *
 * A record's time is its writer's clock, so a hostile or broken writer can date a record far in
 * the future; a record at 2^53-1 could never be beaten (the next time, 2^53, is not a safe
 * integer). Servers refuse times beyond a skew window (docs/protocol.md, `out-of-range`), and for
 * records that got in anyway (an older server, a hand-edited file) a record dated after
 * `SECRET_LIMITS.maxTime` is inert: it still loads, but never wins a merge, so the key keeps the
 * value of the best record within the bound and its owner can set or delete it again.
 */
import type { SecretRecord } from '../persistence/contract';
import { isValidPeerId } from './peerId';

export const SECRET_LIMITS = {
  maxKeyLength: 256,
  maxValueBytes: 64 * 1024,
  /**
   * Records dated after this (ms since the epoch, 2^52: about the year 144,000) never win. Half of
   * the safe-integer range, so writes above any winning record always have room.
   */
  maxTime: 2 ** 52,
} as const;
const SECRET_KEY_RE = /^[A-Za-z0-9_.:/@-]+$/;

/** A record dated after `SECRET_LIMITS.maxTime`: kept where it is stored, but it never wins. */
export function isInertSecretTime(time: number): boolean {
  return time > SECRET_LIMITS.maxTime;
}

/** True when `a` wins over `b` (b may be missing). An inert record never wins and is always beaten. */
export function secretWins(a: SecretRecord, b: SecretRecord | undefined): boolean {
  if (isInertSecretTime(a.time)) return false;
  if (!b || isInertSecretTime(b.time)) return true;
  if (a.time !== b.time) return a.time > b.time;
  if (a.peerId !== b.peerId) return a.peerId > b.peerId;
  // Same writer, same time: prefer a delete, then the larger value, so every replica agrees.
  if (a.value === b.value) return false;
  if (a.value === null) return true;
  if (b.value === null) return false;
  return a.value > b.value;
}

/** Merges record lists into one record per key (the winners). */
export function mergeSecrets(...lists: ReadonlyArray<readonly SecretRecord[]>): Map<string, SecretRecord> {
  const out = new Map<string, SecretRecord>();
  for (const list of lists) {
    for (const r of list) {
      if (secretWins(r, out.get(r.key))) out.set(r.key, r);
    }
  }
  return out;
}

export function isValidSecretKey(key: unknown): key is string {
  return typeof key === 'string' && key.length > 0 && key.length <= SECRET_LIMITS.maxKeyLength && SECRET_KEY_RE.test(key);
}

/** Describes what is wrong with a record from an untrusted source, or undefined. */
export function checkSecretRecord(r: unknown): string | undefined {
  if (typeof r !== 'object' || r === null) return 'not an object';
  const o = r as Record<string, unknown>;
  if (!isValidSecretKey(o.key)) return `bad secret name ${JSON.stringify(o.key)}`;
  if (o.value !== null && typeof o.value !== 'string') return 'secret value must be a string or null';
  if (typeof o.value === 'string' && Buffer.byteLength(o.value) > SECRET_LIMITS.maxValueBytes) return 'secret value too large';
  if (typeof o.time !== 'number' || !Number.isSafeInteger(o.time) || o.time < 0) return 'bad secret time';
  if (!isValidPeerId(o.peerId)) return 'bad secret peer id';
  return undefined;
}

export function validateSecretRecords(records: readonly unknown[], source: string): asserts records is SecretRecord[] {
  if (!Array.isArray(records)) throw new Error(`${source}: secrets must be an array`);
  records.forEach((r, i) => {
    const p = checkSecretRecord(r);
    if (p) throw new Error(`${source}: invalid secret record #${i}: ${p}`);
  });
}
