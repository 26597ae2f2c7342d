import type { RowEncoding } from '../../core/encoding.js';
import { ROW_SEPARATOR } from '../../core/encoding.js';
import { rowColumns, type TableSchema } from '../../core/schema.js';
import { jsonKeyPath, quoteIdent, quoteText } from './sql-text.js';
import { rowidName } from './sqlite-schema.js';

/**
 * The SQL that makes SQLite encode and decode rows itself, in C. Every encoding is exact: integers keep
 * all 64 bits, REAL stays REAL (JSON reals always carry a `.` or an exponent), -0.0 and ±Infinity
 * survive, BLOBs travel as `{"$blob":"HEX"}` in JSON and `X'HEX'` in SQL, text keeps embedded NULs.
 */

/** The largest finite double; anything beyond is ±Infinity. */
const MAX_DOUBLE = '1.7976931348623157e308';

/** A JSON value for column `c` (used inside json_array / json_object). */
function jsonValue(c: string): string {
  return (
    `CASE typeof(${c}) WHEN 'blob' THEN json_object('$blob', hex(${c})) ` +
    `WHEN 'real' THEN iif(${c} = 0 AND atan2(${c}, -1) < 0, json('-0.0'), ${c}) ELSE ${c} END`
  );
}

/** A SQL literal for column `c` that SQLite's own shell reads back to the identical value. */
function sqlValue(c: string): string {
  return (
    `CASE typeof(${c}) ` +
    // NUL cannot be written in a literal, and the sqlite3 shell reads CR LF inside a literal as LF.
    `WHEN 'text' THEN iif(instr(${c}, char(0)) OR instr(${c}, char(13, 10)), 'CAST(X''' || hex(${c}) || ''' AS TEXT)', quote(${c})) ` +
    `WHEN 'real' THEN iif(${c} = 0 AND atan2(${c}, -1) < 0, '-0.0', ` +
    `iif(${c} > ${MAX_DOUBLE}, '1e999', iif(${c} < -${MAX_DOUBLE}, '-1e999', quote(${c})))) ` +
    `ELSE quote(${c}) END`
  );
}

/** SQLite's column affinity, from the declared type (https://sqlite.org/datatype3.html, 3.1). */
export function affinity(type: string, strict = false): 'INTEGER' | 'TEXT' | 'BLOB' | 'REAL' | 'NUMERIC' {
  const t = type.toUpperCase();
  if (t.includes('INT')) return 'INTEGER';
  if (t.includes('CHAR') || t.includes('CLOB') || t.includes('TEXT')) return 'TEXT';
  if (t.includes('BLOB') || t === '' || (strict && t === 'ANY')) return 'BLOB';
  if (t.includes('REAL') || t.includes('FLOA') || t.includes('DOUB')) return 'REAL';
  return 'NUMERIC';
}

/**
 * The SQL expression that encodes one row of `table` as text.
 *
 * JSON encodings have a fast form: a plain value everywhere except in columns without affinity, the
 * only ones that can hold -0.0 (every other affinity stores it as 0). A BLOB elsewhere makes the fast
 * form fail loudly ("JSON cannot hold BLOB values"), and the reader retries the batch with `exact`,
 * which tags every value. Both forms give identical text for the same values, so digests agree.
 */
