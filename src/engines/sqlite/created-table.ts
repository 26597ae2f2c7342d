/**
 * Whether a table that a CREATE statement from an untrusted file or manifest made is the table it
 * describes next to the statement. Rows are loaded (and re-digested) by the description, so one that disagrees
 * with the statement (columns swapped or renamed, a key or WITHOUT ROWID flag that is not the table's)
 * would load values into the wrong columns and still match the digest, or fail inside SQLite.
 */
import type Database from 'better-sqlite3';
import type { TableSchema } from '../../core/schema.js';
import { withoutRowidTable, type XInfoRow } from './sqlite-schema.js';

/**
 * What differs between `described` and the table of that name in `db`'s main schema (its columns in
 * order with type, NOT NULL and key position, its primary key and WITHOUT ROWID), or undefined when
 * they agree; `describer` names who described it in the message ('the file', 'the manifest'). Reads
 * only that table, so it costs the same in a database of a thousand tables. Import and restore both
 * check every table they create with it.
 */
export function createdTableProblem(db: Database.Database, described: TableSchema, describer = 'the file'): string | undefined {
  const info = db.prepare('SELECT name, type, "notnull", pk, hidden FROM pragma_table_xinfo(?, \'main\')').all(described.name) as XInfoRow[];
  if (info.length === 0) return 'its CREATE statement creates no table of that name';
  const columns = info.filter((c) => Number(c.hidden) === 0).map((c) => [c.name, c.type, Number(c.notnull) === 1, Number(c.pk)]);
  const primaryKey = info.filter((c) => Number(c.pk) > 0).sort((a, b) => Number(a.pk) - Number(b.pk)).map((c) => c.name);
  // (Not `pragma_table_list`, which visits every table: one call per created table was quadratic.)
  const made = JSON.stringify([columns, primaryKey, withoutRowidTable(db, described.name)]);
  const said = JSON.stringify([described.columns.map((c) => [c.name, c.type, c.notNull, c.pk]), described.primaryKey, described.withoutRowid]);
  return made === said ? undefined : `${describer} describes its columns or key differently from its CREATE statement`;
}
