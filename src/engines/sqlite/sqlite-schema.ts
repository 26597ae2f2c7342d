import type Database from 'better-sqlite3';
import { ScriptoriumError } from '../../core/errors.js';
import type { ColumnSchema, DatabaseSchema, SchemaObject, TableSchema } from '../../core/schema.js';
import { quoteIdent } from './sql-text.js';

type Db = Database.Database;

interface SchemaRow {
  type: string;
  name: string;
  tbl_name: string;
  sql: string | null;
}

interface XInfoRow {
  name: string;
  type: string;
  notnull: number | bigint;
  pk: number | bigint;
  hidden: number | bigint;
}

/** Reads tables, other schema objects and metadata from an open SQLite database. */
export function readSqliteSchema(db: Db): DatabaseSchema {
  const rows = db
    .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY rowid")
    .all() as SchemaRow[];
  const withoutRowid = new Set<string>();
  for (const t of db.prepare('PRAGMA main.table_list').all() as { name: string; wr: number | bigint; type: string }[]) {
    if (Number(t.wr) === 1) withoutRowid.add(t.name);
  }
  const tables: TableSchema[] = [];
  const objects: SchemaObject[] = [];
  for (const row of rows) {
    if (row.sql === null) continue; // automatic indexes (UNIQUE / PRIMARY KEY constraints)
    if (row.type === 'table') {
      if (row.name.startsWith('sqlite_')) continue; // sqlite_sequence, sqlite_stat*: kept as metadata
      if (/^\s*CREATE\s+VIRTUAL\s+TABLE/i.test(row.sql)) {
        throw new ScriptoriumError('E_UNSUPPORTED', `sqlite: virtual table ${quoteIdent(row.name)} cannot be exported`, {
          hint: 'Virtual tables (FTS, R*Tree, ...) are derived from other tables or modules; drop or exclude it with --exclude-tables.',
        });
      }
      tables.push(readTable(db, row.name, row.sql, withoutRowid.has(row.name)));
    } else if (row.type === 'index' || row.type === 'view' || row.type === 'trigger') {
      objects.push({ type: row.type, name: row.name, table: row.tbl_name, sql: row.sql });
    }
  }
  return {
    engine: 'sqlite',
    engineVersion: String((db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v),
    tables,
    objects,
    meta: readMeta(db),
  };
}

function readTable(db: Db, name: string, sql: string, withoutRowid: boolean): TableSchema {
  const info = db.prepare(`PRAGMA main.table_xinfo(${quoteIdent(name)})`).all() as XInfoRow[];
  const columns: ColumnSchema[] = info
    .filter((c) => Number(c.hidden) === 0)
    .map((c) => ({ name: c.name, type: c.type, notNull: Number(c.notnull) === 1, pk: Number(c.pk) }));
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
  return meta;
}

/** Tables picked by `--tables` / `--exclude-tables`; unknown names are an error, not silently ignored. */
export function selectTables(schema: DatabaseSchema, include?: string[], exclude?: string[]): DatabaseSchema {
  const known = new Set(schema.tables.map((t) => t.name));
  for (const name of [...(include ?? []), ...(exclude ?? [])]) {
    if (!known.has(name)) {
      throw new ScriptoriumError('E_NOT_FOUND', `no table named ${quoteIdent(name)}`, {
        hint: `Tables in this database: ${[...known].map(quoteIdent).join(', ') || '(none)'}.`,
      });
    }
  }
  const keep = (name: string): boolean =>
    (!include || include.length === 0 || include.includes(name)) && !(exclude ?? []).includes(name);
  const tables = schema.tables.filter((t) => keep(t.name));
  const names = new Set(tables.map((t) => t.name));
  // Indexes and triggers follow their table; views (and INSTEAD OF triggers on them) are kept only
  // when every table is.
  const views = new Set(schema.objects.filter((o) => o.type === 'view').map((o) => o.name));
  const objects = schema.objects.filter((o) => (o.type === 'view' || views.has(o.table) ? names.size === known.size : names.has(o.table)));
  const sequences = schema.meta.sequences
    ? Object.fromEntries(Object.entries(schema.meta.sequences).filter(([t]) => names.has(t)))
    : undefined;
  return { ...schema, tables, objects, meta: { ...schema.meta, ...(sequences ? { sequences } : {}) } };
}
