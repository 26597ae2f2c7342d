/**
 * Packs: many small chunks stored as one compressed object, so that chunks can be small (fine-grained
 * deduplication) while files stay few and compression sees a whole run of rows. The body is the
 * chunks' bytes back to back, then `count` times `(u32 length, u32 rows)`, then `u32 count` (a trailer,
 * so that a pack is built in one buffer as chunks arrive).
 */
import { createHash } from 'node:crypto';
import { IntegrityError } from '../core/errors.js';
import type { CompressionCodec } from './compression.js';
import type { Chunk } from './chunker.js';
import { openObject, sealObject } from './object-file.js';

/** The store key of the pack named `hash`. */
export function packKey(hash: string): string {
  return `packs/${hash.slice(0, 2)}/${hash}`;
}

/** The body of a pack and the ids of its chunks, ready to be sealed. */
export interface PackBody {
  body: Buffer;
  /** SHA-256 of each entry, 32 bytes each, in entry order. */
  chunkIds: Buffer;
  entries: number;
  /** Uncompressed bytes of chunk data. */
  rawBytes: number;
}

/** Collects chunks into one growing buffer until it is full, then hands it out as a pack body. */
export class PackBuilder {
  readonly #initial: number;
  #body: Buffer;
  #length = 0;
  /** Bytes of entries recorded but not appended yet. */
  #pending = 0;
  #sizes: number[] = [];
  #rows: number[] = [];
  #ids: Buffer = Buffer.alloc(32 * 256);
  readonly #spare: Buffer[] = [];

  constructor(initialBytes = 1 << 20) {
    this.#initial = initialBytes;
    this.#body = Buffer.allocUnsafe(initialBytes);
  }

  get entries(): number {
    return this.#sizes.length;
  }

  get bytes(): number {
    return this.#length;
  }

  /** Adds a chunk whose SHA-256 is `hash` (32 bytes); returns its entry number in this pack. */
  add(chunk: Chunk, hash: Buffer): number {
    const entry = this.addEntry(chunk.data.length, chunk.rows, hash);
    this.append(chunk.data, 0, chunk.data.length);
    return entry;
  }

  /**
   * Records the next entry (`length` bytes, `rows` rows, SHA-256 at `id[idAt…+32]`) without its bytes,
   * which the caller appends with {@link append}, several entries' at once when they lie back to back.
   */
  addEntry(length: number, rows: number, id: Buffer, idAt = 0): number {
    const entry = this.#sizes.length;
    if ((entry + 1) * 32 > this.#ids.length) this.#ids = grow(this.#ids, this.#ids.length * 2, this.#ids.length);
    id.copy(this.#ids, entry * 32, idAt, idAt + 32);
    this.#sizes.push(length);
    this.#rows.push(rows);
    this.#pending += length;
    return entry;
  }

  /** Appends the bytes data[start, end) of entries recorded with {@link addEntry}. */
  append(data: Buffer, start: number, end: number): void {
    this.#reserve(end - start);
    this.#length += data.copy(this.#body, this.#length, start, end);
    this.#pending -= end - start;
  }

  /** Appends the entry table and returns the pack body (a buffer of its own); the builder starts afresh. */
  take(): PackBody {
    if (this.#pending !== 0) throw new Error(`PackBuilder.take: ${this.#pending} bytes of entries were not appended`);
    const count = this.#sizes.length;
    this.#reserve(8 * count + 4);
    let at = this.#length;
    for (let i = 0; i < count; i++, at += 8) {
      this.#body.writeUInt32LE(this.#sizes[i], at);
      this.#body.writeUInt32LE(this.#rows[i], at + 4);
    }
    this.#body.writeUInt32LE(count, at);
    const result = {
      body: this.#body.subarray(0, at + 4), chunkIds: Buffer.from(this.#ids.subarray(0, 32 * count)), entries: count, rawBytes: this.#length,
    };
    this.#body = this.#spare.pop() ?? Buffer.allocUnsafe(this.#initial);
    this.#length = 0;
    this.#sizes = [];
    this.#rows = [];
    return result;
  }

  /** Gives back the memory of a body from {@link take} once it is no longer needed, for reuse. */
  recycle(body: Buffer): void {
    if (this.#spare.length < 1 && body.byteOffset === 0 && body.buffer.byteLength >= this.#initial) {
      this.#spare.push(Buffer.from(body.buffer, 0, body.buffer.byteLength));
    }
  }

  /** Lays out and compresses the collected chunks into a pack object (without a worker). */
  async seal(codec: CompressionCodec, level?: number): Promise<{ hash: string; file: Buffer; chunkIds: Buffer }> {
    const { body, chunkIds } = this.take();
    const { file, hash } = await sealObject('pack', body, codec, level);
    return { hash, file, chunkIds };
  }

  #reserve(extra: number): void {
    if (this.#length + extra > this.#body.length) {
      this.#body = grow(this.#body, Math.max(this.#body.length * 2, this.#length + extra), this.#length);
    }
  }
}

/** A new buffer of `size` bytes holding the first `used` bytes of `old`. */
function grow(old: Buffer, size: number, used: number): Buffer {
  const fresh = Buffer.allocUnsafe(size);
  old.copy(fresh, 0, 0, used);
  return fresh;
}

/** A pack read back from the store and checked against its name. */
export class Pack {
  readonly hash: string;
  readonly #body: Buffer;
  readonly #offsets: number[];
  readonly #rows: number[];

  private constructor(hash: string, body: Buffer, offsets: number[], rows: number[]) {
    this.hash = hash;
    this.#body = body;
    this.#offsets = offsets;
    this.#rows = rows;
  }

  /** Verifies `file` against `hash`, decompresses it and reads its entry table (E_CORRUPT on damage). */
  static async open(hash: string, file: Buffer): Promise<Pack> {
    const what = `pack ${hash.slice(0, 16)}`;
    const body = await openObject('pack', file, hash, what);
    const bad = (why: string) => new IntegrityError('E_CORRUPT', `${what}: ${why}`);
    if (body.length < 4) throw bad('entry table missing');
    const count = body.readUInt32LE(body.length - 4);
    const table = body.length - 4 - 8 * count;
    if (table < 0) throw bad('entry table truncated');
    const offsets = new Array<number>(count + 1);
    const rows = new Array<number>(count);
    let at = 0;
    for (let i = 0; i < count; i++) {
      offsets[i] = at;
      at += body.readUInt32LE(table + 8 * i);
      rows[i] = body.readUInt32LE(table + 8 * i + 4);
    }
    offsets[count] = at;
    if (at !== table) throw bad(`entry table says ${at} bytes of chunks, body has ${table}`);
    return new Pack(hash, body, offsets, rows);
  }

  get entries(): number {
    return this.#rows.length;
  }

  /** The bytes of entry `i` (a view into the pack). */
  chunk(i: number): Buffer {
    this.#check(i);
    return this.#body.subarray(this.#offsets[i], this.#offsets[i + 1]);
  }

  /** Bytes of entry `i`. */
  size(i: number): number {
    this.#check(i);
    return this.#offsets[i + 1] - this.#offsets[i];
  }

  /** The bytes of entries `first` to `end - 1`, which lie back to back (a view into the pack). */
  span(first: number, end: number): Buffer {
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

  #check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.#rows.length) {
      throw new IntegrityError('E_CORRUPT', `pack ${this.hash.slice(0, 16)}: no entry ${i} (it has ${this.#rows.length})`);
    }
  }
}
