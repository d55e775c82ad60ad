/**
 * Encryption of secret values at rest: AES-256-GCM with the caller's 32-byte key, a random
 * 12-byte IV per record, and additional authenticated data that binds the ciphertext to the
 * space, the secret's name, its time and its writer, so a ciphertext cannot be moved to another
 * key, space or record without failing authentication. Tombstones carry no ciphertext.
 *
 * `keyCheck` is an HMAC of a constant under the key, stored in the file's meta once the first
 * secret is written, so a wrong key is reported as such instead of as a damaged record. It
 * reveals nothing about the key (HMAC-SHA-256 is a PRF).
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SecretRecord } from '../contract';

export const SECRET_KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A secret as stored: ciphertext ‖ tag in `data`; a tombstone has neither `iv` nor `data`. */
export interface SecretRow {
  readonly key: string;
  readonly time: number;
  readonly peerId: string;
  readonly iv: Uint8Array | null;
  readonly data: Uint8Array | null;
}

function aad(spaceId: string, r: { key: string; time: number; peerId: string }): Buffer {
  return Buffer.from(`spaces-vscode secret v1\0${spaceId}\0${r.key}\0${r.time}\0${r.peerId}`, 'utf8');
}

export function keyCheck(key: Uint8Array, spaceId: string): string {
  return createHmac('sha256', key).update(`spaces-vscode key check v1\0${spaceId}`, 'utf8').digest('base64').slice(0, 24);
}

export function keyCheckMatches(key: Uint8Array, spaceId: string, stored: string): boolean {
  const mine = Buffer.from(keyCheck(key, spaceId));
  const theirs = Buffer.from(stored);
  return mine.length === theirs.length && timingSafeEqual(mine, theirs);
}

export function encryptSecret(key: Uint8Array, spaceId: string, r: SecretRecord): SecretRow {
  if (r.value === null) return { key: r.key, time: r.time, peerId: r.peerId, iv: null, data: null };
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(spaceId, r));
  const data = Buffer.concat([cipher.update(r.value, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return { key: r.key, time: r.time, peerId: r.peerId, iv, data };
}

/** Decrypts one row; throws a plain Error when authentication fails (wrong key or tampering). */
export function decryptSecret(key: Uint8Array, spaceId: string, row: SecretRow): SecretRecord {
  if (row.iv === null || row.data === null) return { key: row.key, value: null, time: row.time, peerId: row.peerId };
  const decipher = createDecipheriv('aes-256-gcm', key, row.iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad(spaceId, row));
  decipher.setAuthTag(row.data.subarray(row.data.length - TAG_BYTES));
  const plain = Buffer.concat([decipher.update(row.data.subarray(0, row.data.length - TAG_BYTES)), decipher.final()]);
  return { key: row.key, value: plain.toString('utf8'), time: row.time, peerId: row.peerId };
}

/** Describes what is wrong with the stored form of a row, or undefined. */
export function checkSecretRowShape(row: SecretRow): string | undefined {
  if ((row.iv === null) !== (row.data === null)) return 'iv and ciphertext must both be present or both absent';
  if (row.iv !== null && row.iv.length !== IV_BYTES) return `iv must be ${IV_BYTES} bytes`;
  if (row.data !== null && row.data.length < TAG_BYTES) return 'ciphertext is shorter than its tag';
  return undefined;
}

/** Same (time, peer) and the same stored bytes: the rows are one record. */
export function sameSecretRow(a: SecretRow, b: SecretRow): boolean {
  return a.time === b.time && a.peerId === b.peerId && bytesEqual(a.iv, b.iv) && bytesEqual(a.data, b.data);
}

function bytesEqual(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
