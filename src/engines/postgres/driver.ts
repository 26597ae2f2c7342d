import { ScriptoriumError } from '../../core/errors.js';

/**
 * The small part of node-postgres (`pg`) and `pg-copy-streams` that scriptorium uses, declared here
 * (as Kysely does) so that nothing imports the driver's types, and the driver itself is loaded only
 * when a PostgreSQL location is used.
 */
export interface PgQueryResult {
  rows: unknown[];
  rowCount: number | null;
}

/** One connection. `query` runs one statement (or, without parameters, several). */
export interface PgClient {
  connect(): Promise<void>;
  query(sql: string, params?: unknown[]): Promise<PgQueryResult>;
  query(config: { text: string; values?: unknown[]; rowMode?: 'array'; types?: unknown }): Promise<PgQueryResult>;
  /** Submits a COPY stream (from pg-copy-streams); returns it. */
  query<T>(submittable: T): T;
  end(): Promise<void>;
  on(event: 'error' | 'notice', listener: (arg: { message?: string }) => void): unknown;
}

export interface PgDriver {
  Client: new (config: { connectionString?: string; application_name?: string; connectionTimeoutMillis?: number }) => PgClient;
  /** `COPY … TO STDOUT`: a readable stream of the COPY data. */
  copyTo(sql: string): NodeJS.ReadableStream & { destroy(err?: Error): void };
  /** `COPY … FROM STDIN`: a writable stream; 'finish' once the server has taken every row. */
  copyFrom(sql: string): NodeJS.WritableStream & { destroy(err?: Error): void };
}

let loaded: Promise<PgDriver> | undefined;

/** Loads `pg` and `pg-copy-streams` on first use; a clear error names the package when one is missing. */
export function loadDriver(): Promise<PgDriver> {
  loaded ??= (async () => {
    const load = async (name: string): Promise<Record<string, unknown>> => {
      try {
        return (await (name === 'pg' ? withoutFetchProbe(() => import(name)) : import(name))) as Record<string, unknown>;
      } catch (err) {
        throw new ScriptoriumError('E_UNSUPPORTED', `postgres: the driver package ${name} cannot be loaded: ${(err as Error).message}`, {
          hint: `PostgreSQL locations need the npm packages pg and pg-copy-streams: npm install pg pg-copy-streams`,
          cause: err,
        });
      }
    };
    const pg = await load('pg');
    const copy = await load('pg-copy-streams');
    const pgMain = (pg.default ?? pg) as { Client: PgDriver['Client'] };
    const copyMain = (copy.default ?? copy) as { to: PgDriver['copyTo']; from: PgDriver['copyFrom'] };
    return { Client: pgMain.Client, copyTo: copyMain.to, copyFrom: copyMain.from };
  })();
  loaded.catch(() => {
    loaded = undefined;
  });
  return loaded;
}

/**
 * Runs `fn` (the import of `pg`) with a `navigator` that says Node.js when there is none (Node 20), as
 * Node 21 and later have. `pg` asks when it loads whether it runs in a Cloudflare Worker; without a
 * navigator it answers by constructing a fetch Response, which makes Node load its fetch implementation
 * (undici): ~40 ms of every PostgreSQL command's start on Node 20 (CPU profile). The global is removed
 * once the import is done.
 */
async function withoutFetchProbe<T>(fn: () => Promise<T>): Promise<T> {
  const g = globalThis as { navigator?: unknown };
  if (g.navigator !== undefined) return fn();
  const shim = { userAgent: 'Node.js' };
  try {
    Object.defineProperty(g, 'navigator', { value: shim, configurable: true, writable: true });
  } catch {
    return fn(); // a global that cannot be extended: pg probes as it would
  }
  try {
    return await fn();
  } finally {
    // Only ours: something that set a navigator of its own meanwhile keeps it.
    if (Object.getOwnPropertyDescriptor(g, 'navigator')?.value === shim) delete g.navigator;
  }
}
