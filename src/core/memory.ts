import * as v8 from 'node:v8';
import * as vm from 'node:vm';

/**
 * Keeps memory flat while streaming. Rows cross from SQLite in large Buffers whose memory lives outside
 * the V8 heap; V8 collects them only when its own heap grows, so tens of MiB of spent buffers pile up
 * between collections (measured: 35 MiB of dead ArrayBuffers at the peak of a 1M-row import). A young-
 * generation collection every few MiB of data frees them for about a millisecond each.
 */
let collect: ((opts?: { type: 'minor' | 'major'; execution: 'sync' }) => void) | null | undefined;

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

/** Counts bytes handled and runs a minor GC after every `every` bytes. */
export class GarbageGate {
  #since = 0;

  constructor(readonly every = 2 << 20) {}

  add(bytes: number): void {
    this.#since += bytes;
    if (this.#since < this.every) return;
    this.#since = 0;
    const gc = collector();
    if (gc) gc({ type: 'minor', execution: 'sync' });
  }
}
