import type { RowBatch, RowEncoding, TableDigest } from '../core/encoding.js';
import { IntegrityError } from '../core/errors.js';
import type { DatabaseMeta, DatabaseSchema, SchemaObject, TableSchema } from '../core/schema.js';

/** What an export file says about itself, written before the first row. */
export interface ExportHeader {
  schema: DatabaseSchema;
  /** ISO time of the snapshot the export was read from. */
  exportedAt: string;
  /** Where the data came from (a file name; never a password). */
  source: string;
  rowCounts: Record<string, number>;
  totalRows: number;
  generator: string;
}

/**
 * Frames a stream of encoded row batches as one export file. Writers are pure: each call returns the
 * text to write, so the export pipeline owns all I/O, backpressure and compression.
 */
export interface FormatWriter {
  readonly encoding: RowEncoding;
  /** Rows per batch this format wants (e.g. 500 rows per SQL INSERT statement). */
  readonly batchRows: number;
  header(h: ExportHeader): string;
  tableStart(table: TableSchema, rows: number, index: number): string;
  /** Text around one batch: what goes before it (`first` = first batch of its table) and after it. */
  batchPrefix(table: TableSchema, first: boolean): string;
  batchSuffix(table: TableSchema): string;
  tableEnd(table: TableSchema, digest: TableDigest): string;
  footer(h: ExportHeader, digests: Record<string, TableDigest>): string;
}

/** What a format reader yields, in file order. */
export type ImportItem =
  /** The whole schema up front (ndjson, json): tables are created at once. */
  | { kind: 'schema'; schema: DatabaseSchema }
  /**
   * Rows of one table in the reader's encoding (a view of the reader's buffer: load it before the next
   * item); `batch.rows` is -1 when the reader did not count them (the loader's parser does).
   */
  | { kind: 'rows'; table: string; encoding: 'ndjson' | 'json'; batch: RowBatch }
  /**
   * One unit of rows too long to hold (a row with a large value), in pieces in order, each a view of
   * the reader's buffer valid until the next is taken: iterate them to the end before the next item.
   */
  | { kind: 'row-pieces'; table: string; encoding: 'ndjson' | 'json'; pieces: AsyncIterable<Buffer> }
  /** A statement already parsed and judged safe (sql): a CREATE TABLE or a literal-only INSERT. */
  | { kind: 'exec'; sql: string; line: number; table?: string }
  /**
   * An INSERT (sql), or a piece of one: `values` is a VALUES list of whole tuples that the importer
   * parses or checks, `head` the statement's text before it (`INSERT INTO … VALUES`). A long INSERT
   * comes as several items, one per piece, so that no item holds more than the reader's buffer.
   * `values` is a view of the reader's buffer: copy what is kept past the next item. With tuple
   * streaming (readSql's option), a tuple too long to hold comes in pieces: `partial` marks an item that
   * ends inside it, `cont` one that starts inside it (see SqlPiece).
   */
  | { kind: 'insert'; table: string; columns: string[] | null; head: string; values: Buffer; line: number; partial?: boolean; cont?: boolean }
  /** Index, view or trigger (sql): created after all data. */
  | { kind: 'object'; object: SchemaObject }
  | { kind: 'meta'; meta: DatabaseMeta }
  /** The digest recorded at export for a table, to compare with the loaded table. */
  | { kind: 'digest'; table: string; encoding: RowEncoding; digest: TableDigest }
  /**
   * The file's own end marker: anything missing before it is truncation. `tables` and `rows` are what
   * the file says it holds (its end line, or the json header's counts); `digested` that every table of
   * it has a digest (a scriptorium sql export, unlike a `sqlite3 .dump`).
   */
  | { kind: 'end'; tables?: number; rows?: number; digested?: boolean };

/**
 * Compares what a file says it holds (its {@link ImportItem} `end`) with what was loaded from it:
 * a table left out, rows removed or added as a whole table (each table's own digest checks the rest)
 * are E_TRUNCATED, before anything is committed.
 */
export function checkEndCounts(end: { tables?: number; rows?: number; digested?: boolean } | undefined, loaded: ReadonlyArray<{ name: string; rows: number; verified?: boolean }>): void {
  if (!end) return;
  const fail = (message: string): never => {
    throw new IntegrityError('E_TRUNCATED', `import: ${message}`, { hint: 'The file is incomplete or was edited; nothing was written to the target.' });
  };
  if (end.digested) {
    const bare = loaded.find((t) => t.verified === false);
    if (bare) fail(`table ${JSON.stringify(bare.name)} has no digest, which every table of this export has: the file is incomplete`);
  }
  if (end.tables !== undefined && Number.isFinite(end.tables) && end.tables !== loaded.length) {
    fail(`the file says it holds ${end.tables} table${end.tables === 1 ? '' : 's'}; ${loaded.length} ${loaded.length === 1 ? 'is' : 'are'} in it`);
  }
  const rows = loaded.reduce((a, t) => a + t.rows, 0);
  if (end.rows !== undefined && Number.isFinite(end.rows) && end.rows !== rows) fail(`the file says it holds ${end.rows} rows; ${rows} are in it`);
}

export type FormatName = 'json' | 'ndjson' | 'sql';

export const FORMAT_EXTENSIONS: Readonly<Record<FormatName, string>> = { json: 'json', ndjson: 'ndjson', sql: 'sql' };

/** The generator string written into every export. */
export const GENERATOR = 'scriptorium 0.1.0';
