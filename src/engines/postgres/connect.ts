import { AuthError, NotFoundError, ScriptoriumError } from '../../core/errors.js';
import { redact } from '../../monitor/redact.js';
import type { DatabaseLocation } from '../engine.js';
import { loadDriver, type PgClient } from './driver.js';

/**
 * The session settings of every connection, as pg_dump sets them: values come out in one canonical
 * text form whatever the server's or role's defaults, and a table with row-level security errors
 * instead of silently giving only the rows the role may see.
 */
export const SESSION_SETTINGS = [
  "SET client_encoding = 'UTF8'",
  'SET extra_float_digits = 3',
  "SET TimeZone = 'UTC'",
  'SET DateStyle = ISO',
  'SET IntervalStyle = postgres',
  'SET bytea_output = hex',
  'SET standard_conforming_strings = on',
  'SET row_security = off',
  'SET statement_timeout = 0',
  'SET lock_timeout = 0',
  'SET idle_in_transaction_session_timeout = 0',
  // Names in every expression the server prints (defaults, views, indexes) come out schema-qualified.
  "SELECT pg_catalog.set_config('search_path', '', false)",
].join('; ');

/** The SQLSTATE of a driver error, or of the one a ScriptoriumError from {@link pgError} wraps. */
export function pgCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const code = err instanceof ScriptoriumError ? e?.cause?.code : e?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A driver error as a ScriptoriumError whose message never holds the password. */
export function pgError(err: unknown, what: string, location: DatabaseLocation): ScriptoriumError {
  if (err instanceof ScriptoriumError) return err;
  const e = err as Error & { code?: string };
  const message = redact(`postgres: ${what} ${location.display}: ${e?.message ?? String(err)}`);
  if (e?.code === '28P01' || e?.code === '28000') return new AuthError(message, { hint: 'Check the user and password (in the URL or PGPASSWORD).', cause: err });
  if (e?.code === '3D000') return new NotFoundError(message, { hint: 'Check the database name; create it first when importing.', cause: err });
  if (e?.code === 'ECONNREFUSED' || e?.code === 'ENOTFOUND' || e?.code === 'ETIMEDOUT') {
    return new ScriptoriumError('E_IO', message, { hint: 'Is the server running, and are host and port right?', cause: err });
  }
  return new ScriptoriumError('E_POSTGRES', message, { hint: e?.code ? `PostgreSQL error ${e.code}.` : 'See the message from the server.', cause: err });
}

/** Opens one connection with {@link SESSION_SETTINGS}. */
export async function connect(location: DatabaseLocation): Promise<PgClient> {
  const { Client } = await loadDriver();
  const client = new Client({ ...(location.raw ? { connectionString: location.raw } : {}), application_name: 'scriptorium', connectionTimeoutMillis: 30_000 });
  // A connection lost while idle is reported by the next query; without a listener it would crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query(SESSION_SETTINGS);
  } catch (err) {
    await client.end().catch(() => undefined);
    throw pgError(err, 'cannot connect to', location);
  }
  return client;
}
