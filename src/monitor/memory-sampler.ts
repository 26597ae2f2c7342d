/**
 * Samples the process's memory while operations are open: a timer (unref'd, so it never keeps the
 * process alive) feeds every open tracker, and callers sample on demand at progress events.
 */

/** Peak memory seen by one operation. */
export class MemoryPeaks {
  peakRss = 0;
  peakHeapUsed = 0;
  samples = 0;

  /** Takes a sample into account and returns it. */
  observe(sample: MemorySample): MemorySample {
    this.peakRss = Math.max(this.peakRss, sample.rss);
    this.peakHeapUsed = Math.max(this.peakHeapUsed, sample.heapUsed);
    this.samples++;
    return sample;
  }
}

export interface MemorySample {
  rss: number;
  heapUsed: number;
}

/** Reads the process's resident set size and V8 heap use now. */
export function sampleMemory(): MemorySample {
  const usage = process.memoryUsage();
  return { rss: usage.rss, heapUsed: usage.heapUsed };
}

/** Samples closer together than this (ms) are the same sample. */
const MIN_GAP_MS = 5;

/** Runs one interval timer while at least one {@link MemoryPeaks} is tracked. */
export class MemorySampler {
  readonly intervalMs: number;
  readonly #tracked = new Set<MemoryPeaks>();
  #last: { at: number; sample: MemorySample } | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(intervalMs: number) {
    if (!(Number.isFinite(intervalMs) && intervalMs > 0)) {
      throw new TypeError(`MemorySampler: intervalMs must be a positive number, got ${intervalMs}`);
    }
    this.intervalMs = intervalMs;
  }

  /** Starts tracking peaks for a new operation, with a first sample taken now. */
  track(): MemoryPeaks {
    const peaks = new MemoryPeaks();
    peaks.observe(sampleMemory());
    this.#tracked.add(peaks);
    if (!this.#timer) {
      this.#timer = setInterval(() => this.sampleNow(), this.intervalMs);
      this.#timer.unref();
    }
    return peaks;
  }

  /** Stops tracking; the timer stops with the last tracked operation. */
  untrack(peaks: MemoryPeaks): void {
    this.#tracked.delete(peaks);
    if (this.#tracked.size === 0) this.stop();
  }

  /**
   * Takes one sample and gives it to every tracked operation; within {@link MIN_GAP_MS} of the last
   * one, returns that one instead (progress events come up to thousands of times a second, and each
   * sample walks V8's heap spaces: 12-20 ms of a 1M-row export or backup's main thread, CPU profile).
   */
  sampleNow(): MemorySample {
    const now = performance.now();
    if (this.#last && now - this.#last.at < MIN_GAP_MS) return this.#last.sample;
    const sample = sampleMemory();
    this.#last = { at: now, sample };
    for (const peaks of this.#tracked) peaks.observe(sample);
    return sample;
  }

  /** Stops the timer (tracking continues only through {@link sampleNow}). */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
