/**
 * The fast path of backup: the scriptorium SQLite extension reads a table, encodes its rows as ndjson
 * and cuts them into chunks by the `row-key-v1` rule in C (`scriptorium_chunks`, native/
 * scriptorium_scan.inc), and hashes the chunks and the table when the CPU has SHA instructions, on a
 * thread of its own when the source has a background reader. JavaScript only slices the batches it
 * returns. The chunks are byte for byte those of {@link RowChunker} over the
 * engine's `ndjson` batches (test/repository/native-chunks.test.ts holds the two side by side).
 */
import type Database from 'better-sqlite3';
import { ScriptoriumError } from '../core/errors.js';
import type { TableSchema } from '../core/schema.js';
import type { ChunkerSettings } from './config.js';
import type { RowSource } from './source.js';

/** A run of whole chunks of one table, in row order. */
export interface ChunkBatch {
  /**
   * The chunks' bytes back to back: every row's ndjson encoding followed by `\n`; null when the scan
   * hands its batches to a packer (see native-packer.ts).
   */
  data: Buffer | null;
  rows: number;
  /** Per chunk: u32 length, u32 rows (little-endian). */
  chunks: Buffer;
  /** Per chunk: its SHA-256 (32 bytes), or empty when the caller must hash the chunks (and the table) itself. */
  ids: Buffer;
  /**
   * On the table's last batch, when the extension hashed the chunks: the SHA-256 of every batch's data
   * (the table digest). That batch may hold no rows (always so when a background reader hashed).
   */
  digest: Buffer | null;
}

/**
 * Bytes of rows per batch: big enough that per-batch costs vanish (each batch passes four threads:
 * reader, hasher, this one, the packer), small enough to keep memory flat. 128 KiB with the scan's
 * queues half as deep as for 64 KiB: as much memory queued, half the hand-offs (measured: about 5%
 * faster on the 1M-row demo, same peak RSS).
 */
export const CHUNK_BATCH_BYTES = 128 << 10;

const QUERY = 'SELECT data, rows, chunks, ids, digest FROM scriptorium_chunks(?, ?, ?, ?, ?, ?, ?, ?, ?)';

/**
 * The table's row query, and the one the scan goes on with from its first value above BIG_VALUE_BYTES
 * (values read in pieces, never whole in SQLite), or null when the table's values cannot be (see
 * readsBigValues in row-sql.ts).
 */
async function scanQueries(db: Database.Database, table: TableSchema): Promise<[string, string | null]> {
  const { readsBigValues, rowsQuery } = await import('../engines/sqlite/row-sql.js');
  return [rowsQuery(table), readsBigValues(db, table) ? `${rowsQuery(table, '', true)} LIMIT -1 OFFSET ?1` : null];
}

/**
 * The chunks of `table` read by the extension, or undefined when `source` is not a SQLite source with
 * the extension loaded (or the table is too wide for it): the caller then chunks the engine's batches.
 * With `packer` (a {@link NativePacker}'s handle), the batches' data goes to that packer.
 */
export async function nativeChunks(
  source: RowSource,
  table: TableSchema,
  settings: ChunkerSettings,
  keyValues: number,
  batchBytes = CHUNK_BATCH_BYTES,
  ids = true,
  packer = 0,
): Promise<Iterable<ChunkBatch> | undefined> {
  const db = (source as { db?: unknown }).db as Database.Database | undefined;
  if (!db || typeof db !== 'object' || typeof db.prepare !== 'function' || !db.open) return undefined;
  const [{ hasExtension }, { rowColumns }] = await Promise.all([import('../engines/sqlite/extension.js'), import('../core/schema.js')]);
  const columns = rowColumns(table);
  if (!hasExtension(db, columns.length)) return undefined;
  let statement: Database.Statement;
  try {
    statement = db.prepare(QUERY).raw();
  } catch {
    return undefined; // an extension built before scriptorium_chunks (or its digest column) existed
  }
  // The same values, in the same order, as an export; large values read in pieces (no copy of them in SQLite).
  const [sql, big] = await scanQueries(db, table);
  const args = [sql, keyValues, settings.minBytes, settings.targetBytes, settings.maxBytes, batchBytes, ids ? 1 : 0, packer, big];
  const { temporaryFileError } = packer ? await import('./native-packer.js') : { temporaryFileError: undefined };
  const { tmpdir } = await import('node:os');
  return {
    *[Symbol.iterator](): Generator<ChunkBatch> {
      try {
        for (const row of statement.iterate(...args) as IterableIterator<[Buffer | null, bigint | number, Buffer, Buffer, Buffer | null]>) {
          yield { data: row[0], rows: Number(row[1]), chunks: row[2], ids: row[3], digest: row[4] };
        }
      } catch (err) {
        // A huge row's spill file (packer only) that cannot be written: a clear E_NO_SPACE or E_IO, not a bug.
        throw temporaryFileError?.(err, tmpdir()) ?? rowTooLargeError(err, table) ?? err;
      }
    },
  };
}

