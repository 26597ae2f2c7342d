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
  /**
   * Set for a virtual table that scriptorium carries (see {@link CARRIED_MODULES}): `sql` is its
   * `CREATE VIRTUAL TABLE` statement, its rows are read through the virtual table (rowid first for
   * FTS5, whose rowid is not a column; an R*Tree's first column is its rowid) and loaded by INSERT
   * through it, which rebuilds its index. Its shadow tables are never carried: they are derived.
   */
  virtual?: VirtualTableSchema;
  /** PostgreSQL only: the table's schema and name (`name` is `schema.table`, or `table` in `public`). */
  postgres?: { schema: string; table: string };
}

/** The virtual-table modules whose tables are carried; every other module is refused by name. */
export const CARRIED_MODULES = ['fts5', 'rtree', 'rtree_i32'] as const;

/** One of {@link CARRIED_MODULES}. */
export type CarriedModule = (typeof CARRIED_MODULES)[number];

/** What marks a carried virtual table (see {@link TableSchema.virtual}). */
export interface VirtualTableSchema {
  module: CarriedModule;
  /**
   * FTS5 only: the persistent configuration options set with `INSERT INTO ft(ft, rank) VALUES(key, value)`
   * (`rank`, `pgsz`, `automerge`, ...; the `version` row is FTS5's own), as [key, value] pairs in key
   * order. They are set again, the same way, right after the table is created.
   */
  config?: Array<[string, string | number]>;
  /** FTS5 with external content: the table named by its `content=` option, which is carried as a plain table. */
  content?: string;
}

/** A table that is in the database but cannot be carried (a virtual table of another module, ...). */
export interface UnsupportedTable {
  name: string;
  /** Why, for the error message. */
  reason: string;
  /** What the user can do. */
  hint: string;
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
  /**
   * SQLite: the database had optimizer statistics (`sqlite_stat1`, from ANALYZE): the target runs
   * ANALYZE once its rows and indexes are in, which computes them again from the same rows.
   */
  analyzed?: boolean;
}

export interface DatabaseSchema {
  engine: 'sqlite' | 'postgres';
  /** Version of the engine the schema was read from, e.g. `3.53.2`. */
  engineVersion: string;
  tables: TableSchema[];
  objects: SchemaObject[];
  meta: DatabaseMeta;
  /**
   * Tables of the source that cannot be carried. Only a freshly read schema has them; selecting
   * tables refuses them when they are selected and drops this list, so it is never written anywhere.
   */
  unsupported?: UnsupportedTable[];
  /** PostgreSQL only: the schema around the tables (see {@link PostgresSchema}). */
  postgres?: PostgresSchema;
}

/**
 * PostgreSQL only: what a database has besides its tables' CREATE statements, as statements in the
 * order they run. `before` runs before the tables are created (schemas, extensions, types, sequences),
 * `after` once their rows are loaded (constraints, indexes, foreign keys, views, sequence values,
 * comments). `tables` names the tables a statement needs, so a selection leaves it out with them.
 */
export interface PostgresSchema {
  before: PostgresStatement[];
  after: PostgresStatement[];
  /** What the source has that is not carried (said at export and import, never dropped silently). */
  notCarried: string[];
}

/** One statement of a {@link PostgresSchema}. */
export interface PostgresStatement {
  kind: 'schema' | 'extension' | 'type' | 'sequence' | 'partitioned-table' | 'attach-partition' | 'constraint' | 'index' | 'foreign-key' | 'view' | 'sequence-value' | 'owned-by' | 'comment';
  name: string;
  tables: string[];
  sql: string;
}

/**
 * What a SQLite database has that its load into PostgreSQL does not carry, as notices: its indexes,
 * views and triggers (SQLite's SQL), its AUTOINCREMENT counters (PostgreSQL makes no ids for those
 * columns), its optimizer statistics.
 */
export function sqliteNotCarriedIntoPostgres(schema: DatabaseSchema): string[] {
  const notes: string[] = [];
  const objects = schema.objects?.length ?? 0;
  if (objects > 0) notes.push(`not carried into PostgreSQL: ${objects} SQLite indexes, views and triggers (their SQL is SQLite's); primary keys are`);
  const counters = Object.keys(schema.meta?.sequences ?? {});
  if (counters.length > 0) notes.push(`not carried into PostgreSQL: the AUTOINCREMENT counters of ${counters.slice(0, 5).join(', ')}${counters.length > 5 ? ` and ${counters.length - 5} more` : ''} (their key columns are plain integers there: no ids are generated, and a deleted id is not kept from coming back)`);
  if (schema.meta?.analyzed === true) notes.push('not carried into PostgreSQL: SQLite\'s optimizer statistics (run ANALYZE there)');
  return notes;
}

/** The names of the columns a row carries, in order (the rowid alias first when present). */
export function rowColumns(table: TableSchema): string[] {
  const names = table.columns.map((c) => c.name);
  return table.rowidAlias ? [table.rowidAlias, ...names] : names;
}
