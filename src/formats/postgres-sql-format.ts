import type { RowBatch, TableDigest } from '../core/encoding.js';
import { IntegrityError, ScriptoriumError } from '../core/errors.js';
import type { DatabaseSchema, PostgresStatement, TableSchema } from '../core/schema.js';
import type { ByteReader } from './byte-reader.js';
import type { ExportHeader, FormatWriter } from './format.js';
import { SqlSplitter, type SqlPiece } from './sql-splitter.js';
import { SQL_FORMAT_ID, SQL_VERSION, endCounts } from './sql-format.js';

/** A double-quoted PostgreSQL identifier. */
function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * A PostgreSQL export as a plain SQL script for `psql -v ON_ERROR_STOP=1 -1 -f dump.sql`: the dump
 * session settings, one transaction, what comes before the tables, the tables, multi-row INSERTs of
 * literal values (500 rows each), then constraints, indexes, foreign keys, views, sequence values and
 * comments. It holds no psql meta-command (no `\connect`, no `COPY … FROM stdin` with its `\.`): a dump
 * is data, not a script that runs programs. `-- scriptorium:` comments carry the digests.
 */
export class PostgresSqlWriter implements FormatWriter {
  readonly encoding = 'sql' as const;
  readonly batchRows = 500;
  #after: string[] = [];

  header(h: ExportHeader): string {
    const pg = h.schema.postgres;
    this.#after = (pg?.after ?? []).map((s) => `${s.sql};`);
    const lines = [
      `-- ${SQL_FORMAT_ID} ${SQL_VERSION}: ${h.generator} export of ${h.source.replaceAll('\n', ' ')} at ${h.exportedAt}`,
      `-- PostgreSQL ${h.schema.engineVersion}; ${h.schema.tables.length} tables, ${h.totalRows} rows. Load with: psql -v ON_ERROR_STOP=1 -d new_db -f this-file.sql`,
      ...(pg?.notCarried ?? []).map((n) => `-- not carried: ${n.replaceAll('\n', ' ')}`),
      "SET client_encoding = 'UTF8';",
      'SET standard_conforming_strings = on;',
      "SET TimeZone = 'UTC';",
      'SET DateStyle = ISO;',
      'SET IntervalStyle = postgres;',
      "SELECT pg_catalog.set_config('search_path', '', false);",
      'BEGIN;',
      ...(pg?.before ?? []).map((s) => `${s.sql};`),
      ...h.schema.tables.map((t) => `${t.sql};`),
    ];
    return `${lines.join('\n')}\n`;
  }

  tableStart(table: TableSchema, rows: number): string {
    return `-- scriptorium:table ${JSON.stringify({ name: table.name, rows })}\n`;
  }

  batchPrefix(table: TableSchema): string {
    const pg = table.postgres!;
    // OVERRIDING SYSTEM VALUE: identity columns GENERATED ALWAYS take the dumped values.
    return `INSERT INTO ${ident(pg.schema)}.${ident(pg.table)} (${table.columns.map((c) => ident(c.name)).join(', ')}) OVERRIDING SYSTEM VALUE VALUES\n`;
  }

  batchSuffix(): string {
    return ';\n';
  }

  tableEnd(table: TableSchema, digest: TableDigest): string {
    return `-- scriptorium:digest ${JSON.stringify({ table: table.name, rows: digest.rows, sha256: digest.sha256 })}\n`;
  }

  footer(h: ExportHeader): string {
    return `${[...this.#after, 'COMMIT;', `-- scriptorium:end ${JSON.stringify({ tables: h.schema.tables.length, rows: h.totalRows })}`].join('\n')}\n`;
  }
}

/** What {@link readPostgresSql} yields, in file order. */
export type PostgresSqlItem =
  /**
   * The schema, once every CREATE TABLE is read: tables (their columns come from each table's first
   * INSERT, set on the table object before its rows), `before`; `after` fills as the reader goes on
   * and is complete when the reader ends.
   */
  | { kind: 'schema'; schema: DatabaseSchema }
  /** VALUES tuples of one table (bytes; a view of the reader's buffer, valid until the next item). */
  | { kind: 'rows'; table: string; encoding: 'sql'; batch: RowBatch; line: number }
  | { kind: 'digest'; table: string; encoding: 'sql'; digest: TableDigest }
  | { kind: 'end'; tables?: number; rows?: number };

