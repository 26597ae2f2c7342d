import * as fs from 'node:fs';
import Database from 'better-sqlite3';
import type { RowBatch, RowEncoding, TableDigest } from '../../core/encoding.js';
import { fromSqliteError, IntegrityError, ScriptoriumError } from '../../core/errors.js';
import type { DatabaseMeta, DatabaseSchema, SchemaObject, TableSchema } from '../../core/schema.js';
import { rowColumns } from '../../core/schema.js';
import { guardConnection, hasExtension, hasLoader, loadExtension } from './extension.js';
import { jsonKeys, loadStatement, nativeLoadStatement, TAGGED_VALUE } from './row-sql.js';
import { schemaProblem, type ClaimedObject } from './schema-guard.js';
import { checkFts5Config, readSqliteSchema, readSqliteTable, virtualModule } from './sqlite-schema.js';
import { quoteIdent, quoteText } from './sql-text.js';
import { tableDigest } from './sqlite-source.js';

/**
 * A new SQLite database being loaded. It is built for speed (no journal, no fsync until the end,
 * foreign keys off, secondary indexes after the data) because it is always a fresh file beside the
 * real target: a failure discards it, success renames it into place.
 *
 * Its schema SQL comes from outside (a manifest, an export file), so nothing runs as given: every
 * CREATE passes `schemaProblem` (one plain CREATE of the object it names) here, whatever the caller
 * checked before, and the connection runs under the extension's guard (`guardConnection`: no ATTACH,
 * no stray PRAGMA, no file functions, trusted_schema off, triggers and views disabled). `exec` runs
 * only INSERTs. Triggers are created last, after every write, so none fires on this connection.
 */
