/**
 * The chunker of PostgreSQL's `COPY … TO STDOUT` text stream: the `row-key-v1` rule of
 * {@link RowChunker}, over rows of the COPY text format instead of ndjson. A raw `\n` byte always ends
 * a row and a raw `\t` always ends a value (COPY escapes both inside values as `\n` and `\t`), so the
 * stream is cut at row boundaries without decoding it, and a row's identity is its bytes up to the
 * tab that ends its last leading primary-key value. The chunks' bytes back to back are the stream
 * itself: the table digest is the SHA-256 of the whole COPY output.
 */
import { hashRange } from './chunker.js';
import type { ChunkerSettings } from './config.js';
import type { ChunkBatch } from './native-chunks.js';

const TWO_32 = 2 ** 32;
const NO_IDS = Buffer.alloc(0);
/** Bytes of a scratch buffer: a batch of COPY output (see postgres-backup-source.ts) and the rest of a chunk. */
const SCRATCH_BYTES = 512 << 10;

/**
 * Cuts a table's COPY text stream, fed in pieces of any size, into batches of whole chunks (the form
 * backup stores: {@link ChunkBatch} with the chunks' lengths and row counts, ids left to the caller).
 *
 * @example
 * ```ts
 * const chunker = new CopyChunker(config.chunker, identityValues(table));
 * for await (const piece of copyStream) { const batch = chunker.push(piece); if (batch) store(batch); }
 * const last = chunker.finish();
 * ```
 */
export class CopyChunker {
  readonly #scale: number;
  readonly #minBytes: number;
  readonly #maxBytes: number;
  readonly #keyValues: number;
  /** Bytes after the last cut: whole rows of the current chunk, then the start of a row not yet ended. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Bytes of `#pending` that are whole rows, already weighed for a cut. */
  #scanned = 0;
  #chunkBytes = 0;
  #chunkRows = 0;
  /** Two buffers batches are gathered in, used in turn (see {@link pushParts}). */
  readonly #scratch: Array<Buffer | undefined> = [undefined, undefined];
  #turn = 0;

  /** `keyValues`: how many leading values identify a row (0: the whole row). */
  constructor(settings: ChunkerSettings, keyValues: number) {
    this.#scale = TWO_32 / Math.max(1, settings.targetBytes - settings.minBytes);
    this.#minBytes = settings.minBytes;
    this.#maxBytes = settings.maxBytes;
    this.#keyValues = keyValues;
  }

  /** Takes the next piece of the stream; returns the chunks it completed, if any. */
  push(data: Buffer): ChunkBatch | undefined {
    return this.pushParts([data], data.length);
  }

  /**
   * Takes the next pieces of the stream (`size` bytes in all); returns the chunks they completed, if
   * any. The batch's `data` lies in one of two scratch buffers that this chunker reuses: it is valid
   * until the next call but one, so that a large table does not allocate (and the collector free) a
   * new buffer of a batch's size each time.
   */
  pushParts(parts: Buffer[], size: number): ChunkBatch | undefined {
    if (size === 0) return undefined;
    if (!parts.some((p) => p.indexOf(10) >= 0)) {
      // No row ends here (a large value): keep the pieces, join only once its row ends (no quadratic copying).
      this.#pending.push(...parts); // the caller's, not reused by it
      this.#pendingBytes += size;
      return undefined;
    }
    const buf = this.#gather(parts, size);
    const table: number[] = [];
    let rows = 0;
    let cut = 0;
    let start = this.#scanned;
    for (let nl = buf.indexOf(10, start); nl >= 0; nl = buf.indexOf(10, start)) {
      const rowBytes = nl + 1 - start;
      this.#chunkBytes += rowBytes;
      this.#chunkRows++;
      if (this.#chunkBytes >= this.#maxBytes || (this.#chunkBytes >= this.#minBytes && hashRange(buf, start, this.#keyEnd(buf, start, nl)) < rowBytes * this.#scale)) {
        table.push(this.#chunkBytes, this.#chunkRows);
        rows += this.#chunkRows;
        cut = nl + 1;
        this.#chunkBytes = 0;
        this.#chunkRows = 0;
      }
      start = nl + 1;
    }
    const rest = buf.subarray(cut);
    this.#pending = rest.length > 0 ? [rest] : [];
    this.#pendingBytes = rest.length;
    this.#scanned = start - cut;
    if (table.length === 0) return undefined;
    return { data: buf.subarray(0, cut), rows, chunks: lengths(table), ids: NO_IDS, digest: null };
  }

  /** The pending bytes then `parts`, back to back in the scratch buffer not used by the last call. */
  #gather(parts: Buffer[], size: number): Buffer {
    const total = this.#pendingBytes + size;
    this.#turn ^= 1;
    let scratch = this.#scratch[this.#turn];
    if (!scratch || scratch.length < total) {
      // Grown to the largest batch seen (a large row's), shrunk back once batches are small again.
      scratch = Buffer.allocUnsafeSlow(Math.max(total, SCRATCH_BYTES));
      this.#scratch[this.#turn] = scratch;
    } else if (scratch.length > 4 * SCRATCH_BYTES && total <= SCRATCH_BYTES) {
      scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
      this.#scratch[this.#turn] = scratch;
    }
    let at = 0;
    for (const p of this.#pending) at += p.copy(scratch, at);
    for (const p of parts) at += p.copy(scratch, at);
    return scratch.subarray(0, at);
  }

  /** The last, partial chunk; throws when the stream ended inside a row (a COPY cut short). */
  finish(): ChunkBatch | undefined {
    if (this.#pendingBytes !== this.#scanned) throw new Error('postgres: the COPY stream ended inside a row');
    if (this.#pendingBytes === 0) return undefined;
    const data = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
    const batch = { data, rows: this.#chunkRows, chunks: lengths([this.#chunkBytes, this.#chunkRows]), ids: NO_IDS, digest: null };
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#scanned = 0;
    this.#chunkBytes = 0;
    this.#chunkRows = 0;
    return batch;
  }

  /** The end of the row's identity: the tab after its `keyValues`-th value, or the row's end. */
  #keyEnd(buf: Buffer, start: number, end: number): number {
    if (this.#keyValues === 0) return end;
    let at = start - 1;
    for (let i = 0; i < this.#keyValues; i++) {
      at = buf.indexOf(9, at + 1);
      if (at < 0 || at > end) return end;
    }
    return at;
  }
}

/** Per chunk: u32 length, u32 rows, little-endian (as {@link ChunkBatch} has them). */
function lengths(values: number[]): Buffer {
  const out = Buffer.allocUnsafe(4 * values.length);
  for (let i = 0; i < values.length; i++) out.writeUInt32LE(values[i]!, 4 * i);
  return out;
}
