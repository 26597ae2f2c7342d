import * as v8 from 'node:v8';
import * as vm from 'node:vm';

/**
 * Keeps memory flat while streaming. Rows cross from SQLite in large Buffers whose memory lives outside
 * the V8 heap; V8 collects them only when its own heap grows, so tens of MiB of spent buffers pile up
 * between collections (measured: 35 MiB of dead ArrayBuffers at the peak of a 1M-row import). A young-
 * generation collection every few MiB of data frees them for about a millisecond each.
 */
let collect: ((opts?: { type: 'minor' | 'major'; execution: 'sync' | 'async' }) => void) | null | undefined;

function collector(): typeof collect {
  if (collect !== undefined) return collect;
  try {
    v8.setFlagsFromString('--expose-gc');
    collect = vm.runInNewContext('gc') as typeof collect;
  } catch {
    collect = null;
  }
  return collect;
}

/**
 * Counts bytes handled and runs a minor GC after every `every` bytes and, when `fullEvery` is given, a
 * full one (see {@link collectAll}) after every `fullEvery` bytes: buffers that outlive a few minor
 * collections (a pack held while its rows load) end up in the old generation, and V8 lets its heap grow
 * for a long time before it collects and shrinks it on its own. Full collections cost a few
 * milliseconds, and can cost optimized code, so only callers that measured a gain use them.
 */
export class GarbageGate {
  #since = 0;
  #sinceFull = 0;

  constructor(
    readonly every = 2 << 20,
    readonly fullEvery = Number.POSITIVE_INFINITY,
  ) {}

  add(bytes: number): void {
    this.#since += bytes;
    if (this.#since < this.every) return;
    this.#sinceFull += this.#since;
    this.#since = 0;
    const gc = collector();
    if (!gc) return;
    if (this.#sinceFull >= this.fullEvery) {
      this.#sinceFull = 0;
      gc();
    } else gc({ type: 'minor', execution: 'sync' });
  }
}

/**
 * Runs a full collection now, for the end of a phase that held large buffers for a long time (they are
 * in the old generation, which minor collections do not touch), before a phase that needs memory of its
 * own. A few milliseconds: once per phase, or per many megabytes, not per batch.
 */
export function collectAll(): void {
  const gc = collector();
  // Without options this is a forced full collection that also shrinks the heap and frees the dead
  // buffers' memory before it returns ({ type: 'major' } does neither: measured, it keeps RSS as is).
  if (gc) gc();
}

/**
 * Starts a full collection that runs beside the caller (concurrent marking) instead of stopping it:
 * for a pipeline whose other threads wait whenever this one stops (a backup's reader, hasher and
 * packer; measured there: a {@link collectAll} stalls the main thread about 20 ms, and the readers
 * with it). Frees old buffers a little later than collectAll, and does not shrink the heap.
 */
export function collectSoon(): void {
  const gc = collector();
  if (gc) gc({ type: 'major', execution: 'async' });
}
