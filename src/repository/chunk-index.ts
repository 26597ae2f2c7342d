/**
 * The chunk index: which pack holds each stored chunk, looked up by the chunk's SHA-256. Kept on disk
 * as `index/<sha256>` files (one per backup, consolidated by prune), each a list of packs with the
 * hashes of their entries; kept in memory in flat buffers (about 39 bytes a chunk). A backup uses it
 * only in a format-1 repository; format 2 deduplicates through parent-index.ts, and its index files
 * (8-byte fingerprints) are in fingerprint-index.ts. Verify and prune read both kinds through
 * {@link decodeIndex}.
 */
import { IntegrityError } from '../core/errors.js';
import { CODEC_IDS } from './compression.js';
import { decodeFingerprintIndex, isFingerprintIndex } from './fingerprint-index.js';
import { MAGIC, openObject, sha256 } from './object-file.js';

/** The store key of the index file named `hash`. */
export function indexKey(hash: string): string {
  return `index/${hash}`;
}

/** One pack's entry in an index file. */
export interface IndexedPack {
  hash: string;
  /** SHA-256 of each entry, 32 bytes each (or `idBytes`), in entry order. */
  chunkIds: Buffer;
  /** Bytes per entry in `chunkIds`: 32 (whole ids, version 1, the default) or 8 (fingerprints, version 2). */
  idBytes?: number;
}

/** Entries of an indexed pack. */
export function indexedEntries(pack: IndexedPack): number {
  return pack.chunkIds.length / (pack.idBytes ?? 32);
}

const SEGMENT_BITS = 14;
const SEGMENT = 1 << SEGMENT_BITS; // entries per segment: storage grows without copying
const LOW = SEGMENT - 1;
/** Bytes of a hash kept for an entry added after {@link ChunkIndex.compact} (a key, not an id). */
const KEY_BYTES = 8;

/**
 * An in-memory map from chunk hash to (pack, entry): 32 bytes a chunk for the hash, plus an
 * open-addressing table of 5 bytes a slot, at most three quarters full (each slot holds an entry's
 * position and 8 more bits of its hash, so that a probe seldom has to read the hash itself). A pack's
 * entries are added consecutively, so the pack of a position is found by binary search over the packs'
 * first positions, and its entry number is the position minus that pack's first position.
 *
 * After {@link compact}, entries added keep only the first 8 bytes of their hash: a backup adds every
 * new chunk so that a chunk repeated later in the same backup is found, and keeps the whole ids itself
 * only until its index file is written (see backup.ts). A lookup that lands on such an entry is a
 * candidate, which the caller confirms against the whole id.
 */
export class ChunkIndex {
  /** Pack hashes by ordinal (`''` while a pack is still being written). */
  readonly packs: string[] = [];
  readonly #packOrdinal = new Map<string, number>();
  readonly #packStart: number[] = [];
  /** Packs whose entries came from a version-2 index file: only their first 8 bytes are real. */
  readonly #shortIds = new Set<number>();
  readonly #hashes: Buffer[] = [];
  /** First 8 bytes of the hashes of entries from #base on. */
  readonly #keys: Buffer[] = [];
  #base = Number.MAX_SAFE_INTEGER;
  #slots = new Int32Array(1 << 12).fill(-1);
  #tags = new Uint8Array(1 << 12);
  #count = 0;

  /** Number of chunk entries. */
  get size(): number {
    return this.#count;
  }