/** The session settings our writer puts before BEGIN: the only statements of the head. */
const HEAD = new Set([
  "SET client_encoding = 'UTF8'",
  'SET standard_conforming_strings = on',
  "SET TimeZone = 'UTC'",
  'SET DateStyle = ISO',
  'SET IntervalStyle = postgres',
  "SELECT pg_catalog.set_config('search_path', '', false)",
]);

const Q_IDENT = String.raw`"(?:[^"]|"")+"`;
const CREATE_TABLE = new RegExp(`^CREATE (?:UNLOGGED )?TABLE (${Q_IDENT})\\.(${Q_IDENT}) \\(`);
/** A partitioned table's CREATE (a statement before the tables: it holds no rows), as postgres-schema.ts writes it. */
const PARTITIONED_TABLE = /\n\) PARTITION BY (?:RANGE|LIST|HASH) \([^\n]*\)$/;
const ATTACH_PARTITION = new RegExp(`^ALTER TABLE ONLY ${Q_IDENT}\\.${Q_IDENT} ATTACH PARTITION `);
const INSERT_HEAD = new RegExp(`^INSERT INTO (${Q_IDENT})\\.(${Q_IDENT}) \\((${Q_IDENT}(?:, ${Q_IDENT})*)\\) OVERRIDING SYSTEM VALUE VALUES\\s*$`);

function unquoteIdent(q: string): string {
  return q.slice(1, -1).replace(/""/g, '"');
}

/** The kind of a statement by its start (its whole shape is checked by the target before it runs), or undefined. */
function statementKind(sql: string): { kind: PostgresStatement['kind']; phase: 'before' | 'after' } | undefined {
  if (sql.startsWith('CREATE SCHEMA ')) return { kind: 'schema', phase: 'before' };
  if (sql.startsWith('CREATE EXTENSION ')) return { kind: 'extension', phase: 'before' };
  if (sql.startsWith('CREATE TYPE ') || sql.startsWith('CREATE DOMAIN ') || sql.startsWith('ALTER DOMAIN ')) return { kind: 'type', phase: 'before' };
  if (sql.startsWith('CREATE SEQUENCE ')) return { kind: 'sequence', phase: 'before' };
  if (sql.startsWith('CREATE TABLE ') && PARTITIONED_TABLE.test(sql)) return { kind: 'partitioned-table', phase: 'before' };
  if (ATTACH_PARTITION.test(sql)) return { kind: 'attach-partition', phase: 'after' };
  if (sql.startsWith('ALTER TABLE ')) return { kind: new RegExp(`^ALTER TABLE (?:ONLY )?${Q_IDENT}\\.${Q_IDENT} ADD CONSTRAINT ${Q_IDENT} FOREIGN KEY\\b`).test(sql) ? 'foreign-key' : 'constraint', phase: 'after' };
  if (sql.startsWith('CREATE INDEX ') || sql.startsWith('CREATE UNIQUE INDEX ')) return { kind: 'index', phase: 'after' };
  if (sql.startsWith('CREATE VIEW ') || sql.startsWith('CREATE MATERIALIZED VIEW ')) return { kind: 'view', phase: 'after' };
  if (sql.startsWith('SELECT pg_catalog.setval(')) return { kind: 'sequence-value', phase: 'after' };
  if (sql.startsWith('ALTER SEQUENCE ')) return { kind: 'owned-by', phase: 'after' };
  if (sql.startsWith('COMMENT ON ')) return { kind: 'comment', phase: 'after' };
  return undefined;
}

/**
 * The psql meta-command in `sql` outside its string literals and quoted names (`\!`, `\connect`,
 * `\copy`, `\i`, …), or undefined. psql runs a backslash command wherever it stands on a line, so any
 * backslash outside quotes is refused.
 */
export function metaCommand(sql: string): string | undefined {
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (c === "'" || c === '"') {
      const close = sql.indexOf(c, i + 1);
      if (close < 0) break;
      i = close; // a doubled quote is two adjacent quoted runs: same result
    } else if (c === '\\') {
      return `\\${/^\\([A-Za-z]+|[!?.;\\]|)/.exec(sql.slice(i))![1]}`;
    }
  }
  return undefined;
}

