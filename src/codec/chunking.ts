/**
 * When stored chunks of ops (file: per tree; server: per space) are merged. Every save appends a
 * chunk. A chunk's level is set by its size (below 64 ops: 0, below 2048: 1, else sealed); when
 * the newest chunks form a run of RUN[level] chunks of one level, the run is merged into one
 * chunk of a higher level. Sealed chunks are never merged again. So an op is re-encoded about
 * twice (once per level), a merge costs at most a few thousand ops, and a tree or space of n ops
 * keeps about n / 2048 + 16 + 32 chunks.
 */

/** A chunk with fewer ops than LEVEL_OPS[i] (and not fewer than LEVEL_OPS[i - 1]) is of level i. */
const LEVEL_OPS = [64, 2048] as const;
/** How many chunks of a level in a row are merged. */
const RUN = [32, 16] as const;

/** The most chunks a merge decision looks at. */
export const TAIL_CHUNKS = 32;

function level(n: number): number {
  let l = 0;
  while (l < LEVEL_OPS.length && n >= LEVEL_OPS[l]) l++;
  return l;
}

/** How many of the newest chunks to merge now (0: none), given their op counts, newest first. */
export function chunksToMerge(newestFirst: readonly number[]): number {
  if (newestFirst.length === 0) return 0;
  const l = level(newestFirst[0]);
  if (l >= LEVEL_OPS.length) return 0;
  let n = 0;
  while (n < newestFirst.length && level(newestFirst[n]) === l) n++;
  return n >= RUN[l] ? n : 0;
}