export function rowExpression(table: TableSchema, encoding: RowEncoding, exact = true): string {
  const cols = rowColumns(table);
  const strict = /\)\s*(?:WITHOUT\s+ROWID\s*,\s*)?STRICT\s*(?:,\s*WITHOUT\s+ROWID\s*)?;?\s*$/i.test(table.sql);
  const types = table.columns.map((c) => c.type);
  if (table.rowidAlias) types.unshift('INTEGER');
  const refs = cols.map((name, i) => (i === 0 && table.rowidAlias ? table.rowidAlias : quoteIdent(name)));
  // SQLite 3.45+ reads a BLOB handed to a JSON function as JSONB, so a plain BLOB does not always fail:
  // x'00' silently becomes null. Tag BLOBs explicitly; only -0.0 needs the full form (no-affinity columns).
  const json = (r: string, i: number): string =>
    exact || affinity(types[i]!, strict) === 'BLOB' ? jsonValue(r) : `iif(typeof(${r}) = 'blob', json_object('$blob', hex(${r})), ${r})`;
  if (refs.length > FUNCTION_ARGS) return wideRowExpression(refs, cols, encoding, json);
  switch (encoding) {
    case 'ndjson':
      return `json_array(${refs.map(json).join(', ')})`;
    case 'json':
      return `json_object(${refs.map((r, i) => `${quoteText(cols[i]!)}, ${json(r, i)}`).join(', ')})`;
    case 'sql':
      return `'(' || ${refs.map(sqlValue).join(" || ',' || ")} || ')'`;
  }
}

/**
 * Values per function call in {@link wideRowExpression}: json_object takes two arguments per value, and
 * SQLite allows SQLITE_MAX_FUNCTION_ARG (1000 in every build we know) arguments per call.
 */
const FUNCTION_ARGS = 450;

/**
 * The row expression of a table too wide for one function call (more than {@link FUNCTION_ARGS}
 * values; up to SQLite's 2000 columns): the same text, built from pieces.
 *
 * A JSON piece other than the last gets a marker value that ends it (`,"x"]` or `,"":"x"}`); trimming
 * the marker's characters stops at the comma before it, since no JSON text of a value ends in a comma.
 * So each piece is its values followed by a comma, and the last piece closes the array or object. A
 * chain of `||` as long as the row would exceed SQLite's expression depth (1000), so SQL tuples join
 * pieces with concat_ws (values are never NULL there: quote() writes NULL as text).
 */
function wideRowExpression(refs: string[], cols: string[], encoding: RowEncoding, json: (r: string, i: number) => string): string {
  const pieces: string[] = [];
  for (let at = 0; at < refs.length; at += FUNCTION_ARGS) {
    const last = at + FUNCTION_ARGS >= refs.length;
    const part = refs.slice(at, at + FUNCTION_ARGS);
    if (encoding === 'sql') {
      pieces.push(`concat_ws(',', ${part.map(sqlValue).join(', ')})`);
      continue;
    }
    const values =
      encoding === 'ndjson'
        ? part.map((r, i) => json(r, at + i))
        : part.map((r, i) => `${quoteText(cols[at + i]!)}, ${json(r, at + i)}`);
    const open = encoding === 'ndjson' ? '[' : '{';
    const call = encoding === 'ndjson' ? 'json_array' : 'json_object';
    const marker = encoding === 'ndjson' ? `'x'` : `'', 'x'`;
    const trim = encoding === 'ndjson' ? `'"x]'` : `'"x:}'`;
    const text = last ? `${call}(${values.join(', ')})` : `rtrim(${call}(${values.join(', ')}, ${marker}), ${trim})`;
    pieces.push(at === 0 ? text : `ltrim(${text}, '${open}')`);
  }
  return encoding === 'sql' ? `concat('(', concat_ws(',', ${pieces.join(', ')}), ')')` : pieces.join(' || ');
}

/** How a table is walked: by its rowid (storage order) or, for WITHOUT ROWID tables, its primary key. */
export interface TableOrder {
  /** Column expressions of the key, in order. */
  keys: string[];
}

/**
 * Rowid tables are read in rowid order: their storage order, the order SQLite's own `.dump` uses, and
 * the order an INTEGER PRIMARY KEY gives. (Walking a rowid table by a TEXT primary key costs a random
 * lookup per row: 5x slower measured on the demo's `regs`. New rows land at the end, which also keeps
 * backup chunks stable.) WITHOUT ROWID tables are stored, and read, in primary-key order.
 */
