/** What the main thread and the read worker of a parallel export share (see parallel-reader.ts). */

/** Slots of the shared Int32Array. */
export const S = {
  /** 0 while the worker opens its transaction, 1 once it has, 2 if it could not. */
  BEGUN: 0,
  /** Segments the worker has posted, over the worker's life. */
  PRODUCED: 1,
  /** Segments the main thread has taken. */
  CONSUMED: 2,
  /** Set by the main thread: stop after the current segment. */
  ABORT: 3,
} as const;
export const STATE_SLOTS = 4;

/** How many finished segments the worker may hold before the main thread takes them. */
export const AHEAD = 3;

export type ReaderJob =
  | { type: 'begin' }
  | { type: 'segments'; encoding: string; keys: string | null; batchRows: number; batchBytes: number; segments: string[] }
  | { type: 'close' };

/** One segment's batches, or why it failed. */
export type SegmentResult = { batches: { data: Uint8Array; rows: number }[] } | { error: string };
