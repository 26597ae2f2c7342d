/**
 * The statements a PostgreSQL target runs after the rows (keys, indexes, foreign keys, views, sequence
 * values, comments), shared by the restore target (postgres-copy-target.ts) and the import target
 * (postgres-target.ts). A simple primary key or unique constraint is run as pgcopydb does: first its
 * unique index (`CREATE UNIQUE INDEX`, built with the server's parallel workers like every index), then
 * the constraint taken over from it (`ADD CONSTRAINT … PRIMARY KEY USING INDEX`), which only records
 * the key: the table is scanned once, by the index build.
 */
import type { PostgresStatement } from '../../core/schema.js';
import { qualified } from './sql-text.js';

const IDENT = String.raw`"(?:[^"]|"")+"`;
/** A column as pg_get_constraintdef prints it: quoted only when it must be. */
const COLUMN = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)`;
/**
 * `ALTER TABLE ONLY "s"."t" ADD CONSTRAINT "c" PRIMARY KEY (a, b)` (or UNIQUE) and nothing more: no
 * INCLUDE, WITH, tablespace, NULLS NOT DISTINCT or DEFERRABLE, which the index or the constraint would
 * have to carry (those run as they are).
 */
const SIMPLE_KEY = new RegExp(`^ALTER TABLE ONLY (${IDENT}\\.${IDENT}) ADD CONSTRAINT (${IDENT}) (PRIMARY KEY|UNIQUE) \\((${COLUMN}(?:, ${COLUMN})*)\\)$`, 'u');

/**
 * The statements to run after the rows, in order: `statements` as the snapshot or file has them, with
 * each simple primary key or unique constraint on one of `plainTables` (qualified names, `"s"."t"`, of
 * ordinary tables the target created: a partitioned table cannot take a constraint from an index)
 * split into its index and the constraint using it. Every statement is still checked by the target
 * (statementProblem) before it runs.
 */
export function afterStatements(statements: readonly PostgresStatement[], plainTables: ReadonlySet<string>): PostgresStatement[] {
  const out: PostgresStatement[] = [];
  for (const s of statements) {
    const m = s.kind === 'constraint' && typeof s.sql === 'string' ? SIMPLE_KEY.exec(s.sql) : null;
    if (!m || !plainTables.has(m[1]!)) {
      out.push(s);
      continue;
    }
    const [, table, constraint, key, columns] = m;
    // The index takes the constraint's name (the server names a key's index after its constraint).
    out.push({ ...s, kind: 'index', sql: `CREATE UNIQUE INDEX ${constraint} ON ${table} USING btree (${columns})` });
    out.push({ ...s, sql: `ALTER TABLE ONLY ${table} ADD CONSTRAINT ${constraint} ${key} USING INDEX ${constraint}` });
  }
  return out;
}

/**
 * Where the table a statement is about sits in its text, for the statements that concern that one
 * table alone: an index (as pg_get_indexdef prints it, names quoted only when they must be) and a
 * primary key, unique or check constraint (as the schema reader writes it, names always quoted).
 */
const ON_TABLE: Partial<Record<PostgresStatement['kind'], RegExp>> = {
  index: new RegExp(`^(CREATE (?:UNIQUE )?INDEX ${COLUMN} ON (?:ONLY )?)(${COLUMN})\\.(${COLUMN})( USING .*)$`, 'su'),
  constraint: new RegExp(`^(ALTER TABLE (?:ONLY )?)(${IDENT})\\.(${IDENT})( ADD CONSTRAINT ${IDENT} (?:PRIMARY KEY|UNIQUE|CHECK)\\b.*)$`, 'su'),
};

/** An identifier as the server reads it: quoted (`""` for a quote), or folded to lower case (ASCII). */
function unquote(ident: string): string {
  return ident.startsWith('"') ? ident.slice(1, -1).replace(/""/g, '"') : ident.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * `s` when it concerns only the table `schema.table` (one of its indexes, or its primary key, unique
 * or check constraint), with the table's name in it as `"into"."table"` (a staging schema; by default
 * its own); undefined for any other statement.
 */
export function onTable(s: PostgresStatement, schema: string, table: string, into = schema): PostgresStatement | undefined {
  const shape = ON_TABLE[s.kind];
  const m = shape && typeof s.sql === 'string' && s.tables.length === 1 ? shape.exec(s.sql) : null;
  if (!m || unquote(m[2]!) !== schema || unquote(m[3]!) !== table) return undefined;
  return { ...s, sql: `${m[1]}${qualified(into, table)}${m[4]}` };
}