export class SqliteTarget {
  readonly file: string;
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();
  #staged: Database.Statement | null | undefined;
  #stream: { begin: Database.Statement; piece: Database.Statement; end: Database.Statement } | null | undefined;

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
    // 8 MiB while loading, whatever the size of the data: rows arrive in key order, so tables only grow
    // at their end, but a unique index on other columns (a TEXT primary key of a rowid table, UNIQUE)
    // is filled in random order and wants its pages cached. Measured on the 1M-row demo: 16 MiB and
    // 12 MiB load as fast, 8 MiB cost 6% more CPU once, and as much as 12 MiB on a loaded machine
    // (5.5 s vs 5.7 s user) with 4.4 MB less at the peak: restore must stay under 100 MB at 10M rows.
    db.pragma(`cache_size = -${LOAD_CACHE_KIB}`);
    // Schema expressions (CHECK, DEFAULT, generated columns, index expressions) may call only
    // innocuous functions. Set here too because without the extension there is no guard to set it.
    db.pragma('trusted_schema = OFF');
    try {
      loadExtension(db);
      guardConnection(db); // last: it also switches extension loading off
    } catch (err) {
      db.close(); // an extension built without the guard: no unguarded target, and no file left behind
      fs.rmSync(file, { force: true });
      throw err;
    }
    db.exec('BEGIN');
    return new SqliteTarget(file, db);
  }

  get db(): Database.Database {
    return this.#db;
  }

  /**
   * Creates the tables (only tables: indexes, views and triggers come in `finish`). Each `sql` must be
   * the plain CREATE TABLE of its `name`; otherwise nothing is created and E_CORRUPT names the table.
   * An FTS5 table gets its configuration options back right away, before its rows are indexed (`pgsz`
   * shapes the index).
   */
  createTables(tables: Pick<TableSchema, 'name' | 'sql' | 'virtual'>[]): void {
    for (const table of tables) refuseUnlessPlain({ type: 'table', name: table.name }, table.sql);
    for (const table of tables) {
      // The mark decides how rows are read back (an R*Tree by its _rowid table): it must match the statement.
      const module = /^\s*CREATE\s+VIRTUAL\s+TABLE\b/i.test(table.sql) ? (virtualModule(table.sql) ?? '?') : undefined;
      if (module !== table.virtual?.module) {
        throw new ScriptoriumError('E_CORRUPT', `schema: table ${quoteIdent(table.name)} is marked as ${table.virtual ? `a virtual table of ${String(table.virtual.module)}` : 'a plain table'}, but its statement creates ${module ? `a virtual table of ${module}` : 'a plain table'}`, {
          hint: 'The file or manifest was edited; nothing was written to the target.',
        });
      }
      const config = table.virtual?.config === undefined ? [] : checkFts5Config(table.name, table.virtual.config);
      if (config.length > 0 && table.virtual?.module !== 'fts5') throw new ScriptoriumError('E_CORRUPT', `schema: ${table.name} has FTS5 options but is not an FTS5 table`);
      this.#create({ type: 'table', name: table.name }, table.sql);
      if (config.length === 0) continue;
      const name = quoteIdent(table.name);
      const put = this.#db.prepare(`INSERT INTO ${name} (${name}, rank) VALUES (?, ?)`);
      for (const [key, value] of config) {
        try {
          // FTS5 wants integer options as integers; a JS number binds as REAL.
          put.run(key, typeof value === 'number' && Number.isInteger(value) ? BigInt(value) : value);
        } catch (err) {
          throw new ScriptoriumError('E_CORRUPT', `schema: FTS5 option ${key} of ${table.name} is refused by SQLite: ${(err as Error).message}`, {
            hint: 'The file or manifest was edited, or was written by a newer SQLite; nothing was written to the target.',
            cause: err,
          });
        }
      }
    }
  }

  /**
   * Runs one INSERT that the caller has already judged (literal values only). Anything that is not an
   * INSERT is refused: schema goes through `createTables` and `finish`, which check it.
   */
  exec(sql: string): void {
    if (!/^\s*INSERT\s+INTO\s/i.test(sql)) throw new TypeError(`SqliteTarget.exec runs only INSERT statements: ${sql.slice(0, 40)}`);
    this.#run(sql);
  }

  /**
   * Runs a checked CREATE. SQLite may still refuse it (a damaged statement, or the guard's authorizer:
   * SQLITE_AUTH): that is damaged input, E_CORRUPT naming the object, unless it is the disk or the file.
   */
  #create(claimed: ClaimedObject, sql: string): void {
    try {
      this.#run(sql);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (err instanceof ScriptoriumError || typeof code !== 'string' || !code.startsWith('SQLITE_') || fromSqliteError(err)) throw err;
      throw new IntegrityError('E_CORRUPT', `schema: ${claimed.type} ${quoteIdent(claimed.name)}: SQLite refuses its CREATE statement: ${(err as Error).message}`, {
        hint: 'The schema SQL was edited or damaged; nothing was written to the target.',
        cause: err,
      });
    }
  }

  #run(sql: string): void {
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
    return hasLoader(this.#db, columns) || (hasExtension(this.#db, columns) && this.#stage() !== undefined);
  }

  /**
   * `SELECT scriptorium_stage(mode, spec, data)`, which hands a batch of rows too wide for
   * scriptorium_rows to scriptorium_rows_staged; undefined with an extension built before it existed.
   */
  #stage(): Database.Statement | undefined {
    if (this.#staged === undefined) {
      try {
        this.#staged = this.#db.prepare('SELECT scriptorium_stage(?, ?, ?)');
      } catch {
        this.#staged = null;
      }
    }
    return this.#staged ?? undefined;
  }

  /**
   * Loads a batch of encoded rows. `ndjson` and `json` load with or without the extension; `sql`
   * tuples (a VALUES list) need it, and may name their columns (`sqlite3 .dump` lists none).
   */
  load(table: TableSchema, encoding: RowEncoding, batch: RowBatch, columns?: string[]): number {
    const cols = columns ?? rowColumns(table);
    const native = this.native(table, cols.length);
    if (native && batch.data.length >= STREAMED_ROW_BYTES && this.#streams()) {
      // A batch this large holds a large value: loaded in pieces, it costs the value once, not 3 times.
      const changes = this.#loadStreamed(table, encoding, cols, pieces(batch.data)) as number;
      this.#checkRows(table, batch, changes);
      return changes;
    }
    if (!native && encoding === 'sql') throw new TypeError('SqliteTarget.load: sql tuples need the scriptorium extension');
    const slow = !native && batch.data.includes(TAGGED_VALUE);
    const wide = native && !hasLoader(this.#db, cols.length); // more values than scriptorium_rows has columns
    const key = `${native ? 'n' : encoding}\0${slow ? 1 : 0}\0${table.name}\0${columns ? cols.join('\0') : ''}`;
    let stmt = this.#statements.get(key);
    if (!stmt) {
      stmt = this.#db.prepare(native ? nativeLoadStatement(table, cols, wide) : loadStatement(table, encoding as 'ndjson' | 'json', slow));
      this.#statements.set(key, stmt);
    }
    let changes: number;
    try {
      const spec = encoding === 'json' ? jsonKeys(table) : cols.length;
      if (wide) this.#stage()!.run(encoding, spec, batch.data);
      changes = wide ? stmt.run().changes : native ? stmt.run(encoding, spec, batch.data).changes : stmt.run(batch.data).changes;
    } catch (err) {
      if (/too big/i.test((err as Error).message)) {
        // One row's encoding above SQLite's SQLITE_MAX_LENGTH (1e9 bytes): a value near that limit, not damage.
        throw new ScriptoriumError('E_UNSUPPORTED', `load ${table.name}: a row's encoding (${batch.data.length} bytes) is larger than SQLite takes in one piece`, {
          hint: 'Without the extension\'s streamed loader (SCRIPTORIUM_NO_EXTENSION, or an extension built before it), a row is handed to SQLite whole, and a value near SQLite\'s length limit (1e9 bytes; BLOBs count twice, as hex) does not fit. The target was not changed.',
          cause: err,
        });
      }
      throw new ScriptoriumError('E_CORRUPT', `load ${table.name}: ${(err as Error).message}`, {
        hint: 'A row in the input is damaged or does not match the table; the target was not changed.',
        cause: err,
      });
    }
    this.#checkRows(table, batch, changes);
    return changes;
  }

  #checkRows(table: TableSchema, batch: RowBatch, changes: number): void {
    if (batch.rows >= 0 && changes !== batch.rows) {
      throw new ScriptoriumError('E_CORRUPT', `load ${table.name}: expected ${batch.rows} rows in a batch, SQLite read ${changes}`, {
        hint: 'A row in the input is damaged; the target was not changed.',
      });
    }
  }

  /** The statements of the extension's streamed loader (native/scriptorium_load.inc), or null without them. */
  #streams(): { begin: Database.Statement; piece: Database.Statement; end: Database.Statement } | null {
    if (this.#stream === undefined) {
      try {
        this.#stream = {
          begin: this.#db.prepare('SELECT scriptorium_load_begin(?, ?, ?, ?, ?)'),
          piece: this.#db.prepare('SELECT scriptorium_load_piece(?)'),
          end: this.#db.prepare('SELECT scriptorium_load_end()').pluck(),
        };
      } catch {
        this.#stream = null; // an extension built before the streamed loader
      }
    }
    return this.#stream;
  }

  /** Whether the extension's streamed loader is here (then {@link streams} holds for any table of up to 2,000 columns). */
  streamsPieces(): boolean {
    return hasExtension(this.#db, 1) && this.#streams() !== null;
  }

  /** Whether {@link loadPieces} takes rows of `table` in C (else it joins the pieces, up to one Buffer). */
  streams(table: TableSchema, columns = rowColumns(table).length): boolean {
    return this.native(table, columns) && this.#streams() !== null;
  }

  /**
   * Loads one unit of encoded rows (usually one row holding a large value) given in pieces, in order:
   * the extension decodes long literals as they arrive and writes them into the row with
   * sqlite3_blob_write, so memory grows with the largest value once, never with the unit's encoding
   * (a BLOB's hex is twice its size). The pieces may be views that are reused once the next is asked
   * for. Returns the rows loaded.
   */
  async loadPieces(table: TableSchema, encoding: RowEncoding, units: AsyncIterable<Buffer> | Iterable<Buffer>, columns?: string[]): Promise<number> {
    const cols = columns ?? rowColumns(table);
    if (!this.streams(table, cols.length)) {
      const parts: Buffer[] = [];
      for await (const part of units) parts.push(Buffer.from(part));
      return this.load(table, encoding, { data: Buffer.concat(parts), rows: -1 }, columns);
    }
    return await this.#loadStreamed(table, encoding, cols, units);
  }

  #loadStreamed(table: TableSchema, encoding: RowEncoding, cols: string[], units: AsyncIterable<Buffer> | Iterable<Buffer>): number | Promise<number> {
    const load = this.#begin(table, encoding, cols);
    if (Symbol.asyncIterator in units) {
      return (async () => {
        for await (const part of units) load.feed(part);
        return load.end();
      })();
    }
    for (const part of units as Iterable<Buffer>) load.feed(part);
    return load.end();
  }

  /**
   * The push form of {@link loadPieces}, for a reader that hands a unit out piece by piece between
   * other work (a sql file's long tuple): `feed` each piece in order, then `end` for the rows loaded.
   * Only where {@link streams} is true. Nothing else may load on this target until `end`.
   */
  beginPieces(table: TableSchema, encoding: RowEncoding, columns?: string[]): { feed(piece: Buffer): void; end(): number } {
    const cols = columns ?? rowColumns(table);
    if (!this.streams(table, cols.length)) throw new TypeError('SqliteTarget.beginPieces: the extension has no streamed loader');
    return this.#begin(table, encoding, cols);
  }

  #begin(table: TableSchema, encoding: RowEncoding, cols: string[]): { feed(piece: Buffer): void; end(): number } {
    const s = this.#streams()!;
    const spec = encoding === 'json' ? jsonKeys(table) : cols.length;
    const fail = (err: unknown): never => {
      if (fromSqliteError(err)) throw err; // the disk, not the input
      if (/too big/i.test((err as Error).message)) {
        throw new ScriptoriumError('E_UNSUPPORTED', `load ${table.name}: a value is larger than SQLite holds (SQLITE_MAX_LENGTH)`, {
          hint: 'The input holds a value above SQLite\'s length limit (1e9 bytes by default); the target was not changed.',
          cause: err,
        });
      }
      throw new ScriptoriumError('E_CORRUPT', `load ${table.name}: ${(err as Error).message}`, {
        hint: 'A row in the input is damaged or does not match the table; the target was not changed.',
        cause: err,
      });
    };
    try {
      s.begin.run(encoding, spec, table.name, Buffer.from(cols.join('\0')), this.#writable(table, cols));
    } catch (err) {
      fail(err);
    }
    return {
      feed: (piece) => {
        try {
          s.piece.run(piece);
        } catch (err) {
          fail(err);
        }
      },
      end: () => {
        try {
          return Number(s.end.get());
        } catch (err) {
          return fail(err);
        }
      },
    };
  }

  /**
   * One byte per column: 1 where a large value may arrive after its row (a placeholder first, then
   * sqlite3_blob_write), 0 where something would see the placeholder: a CHECK constraint, a generated
   * column, an index that exists while rows load (UNIQUE, a PRIMARY KEY that is not the rowid), or a
   * table the blob API cannot write (WITHOUT ROWID, virtual). Those values are bound from the mapped
   * spill file instead (native/scriptorium_load.inc): still held once, in the record SQLite builds.
   */
  #writable(table: TableSchema, cols: string[]): Buffer {
    const none = Buffer.alloc(cols.length);
    if (table.withoutRowid || table.virtual || /\bCHECK\b|\bGENERATED\b|\bAS\s*\(/i.test(table.sql)) return none;
    // sqlite3_blob_write puts the bytes as they are: TEXT must be stored as the UTF-8 it arrives in.
    if (this.#db.pragma('encoding', { simple: true }) !== 'UTF-8') return none;
    const indexed = new Set<string>();
    for (const index of this.#db.prepare(`PRAGMA index_list(${quoteText(table.name)})`).all() as { name: string }[]) {
      for (const col of this.#db.prepare(`PRAGMA index_info(${quoteText(index.name)})`).all() as { name: string | null }[]) {
        if (col.name === null) return none; // an expression: it may read any column
        indexed.add(col.name.toLowerCase());
      }
    }
    return Buffer.from(cols.map((c) => (indexed.has(c.toLowerCase()) ? 0 : 1)));
  }

  /**
   * Between two tables of a load: lets go of the page cache's clean pages (the cache shrinks to 2 MiB
   * and comes back to the load's 8 MiB), so that what one table's random index inserts left cached, and
   * the allocator's holes around it, do not add up over a long load. Measured over a 10M-row restore:
   * the native memory beyond the cache rose by 10–15 MB from the first table to the last without it.
   */
  endTable(): void {
    this.#db.pragma('cache_size = -2048');
    this.#db.pragma(`cache_size = -${LOAD_CACHE_KIB}`);
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

  /**
   * Restores the metadata and creates indexes, views and triggers in their original order. Every
   * object is checked first (each `sql` the plain CREATE of its type, name and table); one that is
   * not is refused with E_CORRUPT before any is created. The AUTOINCREMENT counters are written
   * before the objects, so that no trigger exists yet when this connection last writes a row.
   */
  finish(objects: SchemaObject[], meta: DatabaseMeta): void {
    for (const object of objects) {
      // Only indexes, views and triggers come after the data; a table here would be one the schema does not list.
      const type = object.type === 'index' || object.type === 'view' || object.type === 'trigger' ? object.type : ('?' as 'index');
      refuseUnlessPlain({ type, name: object.name, table: object.table }, object.sql);
    }
    if (meta.sequences && Object.keys(meta.sequences).length > 0) {
      this.#db.prepare('DELETE FROM sqlite_sequence').run();
      const put = this.#db.prepare('INSERT INTO sqlite_sequence (name, seq) VALUES (?, CAST(? AS INTEGER))');
      for (const [name, seq] of Object.entries(meta.sequences)) put.run(name, seq);
    }
    this.#db.pragma(`user_version = ${Math.trunc(meta.userVersion ?? 0)}`);
    this.#db.pragma(`application_id = ${Math.trunc(meta.applicationId ?? 0)}`);
    for (const object of objects) this.#create(object, object.sql);
    // The source's optimizer statistics, computed again from the same rows and indexes (as a .dump's
    // loader would, for ANALYZE's own rows are not restored: they are ANALYZE's to write).
    if (meta.analyzed === true) this.#db.exec('ANALYZE');
    this.#db.exec('COMMIT');
  }

  /**
   * One table's schema as created in the target (for SQL scripts, which create tables as they go);
   * `sql`, the CREATE statement that made it, spares a scan of sqlite_schema.
   */
  table(name: string, sql?: string): TableSchema | undefined {
    return readSqliteTable(this.#db, name, sql);
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

/** The page cache while rows load, in KiB (see {@link SqliteTarget.create}). */
const LOAD_CACHE_KIB = 8192;

/**
 * A batch this long (one row holding a large value: ordinary batches are about 1 MiB) loads through
 * the streamed loader, in pieces of {@link STREAM_PIECE_BYTES}.
 */
export const STREAMED_ROW_BYTES = 8 << 20;
/** Bytes per piece handed to the streamed loader (each is copied once into SQLite). */
export const STREAM_PIECE_BYTES = 4 << 20;

function* pieces(data: Buffer): Generator<Buffer> {
  for (let at = 0; at < data.length; at += STREAM_PIECE_BYTES) yield data.subarray(at, at + STREAM_PIECE_BYTES);
}

/** Throws E_CORRUPT naming the object unless `sql` is exactly its plain CREATE statement. */
function refuseUnlessPlain(claimed: ClaimedObject, sql: string): void {
  const problem = schemaProblem(claimed, sql);
  if (problem === undefined) return;
  const type = ['table', 'index', 'view', 'trigger'].includes(claimed.type) ? claimed.type : 'object';
  throw new IntegrityError('E_CORRUPT', `schema: ${type} ${quoteIdent(String(claimed.name))}: its schema is ${problem}`, {
    hint: 'The schema SQL was edited or damaged: it is not the CREATE statement it claims to be, and none of it was run. Nothing was written to the target.',
  });
}