function metaCommandError(line: number, command: string): ScriptoriumError {
  return new ScriptoriumError('E_UNSUPPORTED_SQL', `sql: line ${line}: a psql meta-command (${command}) is refused: a dump is data, not a script that runs programs`, {
    hint: "scriptorium's PostgreSQL sql exports never hold one; the file was edited or written by another tool. Nothing was written to the target.",
  });
}

function refused(line: number, what: string): ScriptoriumError {
  return new ScriptoriumError('E_UNSUPPORTED_SQL', `sql: line ${line}: ${what}`, {
    hint: 'import runs only the statements a scriptorium PostgreSQL sql export holds; the file was edited or is not one. Nothing was written to the target.',
  });
}

/**
 * Reads a PostgreSQL sql export written by {@link PostgresSqlWriter}: the head's session settings,
 * BEGIN, the statements before the tables, the CREATE TABLEs, multi-row INSERTs of literal tuples
 * with digest comments, the statements after the rows, COMMIT. Statements must come in that order,
 * each of the one form the writer gives its kind (the target checks each statement's whole shape
 * before it runs it, as for an ndjson file); anything else, and any psql meta-command, is refused with
 * its line number.
 */
export async function* readPostgresSql(reader: ByteReader): AsyncGenerator<PostgresSqlItem> {
  const splitter = new SqlSplitter();
  reader.describe = () => `sql: the statement at line ${splitter.line}`;
  let phase: 'head' | 'before' | 'tables' | 'rows' | 'after' | 'done' = 'head';
  const before: PostgresStatement[] = [];
  const after: PostgresStatement[] = [];
  const notCarried: string[] = [];
  const tables: TableSchema[] = [];
  const byQualified = new Map<string, TableSchema>();
  let engineVersion = '';
  let schema: DatabaseSchema | undefined;
  /** The INSERT whose later pieces are still to come. */
  let streaming: { table: string } | null = null;
  /** What its scriptorium:end line says the script holds. */
  let end: { tables: number; rows: number } | undefined;
  const leaveTables = function* (line: number): Generator<PostgresSqlItem> {
    if (schema) return;
    if (phase !== 'tables' && phase !== 'before') throw refused(line, 'rows or statements before BEGIN');
    schema = { engine: 'postgres', engineVersion, tables, objects: [], meta: {}, postgres: { before, after, notCarried } };
    phase = 'rows';
    yield { kind: 'schema', schema };
  };
  let more = true;
  for (;;) {
    let pieces: Generator<SqlPiece> | undefined = splitter.drain(reader.view);
    for (const piece of pieces) {
      if (piece.comment !== undefined) {
        const m = /^-- scriptorium:(digest|end|table) (\{.*\})\s*$/.exec(piece.comment);
        if (m?.[1] === 'digest') {
          yield* leaveTables(piece.line);
          let d: { table: string; rows: number; sha256: string };
          try {
            d = JSON.parse(m[2]!) as typeof d;
          } catch {
            throw new IntegrityError('E_CORRUPT', `sql: line ${piece.line}: a damaged scriptorium:digest comment`, { hint: 'The file is damaged or was edited; nothing was written to the target.' });
          }
          yield { kind: 'digest', table: d.table, encoding: 'sql', digest: { rows: d.rows, sha256: d.sha256 } };
        } else if (m?.[1] === 'table') yield* leaveTables(piece.line);
        else if (m?.[1] === 'end') end = endCounts(m[2]!, piece.line);
        else if (piece.comment.startsWith('-- not carried: ')) notCarried.push(piece.comment.slice(16));
        else {
          const v = /^-- PostgreSQL (\S+?);/.exec(piece.comment);
          if (v && !engineVersion) engineVersion = v[1]!;
        }
        continue;
      }
      if (piece.values && !piece.values.first) {
        // More tuples of the INSERT whose head was checked on its first piece.
        if (streaming) yield { kind: 'rows', table: streaming.table, encoding: 'sql', batch: { data: piece.data, rows: -1 }, line: piece.line };
        if (piece.values.last) streaming = null;
        continue;
      }
      if (piece.values) {
        const head = piece.data.toString('utf8', 0, piece.values.at);
        const command = metaCommand(head);
        if (command !== undefined) throw metaCommandError(piece.line, command);
        const m = INSERT_HEAD.exec(head);
        if (!m) throw refused(piece.line, `an INSERT that is not of the form scriptorium writes: ${head.slice(0, 80)}`);
        yield* leaveTables(piece.line);
        if ((phase as string) !== 'rows') throw refused(piece.line, 'rows after the statements that follow the rows');
        const table = byQualified.get(`${m[1]}.${m[2]}`);
        if (!table) throw refused(piece.line, `rows for ${m[1]}.${m[2]}, which the file does not create`);
        const columns = m[3]!.split(', ').map(unquoteIdent);
        if (table.columns.length === 0) table.columns = columns.map((name) => ({ name, type: '', notNull: false, pk: 0 }));
        else if (table.columns.map((c) => c.name).join('\0') !== columns.join('\0')) throw refused(piece.line, `rows of ${table.name} with other columns than its earlier rows`);
        yield { kind: 'rows', table: table.name, encoding: 'sql', batch: { data: piece.data.subarray(piece.values.at), rows: -1 }, line: piece.line };
        if (!piece.values.last) streaming = { table: table.name };
        continue;
      }
      const sql = piece.data.toString('utf8');
      const command = metaCommand(sql);
      if (command !== undefined) throw metaCommandError(piece.line, command);
      if (phase === 'done') throw refused(piece.line, 'a statement after COMMIT');
      if (phase === 'head') {
        if (sql === 'BEGIN') phase = 'before';
        else if (!HEAD.has(sql)) throw refused(piece.line, `a statement that is not one of the session settings before BEGIN: ${sql.slice(0, 80)}`);
        continue;
      }
      if (sql === 'COMMIT') {
        yield* leaveTables(piece.line);
        phase = 'done';
        continue;
      }
      const t = PARTITIONED_TABLE.test(sql) ? null : CREATE_TABLE.exec(sql);
      if (t) {
        if (phase !== 'before' && phase !== 'tables') throw refused(piece.line, 'a CREATE TABLE after the rows began');
        phase = 'tables';
        const [pgSchema, pgTable] = [unquoteIdent(t[1]!), unquoteIdent(t[2]!)];
        const name = pgSchema === 'public' ? pgTable : `${pgSchema}.${pgTable}`;
        if (byQualified.has(`${t[1]}.${t[2]}`)) throw refused(piece.line, `table ${name} is created twice`);
        const table: TableSchema = { name, sql, columns: [], primaryKey: [], withoutRowid: false, postgres: { schema: pgSchema, table: pgTable } };
        tables.push(table);
        byQualified.set(`${t[1]}.${t[2]}`, table);
        continue;
      }
      const kind = statementKind(sql);
      if (!kind) throw refused(piece.line, `a statement scriptorium does not write: ${sql.slice(0, 80)}`);
      if (kind.phase === 'before') {
        if (phase !== 'before') throw refused(piece.line, `a ${kind.kind} statement after the tables`);
        before.push({ kind: kind.kind, name: `line ${piece.line}`, tables: [], sql });
      } else {
        yield* leaveTables(piece.line);
        phase = 'after';
        after.push({ kind: kind.kind, name: `line ${piece.line}`, tables: [], sql });
      }
    }
    pieces = undefined;
    reader.skip(splitter.consumed);
    if (!more) break;
    more = await reader.fill();
  }
  const rest = splitter.finish(reader.view);
  if (rest) {
    const command = metaCommand(reader.view.toString('utf8'));
    if (command !== undefined) throw metaCommandError(rest.line, command);
    throw new IntegrityError('E_TRUNCATED', `sql: the script ends inside a statement that starts at line ${rest.line}`, {
      hint: 'The file is incomplete (interrupted copy or download?); nothing was written to the target.',
    });
  }
  if (phase !== 'done') {
    throw new IntegrityError('E_TRUNCATED', `sql: the script ${phase === 'head' ? 'has no BEGIN' : 'has no COMMIT'}`, {
      hint: 'A scriptorium PostgreSQL sql export is one transaction; a script without its end is incomplete.',
    });
  }
  if (!end) {
    throw new IntegrityError('E_TRUNCATED', 'sql: the script has no scriptorium:end line after its COMMIT', {
      hint: 'A scriptorium PostgreSQL sql export ends with one; without it the file is incomplete or was edited. Nothing was written to the target.',
    });
  }
  yield { kind: 'end', ...end };
}
