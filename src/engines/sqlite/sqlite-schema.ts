import type Database from 'better-sqlite3';
import { ScriptoriumError } from '../../core/errors.js';
import { CARRIED_MODULES, rowColumns, type CarriedModule, type ColumnSchema, type DatabaseSchema, type SchemaObject, type TableSchema, type UnsupportedTable, type VirtualTableSchema } from '../../core/schema.js';
import { quoteIdent } from './sql-text.js';

type Db = Database.Database;

interface SchemaRow {
  type: string;
  name: string;
  tbl_name: string;
  sql: string | null;
}

/** A row of `PRAGMA table_xinfo`. */
export interface XInfoRow {
  name: string;
  type: string;
  notnull: number | bigint;
  pk: number | bigint;
  hidden: number | bigint;
}

/** The most values a query's row may have (SQLITE_MAX_COLUMN of every build we know; also the limit of an INSERT's VALUES rows). */
export const MAX_ROW_VALUES = 2000;

/** FTS5 configuration keys that are carried (https://sqlite.org/fts5.html#configuration_options_config_table_). */
const FTS5_CONFIG_KEYS = new Set(['automerge', 'crisismerge', 'deletemerge', 'insttoken', 'pgsz', 'rank', 'secure-delete', 'usermerge']);

/** Reads tables, other schema objects and metadata from an open SQLite database. */
export function readSqliteSchema(db: Db): DatabaseSchema {
  const rows = db
    .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY rowid")
    .all() as SchemaRow[];
  const withoutRowid = new Set<string>();
  // Shadow tables (an FTS5 table's _data, _idx, ...; an R*Tree's _node, _rowid, _parent) are derived
  // from their virtual table and rebuilt with it: never carried.
  const shadow = new Set<string>();
  for (const t of db.prepare('PRAGMA main.table_list').all() as { name: string; wr: number | bigint; type: string }[]) {
    if (Number(t.wr) === 1 && t.type === 'table') withoutRowid.add(t.name);
    if (t.type === 'shadow') shadow.add(t.name);
  }
  const tables: TableSchema[] = [];
  const objects: SchemaObject[] = [];
  const unsupported: UnsupportedTable[] = [];
  for (const row of rows) {
    if (row.sql === null) continue; // automatic indexes (UNIQUE / PRIMARY KEY constraints)
    if (row.type === 'table') {
      const table = tableEntry(db, row as SchemaRow & { sql: string }, withoutRowid.has(row.name), shadow.has(row.name));
      if (table === undefined) continue;
      if ('reason' in table) unsupported.push(table);
      else tables.push(table);
    } else if (row.type === 'index' || row.type === 'view' || row.type === 'trigger') {
      objects.push({ type: row.type, name: row.name, table: row.tbl_name, sql: row.sql });
    }
  }
  const schema: DatabaseSchema = {
    engine: 'sqlite',
    engineVersion: String((db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v),
    tables,
    objects,
    meta: readMeta(db),
  };
  if (unsupported.length > 0) schema.unsupported = unsupported;
  return schema;
}

/**
 * One table of `db` named exactly `name` as {@link readSqliteSchema} describes it, or undefined when it
 * has no such table or that table is not carried (a shadow table, an unsupported one). With `sql`, the
 * CREATE statement the caller just ran for it, sqlite_schema is not read at all. Either way it costs
 * the same in a database of any number of tables, but for one scan of sqlite_schema without `sql`: a
 * SQL script creates its tables as it goes, and reading the whole schema for each one (or asking
 * `PRAGMA table_list`, which visits every table) took time quadratic in the number of tables.
 */
export function readSqliteTable(db: Db, name: string, sql?: string): TableSchema | undefined {
  let shadow = false;
  if (sql === undefined) {
    const row = db
      .prepare(
        // A shadow table (an FTS5 table's x_data, an R*Tree's x_node) is named after its virtual table.
        `SELECT sql, EXISTS (SELECT 1 FROM sqlite_schema v WHERE v.type = 'table' AND v.sql LIKE 'CREATE VIRTUAL TABLE%'
           AND substr(@name, 1, length(v.name) + 1) = v.name || '_') AS related
         FROM sqlite_schema WHERE type = 'table' AND name = @name AND sql IS NOT NULL`,
      )
      .get({ name }) as { sql: string; related: number | bigint } | undefined;
    if (!row) return undefined;
    sql = row.sql;
    if (Number(row.related) === 1) {
      const listed = db.prepare(`PRAGMA main.table_list(${quoteIdent(name)})`).get() as { type: string } | undefined;
      shadow = listed?.type === 'shadow';
    }
  }
  const table = tableEntry(db, { type: 'table', name, tbl_name: name, sql }, withoutRowidTable(db, name), shadow);
  return table === undefined || 'reason' in table ? undefined : table;
}

/**
 * Whether table `name` of `db` is a WITHOUT ROWID table, asking only about that table: its primary
 * key index is the table itself, which unlike every index of a rowid table carries no rowid column
 * (cid -1) in `index_xinfo`. (`PRAGMA table_list` says the same, but visits every table to say it.)
 */
export function withoutRowidTable(db: Db, name: string): boolean {
  const pk = db.prepare("SELECT name FROM pragma_index_list(?, 'main') WHERE origin = 'pk'").get(name) as { name: string } | undefined;
  return pk !== undefined && db.prepare("SELECT 1 FROM pragma_index_xinfo(?, 'main') WHERE cid = -1").get(pk.name) === undefined;
}

/** The description of one `table` row of sqlite_schema, the reason it cannot be carried, or undefined for a table that is not carried by design. */
function tableEntry(db: Db, row: SchemaRow & { sql: string }, withoutRowid: boolean, shadow: boolean): TableSchema | UnsupportedTable | undefined {
  if (row.name.startsWith('sqlite_')) return undefined; // sqlite_sequence, sqlite_stat*: kept as metadata (meta.sequences, meta.analyzed)
  if (shadow) return undefined;
  const virtual = /^\s*CREATE\s+VIRTUAL\s+TABLE\b/i.test(row.sql);
  const table = virtual ? readVirtualTable(db, row.name, row.sql) : readTable(db, row.name, row.sql, withoutRowid);
  if (!('reason' in table) && rowColumns(table).length > MAX_ROW_VALUES) {
    return {
      name: row.name,
      reason: `has ${table.columns.length} columns and no primary key: with its rowid, a row has more values than SQLite's limit of ${MAX_ROW_VALUES} in one query`,
      hint: `Give it a primary key (an INTEGER PRIMARY KEY column is its rowid), or ${leaveOut(row.name)}.`,
    };
  }
  return table;
}

function readTable(db: Db, name: string, sql: string, withoutRowid: boolean): TableSchema {
  const columns = readColumns(db, name);
  const primaryKey = columns
    .filter((c) => c.pk > 0)
    .sort((a, b) => a.pk - b.pk)
    .map((c) => c.name);
  const table: TableSchema = { name, sql, columns, primaryKey, withoutRowid };
  if (!withoutRowid && primaryKey.length === 0) {
    // Without a primary key the rowid is the row's only identity: carry it so it comes back the same.
    table.rowidAlias = rowidName(columns.map((c) => c.name), name);
  }
  return table;
}

function readColumns(db: Db, name: string): ColumnSchema[] {
  const info = db.prepare(`PRAGMA main.table_xinfo(${quoteIdent(name)})`).all() as XInfoRow[];
  return info
    .filter((c) => Number(c.hidden) === 0)
    .map((c) => ({ name: c.name, type: c.type, notNull: Number(c.notnull) === 1, pk: Number(c.pk) }));
}

/** How to leave a table out: export's --exclude-tables, or backup's --tables naming the others. */
function leaveOut(name: string): string {
  return `leave it out (export --exclude-tables ${quoteIdent(name)}; backup --tables with the tables you want)`;
}

/** The module a `CREATE VIRTUAL TABLE` statement names (lower case), or undefined. */
export function virtualModule(sql: string): string | undefined {
  return /\bUSING\s+([A-Za-z_][\w$]*)/i.exec(sql)?.[1]?.toLowerCase();
}

/** The value of an FTS5 `content=` option as written in its CREATE statement (unquoted), or undefined. */
export function fts5ContentOption(sql: string): string | undefined {
  const args = sql.slice(sql.indexOf('(') + 1);
  const m = /(?:^|,)\s*content\s*=\s*('(?:[^']|'')*'|"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|[^\s,)]+)/i.exec(args);
  if (!m) return undefined;
  const v = m[1]!;
  if (v.startsWith("'")) return v.slice(1, -1).replaceAll("''", "'");
  if (v.startsWith('"')) return v.slice(1, -1).replaceAll('""', '"');
  if (v.startsWith('`')) return v.slice(1, -1).replaceAll('``', '`');
  if (v.startsWith('[')) return v.slice(1, -1);
  return v;
}

