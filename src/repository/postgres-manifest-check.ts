/**
 * The checks of a PostgreSQL snapshot's schema, read from a manifest (which whoever can write to the
 * repository wrote): its shape before any name is used, and every statement's shape before any of it
 * reaches a server (the statement guard of engines/postgres: one statement of the one kind it claims).
 */
import type { PostgresStatement } from '../core/schema.js';
import { statementProblem } from '../engines/postgres/statement-guard.js';
import { tableName } from '../engines/postgres/postgres-schema.js';
import { qualified } from '../engines/postgres/sql-text.js';
import type { Problem } from './errors.js';
import type { Snapshot } from './manifest.js';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/** The first problem of the shape of a PostgreSQL schema from a manifest (`field: what`), or undefined. */
export function postgresSchemaShapeProblem(s: Record<string, unknown>): string | undefined {
  if (typeof s.engineVersion !== 'string') return 'engineVersion: not a string';
  if (!Array.isArray(s.tables)) return 'tables: not a list';
  const names = new Set<string>();
  for (let i = 0; i < s.tables.length; i++) {
    const t: unknown = s.tables[i];
    if (!isObject(t) || typeof t.name !== 'string' || typeof t.sql !== 'string') return `tables[${i}]: not a table with a name and sql`;
    if (names.has(t.name)) return `tables[${i}] (${show(t.name)}): the name is used twice`;
    names.add(t.name);
    const pg = t.postgres;
    if (!isObject(pg) || typeof pg.schema !== 'string' || typeof pg.table !== 'string' || tableName(pg.schema, pg.table) !== t.name) return `tables[${i}] (${show(t.name)}).postgres: does not name its schema and table`;
    if (!Array.isArray(t.columns) || t.columns.length === 0) return `tables[${i}] (${show(t.name)}).columns: not a list of columns`;
    const columns = new Set<string>();
    for (const [j, c] of (t.columns as unknown[]).entries()) {
      if (!isObject(c) || typeof c.name !== 'string' || typeof c.type !== 'string' || typeof c.notNull !== 'boolean' || !Number.isSafeInteger(c.pk)) return `tables[${i}] (${show(t.name)}).columns[${j}]: not a column (name, type, notNull, pk)`;
      if (columns.has(c.name)) return `tables[${i}] (${show(t.name)}).columns[${j}]: the name is used twice`;
      columns.add(c.name);
    }
    if (!Array.isArray(t.primaryKey) || t.primaryKey.some((k) => typeof k !== 'string' || !columns.has(k))) return `tables[${i}] (${show(t.name)}).primaryKey: not a list of its columns`;
  }
  if (!Array.isArray(s.objects)) return 'objects: not a list';
  const pg = s.postgres;
  if (!isObject(pg)) return 'postgres: missing';
  for (const phase of ['before', 'after'] as const) {
    if (!Array.isArray(pg[phase])) return `postgres.${phase}: not a list`;
    for (const [i, st] of (pg[phase] as unknown[]).entries()) {
      if (!isObject(st) || typeof st.sql !== 'string' || typeof st.name !== 'string' || typeof st.kind !== 'string' || !Array.isArray(st.tables) || st.tables.some((x) => typeof x !== 'string')) {
        return `postgres.${phase}[${i}]: not a statement`;
      }
    }
  }
  if (!Array.isArray(pg.notCarried) || pg.notCarried.some((n) => typeof n !== 'string')) return 'postgres.notCarried: not a list of strings';
  return undefined;
}

/**
 * The statements of a PostgreSQL snapshot that are not exactly of the shape scriptorium writes: one
 * E_CORRUPT problem each (restore and verify refuse the snapshot when there is any).
 */
export function postgresManifestProblems(snapshot: Pick<Snapshot, 'id' | 'schema'>): Problem[] {
  const problems: Problem[] = [];
  const schema = snapshot.schema;
  for (const t of schema.tables) {
    const q = qualified(t.postgres!.schema, t.postgres!.table);
    const sql = String(t.sql);
    const problem = statementProblem('table', sql) ?? (sql.startsWith(`CREATE TABLE ${q} (`) || sql.startsWith(`CREATE UNLOGGED TABLE ${q} (`) ? undefined : `not the CREATE TABLE of ${q}`);
    if (problem) problems.push({ code: 'E_CORRUPT', snapshot: snapshot.id, table: t.name, message: `its schema is ${problem}` });
  }
  for (const s of [...(schema.postgres?.before ?? []), ...(schema.postgres?.after ?? [])] as PostgresStatement[]) {
    const problem = statementProblem(s.kind, s.sql);
    if (problem) problems.push({ code: 'E_CORRUPT', snapshot: snapshot.id, message: `${s.kind} ${JSON.stringify(s.name)}: its statement is ${problem}` });
  }
  return problems;
}
