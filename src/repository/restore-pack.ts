/**
 * Restore's reading of a pack too large to hold (one ending in the chunk of a huge value): the file
 * is read from the store in pieces ({@link Store.getPieces}), never whole, compressed or not. A first
 * pass hashes the file against its name and measures its body (decompressed in pieces, only its end
 * kept, as {@link measurePack} does for every oversized pack) before anything of it is used; each read
 * of its entries then reads the file again, decompressing in pieces, and checks the name once more
 * when it ends, so that a file swapped between the two reads fails the restore (E_CORRUPT) before the
 * target is replaced (and restore's table digests would refuse it too). A 200 MB BLOB that does not
 * compress restored at 477 MB peak RSS holding its pack; in pieces the pack costs a few MiB.
 *
 * In an encrypted repository the SealedStore opens such a pack frame by frame (openObjectPieces: each
 * frame is used only once its tag is checked). Stores without getPieces are read whole, as before. On S3,
 * the pieces are ranged GETs, and the size asked for first comes from the read-ahead's GET (no HEAD).
 */
import { createHash } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { IntegrityError } from '../core/errors.js';
import { collectSoon } from '../core/memory.js';
import { CODEC_IDS, zstdBinding } from './compression.js';
import { MAGIC } from './object-file.js';
import { maxPackBytes } from './objects.js';
import { maxPackBody, measurePack, Pack, packKey } from './pack.js';
import { PackCache, type PackCacheOptions } from './pack-cache.js';
import type { Repository } from './repository.js';

/**
 * A pack file at least this large (and larger than four packs) is read in pieces by restore. 16 MiB,
 * the size above which backup spills a row: a value of 32 MB in a gzip repository (a 35 MB file) was
 * held whole at 32 MiB, and its restore peaked at 238 MB, above 1.5 × the value + 100 MB.
 */
export const STREAMED_PACK_FILE_BYTES = 16 << 20;

/**
 * Bytes of body above which a pack of a repository of `packBytes` is read lazily (left compressed, its
 * huge chunk handed on in pieces): 16 MiB, or four packs' worth for a repository of large packs (whose
 * every pack read lazily would be decompressed again for each span of its entries).
 */
export function lazyPackBytes(packBytes: number): number {
  return Math.max(16 << 20, 4 * packBytes);
}
/** Bytes per piece read from the store. */
const FILE_PIECE_BYTES = 4 << 20;
/** Bytes per decompressed piece. */
const BODY_PIECE_BYTES = 1 << 20;
/** Bytes of gzip's output pieces between two collections of the ones already used. */
const GUNZIP_COLLECT_BYTES = 16 << 20;

/**
 * A PackCache whose huge packs are read in pieces from the store (see the file's comment); every other
 * pack is read whole, as PackCache does. Which is which is decided by the pack file's size, taken from
 * `sizes` (what checkSnapshot saw when it looked for each pack: no second stat per pack) or, for a pack
 * not in it, asked of the store. A size is a hint, never trusted: a pack read whole is read with the
 * size as its bound, so a file that has grown since is refused unread (E_CORRUPT), and one that changed
 * otherwise fails its name's check, as does any file a pack's name does not match.
 */
export class StreamingPackCache extends PackCache {
  readonly #repo: Repository;
  readonly #lazyAbove: number;
  readonly #sizes: ReadonlyMap<string, number> | undefined;

  constructor(repo: Repository, options: PackCacheOptions & { lazyAbove: number; sizes?: ReadonlyMap<string, number> }) {
    // A pack that may be read in pieces is never downloaded whole ahead of its reader (a remote store's
    // read-ahead): the read is refused from its length, which the store then knows for stat.
    super(repo, repo.store.getPieces ? { ...options, aheadMaxBytes: STREAMED_PACK_FILE_BYTES - 1 } : options);
    this.#repo = repo;
    this.#lazyAbove = options.lazyAbove;
    this.#sizes = options.sizes;
  }

