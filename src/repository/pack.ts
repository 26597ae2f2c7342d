/**
 * Packs: many small chunks stored as one compressed object, so that chunks can be small (fine-grained
 * deduplication) while files stay few and compression sees a whole run of rows. The body is the
 * chunks' bytes back to back, then `count` times `(u32 length, u32 rows)`, then `u32 count` (a trailer,
 * so that a pack is written, and compressed, as its chunks arrive).
 */
import { createHash } from 'node:crypto';
import { IntegrityError } from '../core/errors.js';
import { CODEC_IDS, decompressPieces, decompressPooled, ZSTD_DEFAULT_LEVEL, zstdBinding, type BufferPool, type CompressionCodec, type ZstdBinding } from './compression.js';
import { checkObject, objectPrefix, sealObject, sha256, zstdClaimedSize } from './object-file.js';

/**
 * The format's largest chunk: a chunk ends at the chunker's `maxBytes` unless one row alone is larger,
 * and the largest row is a value of SQLite's default SQLITE_MAX_LENGTH (10⁹ bytes) as a hex BLOB, about
 * 2·10⁹ bytes. A pack entry claiming more (its length field allows 4 GiB) is damaged.
 */
export const MAX_CHUNK_BYTES = 2 ** 31;
/** The most entries a pack can hold: its count field is 32 bits. */
export const MAX_PACK_ENTRIES = 2 ** 32 - 1;
/**
 * The bytes per entry the size bounds below assume: an ndjson row is at least `[]` and its `\n`. (A
 * PostgreSQL snapshot's COPY text row may be shorter, `\n` or `1\n`, and an entry is taken down to a
 * byte per row; only a pack of more than packBytes / 3 entries, which needs millions of one-row
 * tables, would exceed these bounds.)
 */
const MIN_ROW_BYTES = 3;

/**
 * The largest pack body a reader accepts for a repository sealing packs at `packBytes`: the chunks that
 * reached it plus one more chunk as large as the format allows, and their entry table.
 */
export function maxPackBody(packBytes: number): number {
  // Entries before the last one add up to less than packBytes, each at least MIN_ROW_BYTES long.
  return packBytes + MAX_CHUNK_BYTES + 8 * (Math.ceil(packBytes / MIN_ROW_BYTES) + 1) + 4;
}

/**
 * Bytes beyond `packBytes` that a pack body decompressed into pooled memory may hold (seldom more: see
 * {@link packBody}). A pack is sealed once a batch has filled it, so it overshoots by up to one batch
 * and its entry table: a PostgreSQL backup's batches are 256 KiB of COPY text, and its 2 MiB packs
 * measured up to 2 MiB + 297 KB (52 of the 1M-row demo's 66 packs above the 128 KiB this was, each
 * then decompressed twice, measured, into a buffer of its own). A SQLite backup's, up to 2 MiB + 85 KB.
 */
const PACK_SLACK = 512 << 10;

/** Bytes of the buffer a pack of a repository of `packBytes` is decompressed into (the pooled size). */
export function packBufferBytes(packBytes: number): number {
  return packBytes + PACK_SLACK;
}
/** The most bytes of a body's end kept while an oversized pack is measured, to check its entry table. */
const MAX_TAIL_BYTES = 16 << 20;

/**
 * Reads a pack's entry table (`table`: the `count` records before the count field) for a body whose
 * chunks take `chunkBytes`: each entry's offset and rows, E_CORRUPT (through `bad`) for an entry a
 * writer could not have made, or lengths that do not add up to `chunkBytes`.
 */
