/**
 * Peer ids: one per running SpaceManager (two windows or two CLI processes never share one).
 *
 * A fresh random id per instance means an op id can never be reused, even when an instance
 * crashed before its counter reached disk: a new instance never writes under an old id.
 * RepTree's Lamport clock then starts above every counter it has loaded.
 * Ids use only [0-9a-z] so that RepTree's `localeCompare` order equals code-point order.
 */
import { randomBytes } from 'node:crypto';
import { isPeerId } from './ids';

/** The peer id rule (src/spaces/ids.ts). */
export const isValidPeerId = isPeerId;

/** 8 random bytes as 16 lowercase hex chars (64 bits: collisions need billions of instances). */
export function newPeerId(): string {
  return randomBytes(8).toString('hex');
}
