/**
 * The shape of a database as scriptorium carries it from a Source to a Target: tables with their
 * columns and original CREATE statements, the other schema objects, and engine metadata.
 * Every export format and every backup manifest embeds a `DatabaseSchema`.
 */

/** One column of a table, as the engine declares it. */
export interface ColumnSchema {
  name: string;
  /** The declared type as written (`''` when none). SQLite values may still be of any storage class. */
  type: string;
  notNull: boolean;
  /** 1-based position in the primary key, 0 when not part of it. */
  pk: number;
  /** Hidden or generated columns are not exported (their values are derived). */
  generated?: boolean;
}

/** One table: enough to recreate it exactly and to read its rows in a stable order. */
export interface TableSchema {
  name: string;
  /** The original CREATE TABLE statement, exactly as the engine stores it. */
  sql: string;
  /** Columns whose values are exported, in table order (generated columns excluded). */
  columns: ColumnSchema[];
  /** Primary-key columns in key order; empty when the table has none. */
  primaryKey: string[];
  withoutRowid: boolean;
  /**
   * When set, rows carry the table's rowid as their first value under this name (`rowid`, `_rowid_`
   * or `oid`, whichever no column uses): used for tables without a primary key, whose rowid is their
   * only identity.
   */
  rowidAlias?: string;
}

/** A schema object other than a table: index, view or trigger, recreated after the data is loaded. */
export interface SchemaObject {
  type: 'index' | 'view' | 'trigger';
  name: string;
  table: string;
  sql: string;
}

/** Database-level metadata that must survive a round trip. */
export interface DatabaseMeta {
  /** SQLite `PRAGMA user_version`. */
  userVersion?: number;
  /** SQLite `PRAGMA application_id`. */
  applicationId?: number;
  /** SQLite AUTOINCREMENT counters from `sqlite_sequence`, as decimal strings (they are 64-bit). */
  sequences?: Record<string, string>;
}

export interface DatabaseSchema {
  engine: 'sqlite' | 'postgres';
  /** Version of the engine the schema was read from, e.g. `3.53.2`. */
  engineVersion: string;
  tables: TableSchema[];
  objects: SchemaObject[];
  meta: DatabaseMeta;
}

/** The names of the columns a row carries, in order (the rowid alias first when present). */
export function rowColumns(table: TableSchema): string[] {
  const names = table.columns.map((c) => c.name);
  return table.rowidAlias ? [table.rowidAlias, ...names] : names;
}