function readEntryTable(table: Buffer, chunkBytes: number, bad: (why: string) => IntegrityError): { offsets: number[]; rows: number[] } {
  const count = table.length / 8;
  const offsets = new Array<number>(count + 1);
  const rows = new Array<number>(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    offsets[i] = at;
    const length = table.readUInt32LE(8 * i);
    const n = table.readUInt32LE(8 * i + 4);
    // Every chunk holds at least one row of at least its newline (a PostgreSQL snapshot's COPY text row
    // of one empty text value is `\n`, of one digit `1\n`; an ndjson row at least `[]\n`), and none is
    // larger than the format allows.
    if (n === 0 || length < n || length > MAX_CHUNK_BYTES) throw bad(`entry ${i} claims ${n} rows in ${length} bytes`);
    at += length;
    rows[i] = n;
  }
  offsets[count] = at;
  if (at !== chunkBytes) throw bad(`entry table says ${at} bytes of chunks, body has ${chunkBytes}`);
  return { offsets, rows };
}

/**
 * The body of a pack, in memory that follows what the body really holds. A pack is sealed once its
 * chunks reach `packBytes`, so nearly every body fits in `packBytes` + PACK_SLACK: it is decompressed
 * there in one call (into pooled memory with a `pool`; the return's `buffer` is what to give back).
 * A larger body (a pack ending in a chunk of huge rows, or a hostile one: 32 KB of zstd expand to
 * 1 GiB, and a frame may claim any size) is first decompressed piece by piece without keeping it, to
 * measure it against {@link maxPackBody} and check the entry table at its end, and only then
 * decompressed again into a buffer of exactly its size. So a body that is not a pack costs a pass over
 * it, never memory; one that is costs its own size once (the old way grew a buffer by doubling and
 * kept each step in the pool: a 32 KB pack took 2 GiB before it was refused).
 */
async function packBody(data: Buffer, codecId: number, what: string, packBytes: number, pool?: BufferPool, lazyAbove = Infinity): Promise<{ body: Buffer; buffer?: Buffer } | { length: number; table: Buffer }> {
  const limit = maxPackBody(packBytes);
  if (codecId === CODEC_IDS.zstd) {
    const claimed = await zstdClaimedSize(data, what);
    if (claimed !== undefined && claimed > limit) throw new IntegrityError('E_CORRUPT', `${what}: claims ${claimed} bytes, more than a pack can hold`);
  }
  const size = packBufferBytes(packBytes);
  const fits = await decompressPooled(data, codecId, what, size, pool);
  if (fits) return fits;
  const { length, table } = await measurePack(decompressPieces(data, codecId, what), what, packBytes, limit);
  // Left compressed: its chunks are decompressed again, in pieces, when they are read (Pack.spanPieces).
  if (length > lazyAbove && table) return { length, table };
  // A little oversized (a last batch of large rows) goes back to the pool; a huge one is let go.
  const pooled = pool !== undefined && length <= 4 * size;
  const buffer = pooled ? pool.take(length) : Buffer.allocUnsafe(length);
  let at = 0;
  try {
    for await (const piece of decompressPieces(data, codecId, what)) {
      // The same bytes decompress the same way: anything else is a broken decompressor, not a pack.
      if (piece.length > length - at) throw new IntegrityError('E_CORRUPT', `${what}: decompressed to more than the ${length} bytes it did the first time`);
      at += piece.copy(buffer, at);
    }
    if (at !== length) throw new IntegrityError('E_CORRUPT', `${what}: decompressed to ${at} bytes, ${length} the first time`);
  } catch (err) {
    if (pooled) pool.give(buffer);
    throw err;
  }
  return { body: buffer.subarray(0, length), ...(pooled ? { buffer } : {}) };
}

/**
 * The length of a pack's body (its decompressed pieces), measured piece by piece while only its end is kept:
 * E_CORRUPT as soon as it exceeds `limit`, or when the entry table at its end is no pack's (checked
 * whole when it fits in the end kept, at most 16 MiB: a repository of the default 2 MiB packs has
 * tables of at most 5.6 MB).
 */