/**
 * The extension's refusal of a row whose encoding passes the largest chunk a repository holds
 * (MAX_CHUNK_BYTES, which restore checks every pack entry against) as a ScriptoriumError, or undefined
 * for any other error. Several values of hundreds of MB in one row get there: a BLOB's ndjson is twice
 * its size, as hex.
 */
export function rowTooLargeError(err: unknown, table: TableSchema): ScriptoriumError | undefined {
  const m = err instanceof Error ? /a row too large for a chunk: its encoding passes (\d+) bytes/.exec(err.message) : null;
  if (!m) return undefined;
  return new ScriptoriumError('E_UNSUPPORTED', `backup: table ${table.name}: a row's encoding passes ${m[1]} bytes, the largest chunk a repository holds`, {
    cause: err,
    hint: 'A row is stored as one chunk of its ndjson encoding (BLOBs as hex, twice their size), and no chunk may pass 2 GiB. Spread the large values over several rows, or leave the table out with --exclude-tables; the backup removes the packs it wrote.',
  });
}

/**
 * The table digest (SHA-256 of every row's ndjson encoding followed by `\n`, and the row count) read
 * through the extension's scanner, or undefined when it is not available for this table.
 */
export async function nativeDigest(db: Database.Database, table: TableSchema): Promise<{ rows: number; sha256: string } | undefined> {
  // Fixed-size cuts (min = max): no per-row hashing, no chunk ids; only the bytes matter here.
  const fixed = { algorithm: 'row-key-v1' as const, targetBytes: 1 << 16, minBytes: 1 << 16, maxBytes: 1 << 16 };
  const hashed = await hashedDigest(db, table, fixed);
  if (hashed) return hashed;
  const scan = await nativeChunks({ db } as unknown as RowSource, table, fixed, 0, CHUNK_BATCH_BYTES, false);
  if (!scan) return undefined;
  const { createHash } = await import('node:crypto');
  const { GarbageGate } = await import('../core/memory.js');
  const digest = createHash('sha256');
  const gate = new GarbageGate();
  let rows = 0;
  for (const batch of scan) {
    digest.update(batch.data!);
    rows += batch.rows;
    gate.add(batch.data!.length);
  }
  return { rows, sha256: digest.digest('hex') };
}

/**
 * The table digest hashed in C (ids = 2: no chunk ids), with no row data crossing into JavaScript: a
 * table with one large value is then read once, in pieces. Undefined without the extension's scanner
 * or SHA instructions (the caller hashes the batches itself).
 */
async function hashedDigest(db: Database.Database, table: TableSchema, fixed: ChunkerSettings): Promise<{ rows: number; sha256: string } | undefined> {
  const [{ hasExtension }, { rowColumns }] = await Promise.all([import('../engines/sqlite/extension.js'), import('../core/schema.js')]);
  if (!hasExtension(db, rowColumns(table).length)) return undefined;
  let statement: Database.Statement;
  try {
    statement = db.prepare('SELECT rows, digest FROM scriptorium_chunks(?, ?, ?, ?, ?, ?, ?, ?, ?)').raw();
  } catch {
    return undefined;
  }
  const [sql, big] = await scanQueries(db, table);
  let rows = 0;
  let digest: Buffer | null = null;
  for (const row of statement.iterate(sql, 0, fixed.minBytes, fixed.targetBytes, fixed.maxBytes, CHUNK_BATCH_BYTES, 2, 0, big) as IterableIterator<[bigint | number, Buffer | null]>) {
    rows += Number(row[0]);
    if (row[1]) digest = row[1];
  }
  return digest ? { rows, sha256: digest.toString('hex') } : undefined;
}
