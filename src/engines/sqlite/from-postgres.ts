import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { ROW_SEPARATOR, type TableDigest } from '../../core/encoding.js';
import { ScriptoriumError } from '../../core/errors.js';
import type { DatabaseSchema, TableSchema } from '../../core/schema.js';
import { encodeFloat } from '../postgres/row-codec.js';
import { quoteIdent } from './sql-text.js';

/** PostgreSQL column types (as format_type prints them) that become SQLite INTEGER, REAL and BLOB columns; every other type is TEXT. */
const INTEGER_TYPES = new Set(['smallint', 'integer', 'bigint', 'boolean']);
const REAL_TYPES = new Set(['real', 'double precision']);

/** The SQLite column type of a PostgreSQL one (docs/postgres.md). */
export function sqliteTypeOf(pgType: string): string {
  if (INTEGER_TYPES.has(pgType)) return 'INTEGER';
  if (REAL_TYPES.has(pgType)) return 'REAL';
  if (pgType === 'bytea') return 'BLOB';
  return 'TEXT';
}

/** A type name as format_type prints it (`public.positive`, `s."My Dom"`) as `schema\0name`, or undefined when it is not a qualified name. */
function qualifiedKey(type: string): string | undefined {
  const m = /^((?:"(?:[^"]|"")+")|[a-z_][a-z0-9_$]*)\.((?:"(?:[^"]|"")+")|[a-z_][a-z0-9_$]*)$/.exec(type);
  if (!m) return undefined;
  const unquote = (s: string): string => (s.startsWith('"') ? s.slice(1, -1).replace(/""/g, '"') : s);
  return `${unquote(m[1]!)}\0${unquote(m[2]!)}`;
}

/**
 * The domains of a PostgreSQL export's schema (from its CREATE DOMAIN statements), each one's base
 * type by `schema\0name`: a column of a domain over integer is an INTEGER column in SQLite, as its
 * values (exported as integers) are.
 */
export function postgresDomains(schema: DatabaseSchema): Map<string, string> {
  const domains = new Map<string, string>();
  const before = Array.isArray(schema.postgres?.before) ? schema.postgres.before : [];
  for (const s of before) {
    const m = typeof s?.sql === 'string' && s.kind === 'type' ? /^CREATE DOMAIN ("(?:[^"]|"")+"\.(?:"(?:[^"]|"")+")) AS (.+?)(?= DEFAULT | NOT NULL| CONSTRAINT |$)/.exec(s.sql) : null;
    const key = m ? qualifiedKey(m[1]!) : undefined;
    if (key !== undefined) domains.set(key, m![2]!);
  }
  return domains;
}

/** A column's type with its domains resolved to their base type (a domain over a domain too). */
export function baseTypeOf(type: string, domains: ReadonlyMap<string, string>): string {
  let t = type;
  for (let i = 0; i < 8; i++) {
    const key = qualifiedKey(t);
    const base = key === undefined ? undefined : domains.get(key);
    if (base === undefined) return t;
    t = base;
  }
  return t;
}

/**
 * Turns a table of a PostgreSQL export into the SQLite table that holds it, in place (the format
 * reader's object, which it may still be filling): a `CREATE TABLE` with the mapped column types and
 * the primary key, and the columns' types rewritten. Returns which columns were booleans (loaded as
 * 0/1, compared as false/true).
 */
export function sqliteTableFromPostgres(table: TableSchema, domains: ReadonlyMap<string, string> = new Map()): boolean[] {
  if (table.primaryKey.length === 0) {
    // SQLite carries a keyless table's rowid in every row; a PostgreSQL export's rows have none to give.
    throw new ScriptoriumError('E_UNSUPPORTED', `import: table ${JSON.stringify(table.name)} of the PostgreSQL export has no primary key, which import into SQLite does not take yet`, {
      hint: 'Give it a primary key, export without it (--exclude-tables), or import into PostgreSQL. Nothing was written to the target.',
    });
  }
  const pgTypes = table.columns.map((c) => baseTypeOf(String(c.type), domains));
  const columns = table.columns.map((c, i) => `${quoteIdent(c.name)} ${sqliteTypeOf(pgTypes[i]!)}${c.notNull ? ' NOT NULL' : ''}`);
  if (table.primaryKey.length > 0) columns.push(`PRIMARY KEY (${table.primaryKey.map(quoteIdent).join(', ')})`);
  table.sql = `CREATE TABLE ${quoteIdent(table.name)} (${columns.join(', ')})`;
  table.columns = table.columns.map((c, i) => ({ ...c, type: sqliteTypeOf(pgTypes[i]!) }));
  table.withoutRowid = false;
  delete table.postgres;
  return pgTypes.map((t) => t === 'boolean');
}

