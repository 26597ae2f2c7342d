/**
 * How a format-2 backup finds chunks it need not store, in memory that does not grow with the
 * repository or the database (see docs/repository-format.md, "Index, version 2"):
 *
 * 1. The **parent**: the same table in the previous snapshot of the same host and source (or, when
 *    there is none, the newest snapshot of all). Its chunks
 *    are read as a stream of 8-byte fingerprints, in row order, from the index files its manifest
 *    names; a window of three segments of {@link SEGMENT} chunks around the place where the new chunks
 *    last matched is in memory, each with a small hash table. Rows are cut by their keys, so an
 *    unchanged stretch of a table gives the same chunks in the same order: a chunk is first compared
 *    with the parent's next one, then looked up in the window (an update, an insert, a deletion of up
 *    to 2 · SEGMENT chunks moves the place; a larger deletion loses deduplication for the rest of the
 *    table in this one backup).
 * 2. **Recent** chunks of this backup (the last {@link RECENT} new ones, whole ids), so that a chunk
 *    repeated within the backup (two equal tables) is stored once.
 * 3. **Orphans**: packs of interrupted backups (index files that no listed snapshot names), up to
 *    {@link ORPHANS} chunks, so that a backup after a killed one does not store its chunks again.
 *
 * The class offers the part of ChunkIndex's interface that backup.ts's SnapshotWriter uses, so that
 * the writer serves both formats.
 */
import { NotFoundError, ScriptoriumError } from '../core/errors.js';
import { collectSoon } from '../core/memory.js';
import { decodeIndex, indexKey } from './chunk-index.js';
import { FINGERPRINT_BYTES, PACKS_PER_INDEX_FILE } from './fingerprint-index.js';
import type { Snapshot, TableEntry } from './manifest.js';
import { listObjects } from './objects.js';
import type { Repository } from './repository.js';
import { parentCandidates, readSnapshotList, type SnapshotList } from './snapshot-list.js';

/** Parent chunks per segment of the window. */
export const SEGMENT = 1 << 14;
/** New chunks of this backup remembered whole for repeats within it. */
export const RECENT = 1 << 16;
/** Chunks of interrupted backups' packs looked up by fingerprint. */
export const ORPHANS = 1 << 17;
/**
 * A host in public-key mode cannot open manifests (they are sealed to the recipient), so it has no
 * parent stream: it looks chunks up by fingerprint in the newest index files instead, up to this many
 * (24 bytes each: 24 MiB, about 600 MB of rows at the default chunk size). Memory stays bounded; past
 * that, older chunks are stored again rather than found.
 */
export const BLIND_ORPHANS = 1 << 20;
/** Index files kept decoded at once. */
const FILE_CACHE = 4;
/**
 * The largest index file a backup reads: what a writer of this repository can produce (32 packs of at
 * most `packBytes / minBytes` chunks each, 8 bytes a chunk; ~1 MiB at the defaults, 2 MiB at most), so
 * that the cache stays within 4 of them. A larger one is passed over, costing only deduplication.
 */
function maxIndexFileBytes(repo: Repository): number {
  const { packBytes, chunker } = repo.config;
  const perPack = Math.ceil(packBytes / Math.max(3, chunker.minBytes)) + 1;
  return (1 << 16) + PACKS_PER_INDEX_FILE * (36 + FINGERPRINT_BYTES * perPack);
}

/** One segment of the parent's fingerprint stream. */
interface Segment {
  lo: Uint32Array;
  hi: Uint32Array;
  /** Pack ordinal of each chunk, -1 when its fingerprint is unknown (never matches). */
  pack: Int32Array;
  entry: Uint32Array;
  /** Open addressing on `lo`: chunk position within the segment + 1, 0 empty. */
  slots: Int32Array;
}

/** A parent's table as a fingerprint stream. */
interface ParentTable {
  parent: Snapshot;
  /** Position after the last match (where the next chunk is expected). */
  cursor: number;
  table: TableEntry;
  /** Position (in chunks) where each range of `table.chunks` starts. */
  starts: Float64Array;
  total: number;
  segments: Map<number, Segment>;
}

