import * as fs from 'node:fs';
import Database from 'better-sqlite3';
import type { RowBatch, RowEncoding, TableDigest } from '../../core/encoding.js';
import { ScriptoriumError } from '../../core/errors.js';
import type { DatabaseMeta, DatabaseSchema, SchemaObject, TableSchema } from '../../core/schema.js';
import { rowColumns } from '../../core/schema.js';
import { hasExtension, loadExtension } from './extension.js';
import { jsonKeys, loadStatement, nativeLoadStatement, TAGGED_VALUE } from './row-sql.js';
import { readSqliteSchema } from './sqlite-schema.js';
import { tableDigest } from './sqlite-source.js';

/**
 * A new SQLite database being loaded. It is built for speed (no journal, no fsync until the end,
 * foreign keys off, secondary indexes after the data) because it is always a fresh file beside the
 * real target: a failure discards it, success renames it into place.
 */
export class SqliteTarget {
  readonly file: string;
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();

  private constructor(file: string, db: Database.Database) {
    this.file = file;
    this.#db = db;
  }

  /** Creates `file`, which must not exist yet, and opens the load transaction. */
  static create(file: string): SqliteTarget {
    if (fs.existsSync(file)) throw new TypeError(`SqliteTarget.create: ${file} already exists`);
    const db = new Database(file);
    db.defaultSafeIntegers(true);
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma('foreign_keys = OFF'); // better-sqlite3 turns them on; rows arrive table by table
    db.pragma('locking_mode = EXCLUSIVE');
    // 12 MiB while loading, whatever the size of the data: rows arrive in key order, so tables only grow
    // at their end, but a unique index on other columns (a TEXT primary key of a rowid table, UNIQUE)
    // is filled in random order and wants its pages cached. Measured on the 1M-row demo: 16 MiB and
    // 12 MiB load as fast, 8 MiB costs 6% more CPU.
    db.pragma('cache_size = -12288');
    loadExtension(db);
    db.exec('BEGIN');
    return new SqliteTarget(file, db);
  }

  get db(): Database.Database {
    return this.#db;
  }

  /** Creates the tables (only tables: indexes, views and triggers come in `finish`). */
  createTables(tables: TableSchema[]): void {
    for (const table of tables) this.exec(table.sql);
  }

  /** Runs one statement that the caller has already validated (schema DDL or a literal-only INSERT). */
  exec(sql: string): void {
    let statement: Database.Statement;
    try {
      statement = this.#db.prepare(sql); // exactly one statement: better-sqlite3 refuses a second one after it
    } catch (err) {
      if (!/more than one statement/i.test((err as Error).message)) throw err;
      throw new ScriptoriumError('E_UNSUPPORTED_SQL', `import: more than one statement where one was expected: ${sql.slice(0, 60).replace(/\s+/g, ' ')}`, {
        hint: 'import runs one CREATE or INSERT statement at a time; the file was edited or is not an export. Nothing was written to the target.',
      });
    }
    statement.run();
  }

  /** Whether rows of `table` load through the extension's C parser (required for the `sql` encoding). */
  native(table: TableSchema, columns = rowColumns(table).length): boolean {
    return hasExtension(this.#db, columns);
  }

  /**
   * Loads a batch of encoded rows. `ndjson` and `json` load with or without the extension; `sql`
   * tuples (a VALUES list) need it, and may name their columns (`sqlite3 .dump` lists none).
   */
  load(table: TableSchema, encoding: RowEncoding, batch: RowBatch, columns?: string[]): number {
    const cols = columns ?? rowColumns(table);
    const native = this.native(table, cols.length);
    if (!native && encoding === 'sql') throw new TypeError('SqliteTarget.load: sql tuples need the scriptorium extension');
    const slow = !native && batch.data.includes(TAGGED_VALUE);
    const key = `${native ? 'n' : encoding}\0${slow ? 1 : 0}\0${table.name}\0${columns ? cols.join('\0') : ''}`;
    let stmt = this.#statements.get(key);
    if (!stmt) {
      stmt = this.#db.prepare(native ? nativeLoadStatement(table, cols) : loadStatement(table, encoding as 'ndjson' | 'json', slow));
      this.#statements.set(key, stmt);
    }
    let changes: number;
    try {
      changes = native
        ? stmt.run(encoding, encoding === 'json' ? jsonKeys(table) : cols.length, batch.data).changes
        : stmt.run(batch.data).changes;
    } catch (err) {
      if (/too big/i.test((err as Error).message)) {
        // One row's encoding above SQLite's SQLITE_MAX_LENGTH (1e9 bytes): a value near that limit, not damage.
        throw new ScriptoriumError('E_UNSUPPORTED', `load ${table.name}: a row's encoding (${batch.data.length} bytes) is larger than SQLite takes in one piece`, {
          hint: 'A value near SQLite\'s length limit (1e9 bytes; BLOBs count twice, as hex) cannot be loaded yet: import and restore hand a row to SQLite whole. The target was not changed.',
          cause: err,
        });
      }
      throw new ScriptoriumError('E_CORRUPT', `load ${table.name}: ${(err as Error).message}`, {
        hint: 'A row in the input is damaged or does not match the table; the target was not changed.',
        cause: err,
      });
    }
    if (batch.rows >= 0 && changes !== batch.rows) {
      throw new ScriptoriumError('E_CORRUPT', `load ${table.name}: expected ${batch.rows} rows in a batch, SQLite read ${changes}`, {
        hint: 'A row in the input is damaged; the target was not changed.',
      });
    }
    return changes;
  }

  /**
   * Ends the load phase: the page cache shrinks to 2 MiB, so that verification (one pass over each
   * table) and index builds reuse the memory the load used instead of adding to it. The sorter of an
   * index build takes as much memory as the cache size again (it sorts runs of that size): 8 MiB here
   * added 8 MiB at the peak; 2 MiB builds the demo's indexes as fast.
   */
  endLoad(): void {
    this.#db.pragma('cache_size = -2048');
  }

  /** Creates indexes, views and triggers in their original order and restores the metadata. */
  finish(objects: SchemaObject[], meta: DatabaseMeta): void {
    for (const object of objects) this.exec(object.sql);
    if (meta.sequences && Object.keys(meta.sequences).length > 0) {
      this.exec('DELETE FROM sqlite_sequence');
      const put = this.#db.prepare('INSERT INTO sqlite_sequence (name, seq) VALUES (?, CAST(? AS INTEGER))');
      for (const [name, seq] of Object.entries(meta.sequences)) put.run(name, seq);
    }
    this.#db.pragma(`user_version = ${Math.trunc(meta.userVersion ?? 0)}`);
    this.#db.pragma(`application_id = ${Math.trunc(meta.applicationId ?? 0)}`);
    this.#db.exec('COMMIT');
  }

  /** One table's schema as created in the target (for SQL scripts, which create tables as they go). */
  table(name: string): TableSchema | undefined {
    return readSqliteSchema(this.#db).tables.find((t) => t.name === name);
  }

  /** The schema as loaded so far (used for SQL scripts, whose schema arrives statement by statement). */
  schema(): DatabaseSchema {
    return readSqliteSchema(this.#db);
  }

  /** Re-encodes the loaded table and hashes it, to compare with the digest recorded at export. */
  digest(table: TableSchema, encoding: RowEncoding): TableDigest {
    return tableDigest(this.#db, table, encoding);
  }

  /** Closes the connection and makes the file durable. */
  close(): void {
    if (!this.#db.open) return;
    if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
    this.#db.close();
  }
}

