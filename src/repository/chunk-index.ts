/**
 * The chunk index: which pack holds each stored chunk, looked up by the chunk's SHA-256. Kept on disk
 * as `index/<sha256>` files (one per backup, consolidated by prune), each a list of packs with the
 * hashes of their entries; kept in memory in flat typed arrays (about 40 bytes a chunk).
 */
import { IntegrityError } from '../core/errors.js';
import { openObject, sealObject } from './object-file.js';

/** The store key of the index file named `hash`. */
export function indexKey(hash: string): string {
  return `index/${hash}`;
}

/** One pack's entry in an index file. */
export interface IndexedPack {
  hash: string;
  /** SHA-256 of each entry, 32 bytes each, in entry order. */
  chunkIds: Buffer;
}

const SEGMENT_BITS = 14;
const SEGMENT = 1 << SEGMENT_BITS; // entries per segment: storage grows without copying
const LOW = SEGMENT - 1;

/**
 * An in-memory map from chunk hash to (pack, entry): about 36 bytes a chunk plus an open-addressing
 * table of 4-8 bytes a chunk. A pack's entries are added consecutively, so an entry number is its
 * position minus the pack's first position.
 */
export class ChunkIndex {
  /** Pack hashes by ordinal (`''` while a pack is still being written). */
  readonly packs: string[] = [];
  readonly #packOrdinal = new Map<string, number>();
  readonly #packStart: number[] = [];
  readonly #hashes: Buffer[] = [];
  readonly #pack: Uint32Array[] = [];
  #slots = new Int32Array(1 << 12).fill(-1);
  #count = 0;

  /** Number of chunk entries. */
  get size(): number {
    return this.#count;
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

  /** Makes room for `more` entries at once (saves rehashing while loading index files). */
  reserve(more: number): void {
    let size = this.#slots.length;
    while ((this.#count + more) * 2 > size) size *= 2;
    if (size !== this.#slots.length) this.#rehash(size);
  }

  /**
   * Adds the next entry of pack `pack` (the last registered one), whose content hashes to the 32 bytes
   * of `hash` at `offset`.
   */
  add(hash: Buffer, pack: number, offset = 0): void {
    const i = this.#count;
    if ((i & LOW) === 0) {
      this.#hashes.push(Buffer.allocUnsafe(32 * SEGMENT));
      this.#pack.push(new Uint32Array(SEGMENT));
    }
    hash.copy(this.#hashes[i >> SEGMENT_BITS], (i & LOW) * 32, offset, offset + 32);
    this.#pack[i >> SEGMENT_BITS][i & LOW] = pack;
    this.#count++;
    if (this.#count * 2 > this.#slots.length) this.#rehash(this.#slots.length * 2);
    else this.#insert(i);
  }

  /** The position of the 32 bytes of `hash` at `offset` in the index, or -1. Read it with {@link packOf} and {@link entryOf}. */
  find(hash: Buffer, offset = 0): number {
    const mask = this.#slots.length - 1;
    const head = hash.readUInt32LE(offset);
    for (let s = head & mask; ; s = (s + 1) & mask) {
      const i = this.#slots[s];
      if (i < 0) return -1;
      const seg = this.#hashes[i >> SEGMENT_BITS];
      const at = (i & LOW) * 32;
      if (seg.readUInt32LE(at) === head && seg.compare(hash, offset, offset + 32, at, at + 32) === 0) return i;
    }
  }

  packOf(i: number): number {
    return this.#pack[i >> SEGMENT_BITS][i & LOW];
  }

  entryOf(i: number): number {
    return i - this.#packStart[this.packOf(i)];
  }

  /** Hex hash of entry `entry` of pack ordinal `pack`, when the index has it. */
  chunkAt(pack: number, entry: number): string | undefined {
    const i = (this.#packStart[pack] ?? -1) + entry;
    if (entry < 0 || i < 0 || i >= this.#count || this.packOf(i) !== pack) return undefined;
    return this.#hashes[i >> SEGMENT_BITS].toString('hex', (i & LOW) * 32, (i & LOW) * 32 + 32);
  }

  /** Adds every pack of an index file body not already known. */
  addIndexed(packs: IndexedPack[]): void {
    this.reserve(packs.reduce((a, p) => a + p.chunkIds.length / 32, 0));
    for (const pack of packs) {
      if (this.#packOrdinal.has(pack.hash)) continue;
      const ordinal = this.addPack(pack.hash);
      for (let at = 0; at < pack.chunkIds.length; at += 32) this.add(pack.chunkIds, ordinal, at);
    }
  }

  #insert(i: number): void {
    const mask = this.#slots.length - 1;
    const seg = this.#hashes[i >> SEGMENT_BITS];
    const at = (i & LOW) * 32;
    const head = seg.readUInt32LE(at);
    let s = head & mask;
    while (this.#slots[s] >= 0) {
      const j = this.#slots[s];
      const other = this.#hashes[j >> SEGMENT_BITS];
      const jat = (j & LOW) * 32;
      if (other.readUInt32LE(jat) === head && other.compare(seg, at, at + 32, jat, jat + 32) === 0) return; // keep the first copy
      s = (s + 1) & mask;
    }
    this.#slots[s] = i;
  }

  #rehash(size: number): void {
    this.#slots = new Int32Array(size).fill(-1);
    for (let i = 0; i < this.#count; i++) this.#insert(i);
  }
}

/** Encodes packs as an index file; returns its content and name. */
export async function encodeIndex(packs: IndexedPack[]): Promise<{ file: Buffer; hash: string }> {
  const parts: Buffer[] = [];
  for (const pack of packs) {
    const head = Buffer.alloc(36);
    head.write(pack.hash, 0, 'hex');
    head.writeUInt32LE(pack.chunkIds.length / 32, 32);
    parts.push(head, pack.chunkIds);
  }
  return sealObject('index', Buffer.concat(parts), 'none');
}

/** Decodes an index file checked against its name; throws E_CORRUPT on damage. */
export async function decodeIndex(hash: string, file: Buffer): Promise<IndexedPack[]> {
  const what = `index ${hash.slice(0, 16)}`;
  const body = await openObject('index', file, hash, what);
  const packs: IndexedPack[] = [];
  for (let at = 0; at < body.length; ) {
    if (at + 36 > body.length) throw new IntegrityError('E_CORRUPT', `${what}: truncated`);
    const count = body.readUInt32LE(at + 32);
    const hash = body.toString('hex', at, at + 32);
    at += 36;
    if (at + 32 * count > body.length) throw new IntegrityError('E_CORRUPT', `${what}: truncated`);
    packs.push({ hash, chunkIds: body.subarray(at, at + 32 * count) });
    at += 32 * count;
  }
  return packs;
}