/**
 * A virtual table: an FTS5 or R*Tree table as a table whose rows are read through it, or the reason
 * it cannot be carried.
 */
function readVirtualTable(db: Db, name: string, sql: string): TableSchema | UnsupportedTable {
  const module = virtualModule(sql) ?? '?';
  const skip = leaveOut(name);
  if (!(CARRIED_MODULES as readonly string[]).includes(module)) {
    return {
      name,
      reason: `is a virtual table of module ${module}, which scriptorium does not carry`,
      hint: `Only FTS5 and R*Tree (rtree, rtree_i32) virtual tables are carried; ${skip} (its data lives in whatever the module reads, or in its own tables).`,
    };
  }
  let columns: ColumnSchema[];
  try {
    columns = readColumns(db, name);
  } catch (err) {
    return { name, reason: `is a virtual table that SQLite cannot open here (${(err as Error).message})`, hint: `Check the table, or ${skip}.` };
  }
  const virtual: VirtualTableSchema = { module: module as CarriedModule };
  if (module === 'fts5') {
    const content = fts5ContentOption(sql);
    if (content === '') {
      return {
        name,
        reason: "is a contentless FTS5 table (content=''): it keeps only its index, not the text, so its rows cannot be read back",
        hint: `Rebuild it from the text it indexes after restoring, or ${skip}.`,
      };
    }
    if (content !== undefined) virtual.content = content;
    let rows: [unknown, unknown][];
    try {
      rows = db.prepare(`SELECT k, v FROM ${quoteIdent(`${name}_config`)} ORDER BY k`).raw().all() as [unknown, unknown][];
    } catch (err) {
      return { name, reason: `is an FTS5 table whose configuration cannot be read (${(err as Error).message})`, hint: `Check it with INSERT INTO ${quoteIdent(name)}(${quoteIdent(name)}) VALUES('integrity-check'), or ${skip}.` };
    }
    const config = rows.filter(([k]) => k !== 'version');
    for (const [k, v] of config) {
      if (typeof k !== 'string' || !FTS5_CONFIG_KEYS.has(k) || !(typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint')) {
        return { name, reason: `is an FTS5 table with a configuration option scriptorium does not know (${String(k)})`, hint: `Reset the option, or ${skip}.` };
      }
    }
    if (config.length > 0) virtual.config = config.map(([k, v]) => [k as string, typeof v === 'bigint' ? Number(v) : (v as string | number)]);
    // FTS5's rowid is not a column: carry it, as for a table without a primary key.
    return { name, sql, columns, primaryKey: [], withoutRowid: false, rowidAlias: 'rowid', virtual };
  }
  // An R*Tree's first column is its rowid (an integer id), so its rows carry it already.
  return { name, sql, columns, primaryKey: [], withoutRowid: false, virtual };
}

/**
 * Checks an FTS5 configuration list from a schema that came from outside (a file or a manifest):
 * only known keys with plain values, so that setting them runs nothing else.
 */
export function checkFts5Config(table: string, config: unknown): Array<[string, string | number]> {
  if (!Array.isArray(config)) throw badConfig(table);
  for (const entry of config) {
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || !FTS5_CONFIG_KEYS.has(entry[0])) throw badConfig(table);
    const v: unknown = entry[1];
    if (!(typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)))) throw badConfig(table);
  }
  return config as Array<[string, string | number]>;
}