/** A fixed table of whole 32-byte ids with their (pack, entry); emptied when full. */
class RecentChunks {
  readonly #ids: Buffer;
  readonly #pack: Int32Array;
  readonly #entry: Uint32Array;
  readonly #slots: Int32Array;
  #count = 0;

  constructor(capacity: number) {
    this.#ids = Buffer.alloc(32 * capacity);
    this.#pack = new Int32Array(capacity);
    this.#entry = new Uint32Array(capacity);
    this.#slots = new Int32Array(2 * capacity);
  }

  add(ids: Buffer, at: number, pack: number, entry: number): void {
    if (this.#count === this.#pack.length) {
      this.#slots.fill(0);
      this.#count = 0;
    }
    const i = this.#count++;
    // Byte by byte: Buffer.copy costs more than the 32 bytes it moves, once per new chunk.
    const own = this.#ids;
    for (let b = 0, o = 32 * i; b < 32; b++) own[o + b] = ids[at + b]!;
    this.#pack[i] = pack;
    this.#entry[i] = entry;
    const mask = this.#slots.length - 1;
    let s = ids.readUInt32LE(at) & mask;
    while (this.#slots[s] !== 0) s = (s + 1) & mask;
    this.#slots[s] = i + 1;
  }

  /** Position of the id, or -1. */
  find(ids: Buffer, at: number): number {
    const mask = this.#slots.length - 1;
    const head = ids.readUInt32LE(at);
    for (let s = head & mask; ; s = (s + 1) & mask) {
      const i = this.#slots[s]! - 1;
      if (i < 0) return -1;
      if (this.#ids.readUInt32LE(32 * i) === head && this.#ids.compare(ids, at, at + 32, 32 * i, 32 * i + 32) === 0) return i;
    }
  }

  packOf(i: number): number {
    return this.#pack[i]!;
  }

  entryOf(i: number): number {
    return this.#entry[i]!;
  }
}

/** Chunks by 8-byte fingerprint, at most `capacity` (the rest are left out). */
class FingerprintTable {
  readonly #lo: Uint32Array;
  readonly #hi: Uint32Array;
  readonly #pack: Int32Array;
  readonly #entry: Uint32Array;
  readonly #slots: Int32Array;
  #count = 0;

  constructor(capacity: number) {
    this.#lo = new Uint32Array(capacity);
    this.#hi = new Uint32Array(capacity);
    this.#pack = new Int32Array(capacity);
    this.#entry = new Uint32Array(capacity);
    this.#slots = new Int32Array(2 * capacity);
  }

  get full(): boolean {
    return this.#count === this.#lo.length;
  }

  add(fps: Buffer, at: number, pack: number, entry: number): void {
    if (this.full) return;
    const i = this.#count++;
    this.#lo[i] = fps.readUInt32LE(at);
    this.#hi[i] = fps.readUInt32LE(at + 4);
    this.#pack[i] = pack;
    this.#entry[i] = entry;
    const mask = this.#slots.length - 1;
    let s = this.#lo[i]! & mask;
    while (this.#slots[s] !== 0) s = (s + 1) & mask;
    this.#slots[s] = i + 1;
  }

  find(lo: number, hi: number): number {
    if (this.#count === 0) return -1;
    const mask = this.#slots.length - 1;
    for (let s = lo & mask; ; s = (s + 1) & mask) {
      const i = this.#slots[s]! - 1;
      if (i < 0) return -1;
      if (this.#lo[i] === lo && this.#hi[i] === hi) return i;
    }
  }

  packOf(i: number): number {
    return this.#pack[i]!;
  }

  entryOf(i: number): number {
    return this.#entry[i]!;
  }
}

/** The deduplication index of a format-2 backup (see the file comment). */
export class ParentIndex {
  /** Pack hashes by ordinal (`''` while a pack of this backup is being written). */
  readonly packs: string[] = [];
  readonly #ordinals = new Map<string, number>();
  /** Per pack ordinal: the index file known to list it, for the manifest's hints. */
  readonly #hints: Array<string | undefined> = [];
  /** Entries added so far to each of this backup's packs. */
  readonly #added: number[] = []; // (by ordinal: a Map lookup per chunk showed in profiles)
  readonly #repo: Repository;
  /** The parents, best first (at most two: see {@link ParentIndex.open}). */
  readonly #parents: Snapshot[];
  /** Each parent's tables by name (built by the first {@link beginTable}). */
  #byName: Map<string, Snapshot['tables'][number]>[] | undefined;
  readonly #recent = new RecentChunks(RECENT);
  readonly #orphans: FingerprintTable;
  /** Decoded index files, most recently used last: file → pack → fingerprints. */
  readonly #files = new Map<string, Map<string, Buffer> | null>();
  /** Where the parent's packs are listed when its hints fail: built once, for the parent's packs only. */
  #located: Map<string, string> | undefined;
  /** Index files to search for {@link #located}: the snapshot list's, or all. */
  readonly #candidates: string[] | undefined;
  /** The current table's stream in each parent that has it. */
  #tables: ParentTable[] = [];
  /** Whether each of the parent's packs exists, once asked. */
  readonly #present = new Map<string, boolean>();
  /** Segments out of the window, for reuse: one allocated per window slot, not one per segment read. */
  readonly #spare: Segment[] = [];
  /** Bytes of index files dropped from the cache since the last collection (they live outside the V8 heap). */
  #dropped = 0;
  #foundPack = -1;
  #foundEntry = -1;
  /** Chunks matched in the parent, in this backup's other chunks, in orphans (for tests and measurements). */
  readonly matched = { parent: 0, recent: 0, orphan: 0 };

  private constructor(repo: Repository, parents: Snapshot[], candidates: string[] | undefined, orphans = ORPHANS) {
    this.#repo = repo;
    this.#orphans = new FingerprintTable(orphans);
    this.#parents = parents;
    this.#candidates = candidates;
  }

  /**
   * The index for a backup of `source` from `host`: its parent is the newest snapshot of them that
   * the snapshot list names and that still exists, else the newest of all (without a list: the same
   * choice among `snapshots/`).
   * Interrupted backups' index files (in `index/`, named by no listed snapshot) are loaded as orphans.
   */
  static async open(repo: Repository, host: string, source: string, rows?: number): Promise<ParentIndex> {
    const list = await readSnapshotList(repo.store);
    // A config from the local cache is checked against the list's record before anything is written.
    await repo.confirmConfig(list?.config);
    // Public-key mode without the identity: no manifest opens, so every listed index file is a source.
    const blind = repo.crypto !== undefined && !repo.crypto.readsData;
    const parents = blind ? [] : list ? await parentsFromList(repo, list, host, source, rows) : await parentFromListing(repo, host, source).then((p) => (p ? [p] : []));
    const index = new ParentIndex(repo, parents, list?.index, blind ? BLIND_ORPHANS : ORPHANS);
    index.#list = list ?? null;
    // On a remote store, interrupted backups' index files are not looked for (a LIST of index/ and a
    // HEAD per pack, every backup): their chunks are stored again, which on S3 costs a conditional PUT
    // answered 412 (nothing stored twice); prune indexes or removes those packs. Blind hosts read the
    // listed index files, which needs no listing.
    if (list) await index.#loadOrphans(list, parents, blind, repo.store.capabilities.remote === true);
    return index;
  }

  /** The snapshot list read when the backup started (null: there was none), to add the new snapshot to. */
  #list: SnapshotList | null = null;

  get snapshotList(): SnapshotList | null {
    return this.#list;
  }

  /** The parent snapshots' ids, best first. */
  get parentIds(): string[] {
    return this.#parents.map((p) => p.id);
  }

  /** Nothing to do: format 2 keeps no whole index (ChunkIndex interface). */
  compact(): void {}

  /** Matches are final: an 8-byte fingerprint at its expected place, or a whole id (ChunkIndex interface). */
  isCandidate(_i: number): boolean {
    return false;
  }

  /** The ordinal of pack `hash`, -1 when unknown. */
  packOrdinal(hash: string): number {
    return this.#ordinals.get(hash) ?? -1;
  }

  /** Registers a pack of this backup (`''` until it is sealed); returns its ordinal. */
  addPack(hash: string): number {
    const ordinal = this.packs.push(hash) - 1;
    if (hash) this.#ordinals.set(hash, ordinal);
    this.#added[ordinal] = 0;
    return ordinal;
  }

  namePack(ordinal: number, hash: string): void {
    this.packs[ordinal] = hash;
    this.#ordinals.set(hash, ordinal);
  }

  /** Notes that pack `ordinal`'s fingerprints are in index file `file` (for the manifest). */
  setHint(ordinal: number, file: string): void {
    this.#hints[ordinal] = file;
  }

  /** The index file known to list pack ordinal `ordinal`. */
  hintOf(ordinal: number): string | undefined {
    return this.#hints[ordinal];
  }

  /** Adds the next entry of this backup's pack `pack`, whose id is the 32 bytes at `offset` of `hash`. */
  add(hash: Buffer, pack: number, offset = 0): void {
    const entry = this.#added[pack] ?? 0;
    this.#added[pack] = entry + 1;
    this.#recent.add(hash, offset, pack, entry);
  }

  /** Starts deduplicating a table against the parent's table of the same name. */
  async beginTable(name: string): Promise<void> {
    for (const t of this.#tables) for (const seg of t.segments.values()) this.#spare.push(seg);
    this.#tables = [];
    // (A map per parent, made on first use: a list search per table was quadratic in the tables.)
    this.#byName ??= this.#parents.map((p) => {
      const byName = new Map<string, Snapshot['tables'][number]>();
      for (const t of p.tables) if (!byName.has(t.name)) byName.set(t.name, t);
      return byName;
    });
    for (const [i, parent] of this.#parents.entries()) {
      const table = this.#byName[i]!.get(name);
      if (!table || table.chunkCount === 0) continue;
      // The second parent only when it differs (a table unchanged between them is one stream).
      if (this.#tables.some((t) => t.table.sha256 === table.sha256)) continue;
      const starts = new Float64Array(table.chunks.length);
      let total = 0;
      for (let i = 0; i < table.chunks.length; i++) {
        starts[i] = total;
        total += table.chunks[i]![2];
      }
      this.#tables.push({ parent, cursor: 0, table, starts, total, segments: new Map() });
    }
    await this.ready();
  }

  /**
   * Loads the parent's segments the next lookups need; undefined (no promise) when they are loaded,
   * which is nearly always: callers test the result before awaiting it.
   */
  ready(): Promise<void> | undefined {
    for (const t of this.#tables) {
      const seg = Math.floor(t.cursor / SEGMENT);
      for (let s = seg - 1; s <= seg + 1; s++) {
        if (s >= 0 && s * SEGMENT < t.total && !t.segments.has(s)) return this.#load(t, seg).then(() => this.ready());
      }
    }
    return undefined;
  }

  /**
   * Looks up the chunk whose 32-byte id is at `offset` of `hash`: returns 0 when found (read the place
   * with {@link packOf} and {@link entryOf}), -1 when the repository does not have it.
   */
  find(hash: Buffer, offset = 0): number {
    const lo = (hash[offset]! | (hash[offset + 1]! << 8) | (hash[offset + 2]! << 16) | (hash[offset + 3]! << 24)) >>> 0;
    const hi = (hash[offset + 4]! | (hash[offset + 5]! << 8) | (hash[offset + 6]! << 16) | (hash[offset + 7]! << 24)) >>> 0;
    for (const t of this.#tables) {
      const c = t.cursor;
      const segNo = Math.floor(c / SEGMENT);
      const seg = t.segments.get(segNo);
      const k = c - segNo * SEGMENT;
      if (seg && c < t.total && seg.lo[k] === lo && seg.hi[k] === hi && seg.pack[k]! >= 0) return this.#parentMatch(t, seg, k, c);
      for (let s = segNo - 1; s <= segNo + 1; s++) {
        const other = t.segments.get(s);
        if (!other) continue;
        const j = probe(other, lo, hi);
        if (j >= 0) return this.#parentMatch(t, other, j, s * SEGMENT + j);
      }
    }
    const r = this.#recent.find(hash, offset);
    if (r >= 0) {
      this.matched.recent++;
      return this.#found(this.#recent.packOf(r), this.#recent.entryOf(r));
    }
    const o = this.#orphans.find(lo, hi);
    if (o >= 0) {
      this.matched.orphan++;
      return this.#found(this.#orphans.packOf(o), this.#orphans.entryOf(o));
    }
    return -1;
  }

  packOf(_found: number): number {
    return this.#foundPack;
  }

  entryOf(_found: number): number {
    return this.#foundEntry;
  }

  #parentMatch(t: ParentTable, seg: Segment, k: number, position: number): number {
    t.cursor = position + 1;
    // The other parent's stream moves along (the two are mostly the same chunks in the same order), so
    // that it stays within its window of where the rows are.
    for (const u of this.#tables) if (u !== t && u.cursor < u.total) u.cursor++;
    this.matched.parent++;
    return this.#found(seg.pack[k]!, seg.entry[k]!);
  }

  #found(pack: number, entry: number): number {
    this.#foundPack = pack;
    this.#foundEntry = entry;
    return 0;
  }

  /** The ordinal of a pack that is not this backup's, noting where its fingerprints are. */
  #ordinalOf(hash: string, file: string | undefined): number {
    let ordinal = this.#ordinals.get(hash);
    if (ordinal === undefined) {
      ordinal = this.packs.push(hash) - 1;
      this.#ordinals.set(hash, ordinal);
    }
    if (file !== undefined) this.#hints[ordinal] ??= file;
    return ordinal;
  }

  /** Loads the window around segment `seg` and drops the segments outside it. */
  async #load(t: ParentTable, seg: number): Promise<void> {
    for (const [s, old] of [...t.segments]) {
      if (s >= seg - 1 && s <= seg + 1) continue;
      t.segments.delete(s);
      this.#spare.push(old);
    }
    for (let s = seg - 1; s <= seg + 1; s++) {
      if (s >= 0 && s * SEGMENT < t.total && !t.segments.has(s)) t.segments.set(s, await this.#segment(t, s));
    }
  }

  async #segment(t: ParentTable, s: number): Promise<Segment> {
    const first = s * SEGMENT;
    const n = Math.min(SEGMENT, t.total - first);
    const seg: Segment = this.#spare.pop() ?? {
      lo: new Uint32Array(SEGMENT), hi: new Uint32Array(SEGMENT), pack: new Int32Array(SEGMENT), entry: new Uint32Array(SEGMENT),
      slots: new Int32Array(2 * SEGMENT),
    };
    seg.pack.fill(-1);
    seg.slots.fill(0);
    // The range holding position `first`: the last start ≤ first.
    let r = 0;
    let hiR = t.starts.length - 1;
    while (r < hiR) {
      const mid = (r + hiR + 1) >> 1;
      if (t.starts[mid]! <= first) r = mid;
      else hiR = mid - 1;
    }
    const parent = t.parent;
    for (let k = 0; k < n && r < t.table.chunks.length; r++) {
      const [p, firstEntry, count] = t.table.chunks[r]!;
      const skip = first + k - t.starts[r]!;
      const take = Math.min(count - skip, n - k);
      const hash = parent.packs[p]!;
      // A pack that was lost is not referred to: its chunks are stored again (which recreates it).
      const located = (await this.#exists(hash)) ? await this.#fingerprints(hash, parent.index?.[parent.packIndex?.[p] ?? -1]) : undefined;
      if (located) {
        const ordinal = this.#ordinalOf(hash, located.file);
        const fps = located.fps;
        for (let i = 0; i < take; i++) {
          const e = firstEntry + skip + i;
          if (FINGERPRINT_BYTES * (e + 1) > fps.length) continue; // beyond the index's count: unknown
          seg.lo[k + i] = fps.readUInt32LE(FINGERPRINT_BYTES * e);
          seg.hi[k + i] = fps.readUInt32LE(FINGERPRINT_BYTES * e + 4);
          seg.pack[k + i] = ordinal;
          seg.entry[k + i] = e;
        }
      }
      k += take;
    }
    const mask = seg.slots.length - 1;
    for (let k = 0; k < n; k++) {
      if (seg.pack[k]! < 0) continue;
      let slot = seg.lo[k]! & mask;
      while (seg.slots[slot] !== 0) slot = (slot + 1) & mask;
      seg.slots[slot] = k + 1;
    }
    return seg;
  }

  /**
   * Whether pack `hash` is in the store (asked once per pack: one stat). On a remote store it is not
   * asked (a HEAD a pack): the parent is named by the snapshot list read under the backup's shared
   * lock, and packs are deleted only by prune, under the exclusive lock, which rewrites the list from
   * the manifests before it lets go; so the packs of a listed snapshot exist unless the repository is
   * damaged, which verify reports.
   */
  async #exists(hash: string): Promise<boolean> {
    if (this.#repo.store.capabilities.remote) return true;
    let known = this.#present.get(hash);
    if (known === undefined) {
      known = await this.#repo.store.has(`packs/${hash.slice(0, 2)}/${hash}`);
      this.#present.set(hash, known);
    }
    return known;
  }

  /**
   * The fingerprints of pack `hash` (8 bytes an entry): from the index file its manifest names, else
   * from whichever index file lists it (searched once, remembering only the parent's packs).
   */
  async #fingerprints(hash: string, hint: string | undefined): Promise<{ file: string; fps: Buffer } | undefined> {
    if (hint) {
      const fps = (await this.#file(hint))?.get(hash);
      if (fps) return { file: hint, fps };
    }
    if (!this.#located) await this.#locate();
    const file = this.#located!.get(hash);
    const fps = file ? (await this.#file(file))?.get(hash) : undefined;
    return fps && file ? { file, fps } : undefined;
  }

  /** Reads every candidate index file once, noting which lists each of the parent's packs. */
  async #locate(): Promise<void> {
    const wanted = new Set(this.#parents.flatMap((p) => p.packs));
    const located = new Map<string, string>();
    let files = this.#candidates;
    if (!files) {
      files = [];
      for await (const { key } of listObjects(this.#repo.store, 'index/')) files.push(key.slice('index/'.length));
    }
    for (const file of files) {
      const packs = await this.#file(file);
      for (const hash of packs?.keys() ?? []) if (wanted.has(hash) && !located.has(hash)) located.set(hash, file);
    }
    this.#located = located;
  }

  /** Index file `file` decoded (fingerprints only), or null when it is missing or damaged (a cache). */
  async #file(file: string): Promise<Map<string, Buffer> | null> {
    const cached = this.#files.get(file);
    if (cached !== undefined) {
      this.#files.delete(file);
      this.#files.set(file, cached);
      return cached;
    }
    let packs: Map<string, Buffer> | null = null;
    try {
      const decoded = await decodeIndex(file, await this.#repo.store.get(indexKey(file), { maxBytes: maxIndexFileBytes(this.#repo) }));
      packs = new Map();
      for (const pack of decoded) packs.set(pack.hash, fingerprintsOf(pack.chunkIds, pack.idBytes ?? 32));
    } catch (err) {
      if (!(err instanceof NotFoundError || err instanceof ScriptoriumError)) throw err;
    }
    if (this.#files.size >= FILE_CACHE) {
      const oldest = this.#files.keys().next().value as string;
      for (const fps of this.#files.get(oldest)?.values() ?? []) this.#dropped += fps.length;
      this.#files.delete(oldest);
      // Decoded files outlive minor collections: collect beside the backup every few of them.
      if (this.#dropped >= 4 << 20) {
        this.#dropped = 0;
        collectSoon();
      }
    }
    this.#files.set(file, packs);
    return packs;
  }

  /** Loads the fingerprints of index files no listed snapshot names (interrupted backups'), up to ORPHANS. */
  async #loadOrphans(list: SnapshotList, parents: Snapshot[], blind: boolean, remote: boolean): Promise<void> {
    const known = new Set(blind ? [] : [...list.index, ...parents.flatMap((p) => p.index ?? [])]);
    const loaded = new Set<string>();
    // Blind (see BLIND_ORPHANS): the listed index files first, newest snapshot's last in the list.
    for (const file of blind ? [...list.index].reverse() : []) {
      if (this.#orphans.full) return;
      loaded.add(file);
      await this.#loadOrphanFile(file);
    }
    if (remote) return;
    for await (const { key } of listObjects(this.#repo.store, 'index/')) {
      const file = key.slice('index/'.length);
      if (known.has(file) || loaded.has(file) || this.#orphans.full) continue;
      await this.#loadOrphanFile(file);
    }
  }

  async #loadOrphanFile(file: string): Promise<void> {
    const packs = await this.#file(file);
    for (const [hash, fps] of packs ?? []) {
      // On a remote store only the listed snapshots' index files are read here (see open): their packs exist.
      if (!this.#repo.store.capabilities.remote && !(await this.#repo.store.has(`packs/${hash.slice(0, 2)}/${hash}`))) continue;
      const ordinal = this.#ordinalOf(hash, file);
      for (let e = 0; FINGERPRINT_BYTES * (e + 1) <= fps.length; e++) this.#orphans.add(fps, FINGERPRINT_BYTES * e, ordinal, e);
    }
  }
}

function probe(seg: Segment, lo: number, hi: number): number {
  const mask = seg.slots.length - 1;
  for (let s = lo & mask; ; s = (s + 1) & mask) {
    const k = seg.slots[s]! - 1;
    if (k < 0) return -1;
    if (seg.lo[k] === lo && seg.hi[k] === hi) return k;
  }
}

/** 8-byte fingerprints from ids of `step` bytes each (a view when they are fingerprints already). */
function fingerprintsOf(ids: Buffer, step: number): Buffer {
  if (step === FINGERPRINT_BYTES) return ids;
  const out = Buffer.allocUnsafe((ids.length / step) * FINGERPRINT_BYTES);
  for (let i = 0, o = 0; i < ids.length; i += step, o += FINGERPRINT_BYTES) ids.copy(out, o, i, i + FINGERPRINT_BYTES);
  return out;
}

async function existingSnapshot(repo: Repository, id: string): Promise<Snapshot | undefined> {
  try {
    return await repo.snapshot(id);
  } catch (err) {
    if (err instanceof NotFoundError || err instanceof ScriptoriumError) return undefined; // forgotten, or damaged: not a parent
    throw err;
  }
}

/**
 * The parents from the snapshot list: the best candidate (newest of this host and source, else newest),
 * and, when it is not of this source, also the one whose row count is nearest `rows` (the oldest of
 * equals): a copy of a database under a new name is most often a copy of one that was backed up, and
 * not necessarily of the newest snapshot (measured: the benchmark's scenarios).
 */
async function parentsFromList(repo: Repository, list: SnapshotList, host: string, source: string, rows?: number): Promise<Snapshot[]> {
  const candidates = parentCandidates(list, host, source);
  const parents: Snapshot[] = [];
  for (const candidate of candidates) {
    const snap = await existingSnapshot(repo, candidate.id);
    if (snap && snap.version === 2) {
      parents.push(snap);
      break;
    }
  }
  const first = parents[0];
  if (!first || rows === undefined || (first.host === host && first.source === source)) return parents;
  const near = candidates
    .filter((c) => c.id !== first.id && c.rows !== undefined)
    .sort((a, b) => Math.abs(a.rows! - rows) - Math.abs(b.rows! - rows) || a.time.localeCompare(b.time));
  for (const candidate of near.slice(0, 4)) {
    const snap = await existingSnapshot(repo, candidate.id);
    if (snap && snap.version === 2) {
      parents.push(snap);
      break;
    }
  }
  return parents;
}

/** Whether `a` is a better parent than `b`: of this host and source, then newer. */
function better(a: Snapshot, b: Snapshot, host: string, source: string): boolean {
  const same = (s: Snapshot): number => (s.host === host && s.source === source ? 1 : 0);
  return same(a) - same(b) > 0 || (same(a) === same(b) && (a.time.localeCompare(b.time) > 0 || (a.time === b.time && a.id > b.id)));
}

/** Without a snapshot list: the best parent in `snapshots/` (see {@link better}), reading one manifest at a time. */
async function parentFromListing(repo: Repository, host: string, source: string): Promise<Snapshot | undefined> {
  let best: Snapshot | undefined;
  for (const id of await repo.snapshotIds()) {
    const snap = await existingSnapshot(repo, id);
    if (!snap || snap.version !== 2) continue;
    if (!best || better(snap, best, host, source)) best = snap;
  }
  return best;
}
