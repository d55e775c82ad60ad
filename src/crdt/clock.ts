/**
 * The bounded Lamport clock (docs/ARCHITECTURE.md, "Counters and secret times").
 *
 * How far above a tree's clock a counter may be for the clock to follow it: 1,000,000. A replica's
 * clock is the largest counter it has followed, and a counter is made by a replica whose clock
 * was one below it, so in a tree's op set, taken in counter order, each counter is at most one
 * above one already there. Only ops one has not received yet make a larger jump: a million of
 * them is a very long offline session. An op that jumps further keeps its place in the tree
 * (last-writer-wins still orders it by id) but does not move the clock, so the tree's own ops
 * stay far below 2^53-1: climbing there one step at a time takes 9 billion ops. The server admits
 * no larger jump either (its default `maxCounterGap`, src/server/admission.ts), and it computes a
 * tree's clock with this same rule, so what one replica's clock follows, the server's does too.
 */
export const MAX_CLOCK_STEP = 1_000_000;

/** The clock after `counter` arrives: `clock`, or `counter` when it is above and within the step. */
export function followCounter(clock: number, counter: number): number {
  return counter > clock && counter - clock <= MAX_CLOCK_STEP ? counter : clock;
}

/** The clock a replica reaches from these counters taken in increasing order. Sorts `counters`. */
export function clockOfCounters(counters: number[]): number {
  counters.sort((a, b) => a - b);
  let clock = 0;
  for (const c of counters) clock = followCounter(clock, c);
  return clock;
}
