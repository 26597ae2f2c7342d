/**
 * The packs a reader of a snapshot keeps open (decompressed), bounded by bytes and evicted by next use.
 *
 * A restore knows from the manifest, before it reads anything, the order in which it will ask for
 * packs. So the cache evicts as Belady's rule says: when it is over its budget, the open pack whose
 * next use is farthest (or never) goes; a pack the reader will not ask for again is dropped as soon as
 * the reader moves on to another pack. A first snapshot's packs each come once: one is held at a time.
 * An incremental snapshot's chunks alternate between old packs and new ones, and after several
 * snapshots of scattered changes between many: a WAL ledger's fifth snapshot (80k rows, 14 packs,
 * 6,124 switches between packs) opened 6,124 packs with one pack's worth, 2,338 with two, 811 with
 * three (the LRU of three this replaces: 1,009), 232 with four and 14 (each once) with six, each
 * opening a decompression of a whole pack (~6 ms here). The default, four packs' worth, is spent only
 * on packs that will be read again: where snapshots do not interleave it holds one.
 *
 * Without an order (diff), the cache evicts the least recently used pack, within its budget.
 */
import { collectAll, GarbageGate } from '../core/memory.js';
import { BufferPool } from './compression.js';
import { maxPackBytes } from './objects.js';
import { Pack, packBufferBytes, packKey } from './pack.js';
import type { Repository } from './repository.js';

/** Packs a {@link PackCache} downloads ahead of the reader on a remote store. */
const READ_AHEAD = 2;

/** Packs' worth of bytes a cache keeps by default (see the file's comment for why four). */
export const DEFAULT_PACKS = 4;

/** A next use that never comes. */
const NEVER = Number.MAX_SAFE_INTEGER;
/** NEVER in the table of next uses (positions are below it: a manifest cannot name 2^31 ranges here). */
const NO_NEXT = 0x7fffffff;

export interface PackCacheOptions {
  /**
   * Pack bodies live in pooled memory that an evicted pack gives back for the next one (no large
   * garbage buffer per pack): a caller must then be done with every view of a pack before it asks for
   * a pack that is not in the cache (which may evict it), and must call {@link PackCache.close} at the end.
   */
  recycle?: boolean;
  /** Packs whose body is larger stay compressed (Pack.lazy), for readers of pieces. */
  lazyAbove?: number;
  /**
   * The packs in the order the reader will ask for them (a run of one pack may be named once or
   * repeated): eviction by next use, and (with `recycle`, on a remote store) the next {@link READ_AHEAD}
   * are downloaded while the current one is read (latency, not bandwidth, is what a restore from S3
   * waits for), so at most that many files more are in memory. A pack asked for out of this order is
   * served all the same, as one not used again.
   */
  order?: Iterable<string>;
  /**
   * Bytes of open packs ({@link Pack.heldBytes}) to keep at most (default: four packs' worth of the
   * repository's pack size, or of the largest pack opened if larger, up to four times the pack size);
   * a pack larger than the pack size may add its excess while it is opened (see
   * {@link PackCacheStats.peakHeldBytes}).
   */
  budgetBytes?: number;
  /**
   * Packs larger than this are not downloaded ahead (the read is refused from its length before its
   * body, and the pack is read when asked for): for a reader that reads such packs in pieces.
   */
  aheadMaxBytes?: number;
}

/** What a {@link PackCache} did, for tests and measurements. */
export interface PackCacheStats {
  /** Packs opened: each a read of its file from the store and a decompression. */
  opened: number;
  /** Bytes of the packs open now. */
  heldBytes: number;
  /**
   * The most bytes of open packs at any moment, counting a pack being opened once it is: at most
   * `budgetBytes`, plus what the pack being opened takes beyond `expectedBytes` (room for one of those
   * is made before it is read, when its size is not known yet; the others go once it is).
   */
  peakHeldBytes: number;
  /** The most bytes one pack held. */
  largestPackBytes: number;
  /** The budget (by default it follows largestPackBytes, see {@link PackCacheOptions.budgetBytes}). */
  budgetBytes: number;
  /** Bytes a pack is expected to hold (the pooled buffer of the repository's pack size). */
  expectedBytes: number;
}

interface OpenPack {
  pack: Promise<Pack>;
  /** {@link Pack.heldBytes} once opened, 0 before. */
  bytes: number;
  /** Position in the order of the pack's next use (NEVER: none; in unordered mode always NEVER). */
  next: number;
  /** When it was last asked for (a tie-break, and the rule without an order). */
  used: number;
}

/**
 * Opened packs for reading snapshots, bounded by {@link PackCacheOptions.budgetBytes} and evicted by
 * next use (see the file's comment). Contract: one reader, which awaits each {@link get} before the next.
 */
