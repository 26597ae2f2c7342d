import * as fs from 'node:fs';
import * as os from 'node:os';
import Database from 'better-sqlite3';
import { DigestBuilder, type RowBatch, type RowEncoding, type TableDigest } from '../../core/encoding.js';
import { fromSqliteError, NotFoundError, ScriptoriumError } from '../../core/errors.js';
import type { DatabaseSchema, TableSchema } from '../../core/schema.js';
import { GarbageGate } from '../../core/memory.js';
import { rowColumns } from '../../core/schema.js';
import { hasExtension, loadExtension } from './extension.js';
import { batchQuery, jsonKeys, readsBigValues, rowsQuery, tableOrder } from './row-sql.js';
import { planSegmentRanges, rowidRange, segmentsArgument } from './segments.js';
import { holdWriters } from './writer-hold.js';
import { readSqliteSchema } from './sqlite-schema.js';
import { quoteIdent } from './sql-text.js';

/** A rowid span past which {@link SqliteSource.rowEstimate} counts instead. */
const SPARSE_ROWIDS = 10_000_000_000n;

/** Rows per batch: large enough that per-call overhead vanishes, small enough to keep memory flat. */
export const DEFAULT_BATCH_ROWS = 2000;

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/** Throws a clear error unless `file` exists and starts with the SQLite header (an empty file counts). */
export function assertSqliteFile(file: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new NotFoundError(`sqlite: cannot open ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`, {
      hint: 'Check the path; the source database must exist and be readable.',
      cause: err,
    });
  }
  try {
    const head = Buffer.alloc(16);
    const n = fs.readSync(fd, head, 0, 16, 0);
    if (n > 0 && (n < 16 || !head.equals(SQLITE_MAGIC))) {
      throw new ScriptoriumError('E_NOT_SQLITE', `sqlite: ${file} is not a SQLite database`, {
        hint: 'The file does not start with the SQLite header. Export files are imported with `scriptorium import`.',
      });
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** How long opening a database waits for another process's write lock (busy_timeout). */
const BUSY_TIMEOUT_MS = 10_000;

/**
 * A consistent read view of a SQLite database. One read transaction spans the source's whole life, so
 * every table is read at the same point in time even while other connections write.
 *
 * Background readers: with `readers` > 0, the extension opens that many more read-only connections at
 * the same snapshot, and rows are read and encoded on their threads (native/scriptorium_encode.inc,
 * scriptorium_scan.inc) while the caller's thread hashes and writes. Same snapshot: a third connection
 * holds the write lock (BEGIN IMMEDIATE, see writer-hold.ts) from before the main connection's first
 * read until the readers have begun; when that hold cannot be had, there are no background readers.
 */
export class SqliteSource {
  readonly schema: DatabaseSchema;
  readonly #db: Database.Database;
  /** Background readers open on this connection's snapshot. */
  #readers = 0;
  /** Whether some table was read on them. */
  #usedReaders = false;
  readonly #rowCounts = new Map<string, number>();

  private constructor(db: Database.Database) {
    this.#db = db;
    db.defaultSafeIntegers(true);
    db.exec('BEGIN');
    try {
      this.schema = readSqliteSchema(db); // the first read fixes the snapshot
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /**
   * Opens `file` read-only. Throws `E_NOT_FOUND` or `E_NOT_SQLITE` for a missing or foreign file.
   * `readers` background readers are opened as well, when the machine and the database allow it
   * (`'auto'`: see {@link backgroundReaders}).
   */
  static open(file: string, options: { readers?: number | 'auto' } = {}): SqliteSource {
    assertSqliteFile(file);
    const readers = options.readers === 'auto' ? backgroundReaders() : Math.max(0, options.readers ?? 0);
    const hold = readers > 0 ? holdWriters(file, (f) => new Database(f, { fileMustExist: true })) : undefined;
    let db: Database.Database;
    try {
      db = new Database(file, { readonly: true, fileMustExist: true });
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.pragma('cache_size = -1024'); // 1 MiB: rows are read once, in order
      loadExtension(db);
      const source = new SqliteSource(db);
      // Writers are still held off: the readers' transactions begin at the snapshot schema was read in.
      if (hold) source.#readers = openReaders(db, readers);
      return source;
    } catch (err) {
      if (err instanceof ScriptoriumError) throw err;
      const msg = (err as Error).message;
      // Another process's write lock (a long transaction, BEGIN EXCLUSIVE) outlasted busy_timeout: not damage.
      if (fromSqliteError(err)?.code === 'E_LOCKED') {
        throw new ScriptoriumError('E_LOCKED', `sqlite: ${file}: ${msg} (another process held a write lock on it for longer than this waits)`, {
          hint: 'A long write transaction or BEGIN EXCLUSIVE in another process keeps readers out (in rollback-journal mode; in WAL mode readers do not wait). Try again when it is done, or switch the database to WAL (PRAGMA journal_mode=WAL).',
          cause: err,
        });
      }
      throw new ScriptoriumError(/not a database|malformed/i.test(msg) ? 'E_NOT_SQLITE' : 'E_IO', `sqlite: ${file}: ${msg}`, {
        hint: 'The file is damaged or not a SQLite database.',
        cause: err,
      });
    } finally {
      hold?.release();
    }
  }

  /** Connections that have read rows: the background readers once a table was read on them, else 1. */
  get readers(): number {
    return this.#usedReaders ? this.#readers : 1;
  }

  /** The underlying connection, for engine-internal helpers (compare, digest). */
  get db(): Database.Database {
    return this.#db;
  }

  /** The table's rows (counted once: the snapshot does not change while the source is open). */
  rowCount(table: TableSchema): number {
    let n = this.#rowCounts.get(table.name);
    if (n === undefined) {
      n = Number((this.#db.prepare(`SELECT count(*) AS n FROM ${quoteIdent(table.name)}`).get() as { n: bigint }).n);
      this.#rowCounts.set(table.name, n);
    }
    return n;
  }

  /**
   * An estimate of the table's rows from the ends of its rowid b-tree (no scan): exact for dense rowids,
   * an upper bound with gaps, and the count itself for WITHOUT ROWID tables or when the rowids are
   * too sparse for the estimate to mean anything.
   */
  rowEstimate(table: TableSchema): number {
    const known = this.#rowCounts.get(table.name);
    // A virtual table has no b-tree ends to look at (min(rowid) would scan it): count it.
    if (known !== undefined || table.withoutRowid || table.virtual) return known ?? this.rowCount(table);
    const range = rowidRange(this.#db, table);
    if (range === null) return 0;
    if (range === undefined) return this.rowCount(table);
    const span = range[1] - range[0] + 1n;
    return span > SPARSE_ROWIDS ? this.rowCount(table) : Number(span);
  }

  /**
   * The table's rows in primary-key order (rowid order without one), encoded by SQLite, in batches of
   * up to `batchRows`. Synchronous: the caller decides when to yield to the event loop.
   */
  *batches(table: TableSchema, encoding: RowEncoding, opts: { batchRows?: number } = {}): Generator<RowBatch> {
    const batchRows = opts.batchRows ?? DEFAULT_BATCH_ROWS;
    let ranges: string[] | undefined;
    // Virtual tables are read on this connection in one pass: their modules answer rowid ranges with
    // a scan each (R*Tree), and min/max of their rowid with a scan too.
    if (this.#readers > 0 && !table.virtual && hasExtension(this.#db, rowColumns(table).length)) {
      this.#usedReaders = true;
      ranges = planSegmentRanges(this.#db, table, this.rowCount(table), batchRows, encoding);
    }
    yield* readBatches(this.#db, table, encoding, batchRows, ranges);
  }

  close(): void {
    if (!this.#db.open) return;
    if (this.#db.inTransaction) this.#db.exec('COMMIT');
    this.#db.close(); // closes the background readers too
  }
}

/**
 * How many background readers to open by default: one per CPU, up to 4 (a table's segments are shared
 * between them, and the caller's thread, which hashes and writes, shares the CPUs with them); none on
 * one CPU. SCRIPTORIUM_READERS=1 reads on the main connection alone, =N (2 to 4) on N readers.
 */
export function backgroundReaders(): number {
  if (process.env.SCRIPTORIUM_NO_EXTENSION === '1') return 0;
  const asked = Number(process.env.SCRIPTORIUM_READERS);
  if (Number.isInteger(asked) && asked >= 1) return asked === 1 ? 0 : Math.min(asked, MAX_READERS);
  const cpus = os.availableParallelism?.() ?? os.cpus().length;
  return cpus < 2 ? 0 : Math.min(cpus, MAX_READERS);
}

/** The extension's limit on background readers per connection (MAX_READERS in native/scriptorium_scan.inc). */
const MAX_READERS = 4;

/** Opens up to `n` background readers on `db`'s file, at `db`'s snapshot; how many opened. */
function openReaders(db: Database.Database, n: number): number {
  try {
    return Number(db.prepare('SELECT scriptorium_reader(?)').pluck().get(n));
  } catch {
    return 0; // no extension, or one built before scriptorium_reader existed
  }
}

/** A table's digest over any connection: every batch of its rows in `encoding`, hashed in order. */
export function tableDigest(db: Database.Database, table: TableSchema, encoding: RowEncoding): TableDigest {
  const digest = new DigestBuilder(encoding);
  for (const batch of readBatches(db, table, encoding, DEFAULT_BATCH_ROWS)) digest.add(batch);
  return digest.finish();
}

/**
 * A table's batches over any connection (a source, or a freshly loaded target for its digest).
 * `segments` (the WHERE conditions of planSegmentRanges in segments.ts) are read by the background
 * readers, if any.
 */
export function* readBatches(db: Database.Database, table: TableSchema, encoding: RowEncoding, batchRows: number, segments?: string[]): Generator<RowBatch> {
  const gate = new GarbageGate();
  const batches = hasExtension(db, rowColumns(table).length)
    ? readNativeBatches(db, table, encoding, batchRows, segments)
    : readSqlBatches(db, table, encoding, batchRows);
  for (const batch of batches) {
    yield batch;
    gate.add(batch.data.length); // the consumer is done with the previous batch: keep memory flat
  }
}

/** The built-in path: SQLite's JSON functions and quote(), for wide tables or without the extension. */
function* readSqlBatches(db: Database.Database, table: TableSchema, encoding: RowEncoding, batchRows: number): Generator<RowBatch> {
  const order = tableOrder(table);
  let exact = encoding === 'sql';
  const prepare = (first: boolean): Database.Statement => {
    try {
      return db.prepare(batchQuery(table, encoding, order, first, exact)).raw();
    } catch (err) {
      if (!/too large|too many/i.test((err as Error).message)) throw err;
      throw new ScriptoriumError('E_UNSUPPORTED', `sqlite: table ${quoteIdent(table.name)} has too many columns (${table.columns.length}) to export as ${encoding}`, {
        hint: `SQLite could not build the query that encodes its rows (${(err as Error).message}). Leave the table out with --exclude-tables.`,
        cause: err,
      });
    }
  };
  let first = prepare(true);
  let next = prepare(false);
  let key: unknown[] | undefined;
  for (;;) {
    let row: unknown[];
    try {
      row = (key ? next.get(...key, batchRows) : first.get(batchRows)) as unknown[];
    } catch (err) {
      if (exact || !/JSON cannot hold BLOB/i.test((err as Error).message)) throw err;
      exact = true; // a BLOB outside a BLOB-affinity column: redo this batch with every value tagged
      first = prepare(true);
      next = prepare(false);
      continue;
    }
    const rows = Number(row[1]);
    if (rows === 0) return;
    yield { data: row[0] as Buffer, rows };
    if (rows < batchRows) return;
    key = row.slice(3);
  }
}

/** Bytes after which the extension ends a batch early (rows are seldom this large; it bounds memory). */
export const NATIVE_BATCH_BYTES = 1 << 20;

/**
 * The extension's path: one statement walks the table in key order (or the background readers walk its
 * segments), and the extension encodes its rows in C, a batch per result row.
 */
function* readNativeBatches(db: Database.Database, table: TableSchema, encoding: RowEncoding, batchRows: number, segments?: string[]): Generator<RowBatch> {
  const keys = encoding === 'json' ? jsonKeys(table) : null;
  const scan = db.prepare('SELECT data, rows, digest, partial FROM scriptorium_encode(?, ?, ?, ?, ?, ?)').raw();
  const ranges = segments ?? [''];
  const sql = segmentsArgument(ranges.map((where) => rowsQuery(table, where)));
  // From a row that holds a value above BIG_VALUE_BYTES on, a segment goes on with its big query: large
  // values read in pieces, and a row that holds one comes in batches of about NATIVE_BATCH_BYTES.
  const big = readsBigValues(db, table) ? segmentsArgument(ranges.map((where) => `${rowsQuery(table, where, true)} LIMIT -1 OFFSET ?1`)) : null;
  for (const [data, rows, digest, partial] of scan.iterate(sql, encoding, keys, batchRows, NATIVE_BATCH_BYTES, big) as IterableIterator<[Buffer, bigint, Buffer | null, bigint]>) {
    // Background readers hash the batches too (the digest comes last, on a row of its own).
    const batch: RowBatch = digest?.length === 32 ? { data, rows: 0, tableSha256: digest.toString('hex') } : { data, rows: Number(rows) };
    if (digest !== null && digest.length !== 32) batch.hashed = true;
    if (partial) batch.partial = true;
    yield batch;
  }
}
