/**
 * The row chunker (`row-key-v1`): cuts a table's rows, in primary-key order, into chunks at row
 * boundaries. Whether a row may end a chunk depends only on that row: a hash of the row's identity
 * (its leading primary-key values, or the whole row when the key is not leading) compared with a
 * threshold proportional to the row's size. A chunk ends at the first such row once it holds at least
 * `minBytes` (so sizes are regular: a random row's chunk is not unusually large), or when it reaches
 * `maxBytes`. An update leaves every boundary where it was (unless it moves a chunk across minBytes),
 * and an insert or delete changes only the chunks around it.
 */
import type { RowBatch } from '../core/encoding.js';
import type { TableSchema } from '../core/schema.js';
import type { ChunkerSettings } from './config.js';

/** A run of whole rows: each row's `ndjson` encoding followed by `\n` (may be a view into a batch). */
export interface Chunk {
  data: Buffer;
  rows: number;
}

const NEWLINE = Buffer.from('\n');
const TWO_32 = 2 ** 32;

/**
 * How many leading values of a row identify it: 1 for a rowid-aliased table (and an R*Tree), the key's length when the
 * primary-key columns are the table's first columns, else 0 (the whole row is hashed).
 */
export function identityValues(table: TableSchema): number {
  // An R*Tree's first column is its rowid.
  if (table.rowidAlias || table.virtual?.module === 'rtree' || table.virtual?.module === 'rtree_i32') return 1;
  const pk = table.primaryKey;
  if (pk.length === 0 || pk.some((name, i) => table.columns[i]?.name !== name)) return 0;
  return pk.length;
}

/**
 * Cuts the rows of one table into chunks. Feed it the engine's `ndjson` batches in order with
 * {@link RowChunker.push}, then call {@link RowChunker.finish} for the last partial chunk.
 *
 * @example
 * ```ts
 * const chunker = new RowChunker(config.chunker, identityValues(table));
 * for (const batch of source.batches(table, 'ndjson')) for (const chunk of chunker.push(batch)) store(chunk);
 * const last = chunker.finish();
 * ```
 */
export class RowChunker {
  readonly #scale: number;
  readonly #minBytes: number;
  readonly #maxBytes: number;
  readonly #keyValues: number;
  #pieces: Buffer[] = [];
  /** Batches of a row that goes on in the next batch (RowBatch.partial). */
  #partial: Buffer[] = [];
  #bytes = 0;
  #rows = 0;

  constructor(settings: ChunkerSettings, keyValues: number) {
    // Past minBytes, each byte of a row ends the chunk with probability 1 / (target - min): the mean stays target.
    this.#scale = TWO_32 / Math.max(1, settings.targetBytes - settings.minBytes);
    this.#minBytes = settings.minBytes;
    this.#maxBytes = settings.maxBytes;
    this.#keyValues = keyValues;
  }

  /** Takes one batch (row encodings joined by `\n`) and returns the chunks it completed. */
  push(batch: RowBatch): Chunk[] {
    const out: Chunk[] = [];
    if (batch.partial || this.#partial.length > 0) {
      // a row in pieces (a large value): whole rows are cut, so the pieces are joined first
      this.#partial.push(batch.data);
      if (batch.partial) return out;
      batch = { data: Buffer.concat(this.#partial), rows: batch.rows };
      this.#partial = [];
    }
    if (batch.rows === 0) return out;
    const data = batch.data;
    let segment = 0;
    let start = 0;
    while (start <= data.length) {
      const nl = data.indexOf(10, start);
      const end = nl < 0 ? data.length : nl;
      const size = end - start + 1;
      this.#bytes += size;
      this.#rows += 1;
      const keyEnd = this.#keyValues > 0 ? keyEndOf(data, start, end, this.#keyValues) : end;
      if (this.#bytes >= this.#maxBytes || (this.#bytes >= this.#minBytes && hashRange(data, start, keyEnd) < size * this.#scale)) {
        if (nl >= 0 && this.#pieces.length === 0) {
          out.push({ data: data.subarray(segment, nl + 1), rows: this.#rows }); // within the batch: no copy
          this.#bytes = 0;
          this.#rows = 0;
        } else {
          if (nl < 0) this.#pieces.push(data.subarray(segment), NEWLINE);
          else this.#pieces.push(data.subarray(segment, nl + 1));
          out.push(this.#take());
        }
        segment = end + 1;
      }
      if (nl < 0) break;
      start = nl + 1;
    }
    if (segment < data.length) this.#pieces.push(data.subarray(segment), NEWLINE);
    return out;
  }

  /** Returns the last, partial chunk, if any rows are left. */
  finish(): Chunk | undefined {
    return this.#rows > 0 ? this.#take() : undefined;
  }

  #take(): Chunk {
    const chunk = { data: Buffer.concat(this.#pieces, this.#bytes), rows: this.#rows };
    this.#pieces = [];
    this.#bytes = 0;
    this.#rows = 0;
    return chunk;
  }
}

/** The offset just past the `count`-th top-level value of the JSON array at data[start, end). */
export function keyEndOf(data: Buffer, start: number, end: number, count: number): number {
  let seen = 0;
  let depth = 0;
  let inString = false;
  for (let i = start + 1; i < end; i++) {
    const c = data[i];
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) depth++;
    else if (c === 93 || c === 125) {
      if (depth === 0) return i;
      depth--;
    } else if (c === 44 && depth === 0 && ++seen === count) return i;
  }
  return end;
}

/** FNV-1a over data[start, end) with a murmur3 finaliser: a well-mixed unsigned 32-bit hash. */
export function hashRange(data: Buffer, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ data[i], 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