  /** From now on, entries keep only 8 bytes of their hash in memory (see the class comment). */
  compact(): void {
    if (this.#base === Number.MAX_SAFE_INTEGER) this.#base = this.#count;
  }

  /** Whether the entry at position `i` keeps only a key: {@link find} found a candidate to confirm. */
  isCandidate(i: number): boolean {
    return i >= this.#base;
  }

  /** The ordinal of pack `hash`, or -1 when the index does not know it. */
  packOrdinal(hash: string): number {
    return this.#packOrdinal.get(hash) ?? -1;
  }

  /** Registers a pack (its entries must follow, in order, through {@link add}); returns its ordinal. */
  addPack(hash: string): number {
    const ordinal = this.packs.length;
    this.packs.push(hash);
    this.#packStart.push(this.#count);
    if (hash) this.#packOrdinal.set(hash, ordinal);
    return ordinal;
  }

  /** Names a pack registered with `''` once it has been sealed. */
  namePack(ordinal: number, hash: string): void {
    this.packs[ordinal] = hash;
    this.#packOrdinal.set(hash, ordinal);
  }

  /** Number of entries of pack ordinal `pack`. */
  packEntries(pack: number): number {
    return (pack + 1 < this.#packStart.length ? this.#packStart[pack + 1] : this.#count) - this.#packStart[pack];
  }

  /** Makes room for `more` entries at once (saves rehashing while loading index files). */
  reserve(more: number): void {
    let size = this.#slots.length;
    while ((this.#count + more) * 4 > size * 3) size *= 2;
    if (size !== this.#slots.length) this.#rehash(size);
  }

  /**
   * Adds the next entry of pack `pack` (the last registered one), whose content hashes to the 32 bytes
   * of `hash` at `offset`.
   */
  add(hash: Buffer, pack: number, offset = 0): void {
    if (pack !== this.#packStart.length - 1) throw new TypeError(`ChunkIndex.add: pack ${pack} is not the last registered pack`);
    const i = this.#count;
    // Byte loops: Buffer.copy makes a view object per call, which costs more than 8 or 32 bytes do.
    if (i < this.#base) {
      if ((i & LOW) === 0) this.#hashes.push(Buffer.allocUnsafe(32 * SEGMENT));
      const seg = this.#hashes[i >> SEGMENT_BITS]!;
      const at = (i & LOW) * 32;
      for (let b = 0; b < 32; b++) seg[at + b] = hash[offset + b]!;
    } else {
      const k = i - this.#base;
      if ((k & LOW) === 0) this.#keys.push(Buffer.allocUnsafe(KEY_BYTES * SEGMENT));
      const seg = this.#keys[k >> SEGMENT_BITS]!;
      const at = (k & LOW) * KEY_BYTES;
      for (let b = 0; b < KEY_BYTES; b++) seg[at + b] = hash[offset + b]!;
    }
    this.#count++;
    if (this.#count * 4 > this.#slots.length * 3) this.#rehash(this.#slots.length * 2);
    else this.#insert(i);
  }

  /**
   * The position of the 32 bytes of `hash` at `offset` in the index, or -1. Read it with {@link packOf}
   * and {@link entryOf}; after {@link compact}, check {@link isCandidate}.
   */
  find(hash: Buffer, offset = 0): number {
    const slots = this.#slots;
    const tags = this.#tags;
    const mask = slots.length - 1;
    const head = (hash[offset]! | (hash[offset + 1]! << 8) | (hash[offset + 2]! << 16) | (hash[offset + 3]! << 24)) >>> 0;
    const tag = hash[offset + 4]!;
    for (let s = head & mask; ; s = (s + 1) & mask) {
      const i = slots[s]!;
      if (i < 0) return -1;
      if (tags[s] !== tag) continue;
      if (i < this.#base) {
        const seg = this.#hashes[i >> SEGMENT_BITS];
        const at = (i & LOW) * 32;
        if (seg.readUInt32LE(at) === head && seg.compare(hash, offset, offset + 32, at, at + 32) === 0) return i;
      } else {
        const k = i - this.#base;
        const seg = this.#keys[k >> SEGMENT_BITS];
        const at = (k & LOW) * KEY_BYTES;
        if (seg.readUInt32LE(at) === head && seg.compare(hash, offset, offset + KEY_BYTES, at, at + KEY_BYTES) === 0) return i;
      }
    }
  }

  /** The pack ordinal of position `i`. */
  packOf(i: number): number {
    const starts = this.#packStart;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    // Packs without entries share their start with the next one: the last of them holds `i`.
    return lo;
  }

  entryOf(i: number): number {
    return i - this.#packStart[this.packOf(i)];
  }

  /** Hex hash of entry `entry` of pack ordinal `pack`, when the index has it (whole). */
  chunkAt(pack: number, entry: number): string | undefined {
    if (pack < 0 || pack >= this.#packStart.length || entry < 0 || entry >= this.packEntries(pack)) return undefined;
    const i = this.#packStart[pack] + entry;
    if (i >= this.#base) return undefined;
    return this.#hashes[i >> SEGMENT_BITS].toString('hex', (i & LOW) * 32, (i & LOW) * 32 + (this.#shortIds.has(pack) ? 8 : 32));
  }

  /**
   * Adds every pack of an index file body not already known. Fingerprints of a version-2 file are
   * padded with zeros: {@link chunkAt} then gives only their 16 hex digits (verify compares a prefix).
   */
  addIndexed(packs: IndexedPack[]): void {
    this.reserve(packs.reduce((a, p) => a + indexedEntries(p), 0));
    const padded = Buffer.alloc(32);
    for (const pack of packs) {
      if (this.#packOrdinal.has(pack.hash)) continue;
      const ordinal = this.addPack(pack.hash);
      const step = pack.idBytes ?? 32;
      if (step !== 32) this.#shortIds.add(ordinal);
      for (let at = 0; at < pack.chunkIds.length; at += step) {
        if (step === 32) this.add(pack.chunkIds, ordinal, at);
        else {
          pack.chunkIds.copy(padded, 0, at, at + step);
          this.add(padded, ordinal, 0);
        }
      }
    }
  }

  /** The stored bytes of entry `i`: its whole hash, or its key after {@link compact}. */
  #stored(i: number): [Buffer, number, number] {
    if (i < this.#base) return [this.#hashes[i >> SEGMENT_BITS], (i & LOW) * 32, 32];
    const k = i - this.#base;
    return [this.#keys[k >> SEGMENT_BITS], (k & LOW) * KEY_BYTES, KEY_BYTES];
  }

  #insert(i: number): void {
    const slots = this.#slots;
    const mask = slots.length - 1;
    const [seg, at, length] = this.#stored(i);
    const head = seg.readUInt32LE(at);
    const tag = seg[at + 4]!;
    let s = head & mask;
    while (slots[s]! >= 0) {
      const j = slots[s]!;
      // Keep the first copy of a hash (index files may list a chunk twice); a key only equals a key.
      if (this.#tags[s] === tag && (j < this.#base) === (i < this.#base)) {
        const [other, jat] = this.#stored(j);
        if (other.readUInt32LE(jat) === head && other.compare(seg, at, at + length, jat, jat + length) === 0) return;
      }
      s = (s + 1) & mask;
    }
    slots[s] = i;
    this.#tags[s] = tag;
  }

  #rehash(size: number): void {
    this.#slots = new Int32Array(size).fill(-1);
    this.#tags = new Uint8Array(size);
    for (let i = 0; i < this.#count; i++) this.#insert(i);
  }
}

/** Encodes packs as an index file; returns its content and name. */
export async function encodeIndex(packs: IndexedPack[]): Promise<{ file: Buffer; hash: string }> {
  const { file, hash } = encodeIndexInto(packs, Buffer.alloc(0));
  return { file, hash };
}

/**
 * Writes the index file (codec none) of `packs` into `into` (replaced by a larger buffer when too
 * small) and returns the file, a view of the buffer used, with its name.
 */
export function encodeIndexInto(packs: IndexedPack[], into: Buffer): { file: Buffer; hash: string; buffer: Buffer } {
  let size = MAGIC.index.length + 1;
  for (const pack of packs) size += 36 + pack.chunkIds.length;
  const buffer = into.length >= size ? into : Buffer.allocUnsafe(size);
  let at = MAGIC.index.copy(buffer, 0);
  buffer[at++] = CODEC_IDS.none;
  for (const pack of packs) {
    at += buffer.write(pack.hash, at, 32, 'hex');
    at = buffer.writeUInt32LE(pack.chunkIds.length / 32, at);
    at += pack.chunkIds.copy(buffer, at);
  }
  const file = buffer.subarray(0, at);
  return { file, hash: sha256(file), buffer };
}

/**
 * Decodes an index file checked against its name; throws E_CORRUPT on damage. Each record must be
 * whole, name a pack once, and list at least one entry (no pack is empty); whether the counts match
 * the packs themselves is checked by verify (see snapshot-check.ts).
 */
export async function decodeIndex(hash: string, file: Buffer): Promise<IndexedPack[]> {
  if (isFingerprintIndex(file)) return decodeFingerprintIndex(hash, file);
  const what = `index ${hash.slice(0, 16)}`;
  const body = await openObject('index', file, hash, what);
  const bad = (at: number, why: string) => new IntegrityError('E_CORRUPT', `${what}: record at byte ${at}: ${why}`, {
    hint: 'An index file is a cache: a damaged one costs only deduplication. `scriptorium prune` rebuilds the index from the packs.',
  });
  const packs: IndexedPack[] = [];
  const seen = new Set<string>();
  for (let at = 0; at < body.length; ) {
    if (at + 36 > body.length) throw bad(at, 'truncated');
    const count = body.readUInt32LE(at + 32);
    const pack = body.toString('hex', at, at + 32);
    if (count === 0) throw bad(at, `pack ${pack.slice(0, 16)} with no entries`);
    if (seen.has(pack)) throw bad(at, `pack ${pack.slice(0, 16)} is listed twice`);
    seen.add(pack);
    if (at + 36 + 32 * count > body.length) throw bad(at, `pack ${pack.slice(0, 16)} claims ${count} entries, more than the file holds`);
    packs.push({ hash: pack, chunkIds: body.subarray(at + 36, at + 36 + 32 * count) });
    at += 36 + 32 * count;
  }
  return packs;
}
