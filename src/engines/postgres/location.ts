import { UsageError } from '../../core/errors.js';
import { redact } from '../../monitor/redact.js';

/** Where a PostgreSQL database is: a connection URL, or the standard PG* environment variables. */
export interface PostgresLocation {
  /** What is passed to the driver: the URL, or undefined to let it read PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE. */
  connectionString: string | undefined;
  /** The location with its password removed: the only form that is ever shown or recorded. */
  display: string;
  /** The database name, for default file names. */
  database: string;
}

/** Whether `location` is a PostgreSQL URL (`postgres://…` or `postgresql://…`). */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/**
 * Parses a PostgreSQL location: a URL, or (with `--engine postgres`) the empty string or `-`, meaning
 * the PG* environment variables. Throws E_USAGE for a URL that does not parse; the message never holds
 * the password.
 */
export function parsePostgresLocation(location: string): PostgresLocation {
  if (location === '' || location === '-') {
    const env = process.env;
    const user = env.PGUSER ?? '';
    const host = env.PGHOST ?? 'localhost';
    const database = env.PGDATABASE ?? user ?? 'postgres';
    return {
      connectionString: undefined,
      display: `postgres://${user ? `${user}@` : ''}${host}${env.PGPORT ? `:${env.PGPORT}` : ''}/${database} (from PG* variables)`,
      database: database || 'postgres',
    };
  }
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    throw new UsageError(`postgres: ${redact(location)} is not a valid connection URL`, {
      hint: 'Write it as postgres://user:password@host:port/database (percent-encode special characters in the password).',
    });
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || decodeURIComponent(url.username) || 'postgres';
  return { connectionString: location, display: redact(location), database };
}
