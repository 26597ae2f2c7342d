import type Database from 'better-sqlite3';
import type { RowEncoding } from '../../core/encoding.js';
import type { TableSchema } from '../../core/schema.js';
import { rowsQuery, tableOrder } from './row-sql.js';
import { quoteIdent } from './sql-text.js';

/**
 * Rows per segment, rounded up to whole batches: small enough that two or more readers share a table
 * evenly (the demo's 1M rows make ~120 segments), large enough that a segment's query costs nothing.
 */
export const SEGMENT_ROWS = 8192;

/**
 * Cuts a rowid table into segments for the background readers (native/scriptorium_encode.inc): the
 * queries of consecutive rowid ranges, in order, each `rowsQuery` with a range, or undefined when the
 * table is not worth it (WITHOUT ROWID, fewer than two segments' rows).
 *
 * Every segment starts a batch, so segments start at a multiple of `batchRows` rows wherever that
 * shows in the output (the sql format's INSERT statements), and the output is byte for byte one
 * reader's:
 * - dense rowids (max - min + 1 = rows, the usual case): the ranges follow from min and max;
 * - otherwise, for sql: one pass over the rowids finds every segment's first rowid
 *   (`scriptorium_every`; ~90 ms on the 1M-row demo);
 * - otherwise, for json and ndjson, where batches only concatenate: [min, max] is cut in equal parts.
 */
export function planSegments(db: Database.Database, table: TableSchema, rows: number, batchRows: number, encoding: RowEncoding): string[] | undefined {
  return planSegmentRanges(db, table, rows, batchRows, encoding)?.map((where) => rowsQuery(table, where));
}

/** The WHERE conditions of {@link planSegments}' queries (the first and last are open-ended), or undefined. */
export function planSegmentRanges(db: Database.Database, table: TableSchema, rows: number, batchRows: number, encoding: RowEncoding): string[] | undefined {
  const perSegment = Math.ceil(SEGMENT_ROWS / batchRows) * batchRows;
  const count = Math.ceil(rows / perSegment);
  if (table.withoutRowid || count < 2) return undefined;
  const range = rowidRange(db, table);
  if (!range) return undefined;
  const [min, max] = range;
  const key = tableOrder(table).keys[0]!;
  const name = quoteIdent(table.name);
  const span = max - min + 1n;
  let bounds: bigint[];
  if (span === BigInt(rows)) {
    bounds = Array.from({ length: count }, (_, i) => min + BigInt(i * perSegment));
  } else if (encoding === 'sql') {
    const blob = db.prepare(`SELECT scriptorium_every(${key}, ?) FROM ${name} NOT INDEXED`).pluck().get(perSegment) as Buffer;
    bounds = Array.from({ length: blob.length / 8 }, (_, i) => blob.readBigInt64LE(8 * i));
  } else {
    bounds = Array.from({ length: count }, (_, i) => min + (span * BigInt(i)) / BigInt(count));
  }
  return bounds.map((from, i) => {
    const to = bounds[i + 1];
    return [i > 0 ? `${key} >= ${from}` : '', to !== undefined ? `${key} < ${to}` : ''].filter(Boolean).join(' AND ');
  });
}

/**
 * The smallest and largest rowid of a rowid table, from the ends of its b-tree (no scan); null for an
 * empty table, undefined when the key holds other than integers. `db` needs safe integers on.
 */
export function rowidRange(db: Database.Database, table: TableSchema): [bigint, bigint] | null | undefined {
  const key = tableOrder(table).keys[0]!;
  const name = quoteIdent(table.name);
  // Two subqueries: SQLite answers min() and max() from the b-tree's ends only when each is alone.
  const [min, max] = db.prepare(`SELECT (SELECT min(${key}) FROM ${name}), (SELECT max(${key}) FROM ${name})`).raw().get() as [unknown, unknown];
  if (min === null) return null;
  return typeof min === 'bigint' && typeof max === 'bigint' ? [min, max] : undefined;
}

/** The segments as scriptorium_encode takes them: one BLOB, the queries separated by NUL bytes. */
export function segmentsArgument(queries: string[]): Buffer {
  return Buffer.from(queries.join('\0'), 'utf8');
}
