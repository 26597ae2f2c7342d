import type { TableDigest } from '../core/encoding.js';
import { IntegrityError, ScriptoriumError } from '../core/errors.js';
import { rowColumns, type SchemaObject, type TableSchema } from '../core/schema.js';
import { quoteIdent, quoteText } from '../engines/sqlite/sql-text.js';
import type { ByteReader } from './byte-reader.js';
import type { ExportHeader, FormatWriter, ImportItem } from './format.js';
import { SqlSplitter, type SqlPiece } from './sql-splitter.js';
import { classifyStatement, HEAD_CHARS, INSERT_HEAD_CHARS } from './sql-statements.js';

/**
 * A script that SQLite's own shell loads (`sqlite3 new.db < dump.sql`): one transaction, foreign keys
 * off, tables, multi-row INSERTs of 500 rows, then indexes, triggers and views, then the metadata.
 * `-- scriptorium:` comments carry each table's digest; SQLite ignores them.
 */
export const SQL_FORMAT_ID = 'scriptorium-sql';
export const SQL_VERSION = 1;

export class SqlWriter implements FormatWriter {
  readonly encoding = 'sql' as const;
  readonly batchRows = 500;
  #objects: SchemaObject[] = [];

  header(h: ExportHeader): string {
    this.#objects = h.schema.objects;
    const lines = [
      `-- ${SQL_FORMAT_ID} ${SQL_VERSION}: ${h.generator} export of ${h.source.replaceAll('\n', ' ')} at ${h.exportedAt}`,
      `-- SQLite ${h.schema.engineVersion}; ${h.schema.tables.length} tables, ${h.totalRows} rows. Load with: sqlite3 new.db < this-file.sql`,
      'PRAGMA foreign_keys=OFF;',
      'BEGIN TRANSACTION;',
      ...h.schema.tables.flatMap((t) => [terminate(t.sql), ...fts5Config(t)]),
    ];
    return `${lines.join('\n')}\n`;
  }

  tableStart(table: TableSchema, rows: number): string {
    return `-- scriptorium:table ${JSON.stringify({ name: table.name, rows })}\n`;
  }

  batchPrefix(table: TableSchema): string {
    return `INSERT INTO ${quoteIdent(table.name)}(${rowColumns(table).map(quoteIdent).join(',')}) VALUES\n`;
  }

  batchSuffix(): string {
    return ';\n';
  }

  tableEnd(table: TableSchema, digest: TableDigest): string {
    return `-- scriptorium:digest ${JSON.stringify({ table: table.name, rows: digest.rows, sha256: digest.sha256 })}\n`;
  }

  footer(h: ExportHeader): string {
    const lines: string[] = [];
    const seq = Object.entries(h.schema.meta.sequences ?? {});
    if (seq.length > 0) {
      lines.push('DELETE FROM sqlite_sequence;');
      for (const [name, value] of seq) lines.push(`INSERT INTO sqlite_sequence(name,seq) VALUES(${quoteText(name)},${BigInt(value)});`);
    }
    for (const o of this.#objects) lines.push(terminate(o.sql));
    if (h.schema.meta.analyzed === true) lines.push('ANALYZE;'); // the source's optimizer statistics, computed again
    lines.push(`PRAGMA user_version=${h.schema.meta.userVersion ?? 0};`);
    lines.push(`PRAGMA application_id=${h.schema.meta.applicationId ?? 0};`);
    lines.push('COMMIT;');
    lines.push(`-- scriptorium:end ${JSON.stringify({ tables: h.schema.tables.length, rows: h.totalRows })}`);
    return `${lines.join('\n')}\n`;
  }
}

/**
 * An FTS5 table's configuration options as the statements that set them (`INSERT INTO ft(ft, rank)
 * VALUES('rank', 'bm25(10.0, 5.0)')`), which SQLite's shell and import both run like any INSERT.
 */
function fts5Config(table: TableSchema): string[] {
  const name = quoteIdent(table.name);
  return (table.virtual?.config ?? []).map(
    ([key, value]) => `INSERT INTO ${name}(${name},rank) VALUES(${quoteText(key)},${typeof value === 'number' ? String(value) : quoteText(value)});`,
  );
}

/**
 * `sql;` — unless the stored statement ends inside a comment (SQLite keeps a trailing `-- note` of a view
 * or index), where a bare `;` would be commented out: then the comment is closed first, as `.dump` does.
 */
export function terminate(sql: string): string {
  let i = 0;
  let inComment: 'line' | 'block' | undefined;
  while (i < sql.length) {
    const c = sql[i]!;
    inComment = undefined;
    if (c === "'" || c === '"' || c === '`' || c === '[') {
      const close = sql.indexOf(c === '[' ? ']' : c, i + 1);
      if (close < 0) break;
      i = close + 1; // a doubled quote is two adjacent quoted runs: same result
    } else if (c === '-' && sql[i + 1] === '-') {
      const nl = sql.indexOf('\n', i);
      if (nl < 0) {
        inComment = 'line';
        break;
      }
      i = nl + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      const close = sql.indexOf('*/', i + 2);
      if (close < 0) {
        inComment = 'block';
        break;
      }
      i = close + 2;
    } else i++;
  }
  return inComment === 'line' ? `${sql}\n;` : inComment === 'block' ? `${sql}*/;` : `${sql};`;
}

/** The counts of a `-- scriptorium:end {"tables":T,"rows":N}` line (of either engine's sql export). */
export function endCounts(json: string, line: number): { tables: number; rows: number } {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    v = undefined;
  }
  const o = v as { tables?: unknown; rows?: unknown } | undefined;
  if (!o || typeof o !== 'object' || !Number.isSafeInteger(o.tables) || !Number.isSafeInteger(o.rows)) {
    throw new IntegrityError('E_CORRUPT', `sql: line ${line}: a damaged scriptorium:end comment`, { hint: 'The file is damaged or was edited; nothing was written to the target.' });
  }
  return { tables: o.tables as number, rows: o.rows as number };
}