function badConfig(table: string): ScriptoriumError {
  return new ScriptoriumError('E_CORRUPT', `schema: the FTS5 configuration of ${quoteIdent(table)} is damaged`, {
    hint: 'Only the FTS5 options rank, pgsz, automerge, crisismerge, usermerge, deletemerge, secure-delete and insttoken are carried; the file or manifest was edited.',
  });
}

/**
 * Refuses the tables of `schema` that cannot be carried and are among `selected` (every table when
 * nothing was selected), naming each with its reason and what to do.
 */
export function refuseUnsupported(schema: DatabaseSchema, selected: (name: string) => boolean): void {
  const refused = (schema.unsupported ?? []).filter((u) => selected(u.name));
  if (refused.length === 0) return;
  const first = refused[0]!;
  const more = refused.length > 1 ? ` (and ${refused.slice(1).map((u) => quoteIdent(u.name)).join(', ')})` : '';
  throw new ScriptoriumError('E_UNSUPPORTED', `sqlite: table ${quoteIdent(first.name)} ${first.reason}${more}`, { hint: first.hint });
}

/**
 * Refuses an FTS5 table with external content whose content table is left out: its rows are read
 * through that table, on the source and on the target.
 */
export function checkContentTables(tables: TableSchema[], all: TableSchema[]): void {
  const names = new Set(tables.map((t) => t.name));
  for (const t of tables) {
    const content = t.virtual?.content;
    if (content === undefined || names.has(content)) continue;
    if (!all.some((o) => o.name === content)) continue; // a view, or a table of another schema: nothing to select
    throw new ScriptoriumError('E_USAGE', `table ${quoteIdent(t.name)} is an FTS5 index of table ${quoteIdent(content)}, which is not selected`, {
      hint: `Select ${quoteIdent(content)} too, or leave ${quoteIdent(t.name)} out as well.`,
    });
  }
}

