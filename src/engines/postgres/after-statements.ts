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
  for (const s of commentsAfterForeignKeys(statements)) {
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

const FOREIGN_KEY = new RegExp(`^ALTER TABLE (?:ONLY )?(${IDENT}\\.${IDENT}) ADD CONSTRAINT (${IDENT}) FOREIGN KEY\\b`, 'u');
const CONSTRAINT_COMMENT = new RegExp(`^COMMENT ON CONSTRAINT (${IDENT}) ON (${IDENT}\\.${IDENT}) IS `, 'u');

/**
 * `statements` with each comment on a foreign key that comes before the key (as snapshots and sql
 * exports written before 2026-12-08 have them: the keys were moved last, their comments not) moved to
 * just after it, where there is a constraint to comment on; otherwise as they are.
 */
function commentsAfterForeignKeys(statements: readonly PostgresStatement[]): readonly PostgresStatement[] {
  const keys = new Map<string, number>();
  statements.forEach((s, i) => {
    const m = s.kind === 'foreign-key' && typeof s.sql === 'string' ? FOREIGN_KEY.exec(s.sql) : null;
    if (m) keys.set(`${m[1]} ${m[2]}`, i);
  });
  if (keys.size === 0) return statements;
  const later = new Map<number, PostgresStatement[]>();
  const out: PostgresStatement[] = [];
  statements.forEach((s, i) => {
    const m = s.kind === 'comment' && typeof s.sql === 'string' ? CONSTRAINT_COMMENT.exec(s.sql) : null;
    const key = m ? keys.get(`${m[2]} ${m[1]}`) : undefined;
    if (key !== undefined && key > i) {
      const list = later.get(key);
      if (list) list.push(s);
      else later.set(key, [s]);
      return;
    }
    out.push(s);
    const moved = later.get(i);
    if (moved) out.push(...moved);
  });
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