export async function measurePack(body: AsyncIterable<Buffer>, what: string, packBytes: number, limit = maxPackBody(packBytes)): Promise<{ length: number; table?: Buffer }> {
  const bad = (why: string) => new IntegrityError('E_CORRUPT', `${what}: ${why}`, {
    hint: 'The pack is damaged or was written to exhaust memory; run `scriptorium verify` to list what is affected.',
  });
  const tail = Buffer.allocUnsafe(Math.min(MAX_TAIL_BYTES, 8 * (Math.ceil(packBytes / MIN_ROW_BYTES) + 2) + 4));
  let length = 0;
  for await (let piece of body) {
    if (piece.length > limit - length) throw bad(`expands to more than ${limit} bytes, more than a pack can hold`);
    let at = length;
    length += piece.length;
    if (piece.length > tail.length) {
      at += piece.length - tail.length;
      piece = piece.subarray(piece.length - tail.length);
    }
    const pos = at % tail.length;
    const first = piece.copy(tail, pos);
    if (first < piece.length) piece.copy(tail, 0, first);
  }
  /** The last `n` bytes of the body (n ≤ tail.length, n ≤ length). */
  const last = (n: number): Buffer => {
    const start = (length - n) % tail.length;
    return start + n <= tail.length ? tail.subarray(start, start + n) : Buffer.concat([tail.subarray(start), tail.subarray(0, n - (tail.length - start))]);
  };
  if (length < 4) throw bad('entry table missing');
  const count = last(4).readUInt32LE(0);
  const chunkBytes = length - 4 - 8 * count;
  if (chunkBytes < 0) throw bad('entry table truncated');
  if (8 * count + 4 > tail.length) return { length };
  const table = Buffer.from(last(8 * count + 4)); // a copy: `last` may be a view of the tail
  readEntryTable(table.subarray(0, 8 * count), chunkBytes, bad);
  return { length, table };
}

/** The store key of the pack named `hash`. */
export function packKey(hash: string): string {
  return `packs/${hash.slice(0, 2)}/${hash}`;
}

/** A pack file ready to be stored: `file` may be a view of a buffer the writer reuses once released. */
export interface SealedPack {
  file: Buffer;
  hash: string;
  entries: number;
  /** Uncompressed bytes of chunk data. */
  rawBytes: number;
  /** Gives the file's memory back to the writer (call once it has been stored, or is no longer needed). */
  release(): void;
}

/** zstd compression threads of a pack writer: they compress while the caller reads the next rows. */
const ZSTD_WORKERS = 1;
/** Bytes per zstd job (the minimum zstd allows; a pack is several jobs). */
const ZSTD_JOB_BYTES = 512 << 10;
/** Spare output buffers kept for reuse (one per pack in flight). */
const SPARE_BUFFERS = 3;

/**
 * Writes pack files one after the other. Chunks are appended as they come; with zstd they are
 * compressed as they come too, on zstd's own worker thread, in jobs of 512 KiB (the caller waits only,
 * when it seals a pack, for the jobs still running), into an output buffer that is reused once the pack
 * has been stored. This replaced a worker thread that compressed whole packs: same speed, and neither
 * a second V8 heap nor pack bodies passed back and forth (measured: 30 MiB less at the peak). Other
 * codecs collect the body and compress it whole when the pack is sealed.
 */
export class PackWriter {
  readonly #codec: CompressionCodec;
  readonly #level: number | undefined;
  readonly #prefix: Buffer;
  readonly #binding: ZstdBinding | undefined;
  #cctx: InstanceType<ZstdBinding['CCtx']> | undefined;
  #sizes: number[] = [];
  #rows: number[] = [];
  #raw = 0;
  /** Pending bytes of entries recorded but not appended yet. */
  #pending = 0;
  /** zstd: the compressed file so far; other codecs: the body so far. */
  #out: Buffer | undefined;
  #length = 0;
  readonly #spare: Buffer[] = [];
  readonly #initial: number;

  private constructor(codec: CompressionCodec, level: number | undefined, packBytes: number, binding?: ZstdBinding) {
    this.#codec = codec;
    this.#level = level;
    this.#prefix = objectPrefix('pack', codec);
    this.#binding = binding;
    // zstd output is usually a third of the input; the body of other codecs is the whole pack.
    this.#initial = codec === 'zstd' ? Math.max(64 << 10, packBytes >> 1) : packBytes + (256 << 10);
  }