export class PackCache {
  readonly #repo: Repository;
  /** The budget given, or undefined for {@link DEFAULT_PACKS} packs' worth (see {@link #budget}). */
  readonly #fixedBudget: number | undefined;
  /** Bytes a pack is expected to take before it is opened (the pooled buffer of the pack size). */
  readonly #expected: number;
  readonly #open = new Map<string, OpenPack>();
  readonly #pool: BufferPool | undefined;
  readonly #gate: GarbageGate | undefined;
  readonly #lazyAbove: number;
  /** The order as pack numbers (#ids), a run of one pack once, and each position's next use of its pack. */
  readonly #ids = new Map<string, number>();
  readonly #names: string[] = [];
  readonly #order: Int32Array;
  /** For each position, the next position of the same pack, or NO_NEXT. */
  readonly #next: Int32Array;
  #at = -1;
  #clock = 0;
  #held = 0;
  #peak = 0;
  #largest = 0;
  #opened = 0;
  readonly #readAhead: boolean;
  readonly #ahead = new Map<string, Promise<Buffer | undefined>>();
  readonly #aheadMaxBytes: number;

  constructor(repo: Repository, options: PackCacheOptions = {}) {
    this.#repo = repo;
    this.#aheadMaxBytes = Math.min(maxPackBytes(repo.config.packBytes), options.aheadMaxBytes ?? Infinity);
    this.#expected = packBufferBytes(repo.config.packBytes);
    this.#fixedBudget = options.budgetBytes;
    this.#lazyAbove = options.lazyAbove ?? Infinity;
    // 8 bytes a switch between packs, built as the order is iterated (no array of names beside it).
    let runs = new Int32Array(1024);
    let length = 0;
    for (const hash of options.order ?? []) {
      let id = this.#ids.get(hash);
      if (id === undefined) {
        this.#ids.set(hash, (id = this.#names.length));
        this.#names.push(hash);
      }
      if (length > 0 && runs[length - 1] === id) continue;
      if (length === runs.length) {
        const grown = new Int32Array(2 * runs.length);
        grown.set(runs);
        runs = grown;
      }
      runs[length++] = id;
    }
    this.#order = runs.slice(0, length);
    this.#next = nextUses(this.#order, this.#ids.size);
    this.#readAhead = options.recycle === true && repo.store.capabilities.remote === true && this.#order.length > 0;
    if (options.recycle) {
      // One free buffer: a pack is opened after the one it replaces was evicted, and takes its buffer.
      // More would idle beside the open packs (packs dropped together, an oversized pack's larger
      // buffer), outside the budget.
      this.#pool = new BufferPool(1);
      // Each compressed file read is garbage once opened: collect it at once, and the heap fully every
      // few megabytes of files (about 16 packs; measured: 4 MiB less at the peak of a restore, same time).
      this.#gate = new GarbageGate(1, 8 << 20);
    }
  }

