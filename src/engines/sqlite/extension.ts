import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';

/**
 * scriptorium's SQLite extension (native/scriptorium_sqlite.c, built by `npm install`): row encoding
 * and decoding in C. Without it every operation still works, through SQLite's built-in JSON and quote()
 * functions, only slower. Set SCRIPTORIUM_NO_EXTENSION=1 to force that path (tests compare the two).
 */

/**
 * The most values per row the extension encodes (MAX_COLS in native/scriptorium_sqlite.c): SQLite's
 * own limit of result columns, SQLITE_MAX_COLUMN, 2000 in every build we know.
 */
export const EXTENSION_MAX_COLUMNS = 2000;

/**
 * The most values per row the extension's parser, scriptorium_rows, returns (ROWS_COLS): a virtual
 * table of 1997 columns and its three hidden arguments, within SQLite's 2000 columns per table. Wider
 * rows load through SQLite's JSON functions.
 */
export const EXTENSION_MAX_LOAD_COLUMNS = 1997;

const loaded = new WeakSet<Database.Database>();
const guarded = new WeakSet<Database.Database>();
let extensionPath: string | null | undefined;

function findExtension(): string | null {
  if (extensionPath !== undefined) return extensionPath;
  extensionPath = null;
  if (process.env.SCRIPTORIUM_NO_EXTENSION === '1') return null;
  // dist/engines/sqlite/ or src/engines/sqlite/ → package root
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  const candidate = path.join(root, 'build', 'Release', 'scriptorium_sqlite.node');
  if (fs.existsSync(candidate)) extensionPath = candidate;
  return extensionPath;
}

/** Loads the extension into `db` if it was built; returns whether it is available there. */
export function loadExtension(db: Database.Database): boolean {
  if (loaded.has(db)) return true;
  const file = findExtension();
  if (!file) return false;
  try {
    (db.loadExtension as (file: string, entryPoint?: string) => void).call(db, file, 'sqlite3_scriptorium_init');
  } catch {
    return false;
  }
  loaded.add(db);
  return true;
}

/** Whether `db` can encode rows of `columns` values in C. */
export function hasExtension(db: Database.Database, columns: number): boolean {
  return loaded.has(db) && columns <= EXTENSION_MAX_COLUMNS;
}

/**
 * Installs the extension's guard on `db` (native/scriptorium_guard.inc): an authorizer that refuses
 * ATTACH, DETACH, PRAGMAs outside the few our code runs, functions that touch files or load code, TEMP
 * objects and virtual tables other than FTS5 and R*Tree; `SQLITE_LIMIT_ATTACHED` 0, defensive mode,
 * trusted_schema off, triggers and views disabled, extension loading off. For the connections that run
 * schema SQL from outside (SqliteTarget); call it after `loadExtension` and after the connection's own
 * setup, and load nothing into `db` afterwards. Returns whether the guard is on.
 *
 * Without the extension (SCRIPTORIUM_NO_EXTENSION=1, or not built) there is no authorizer: then the
 * schema check (schema-guard.ts) is the only line, with what better-sqlite3 and the caller set
 * themselves (better-sqlite3 opens every connection in defensive mode and leaves the SQL function
 * load_extension() off; SqliteTarget turns trusted_schema off).
 */
export function guardConnection(db: Database.Database): boolean {
  if (guarded.has(db)) return true;
  const file = loaded.has(db) ? findExtension() : null;
  if (!file) return false;
  (db.loadExtension as (file: string, entryPoint?: string) => void).call(db, file, 'sqlite3_scriptoriumguard_init');
  guarded.add(db);
  return true;
}

/** Whether `db` runs under the guard (for tests and diagnostics). */
export function isGuarded(db: Database.Database): boolean {
  return guarded.has(db);
}

/** Whether `db` can decode rows of `columns` values in C (scriptorium_rows). */
export function hasLoader(db: Database.Database, columns: number): boolean {
  return loaded.has(db) && columns <= EXTENSION_MAX_LOAD_COLUMNS;
}