/** The first of SQLite's names for the rowid that no column shadows. */
export function rowidName(columnNames: string[], table: string): string {
  const taken = new Set(columnNames.map((n) => n.toLowerCase()));
  const free = ['rowid', '_rowid_', 'oid'].find((n) => !taken.has(n));
  if (!free) {
    throw new ScriptoriumError('E_UNSUPPORTED', `sqlite: table ${quoteIdent(table)} has columns named rowid, _rowid_ and oid`, {
      hint: 'Its rowid cannot be addressed; give the table a primary key.',
    });
  }
  return free;
}

function readMeta(db: Db): DatabaseSchema['meta'] {
  const pragma = (p: string): number => Number(db.pragma(p, { simple: true }));
  const meta: DatabaseSchema['meta'] = {
    userVersion: pragma('user_version'),
    applicationId: pragma('application_id'),
  };
  const hasSequence = db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence'").get();
  if (hasSequence) {
    const seq = db.prepare('SELECT name, CAST(seq AS TEXT) AS seq FROM sqlite_sequence ORDER BY rowid').all() as {
      name: string;
      seq: string;
    }[];
    meta.sequences = Object.fromEntries(seq.map((s) => [s.name, s.seq]));
  }
  // Optimizer statistics (ANALYZE): not copied row by row but computed again by the target from the same rows.
  if (db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat1'").get() && db.prepare('SELECT 1 FROM sqlite_stat1 LIMIT 1').get()) meta.analyzed = true;
  return meta;
}

/** Tables picked by `--tables` / `--exclude-tables`; unknown names are an error, not silently ignored. */
export function selectTables(schema: DatabaseSchema, include?: string[], exclude?: string[]): DatabaseSchema {
  const known = new Set([...schema.tables, ...(schema.unsupported ?? [])].map((t) => t.name));
  for (const name of [...(include ?? []), ...(exclude ?? [])]) {
    if (!known.has(name)) {
      throw new ScriptoriumError('E_NOT_FOUND', `no table named ${quoteIdent(name)}`, {
        hint: `Tables in this database: ${[...known].map(quoteIdent).join(', ') || '(none)'}.`,
      });
    }
  }
  const keep = (name: string): boolean =>
    (!include || include.length === 0 || include.includes(name)) && !(exclude ?? []).includes(name);
  refuseUnsupported(schema, keep);
  const tables = schema.tables.filter((t) => keep(t.name));
  checkContentTables(tables, schema.tables);
  const names = new Set(tables.map((t) => t.name));
  // Indexes and triggers follow their table; views (and INSTEAD OF triggers on them) are kept only
  // when every table is.
  const views = new Set(schema.objects.filter((o) => o.type === 'view').map((o) => o.name));
  const objects = schema.objects.filter((o) => (o.type === 'view' || views.has(o.table) ? names.size === known.size : names.has(o.table)));
  const sequences = schema.meta.sequences
    ? Object.fromEntries(Object.entries(schema.meta.sequences).filter(([t]) => names.has(t)))
    : undefined;
  const { unsupported: _left, ...rest } = schema;
  return { ...rest, tables, objects, meta: { ...schema.meta, ...(sequences ? { sequences } : {}) } };
}
