/**
 * CatchUpCache: encoded catch-up frames, shared by every socket that needs them.
 *
 * Catch-up of a space is sent as `ops` frames, each covering the stored batches (start, end] of
 * one tree. A frame is a pure function of the space and its start seq (see spaceHost.ts for the
 * rule that cuts frames), so subscribers at the same position need the same bytes: the frame is
 * encoded once into a Buffer and that Buffer object is handed to every socket. `ws` sends an
 * unmasked Buffer without copying it (its sender writes the header and the caller's Buffer), and
 * the socket's write queue references it: a thousand stalled readers of one space hold one copy
 * of its frames, not a thousand (a string would be copied into native memory per socket when
 * its write is queued).
 *
 * Server-wide, bounded by bytes, least recently used out first. An evicted Buffer stays alive
 * while sockets still reference it; only new readers at that position build it again.
 */

export interface CachedFrame {
  readonly frame: Buffer;
  /** Seq of the last batch in the frame: the next frame starts there. */
  readonly end: number;
  readonly nOps: number;
}

export interface CatchUpCacheStats {
  readonly bytes: number;
  readonly frames: number;
  readonly hits: number;
  readonly misses: number;
}

export class CatchUpCache {
  private readonly frames = new Map<string, CachedFrame>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;

  constructor(private readonly maxBytes: number) {}

  private static key(spaceId: string, start: number): string {
    return `${spaceId}:${start}`;
  }

  /** The frame of `spaceId` that starts after `start`, if cached (counts a hit or a miss). */
  get(spaceId: string, start: number): CachedFrame | undefined {
    const k = CatchUpCache.key(spaceId, start);
    const f = this.frames.get(k);
    if (!f) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Most recently used last: Map iteration order is the eviction order.
    this.frames.delete(k);
    this.frames.set(k, f);
    return f;
  }

  /**
   * Keeps a frame, evicting the least recently used ones to make room. Big frames (a single
   * batch of up to 8 MiB) are kept too: they are the ones that must not be built per socket.
   * Only a frame larger than the whole budget is not kept.
   */
  put(spaceId: string, start: number, f: CachedFrame): void {
    if (f.frame.length > this.maxBytes) return;
    const k = CatchUpCache.key(spaceId, start);
    const old = this.frames.get(k);
    if (old) {
      this.bytes -= old.frame.length;
      this.frames.delete(k);
    }
    this.frames.set(k, f);
    this.bytes += f.frame.length;
    for (const [key, v] of this.frames) {
      if (this.bytes <= this.maxBytes) break;
      this.frames.delete(key);
      this.bytes -= v.frame.length;
    }
  }

  /** Forgets a space's frames (it was unloaded). */
  dropSpace(spaceId: string): void {
    const prefix = `${spaceId}:`;
    for (const [k, v] of this.frames) {
      if (!k.startsWith(prefix)) continue;
      this.frames.delete(k);
      this.bytes -= v.frame.length;
    }
  }

  get stats(): CatchUpCacheStats {
    return { bytes: this.bytes, frames: this.frames.size, hits: this.hits, misses: this.misses };
  }
}