export function tableOrder(table: TableSchema): TableOrder {
  if (table.withoutRowid) return { keys: table.primaryKey.map(quoteIdent) };
  return { keys: [table.rowidAlias ?? rowidName(table.columns.map((c) => c.name), table.name)] };
}

/**
 * One batch of encoded rows after a key position: `(data, rows, k1, k2, ...)` where `k*` are the last
 * row's key values. Keyset paging: every batch is an index seek, never an OFFSET scan.
 */
export function batchQuery(table: TableSchema, encoding: RowEncoding, order: TableOrder, first: boolean, exact = true): string {
  const keyCols = order.keys.map((k, i) => `${k} AS k${i}`).join(', ');
  const keyNames = order.keys.map((_, i) => `k${i}`).join(', ');
  const where = first ? '' : `WHERE (${order.keys.join(', ')}) > (${order.keys.map(() => '?').join(', ')})`;
  const sep = quoteText(ROW_SEPARATOR[encoding]);
  const inner = isRtree(table)
    ? rtreeBatch(table, rowExpression(table, encoding, exact), first)
    : `SELECT ${keyCols}, ${rowExpression(table, encoding, exact)} AS line FROM ${quoteIdent(table.name)} ` +
      `${where} ORDER BY ${order.keys.join(', ')} LIMIT ?`;
  const agg = `CAST(group_concat(line, ${sep}) AS BLOB) AS data, count(*) AS n`;
  // An integer rowid only grows, so the batch's last key is its max. A composite key needs the row
  // itself: SQLite fills bare columns from the row that holds max(rn).
  if (order.keys.length === 1 && !table.withoutRowid) return `SELECT ${agg}, 0, max(k0) FROM (${inner})`;
  return `SELECT ${agg}, max(rn), ${keyNames} FROM (SELECT row_number() OVER () AS rn, * FROM (${inner}))`;
}

function isRtree(table: TableSchema): boolean {
  return table.virtual?.module === 'rtree' || table.virtual?.module === 'rtree_i32';
}

/**
 * One batch of an R*Tree after a rowid: the module answers `rowid > ?` with a scan of the whole tree
 * and a sort (a batch each: quadratic), but `rowid = ?` with a lookup. So the batch's rowids come from
 * its `_rowid` shadow table (a b-tree keyed by rowid, only read), and each row from the R*Tree itself.
 */
function rtreeBatch(table: TableSchema, line: string, first: boolean): string {
  const name = quoteIdent(table.name);
  const ids = `SELECT rowid AS scriptorium_k FROM ${quoteIdent(`${table.name}_rowid`)} ${first ? '' : 'WHERE rowid > ? '}ORDER BY rowid LIMIT ?`;
  return `SELECT ${name}.rowid AS k0, ${line} AS line FROM (${ids}) AS scriptorium_ids CROSS JOIN ${name} ON ${name}.rowid = scriptorium_ids.scriptorium_k ORDER BY scriptorium_ids.scriptorium_k`;
}

/** The `keys` argument of the extension's json mode: column names JSON-encoded, joined by newlines. */
export function jsonKeys(table: TableSchema): string {
  return rowColumns(table).map((c) => JSON.stringify(c)).join('\n');
}

/**
 * TEXT and BLOB values above this many bytes are read in pieces by the extension (sqlite3_blob_read,
 * native/scriptorium_big.inc) instead of whole, and an export hands them out in batches of about
 * NATIVE_BATCH_BYTES: memory then stays flat however large a value is.
 */
export const BIG_VALUE_BYTES = 1 << 20; // BIG_LIMIT in native/scriptorium_encode.inc

/**
 * Every row's values (the rowid first where it is kept), in the table's key order; `where` narrows them.
 * With `bigValues` (only for the extension's encoders, on a rowid table of a UTF-8 database: see
 * {@link readsBigValues}), a value above {@link BIG_VALUE_BYTES} is selected as
 * `scriptorium_big(table, column, type, rowid)`, which names it without reading it
 * (octet_length() and typeof() read only the record header).
 */
