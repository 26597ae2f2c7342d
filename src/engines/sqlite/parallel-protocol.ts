/** What the main thread and the read worker of a parallel export share (see parallel-reader.ts). */

/** Slots of the shared Int32Array. */
export const S = {
  /** 0 while the worker opens its transaction, 1 once it has, 2 if it could not. */
  BEGUN: 0,
  /** Segments the worker has posted, over the worker's life. */
  PRODUCED: 1,
  /** Segments the main thread has taken from the worker. */
  CONSUMED: 2,
  /** Set by the main thread: stop after the current segment. */
  ABORT: 3,
  /**
   * The next unclaimed segment. Segments are numbered across tables; each thread claims the next one
   * with compare-and-swap, so whichever is free does it and neither waits for a plan.
   */
  NEXT: 4,
} as const;
export const STATE_SLOTS = 5;

/** How many finished segments the worker may hold before the main thread takes them. */
export const AHEAD = 2;

export type ReaderJob =
  | { type: 'begin' }
  /** A table's segments, numbered from `first`. */
  | { type: 'segments'; encoding: string; keys: string | null; batchRows: number; batchBytes: number; first: number; segments: string[] }
  | { type: 'close' };

/** One segment's batches, or why it failed. */
export type SegmentResult = { index: number } & ({ batches: { data: Uint8Array; rows: number }[] } | { error: string });

/** Claims segment `index` if nobody has: true when the caller now owns it. */
export function claim(state: Int32Array, index: number): boolean {
  return Atomics.compareExchange(state, S.NEXT, index, index + 1) === index;
}
