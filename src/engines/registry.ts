import * as path from 'node:path';
import { UsageError } from '../core/errors.js';
import type { DatabaseLocation, Engine, EngineName } from './engine.js';
import { isPostgresUrl, parsePostgresLocation } from './postgres/location.js';
import { postgresEngine } from './postgres/postgres-engine.js';
import { sqliteEngine } from './sqlite/sqlite-engine.js';

/** The engines, by name. Neither loads its driver until a location of it is opened. */
export const ENGINES: Readonly<Record<EngineName, Engine>> = { sqlite: sqliteEngine, postgres: postgresEngine };

/** Checks an engine name from the user (`--engine`). */
export function parseEngine(name: string): EngineName {
  if (name === 'sqlite' || name === 'postgres') return name;
  throw new UsageError(`unknown engine ${JSON.stringify(name)}`, { hint: 'Use --engine sqlite or --engine postgres.' });
}

/**
 * Which engine a location belongs to, and the location parsed by it: a `postgres://` or
 * `postgresql://` URL is PostgreSQL, and so is any location (the empty string or `-` meaning the PG*
 * environment variables) with `engine: 'postgres'`; anything else is a SQLite file path.
 */
export function resolveLocation(location: string, engine?: EngineName): DatabaseLocation {
  if (typeof location !== 'string') throw new TypeError('resolveLocation: location must be a string');
  if (engine === 'postgres' || (engine === undefined && isPostgresUrl(location))) {
    const pg = parsePostgresLocation(location);
    return { engine: 'postgres', raw: pg.connectionString ?? '', display: pg.display, baseName: pg.database };
  }
  if (isPostgresUrl(location)) {
    throw new UsageError(`${parsePostgresLocation(location).display} is a PostgreSQL URL, not a SQLite file`, { hint: 'Leave out --engine sqlite.' });
  }
  return { engine: 'sqlite', raw: location, display: location, baseName: path.basename(location).replace(/\.(db|sqlite3?)$/i, '') };
}

/** The engine of a resolved location. */
export function engineOf(location: DatabaseLocation): Engine {
  return ENGINES[location.engine];
}