  protected override async load(hash: string): Promise<Pack> {
    const store = this.#repo.store;
    if (!store.getPieces) return super.load(hash);
    let size = this.#sizes?.get(hash);
    if (size === undefined) {
      // On a remote store (no sizes given) the download starts first: its answer gives the size, and
      // stat needs no request of its own.
      this.prefetch(hash);
      size = (await store.stat(packKey(hash))).size;
    }
    if (size < STREAMED_PACK_FILE_BYTES || size < 4 * this.#repo.config.packBytes) return super.load(hash, size);
    return (await this.#openStreamed(hash)) ?? super.load(hash);
  }

  /** The pack read in pieces, or undefined when its body is small enough to be read whole after all. */
  async #openStreamed(hash: string): Promise<Pack | undefined> {
    const { config } = this.#repo;
    const key = packKey(hash);
    const what = `pack ${hash.slice(0, 16)}`;
    const maxBytes = maxPackBytes(config.packBytes);
    const body = (): AsyncIterable<Buffer> => {
      const file = new PackFileReader(this.#repo, key, hash, maxBytes, what);
      return decompressFrom(file.body(), () => file.codecId, what);
    };
    // First pass: the name is checked when the file ends, before the measure is used.
    const { length, table } = await measurePack(body(), what, config.packBytes, maxPackBody(config.packBytes));
    if (!table || length <= this.#lazyAbove) return undefined; // an entry table too large to keep, or a body to hold: read whole
    return Pack.streamed(hash, length, table, body);
  }
}

/**
 * One read of a pack file in pieces: yields the bytes after its 9-byte prefix (magic and codec id);
 * when the file ends, or the reader stops early, the rest is read and hashed, and a file that does not
 * match its name, or is no pack, is E_CORRUPT.
 */
class PackFileReader {
  readonly #repo: Repository;
  readonly #key: string;
  readonly #hash: string;
  readonly #maxBytes: number;
  readonly #what: string;
  #codec = -1;

  constructor(repo: Repository, key: string, hash: string, maxBytes: number, what: string) {
    this.#repo = repo;
    this.#key = key;
    this.#hash = hash;
    this.#maxBytes = maxBytes;
    this.#what = what;
  }

  /** The codec id from the prefix (known once the first piece of the body has been yielded). */
  get codecId(): number {
    return this.#codec;
  }

  async *body(): AsyncGenerator<Buffer> {
    const digest = createHash('sha256');
    const source = this.#repo.store.getPieces!(this.#key, { maxBytes: this.#maxBytes, pieceBytes: FILE_PIECE_BYTES })[Symbol.asyncIterator]();
    let head = Buffer.alloc(0);
    let ended = false;
    try {
      for (;;) {
        const next = await source.next();
        if (next.done) {
          ended = true;
          break;
        }
        let piece = next.value;
        digest.update(piece);
        if (head.length < 9) {
          const take = Math.min(9 - head.length, piece.length);
          head = Buffer.concat([head, piece.subarray(0, take)]);
          piece = piece.subarray(take);
          if (head.length < 9) continue;
          if (!head.subarray(0, 8).equals(MAGIC.pack)) throw new IntegrityError('E_CORRUPT', `${this.#what}: not a pack object of format version 1`);
          this.#codec = head[8]!;
        }
        if (piece.length > 0) yield piece;
      }
    } finally {
      // The reader may stop once it has its entries: the rest (the entry table, mostly) is hashed too.
      while (!ended) {
        const next = await source.next();
        if (next.done) ended = true;
        else digest.update(next.value);
      }
      await source.return?.();
    }
    const actual = digest.digest('hex');
    if (actual !== this.#hash) {
      throw new IntegrityError('E_CORRUPT', `${this.#what}: content does not match its name (damaged, truncated or replaced while read: SHA-256 ${actual.slice(0, 16)}…)`);
    }
    if (head.length < 9) throw new IntegrityError('E_CORRUPT', `${this.#what}: not a pack object of format version 1`);
  }
}

/**
 * Decompresses `input` (pieces that are views valid until the next is asked for) with the codec
 * `codecId()` names (asked once the first piece has arrived), yielding pieces of at most
 * BODY_PIECE_BYTES, each valid until the next is asked for. E_CORRUPT on damage or a truncated frame.
 */
export async function* decompressFrom(input: AsyncIterable<Buffer>, codecId: () => number, what: string): AsyncGenerator<Buffer> {
  const source = input[Symbol.asyncIterator]();
  const first = await source.next();
  if (first.done) return;
  const rest = async function* (): AsyncGenerator<Buffer> {
    yield first.value;
    for (;;) {
      const next = await source.next();
      if (next.done) return;
      yield next.value;
    }
  };
  const codec = codecId();
  try {
    if (codec === CODEC_IDS.none) {
      for await (const piece of rest()) {
        for (let at = 0; at < piece.length; at += BODY_PIECE_BYTES) yield piece.subarray(at, at + BODY_PIECE_BYTES);
      }
    } else if (codec === CODEC_IDS.gzip) {
      yield* gunzipFrom(rest(), what);
    } else if (codec === CODEC_IDS.zstd) {
      yield* unzstdFrom(rest(), what);
    } else {
      throw new IntegrityError('E_CORRUPT', `${what}: unknown codec id ${codec}`);
    }
  } finally {
    await source.return?.();
  }
}

async function* unzstdFrom(input: AsyncIterable<Buffer>, what: string): AsyncGenerator<Buffer> {
  const dctx = new (await zstdBinding()).DCtx();
  const out = Buffer.allocUnsafe(BODY_PIECE_BYTES);
  let inFrame = false;
  const step = (data: Buffer): [Buffer, number] => {
    let ret: number, produced: number, consumed: number;
    try {
      [ret, produced, consumed] = dctx.decompressStream(out, data);
    } catch (err) {
      throw new IntegrityError('E_CORRUPT', `${what}: cannot decompress: ${(err as Error).message}`, { cause: err });
    }
    if (consumed > 0 || produced > 0) inFrame = ret !== 0;
    return [data.subarray(consumed), produced];
  };
  for await (let data of input) {
    // All of a piece is consumed before the next is asked for (it is a view the store reuses).
    for (;;) {
      const [left, produced] = step(data);
      data = left;
      if (produced > 0) yield out.subarray(0, produced);
      if (data.length === 0 && produced < out.length) break; // zstd holds nothing more for this input
    }
  }
  // Flush what zstd still holds.
  for (;;) {
    const [, produced] = step(Buffer.alloc(0));
    if (produced === 0) break;
    yield out.subarray(0, produced);
  }
  if (inFrame) throw new IntegrityError('E_CORRUPT', `${what}: cannot decompress: the frame is truncated`);
}

async function* gunzipFrom(input: AsyncIterable<Buffer>, what: string): AsyncGenerator<Buffer> {
  const gunzip = createGunzip({ chunkSize: BODY_PIECE_BYTES });
  const feed = (async () => {
    for await (const piece of input) {
      // The piece is a view the store reuses for the next one: it is not asked for until zlib has
      // taken this one (write's callback), so it needs no copy (a copy of every piece of a huge pack
      // was garbage the size of the pack, mostly still uncollected at restore's peak).
      await new Promise<void>((resolve, reject) => gunzip.write(piece, (err) => (err ? reject(err) : resolve())));
    }
    gunzip.end();
  })();
  feed.catch((err: unknown) => gunzip.destroy(err as Error));
  try {
    // Each output piece is a new Buffer of zlib's: V8 frees them only when its external memory grows
    // far enough, so a huge value's pieces are collected every GUNZIP_COLLECT_BYTES instead.
    let produced = 0;
    for await (const piece of gunzip) {
      produced += (piece as Buffer).length;
      if (produced >= GUNZIP_COLLECT_BYTES) {
        produced = 0;
        collectSoon();
      }
      yield piece as Buffer;
    }
    await feed;
  } catch (err) {
    if (err instanceof IntegrityError) throw err;
    throw new IntegrityError('E_CORRUPT', `${what}: cannot decompress: ${(err as Error).message}`, { cause: err });
  } finally {
    gunzip.destroy();
  }
}