export function rowsQuery(table: TableSchema, where = '', bigValues = false): string {
  const names = rowColumns(table);
  const refs = names.map((name, i) => (i === 0 && table.rowidAlias ? table.rowidAlias : quoteIdent(name)));
  const rowid = tableOrder(table).keys[0]!;
  const values = bigValues && !table.withoutRowid
    ? refs.map((ref, i) =>
        i === 0 && table.rowidAlias
          ? ref
          : `CASE WHEN octet_length(${ref}) > ${BIG_VALUE_BYTES} THEN scriptorium_big(${quoteText(table.name)}, ${quoteText(names[i]!)}, typeof(${ref}), ${rowid}) ELSE ${ref} END`,
      )
    : refs;
  return `SELECT ${values.join(', ')} FROM ${quoteIdent(table.name)}${where ? ` WHERE ${where}` : ''} ORDER BY ${tableOrder(table).keys.join(', ')}`;
}

/**
 * Whether the extension can read `table`'s large values with blob I/O on `db`: a rowid table (the blob
 * API needs the rowid) of a UTF-8 database (it hands out the stored bytes, which the encoders take as
 * UTF-8). Other tables' large values (WITHOUT ROWID) are loaded once, by the row's own query, and the
 * encoders still write them out in pieces from there (big_hold in native/scriptorium_big.inc).
 */
export function readsBigValues(db: { pragma(sql: string, options: { simple: true }): unknown }, table: TableSchema): boolean {
  return !table.withoutRowid && db.pragma('encoding', { simple: true }) === 'UTF-8';
}

/** Loads a batch through the extension's parser: parameters mode, spec (column count or keys), data. */
export function nativeLoadStatement(table: TableSchema, columns: string[] = rowColumns(table), staged = false): string {
  // `staged`: rows wider than scriptorium_rows' 1997 columns, from the batch scriptorium_stage handed over.
  const from = staged ? 'scriptorium_rows_staged' : 'scriptorium_rows(?, ?, ?)';
  return `INSERT INTO ${quoteIdent(table.name)} (${columns.map(quoteIdent).join(', ')}) SELECT ${columns.map((_, i) => `c${i}`).join(', ')} FROM ${from}`;
}

/**
 * The statement that loads a batch of encoded rows. `slow` handles batches that contain tagged values
 * (BLOBs); the fast form lets SQLite's JSON reader type every value directly.
 */
export function loadStatement(table: TableSchema, encoding: Exclude<RowEncoding, 'sql'>, slow: boolean): string {
  const cols = rowColumns(table);
  const target = `INSERT INTO ${quoteIdent(table.name)} (${cols.map(quoteIdent).join(', ')})`;
  const paths = cols.map((name, i) => (encoding === 'ndjson' ? `'$[${i}]'` : quoteText(jsonKeyPath(name))));
  const values = paths.map((p) =>
    slow
      ? `iif(json_type(value, ${p}) = 'object', unhex(json_extract(value, ${p} || '."$blob"')), value ->> ${p})`
      : `value ->> ${p}`,
  );
  const input = encoding === 'ndjson' ? `'[' || replace(CAST(? AS TEXT), char(10), ',') || ']'` : `'[' || CAST(? AS TEXT) || ']'`;
  if (cols.length <= FUNCTION_ARGS) return `${target} SELECT ${values.join(', ')} FROM json_each(${input})`;
  // A wide row is looked up once per column: as text, each lookup finds the row's parse again by
  // comparing its whole text (measured: 86 rows of 2000 columns took 35 s). Converted once to JSONB,
  // in a table of its own, every lookup reads the binary form directly (the same values: JSONB keeps
  // numbers and strings as their text).
  return `WITH r(value) AS MATERIALIZED (SELECT jsonb(value) FROM json_each(${input})) ${target} SELECT ${values.join(', ')} FROM r`;
}

/** The byte pattern that marks a batch as needing the slow load path. */
export const TAGGED_VALUE = Buffer.from('{"$blob"');
