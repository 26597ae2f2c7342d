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