  /**
   * Bytes of open packs to keep: the budget given, or DEFAULT_PACKS packs' worth, of the largest pack
   * opened so far if that is larger than the pack size (a pack may overshoot it by a batch of rows;
   * as many such packs must fit as of the pack size), but never counting more than four times the pack size
   * (what the pool takes back: a larger pack is one huge value's, which holds its own memory and is
   * never held beside another as a matter of course).
   */
  get #budget(): number {
    return this.#fixedBudget ?? DEFAULT_PACKS * Math.max(this.#expected, Math.min(this.#largest, 4 * this.#expected));
  }

  get stats(): PackCacheStats {
    return { opened: this.#opened, heldBytes: this.#held, peakHeldBytes: this.#peak, largestPackBytes: this.#largest, budgetBytes: this.#budget, expectedBytes: this.#expected };
  }

  get(hash: string): Promise<Pack> {
    const next = this.#advance(hash);
    this.#startReadAhead();
    const open = this.#open.get(hash);
    if (open) {
      open.next = next;
      open.used = ++this.#clock;
      return open.pack;
    }
    // The reader is done with the views of every other pack: make room for this one before it is read.
    this.#makeRoom(hash, this.#expected);
    const entry: OpenPack = { pack: undefined as unknown as Promise<Pack>, bytes: 0, next, used: ++this.#clock };
    entry.pack = this.load(hash).then(
      (pack) => {
        this.#opened++;
        if (this.#open.get(hash) !== entry) return pack; // closed meanwhile: its eviction releases it
        entry.bytes = pack.heldBytes;
        this.#largest = Math.max(this.#largest, entry.bytes);
        this.#held += entry.bytes;
        this.#peak = Math.max(this.#peak, this.#held);
        this.#makeRoom(hash, 0); // a pack larger than expected pushes others out
        return pack;
      },
      (err: unknown) => {
        if (this.#open.get(hash) === entry) this.#open.delete(hash);
        throw err;
      },
    );
    this.#open.set(hash, entry);
    return entry.pack;
  }

  /**
   * Empties the cache; with `recycle`, also lets go of the pooled memory and collects it at once, so
   * that what follows (index builds after a restore) does not add to it.
   */
  async close(): Promise<void> {
    const open = [...this.#open.values()].map((e) => e.pack);
    for (const hash of [...this.#open.keys()]) this.#evict(hash);
    for (const pack of open) await pack.then(() => undefined, () => undefined); // released once opened
    const ahead = [...this.#ahead.values()];
    this.#ahead.clear();
    await Promise.all(ahead);
    if (!this.#pool) return;
    this.#pool.clear();
    collectAll();
  }

  /**
   * Reads and opens pack `hash` (checked against its name), reading at most `maxBytes` of its file
   * when given (a size known before, which the file must still have). A subclass may open some packs
   * another way; the cache accounts for whatever Pack it returns.
   */
  protected async load(hash: string, maxBytes?: number): Promise<Pack> {
    const { store, config } = this.#repo;
    const bound = Math.min(maxPackBytes(config.packBytes), maxBytes ?? Infinity);
    if (!this.#pool) return Pack.open(hash, await store.get(packKey(hash), { maxBytes: bound }), config.packBytes);
    const early = this.#ahead.get(hash);
    this.#ahead.delete(hash);
    const file = (await early) ?? await store.get(packKey(hash), { maxBytes: bound });
    const pack = await Pack.open(hash, file, config.packBytes, this.#pool, this.#lazyAbove);
    this.#gate!.add(file.length);
    return pack;
  }

  /** Moves the reader's position to its use of `hash`; returns the position of the next use after it. */
  #advance(hash: string): number {
    const id = this.#ids.get(hash);
    if (id === undefined) return NEVER; // unordered, or a pack outside the order
    const order = this.#order;
    if (this.#at >= 0 && order[this.#at] === id) return this.#nextAt(this.#at);
    let at = order[this.#at + 1] === id ? this.#at + 1 : order.indexOf(id, this.#at + 1);
    if (at < 0) at = order.indexOf(id); // asked for again, out of order: its first use
    this.#at = at;
    return this.#nextAt(at);
  }

  #nextAt(at: number): number {
    const next = this.#next[at]!;
    return next === NO_NEXT ? NEVER : next;
  }

  /**
   * Evicts, except `keep`: the packs not used again (in ordered mode), then, while the open packs and
   * `more` bytes exceed the budget, the one used farthest ahead (the least recently used on a tie).
   */
  #makeRoom(keep: string, more: number): void {
    const ordered = this.#order.length > 0;
    for (;;) {
      let victim: string | undefined;
      let victimNext = -1;
      let victimUsed = Infinity;
      for (const [hash, open] of this.#open) {
        if (hash === keep) continue;
        const next = ordered ? this.#nextUse(hash, open) : NEVER;
        if (ordered && next === NEVER) {
          victim = hash;
          break;
        }
        if (next > victimNext || (next === victimNext && open.used < victimUsed)) {
          victim = hash;
          victimNext = next;
          victimUsed = open.used;
        }
      }
      if (victim === undefined) return;
      const never = ordered && this.#nextUse(victim, this.#open.get(victim)!) === NEVER;
      if (!never && this.#held + more <= this.#budget) return;
      this.#evict(victim);
    }
  }

  /** An open pack's next use from the reader's position (the recorded one, unless the reader passed it by). */
  #nextUse(hash: string, open: OpenPack): number {
    if (open.next > this.#at) return open.next;
    const id = this.#ids.get(hash);
    const at = id === undefined ? -1 : this.#order.indexOf(id, this.#at + 1);
    open.next = at < 0 ? NEVER : at;
    return open.next;
  }

  /** Starts downloading the packs that follow the reader's position (see {@link PackCacheOptions.order}). */
  #startReadAhead(): void {
    if (!this.#readAhead || this.#at < 0) return;
    for (let i = this.#at + 1; i < this.#order.length && i <= this.#at + READ_AHEAD; i++) {
      const next = this.#names[this.#order[i]!]!;
      if (this.#open.has(next) || this.#ahead.has(next)) continue;
      this.#download(next);
    }
  }

  /**
   * Starts downloading `hash` itself now, as the read-ahead would (only where it would: on a remote
   * store with a reading order, and unless it is open or on its way already): for a subclass that asks
   * the store about the pack before reading it, so that the store learns its size from this download's
   * answer instead of a request of its own.
   */
  protected prefetch(hash: string): void {
    if (!this.#readAhead || this.#open.has(hash) || this.#ahead.has(hash)) return;
    this.#download(hash);
  }

  #download(hash: string): void {
    // A failed read-ahead is forgotten: the pack is read again when asked for, and that read reports.
    this.#ahead.set(hash, this.#repo.store.get(packKey(hash), { maxBytes: this.#aheadMaxBytes }).catch(() => undefined));
  }

  #evict(hash: string): void {
    const open = this.#open.get(hash);
    if (!open) return;
    this.#open.delete(hash);
    this.#held -= open.bytes;
    open.pack.then((p) => p.release(), () => undefined);
  }
}

/** For each position of `order`, the position of the next use of the same pack, NO_NEXT when none. */
function nextUses(order: Int32Array, packs: number): Int32Array {
  const next = new Int32Array(order.length);
  const seen = new Int32Array(packs).fill(NO_NEXT);
  for (let i = order.length - 1; i >= 0; i--) {
    next[i] = seen[order[i]!]!;
    seen[order[i]!] = i;
  }
  return next;
}