/**
 * Reads a SQL script written by scriptorium or by `sqlite3 .dump`. Nothing in it is executed as given
 * unless it is one of the statements those tools write: CREATE TABLE/INDEX/VIEW/TRIGGER, INSERTs of
 * literal values, the sqlite_sequence rows, and a few harmless PRAGMAs. Anything else is refused with
 * its line number.
 */
export async function* readSql(reader: ByteReader, options: { streamTuples?: boolean } = {}): AsyncGenerator<ImportItem> {
  // With `streamTuples` (the consumer loads tuples from pieces), a tuple too long to hold is handed out in pieces.
  const splitter = new SqlSplitter(undefined, options.streamTuples ? STREAMED_TUPLE_BYTES : Infinity);
  /** The bound on the streamed tuple in progress (its pieces are not held, so fill cannot check them). */
  let tupleBound: ((piece: Buffer) => void) | null = null;
  const flags = (v: NonNullable<SqlPiece['values']>, data: Buffer): { partial?: boolean; cont?: boolean } => {
    if (!v.partial && !v.cont) return {};
    if (!v.cont) tupleBound = reader.unitBound();
    tupleBound?.(data);
    if (!v.partial) tupleBound = null;
    return { ...(v.partial ? { partial: true } : {}), ...(v.cont ? { cont: true } : {}) };
  };
  let began = false;
  let committed = false;
  /** A scriptorium export (its first line says so): it ends with a scriptorium:end line, and every table has a digest. */
  let ours = false;
  let end: { tables: number; rows: number } | undefined;
  const meta: { userVersion?: number; applicationId?: number; sequences?: Record<string, string>; analyzed?: boolean } = {};
  const tables = new Set<string>();
  // The splitter works on the reader's buffer: pieces are views of it, used before the next fill.
  reader.describe = () => `sql: the statement at line ${splitter.line}`;
  /** The INSERT whose later pieces (whole tuples) are still to come. */
  let streaming: { table: string; columns: string[] | null; head: string } | 'ignore' | null = null;
  let more = true;
  for (;;) {
    // No local keeps a view (or the splitter's generator, which holds one) while the reader fills:
    // when its buffer grows, the old one must be garbage at once, not 1x the unit more of memory.
    let pieces: Generator<SqlPiece> | undefined = splitter.drain(reader.view);
    for (const piece of pieces) {
      if (piece.comment !== undefined) {
        if (piece.line === 1 && piece.comment.startsWith(`-- ${SQL_FORMAT_ID} `)) ours = true;
        const m = /^-- scriptorium:(digest|end) (\{.*\})\s*$/.exec(piece.comment);
        if (m?.[1] === 'digest') {
          let d: { table: string; rows: number; sha256: string };
          try {
            d = JSON.parse(m[2]!) as typeof d;
          } catch {
            throw new IntegrityError('E_CORRUPT', `sql: line ${piece.line}: a damaged scriptorium:digest comment`, {
              hint: 'The file is damaged or was edited; nothing was written to the target.',
            });
          }
          yield { kind: 'digest', table: d.table, encoding: 'sql', digest: { rows: d.rows, sha256: d.sha256 } };
        } else if (m?.[1] === 'end') end = endCounts(m[2]!, piece.line);
        continue;
      }
      if (piece.values && !piece.values.first) {
        // More tuples of the INSERT judged on its first piece.
        const more = flags(piece.values, piece.data);
        if (streaming && streaming !== 'ignore') yield { kind: 'insert', ...streaming, values: piece.data, line: piece.line, ...more };
        if (piece.values.last) streaming = null;
        continue;
      }
      const continues = piece.values !== undefined && !piece.values.last;
      if (committed) throw unsupported(piece.line, 'statements after COMMIT');
      // INSERTs are judged on their head; their VALUES stay bytes until the importer parses them.
      const isInsert = /^INSERT\s/i.test(piece.data.toString('latin1', 0, 8));
      let text = isInsert ? piece.data.toString('utf8', 0, Math.min(piece.data.length, HEAD_CHARS)) : piece.data.toString('utf8');
      let st: ReturnType<typeof classifyStatement>;
      try {
        st = classifyStatement(text, piece.line, tables);
      } catch (err) {
        // A wide table's column list does not fit the usual head: judge it on a longer one.
        if (!isInsert || piece.data.length <= HEAD_CHARS) throw err;
        text = piece.data.toString('utf8', 0, Math.min(piece.data.length, INSERT_HEAD_CHARS));
        st = classifyStatement(text, piece.line, tables);
      }
      switch (st.kind) {
        case 'begin':
          began = true;
          break;
        case 'commit':
          committed = true;
          break;
        case 'ignore':
          if (continues) streaming = 'ignore';
          break;
        case 'create-table':
          tables.add(st.name);
          yield { kind: 'exec', sql: text, line: piece.line, table: st.name };
          break;
        case 'insert':
          // `values` is a view of the reader's buffer: the importer copies what it keeps before the next fill.
          yield { kind: 'insert', table: st.table, columns: st.columns, head: st.head, values: piece.data.subarray(Buffer.byteLength(st.head)), line: piece.line, ...flags(piece.values!, piece.data) };
          if (continues) streaming = { table: st.table, columns: st.columns, head: st.head };
          break;
        case 'object':
          yield { kind: 'object', object: st.object };
          break;
        case 'sequence':
          if (continues) throw unsupported(piece.line, 'an INSERT into sqlite_sequence of more than a few rows');
          (meta.sequences ??= Object.create(null) as Record<string, string>)[st.name] = st.value; // a table may be "__proto__"
          break;
        case 'analyze':
          meta.analyzed = true;
          break;
        case 'pragma':
          if (st.name === 'user_version') meta.userVersion = st.value;
          else meta.applicationId = st.value;
          break;
      }
    }
    pieces = undefined;
    reader.skip(splitter.consumed);
    if (!more) break;
    more = await reader.fill();
  }
  const rest = splitter.finish(reader.view);
  if (rest) {
    throw new IntegrityError('E_TRUNCATED', `sql: the script ends inside a statement that starts at line ${rest.line}`, {
      hint: 'The file is incomplete (interrupted copy or download?); nothing was written to the target.',
    });
  }
  if (!began || !committed) {
    throw new IntegrityError('E_TRUNCATED', `sql: the script ${began ? 'has no COMMIT' : 'has no BEGIN TRANSACTION'}`, {
      hint: 'scriptorium and sqlite3 .dump both write one transaction; a script without its end is incomplete.',
    });
  }
  if (ours && !end) {
    throw new IntegrityError('E_TRUNCATED', 'sql: the script has no scriptorium:end line after its COMMIT', {
      hint: 'A scriptorium sql export ends with one; without it the file is incomplete or was edited. Nothing was written to the target.',
    });
  }
  yield { kind: 'meta', meta };
  yield { kind: 'end', ...(end ?? {}), ...(ours ? { digested: true } : {}) };
}

/**
 * A VALUES tuple at least this long (it holds a large value) is handed to the loader in pieces, with
 * `streamTuples`. 4 MiB, not 16: the reader's buffer doubles up to twice this before the tuple streams,
 * and each piece is copied into SQLite, and those large blocks stayed in the process after they were
 * freed (malloc keeps them for reuse): a 200 MB BLOB's import peaked at 394 MB with 16 MiB, 321 MB with
 * 4 MiB, 283 MB with 1 MiB (ndjson: 303 MB), on issue 13's bound of 400 MB. Tuples below it (nearly all)
 * load whole, as before.
 */
export const STREAMED_TUPLE_BYTES = 4 << 20;

function unsupported(line: number, what: string): ScriptoriumError {
  return new ScriptoriumError('E_UNSUPPORTED_SQL', `sql: line ${line}: ${what}`, {
    hint: 'Only scripts written by scriptorium or sqlite3 .dump can be imported.',
  });
}
