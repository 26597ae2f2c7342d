/**
 * Reads a snapshot's tables back as row batches, checking every pack against its name and every
 * table against its digest. Damage is reported as a RepositoryIntegrityError naming the snapshot,
 * table and chunk.
 */
import { createHash } from 'node:crypto';
import type { RowBatch } from '../core/encoding.js';
import { ScriptoriumError } from '../core/errors.js';
import type { ChunkIndex } from './chunk-index.js';
import { RepositoryIntegrityError, type Problem } from './errors.js';
import type { Snapshot, TableEntry } from './manifest.js';
import type { Pack } from './pack.js';
import type { PackCache, Repository } from './repository.js';

/**
 * A batch of rows, or (with `pieces`, from a lazy pack: see {@link Pack.lazy}) one chunk of `rows`
 * rows too large to hold, in pieces that must be read to their end before the next batch is asked for.
 */
export interface TableBatch extends RowBatch {
  pieces?: AsyncIterable<Buffer>;
}

/** A chunk of a lazy pack at least this large is handed on in pieces (one holding a large value). */
export const STREAMED_CHUNK_BYTES = 8 << 20;

async function* hashed(pieces: AsyncIterable<Buffer>, digest: ReturnType<typeof createHash> | undefined): AsyncGenerator<Buffer> {
  for await (const piece of pieces) {
    digest?.update(piece);
    yield piece;
  }
}

async function collect(pieces: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const piece of pieces) parts.push(Buffer.from(piece));
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/**
 * The packs `entries` are read from by {@link readTable}, in reading order (a run of one pack named
 * once), yielded as the manifest is walked: a PackCache's `order`, for eviction by next use and read-ahead.
 */
export function* packOrder(snapshot: Snapshot, entries: readonly TableEntry[]): Generator<string> {
  let last: string | undefined;
  for (const entry of entries) {
    for (const [p] of entry.chunks) {
      const hash = snapshot.packs[p]!;
      if (hash !== last) yield hash;
      last = hash;
    }
  }
}

/** Rows per batch handed to a target (about what the engine reads per batch). */
const BATCH_ROWS = 2000;
const BATCH_BYTES = 1 << 20;

/** The chunk hash for messages: from the index when it can be loaded, else `<pack>#<entry>`. */
export async function chunkName(repo: Repository, pack: string, entry: number, index?: ChunkIndex): Promise<string> {
  try {
    const idx = index ?? (await repo.loadIndex());
    const ordinal = idx.packOrdinal(pack);
    const hash = ordinal >= 0 ? idx.chunkAt(ordinal, entry) : undefined;
    if (hash) return hash;
  } catch {
    // fall through to the positional name
  }
  return `${pack.slice(0, 16)}#${entry}`;
}

/**
 * Yields the rows of `table` in `snapshot` as batches (row encodings joined by `\n`), then checks the
 * table's row count and (unless `checkDigest` is false, for a caller that re-digests what it loaded)
 * its digest. Every pack is checked against its name as it is read. Throws RepositoryIntegrityError
 * (E_CORRUPT or E_DIGEST_MISMATCH).
 */
