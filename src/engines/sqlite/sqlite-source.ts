import * as fs from 'node:fs';
import Database from 'better-sqlite3';
import { DigestBuilder, type RowBatch, type RowEncoding, type TableDigest } from '../../core/encoding.js';
import { NotFoundError, ScriptoriumError } from '../../core/errors.js';
import type { DatabaseSchema, TableSchema } from '../../core/schema.js';
import { GarbageGate } from '../../core/memory.js';
import { rowColumns } from '../../core/schema.js';
import { hasExtension, loadExtension } from './extension.js';
import { batchQuery, jsonKeys, rowsQuery, tableOrder } from './row-sql.js';
import { ReadHelper } from './parallel-reader.js';
import { readSqliteSchema } from './sqlite-schema.js';
import { quoteIdent } from './sql-text.js';

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

/**
 * A consistent read view of a SQLite database. One read transaction spans the source's whole life, so
 * every table is read at the same point in time even while other connections write.
 */
export class SqliteSource {
  readonly schema: DatabaseSchema;
  readonly #db: Database.Database;
  readonly #helper: ReadHelper | undefined;

  private constructor(db: Database.Database, helper: ReadHelper | undefined) {
    this.#db = db;
    this.#helper = helper;
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
   * With `parallel`, large tables are read by a second connection on a worker thread too (see
   * parallel-reader.ts), when the machine and the database allow it.
   */
  static open(file: string, options: { parallel?: boolean } = {}): SqliteSource {
    assertSqliteFile(file);
    let helper = options.parallel ? ReadHelper.spawn(file) : undefined;
    if (helper && !helper.holdWriters(file, (f) => new Database(f, { fileMustExist: true }))) {
      helper.close();
      helper = undefined;
    }
    let db: Database.Database;
    try {
      db = new Database(file, { readonly: true, fileMustExist: true });
      db.pragma('busy_timeout = 10000');
      db.pragma('cache_size = -1024'); // 1 MiB: rows are read once, in order
      loadExtension(db);
      const source = new SqliteSource(db, helper);
      helper?.begin();
      return source;
    } catch (err) {
      helper?.close();
      if (err instanceof ScriptoriumError) throw err;
      const msg = (err as Error).message;
      throw new ScriptoriumError(/not a database|malformed/i.test(msg) ? 'E_NOT_SQLITE' : 'E_IO', `sqlite: ${file}: ${msg}`, {
        hint: 'The file is damaged or not a SQLite database.',
        cause: err,
      });
    }
  }

  /** Connections that have read rows: 2 once a table was split between the main thread and a worker. */
  get readers(): number {
    return this.#helper?.used ? 2 : 1;
  }

  /** The underlying connection, for engine-internal helpers (compare, digest). */
  get db(): Database.Database {
    return this.#db;
  }

  rowCount(table: TableSchema): number {
    const row = this.#db.prepare(`SELECT count(*) AS n FROM ${quoteIdent(table.name)}`).get() as { n: bigint };
    return Number(row.n);
  }

  /**
   * The table's rows in primary-key order (rowid order without one), encoded by SQLite, in batches of
   * up to `batchRows`. Synchronous: the caller decides when to yield to the event loop.
   */
  *batches(table: TableSchema, encoding: RowEncoding, opts: { batchRows?: number } = {}): Generator<RowBatch> {
    const batchRows = opts.batchRows ?? DEFAULT_BATCH_ROWS;
    const parallel = this.#helper?.batches(this.#db, table, encoding, batchRows, NATIVE_BATCH_BYTES);
    yield* readBatches(this.#db, table, encoding, batchRows, parallel);
  }

  close(): void {
    this.#helper?.close();
    if (!this.#db.open) return;
    if (this.#db.inTransaction) this.#db.exec('COMMIT');
    this.#db.close();
  }
}

/** A table's digest over any connection: every batch of its rows in `encoding`, hashed in order. */
export function tableDigest(db: Database.Database, table: TableSchema, encoding: RowEncoding): TableDigest {
  const digest = new DigestBuilder(encoding);
  for (const batch of readBatches(db, table, encoding, DEFAULT_BATCH_ROWS)) digest.add(batch);
  return digest.finish();
}

/**
 * A table's batches over any connection (a source, or a freshly loaded target for its digest), or from
 * `from` when given (the parallel reader's).
 */
export function* readBatches(db: Database.Database, table: TableSchema, encoding: RowEncoding, batchRows: number, from?: Iterable<RowBatch>): Generator<RowBatch> {
  const gate = new GarbageGate();
  const batches =
    from ?? (hasExtension(db, rowColumns(table).length) ? readNativeBatches(db, table, encoding, batchRows) : readSqlBatches(db, table, encoding, batchRows));
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
        hint: `SQLite could not build the query that encodes its rows (${(err as Error).message}); rows of more than 998 columns are not supported yet. Leave the table out with --exclude-tables.`,
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
 * The extension's path: one statement walks the table in key order, and the extension encodes its rows
 * in C, a batch per result row.
 */
function* readNativeBatches(db: Database.Database, table: TableSchema, encoding: RowEncoding, batchRows: number): Generator<RowBatch> {
  const keys = encoding === 'json' ? jsonKeys(table) : null;
  const scan = db.prepare('SELECT data, rows FROM scriptorium_encode(?, ?, ?, ?, ?)').raw();
  for (const row of scan.iterate(rowsQuery(table), encoding, keys, batchRows, NATIVE_BATCH_BYTES) as IterableIterator<[Buffer, bigint]>) {
    yield { data: row[0], rows: Number(row[1]) };
  }
}