/**
 * A PostgreSQL export's schema as a SQLite one, in place: engine `sqlite`, its tables converted, and
 * what SQLite cannot take (the `postgres` statements: constraints other than the primary key,
 * indexes, views, sequences, types, comments) dropped, returned as notices for the user.
 */
export function sqliteSchemaFromPostgres(schema: DatabaseSchema): string[] {
  const pg = schema.postgres;
  const notes: string[] = [];
  const skipped = [...(pg?.before ?? []), ...(pg?.after ?? [])].filter((s) => !(s.kind === 'constraint' && /\bPRIMARY KEY\b/.test(s.sql)) && s.kind !== 'sequence-value');
  if (skipped.length > 0) notes.push(`not carried into SQLite: ${skipped.length} PostgreSQL schema statements (constraints other than primary keys, indexes, views, sequences, types, comments); values keep their PostgreSQL text form`);
  // SQLite has no partitioning: each leaf partition is a table of its own, the tree above it is not made.
  const trees = skipped.filter((s) => s.kind === 'partitioned-table').length;
  if (trees > 0) notes.push(`not carried into SQLite: ${trees} partitioned tables; each of their leaf partitions is a table of its own (docs/cross-engine.md)`);
  schema.engine = 'sqlite';
  schema.objects = [];
  schema.meta = {};
  delete schema.postgres;
  return notes;
}

/**
 * The digest of a loaded table in a PostgreSQL export's row encoding (not SQLite's: its floats have
 * other digits), so a table loaded from PostgreSQL is compared with the file's digest value by value.
 */
export function postgresStyleDigest(db: Database.Database, table: TableSchema, booleans: readonly boolean[], encoding: 'ndjson' | 'json'): TableDigest {
  const cols = table.columns.map((c) => quoteIdent(c.name));
  // In load order, which is the file's (PostgreSQL's key order): a table of sqliteTableFromPostgres has
  // a rowid, given in insertion order (or its INTEGER key, whose order is PostgreSQL's too), whereas
  // its key order in SQLite may differ for a text key (PostgreSQL sorts it by its collation).
  const names = new Set(table.columns.map((c) => c.name.toLowerCase()));
  const rowid = ['rowid', '_rowid_', 'oid'].find((n) => !names.has(n)) ?? table.primaryKey.map(quoteIdent).join(', ');
  const stmt = db.prepare(`SELECT ${cols.join(', ')} FROM ${quoteIdent(table.name)} ORDER BY ${rowid}`).raw().safeIntegers();
  const keys = encoding === 'json' ? table.columns.map((c) => `${JSON.stringify(c.name)}:`) : null;
  const hash = createHash('sha256');
  const separator = ROW_SEPARATOR[encoding];
  let rows = 0;
  for (const row of stmt.iterate() as IterableIterator<unknown[]>) {
    let out = keys ? '{' : '[';
    for (let i = 0; i < row.length; i++) {
      if (i > 0) out += ',';
      if (keys) out += keys[i];
      const v = row[i];
      if (v === null) out += 'null';
      else if (typeof v === 'bigint') out += booleans[i] && (v === 0n || v === 1n) ? String(v === 1n) : v.toString();
      else if (typeof v === 'number') out += encodeFloat(v);
      else if (typeof v === 'string') out += JSON.stringify(v);
      else if (Buffer.isBuffer(v)) out += `{"$blob":"${v.toString('hex').toUpperCase()}"}`;
      else throw new ScriptoriumError('E_INTERNAL', `import: an unexpected value in table ${JSON.stringify(table.name)}`);
    }
    hash.update(out + (keys ? '}' : ']'));
    hash.update(separator);
    rows++;
  }
  return { rows, sha256: hash.digest('hex') };
}