export async function* readTable(
  repo: Repository,
  cache: PackCache,
  snapshot: Snapshot,
  table: TableEntry,
  operation: string,
  checkDigest = true,
): AsyncGenerator<TableBatch> {
  const digest = checkDigest ? createHash('sha256') : undefined;
  // A batch is views of one pack (`parts`), or, once it spans packs, a copy in `carry`: the cache may
  // recycle a pack's memory when another pack is opened, so no view outlives the switch to a new pack.
  let parts: Buffer[] = [];
  let partsPack: string | undefined;
  let carry = Buffer.alloc(0);
  let carried = 0;
  let bytes = 0;
  let rows = 0;
  let total = 0;
  let totalBytes = 0;
  const toCarry = (): void => {
    if (carried + bytes > carry.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * carry.length, carried + bytes, 64 << 10));
      carry.copy(grown, 0, 0, carried);
      carry = grown;
    }
    for (const part of parts) carried += part.copy(carry, carried);
    parts = [];
    bytes = 0;
  };
  const batch = (): RowBatch => {
    let data: Buffer;
    if (carried === 0 && parts.length === 1) data = parts[0];
    else {
      toCarry();
      data = carry.subarray(0, carried);
    }
    const out = { data: data.subarray(0, data.length - 1), rows };
    parts = [];
    bytes = 0;
    carried = 0;
    rows = 0;
    return out;
  };
  for (const [p, first, count] of table.chunks) {
    const packHash = snapshot.packs[p];
    if (parts.length > 0 && packHash !== partsPack) toCarry();
    let pack: Pack;
    try {
      pack = await cache.get(packHash);
      if (first + count > pack.entries) pack.chunk(first + count - 1); // throws: no such entry
    } catch (err) {
      if (!(err instanceof ScriptoriumError)) throw err;
      // A store that could not be read (a network that kept failing) is not a damaged repository.
      if (err.code === 'E_IO' || err.code === 'E_NO_SPACE') throw err;
      const entry = err.code === 'E_CORRUPT' && /no entry/.test(err.message) ? first + count - 1 : first;
      const chunk = await chunkName(repo, packHash, entry);
      const message = err.code === 'E_NOT_FOUND' ? `pack ${packHash.slice(0, 16)} is missing` : err.message;
      throw new RepositoryIntegrityError([{ code: err.code === 'E_AUTH' ? 'E_AUTH' : 'E_CORRUPT', message, snapshot: snapshot.id, table: table.name, chunk, pack: packHash }], operation);
    }
    partsPack = packHash;
    // Consecutive entries lie back to back in the pack: hand them on as views, in batch-sized spans.
    for (let e = first, end = first + count; e < end; ) {
      if (pack.lazy && pack.size(e) >= STREAMED_CHUNK_BYTES) {
        // A chunk of a huge row: in pieces as they are decompressed, never whole.
        if (rows > 0 || carried > 0 || parts.length > 0) {
          total += rows;
          yield batch();
        }
        const n = pack.rows(e);
        totalBytes += pack.size(e);
        total += n;
        yield { data: Buffer.alloc(0), rows: n, pieces: hashed(pack.spanPieces(e, e + 1), digest) };
        e++;
        continue;
      }
      let stop = e;
      while (stop < end && rows < BATCH_ROWS && carried + bytes < BATCH_BYTES && !(pack.lazy && pack.size(stop) >= STREAMED_CHUNK_BYTES)) {
        rows += pack.rows(stop);
        const size = pack.size(stop);
        bytes += size;
        totalBytes += size;
        stop++;
      }
      const data = pack.lazy ? await collect(pack.spanPieces(e, stop)) : pack.span(e, stop);
      digest?.update(data);
      parts.push(data);
      e = stop;
      if (rows >= BATCH_ROWS || carried + bytes >= BATCH_BYTES) {
        total += rows;
        yield batch();
      }
    }
  }
  total += rows;
  if (rows > 0) yield batch();
  const actual = digest?.digest('hex') ?? table.sha256;
  const problems: Problem[] = [];
  if (actual !== table.sha256) {
    problems.push({ code: 'E_DIGEST_MISMATCH', snapshot: snapshot.id, table: table.name, message: `digest ${actual.slice(0, 16)}… does not match the manifest's ${table.sha256.slice(0, 16)}…` });
  } else if (total !== table.rows) {
    problems.push({ code: 'E_DIGEST_MISMATCH', snapshot: snapshot.id, table: table.name, message: `${total} rows read, the manifest says ${table.rows}` });
  } else if (totalBytes !== table.bytes) {
    problems.push({ code: 'E_CORRUPT', snapshot: snapshot.id, table: table.name, message: `${totalBytes} bytes of chunks read, the manifest says ${table.bytes}` });
  }
  if (problems.length > 0) throw new RepositoryIntegrityError(problems, operation);
}