  /** A writer for packs compressed with `codec` (zstd's bindings are loaded here). */
  static async create(codec: CompressionCodec, level: number | undefined, packBytes: number): Promise<PackWriter> {
    if (codec !== 'zstd') return new PackWriter(codec, level, packBytes);
    return new PackWriter(codec, level, packBytes, await zstdBinding());
  }

  /** Entries in the current pack. */
  get entries(): number {
    return this.#sizes.length;
  }

  /** Uncompressed chunk bytes appended to the current pack. */
  get bytes(): number {
    return this.#raw;
  }

  /**
   * Records the next entry (`length` bytes, `rows` rows) of the current pack; returns its entry number.
   * Its bytes follow through {@link append}, several entries' at once when they lie back to back.
   */
  addEntry(length: number, rows: number): number {
    if (this.#sizes.length === 0) this.#begin();
    this.#sizes.push(length);
    this.#rows.push(rows);
    this.#pending += length;
    return this.#sizes.length - 1;
  }

  /** Appends data[start, end), the bytes of entries recorded with {@link addEntry}. */
  append(data: Buffer, start: number, end: number): void {
    if (end <= start) return;
    this.#pending -= end - start;
    this.#raw += end - start;
    this.#write(data.subarray(start, end), false);
  }

  /**
   * Ends the current pack (its entry table, then the end of the compressed frame) and returns the file
   * and its name. The writer starts a new pack with the next entry.
   */
  async seal(): Promise<SealedPack> {
    if (this.#pending !== 0) throw new Error(`PackWriter.seal: ${this.#pending} bytes of entries were not appended`);
    const count = this.#sizes.length;
    if (count === 0) throw new Error('PackWriter.seal: the pack is empty');
    const table = Buffer.allocUnsafe(8 * count + 4);
    for (let i = 0; i < count; i++) {
      table.writeUInt32LE(this.#sizes[i], 8 * i);
      table.writeUInt32LE(this.#rows[i], 8 * i + 4);
    }
    table.writeUInt32LE(count, 8 * count);
    this.#write(table, true);
    const out = this.#out!;
    const length = this.#length;
    const rawBytes = this.#raw;
    this.#out = undefined;
    this.#sizes = [];
    this.#rows = [];
    this.#raw = 0;
    this.#length = 0;
    if (this.#codec === 'zstd') {
      const file = out.subarray(0, length);
      let released = false;
      return {
        file, hash: sha256(file), entries: count, rawBytes,
        release: () => {
          if (released) return;
          released = true;
          if (this.#spare.length < SPARE_BUFFERS && out.length <= 4 * this.#initial) this.#spare.push(out);
        },
      };
    }
    const body = out.subarray(0, length);
    const { file, hash } = await sealObject('pack', body, this.#codec, this.#level);
    if (this.#spare.length === 0 && out.length <= 4 * this.#initial) this.#spare.push(out); // body is no longer needed
    return { file, hash, entries: count, rawBytes, release: () => undefined };
  }

  #begin(): void {
    this.#out = this.#spare.pop() ?? Buffer.allocUnsafe(this.#initial);
    this.#length = 0;
    if (this.#codec === 'zstd') {
      this.#length = this.#prefix.copy(this.#out, 0);
      if (!this.#cctx) {
        const b = this.#binding!;
        this.#cctx = new b.CCtx();
        this.#cctx.setParameter(b.CParameter.compressionLevel, this.#level ?? ZSTD_DEFAULT_LEVEL);
        try {
          this.#cctx.setParameter(b.CParameter.nbWorkers, ZSTD_WORKERS);
          this.#cctx.setParameter(b.CParameter.jobSize, ZSTD_JOB_BYTES);
        } catch {
          // a zstd built without threads compresses on the caller's thread
        }
      }
    }
  }

  #write(input: Buffer, end: boolean): void {
    if (this.#codec !== 'zstd') {
      this.#reserve(input.length);
      this.#length += input.copy(this.#out!, this.#length);
      return;
    }
    const b = this.#binding!;
    const directive = end ? b.EndDirective.end : b.EndDirective.continue;
    for (;;) {
      if (this.#length === this.#out!.length) this.#reserve(Math.max(64 << 10, this.#out!.length));
      const [remaining, produced, consumed] = this.#cctx!.compressStream2(this.#out!.subarray(this.#length), input, directive);
      this.#length += produced;
      input = input.subarray(consumed);
      if (input.length === 0 && (!end || remaining === 0)) return;
    }
  }

  #reserve(extra: number): void {
    const out = this.#out!;
    if (this.#length + extra <= out.length) return;
    const grown = Buffer.allocUnsafe(Math.max(out.length * 2, this.#length + extra));
    out.copy(grown, 0, 0, this.#length);
    this.#out = grown;
  }
}

/**
 * A lazy pack's body, left compressed: the file's bytes after its prefix, and their codec; or, for a
 * pack never held whole (see {@link Pack.streamed}), what reads its body again from the store.
 */
type LazyBody = { data: Buffer; codecId: number; what: string } | { body: () => AsyncIterable<Buffer>; what: string };

/** A pack read back from the store and checked against its name. */
export class Pack {
  readonly hash: string;
  readonly #body: Buffer;
  readonly #offsets: number[];
  readonly #rows: number[];
  #release: (() => void) | undefined;
  /** A lazy pack's compressed body and codec (see {@link open}'s `lazyAbove`). */
  readonly #compressed: LazyBody | undefined;
  /**
   * Bytes of memory this pack keeps alive (its body's buffer, pooled or not; a lazy pack's compressed
   * file; a streamed pack's entry table): what a {@link PackCache} budgets.
   */
  readonly heldBytes: number;

  private constructor(hash: string, body: Buffer, offsets: number[], rows: number[], held: number, release?: () => void, compressed?: LazyBody) {
    this.hash = hash;
    this.heldBytes = held;
    this.#body = body;
    this.#offsets = offsets;
    this.#rows = rows;
    this.#release = release;
    this.#compressed = compressed;
  }

  /**
   * Whether the pack was left compressed (its body is larger than `lazyAbove`: it ends in a chunk of a
   * huge row): {@link chunk} and {@link span} then throw; read it with {@link spanPieces}.
   */
  get lazy(): boolean {
    return this.#compressed !== undefined;
  }

  /**
   * The bytes of entries `first` to `end - 1` in pieces (views valid until the next is asked for): of a
   * lazy pack, decompressed from its start as they are read, so that no piece is larger than 1 MiB;
   * of another, the span itself.
   */
  async *spanPieces(first: number, end: number): AsyncGenerator<Buffer> {
    this.#check(first);
    this.#check(end - 1);
    const from = this.#offsets[first];
    const to = this.#offsets[end];
    if (!this.#compressed) {
      yield this.#body.subarray(from, to);
      return;
    }
    const lazy = this.#compressed;
    const what = lazy.what;
    let at = 0;
    for await (const piece of 'body' in lazy ? lazy.body() : decompressPieces(lazy.data, lazy.codecId, what)) {
      const start = at;
      at += piece.length;
      if (at <= from) continue;
      yield piece.subarray(Math.max(0, from - start), Math.min(piece.length, to - start));
      if (at >= to) return;
    }
    throw new IntegrityError('E_CORRUPT', `${what}: decompressed to fewer bytes than the first time`);
  }

  /**
   * Verifies `file` against `hash`, decompresses it and reads its entry table (E_CORRUPT on damage).
   * The body may not exceed {@link maxPackBody} of `packBytes` (the repository's pack size; by default
   * the largest a config allows), and memory follows what the body really holds (see {@link packBody}).
   * With a `pool`, the body is decompressed into pooled memory, which {@link release} gives back: the
   * pack and every view of it must not be used after that.
   */
  static async open(hash: string, file: Buffer, packBytes = 1 << 30, pool?: BufferPool, lazyAbove = Infinity): Promise<Pack> {
    const what = `pack ${hash.slice(0, 16)}`;
    checkObject('pack', file, hash, what);
    const opened = await packBody(file.subarray(9), file[8], what, packBytes, pool, lazyAbove);
    if ('table' in opened) {
      // Measured and its entry table checked by packBody; its body stays compressed.
      const bad = (why: string) => new IntegrityError('E_CORRUPT', `${what}: ${why}`);
      const count = (opened.table.length - 4) / 8;
      const { offsets, rows } = readEntryTable(opened.table.subarray(0, 8 * count), opened.length - 4 - 8 * count, bad);
      return new Pack(hash, Buffer.alloc(0), offsets, rows, file.length, undefined, { data: file.subarray(9), codecId: file[8], what });
    }
    const { body, buffer } = opened;
    const release = buffer && pool ? () => pool.give(buffer) : undefined;
    try {
      const bad = (why: string) => new IntegrityError('E_CORRUPT', `${what}: ${why}`);
      if (body.length < 4) throw bad('entry table missing');
      const count = body.readUInt32LE(body.length - 4);
      const table = body.length - 4 - 8 * count;
      if (table < 0) throw bad('entry table truncated');
      const { offsets, rows } = readEntryTable(body.subarray(table, body.length - 4), table, bad);
      return new Pack(hash, body, offsets, rows, buffer?.length ?? body.length, release);
    } catch (err) {
      release?.();
      throw err;
    }
  }

  /**
   * A lazy pack that is never held whole, compressed or not (restore-pack.ts): its file was read from
   * the store in pieces, checked against its name and measured (`length`, its entry `table` with the
   * count), and `body` reads and decompresses it again, in pieces, each time entries are read.
   */
  static streamed(hash: string, length: number, table: Buffer, body: () => AsyncIterable<Buffer>): Pack {
    const what = `pack ${hash.slice(0, 16)}`;
    const bad = (why: string) => new IntegrityError('E_CORRUPT', `${what}: ${why}`);
    const count = (table.length - 4) / 8;
    const { offsets, rows } = readEntryTable(table.subarray(0, 8 * count), length - 4 - 8 * count, bad);
    return new Pack(hash, Buffer.alloc(0), offsets, rows, table.length, undefined, { body, what });
  }

  /** Gives pooled memory back (see {@link open}); a no-op for a pack opened without a pool. */
  release(): void {
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }

  get entries(): number {
    return this.#rows.length;
  }

  /** The bytes of entry `i` (a view into the pack). */
  chunk(i: number): Buffer {
    this.#check(i);
    this.#whole();
    return this.#body.subarray(this.#offsets[i], this.#offsets[i + 1]);
  }

  /** Bytes of entry `i`. */
  size(i: number): number {
    this.#check(i);
    return this.#offsets[i + 1] - this.#offsets[i];
  }

  /** The bytes of entries `first` to `end - 1`, which lie back to back (a view into the pack). */
  span(first: number, end: number): Buffer {
    this.#whole();
    this.#check(first);
    this.#check(end - 1);
    return this.#body.subarray(this.#offsets[first], this.#offsets[end]);
  }

  /** Rows in entry `i`. */
  rows(i: number): number {
    this.#check(i);
    return this.#rows[i];
  }

  /** Hex SHA-256 of entry `i`. */
  chunkHash(i: number): string {
    return createHash('sha256').update(this.chunk(i)).digest('hex');
  }

  #whole(): void {
    if (this.#compressed) throw new Error(`Pack: ${this.hash.slice(0, 16)} was opened lazily; read it with spanPieces`);
  }

  #check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.#rows.length) {
      throw new IntegrityError('E_CORRUPT', `pack ${this.hash.slice(0, 16)}: no entry ${i} (it has ${this.#rows.length})`);
    }
  }
}
