/** The engine side of the repository: the small part of a Source and Target it uses, and their opening. */
import type { RowBatch, RowEncoding, TableDigest } from '../core/encoding.js';
import type { DatabaseSchema, TableSchema } from '../core/schema.js';
import { resolve } from 'node:path';
import { UsageError } from '../core/errors.js';
import type { EngineName } from '../engines/engine.js';
import { resolveLocation } from '../engines/registry.js';
import { checkContentTables, refuseUnsupported } from '../engines/sqlite/sqlite-schema.js';
import type { ChunkerSettings } from './config.js';
import type { ChunkBatch } from './native-chunks.js';

/** What backup needs from a database: a consistent schema and rows in key order (SqliteSource fits). */
export interface RowSource {
  readonly schema: DatabaseSchema;
  rowCount(table: TableSchema): number;
  /** A cheap estimate of the table's rows, for progress only (rowCount when there is none). */
  rowEstimate?(table: TableSchema): number;
  batches(table: TableSchema, encoding: RowEncoding, opts?: { batchRows?: number }): Iterable<RowBatch>;
  /**
   * A source that stores its rows in the engine's own encoding (PostgreSQL's COPY text): the table's
   * chunks, cut by the source; the table digest is the SHA-256 of their bytes back to back. Used
   * instead of `batches` when present.
   */
  copyChunks?(table: TableSchema, settings: ChunkerSettings): AsyncIterable<ChunkBatch>;
  /** The manifest's row encoding of this source's chunks (default `ndjson`). */
  readonly encoding?: 'ndjson' | 'pg-copy-text';
  close(): void | Promise<void>;
}

/** Where a backup reads from: a PostgreSQL location, or a SQLite file. */
export interface SourceOpenOptions {
  engine?: EngineName;
  tables?: string[];
  /** Tables left out (PostgreSQL: before the snapshot's tables are locked). */
  excludeTables?: string[];
  /** PostgreSQL: connections that share the snapshot (default: CPUs, at most 4). */
  jobs?: number;
  onNotice?: (message: string) => void;
}

/** The source as recorded in the manifest and shown: a SQLite file's absolute path, a PostgreSQL URL without its password. */
export function sourceDisplay(source: string, engine?: EngineName): string {
  const location = resolveLocation(source, engine);
  return location.engine === 'postgres' ? location.display : resolve(source);
}

/** Opens `source` for a backup with the engine its location names. */
export async function openSource(source: string, options: SourceOpenOptions = {}): Promise<RowSource> {
  const location = resolveLocation(source, options.engine);
  if (location.engine === 'postgres') return (await import('./postgres-backup-source.js')).openPostgresSource(location, options);
  return openSqliteSource(source);
}

/** Opens the SQLite database at `file` as a RowSource (the driver is loaded only when needed). */
export async function openSqliteSource(file: string): Promise<RowSource> {
  const { SqliteSource, backgroundReaders } = await import('../engines/sqlite/sqlite-source.js');
  // One background reader: a backup's chunks are cut in order, so its scan runs on one thread.
  return SqliteSource.open(file, { readers: Math.min(1, backgroundReaders()) });
}

/**
 * Picks the tables named in `names` (all when undefined), in schema order, but for those in `exclude`.
 * Throws a UsageError naming the tables that do not exist, and E_UNSUPPORTED for a selected table that
 * cannot be carried (a virtual table of another module): those are skipped when they are not selected.
 */
export function selectTables(schema: DatabaseSchema, names: string[] | undefined, where: string, exclude: string[] = []): TableSchema[] {
  const wanted = names !== undefined && names.length > 0 ? new Set(names) : undefined;
  if (!wanted && exclude.length === 0) {
    refuseUnsupported(schema, () => true);
    return schema.tables;
  }
  const known = new Set([...schema.tables, ...(schema.unsupported ?? [])].map((t) => t.name));
  const missing = [...(names ?? []), ...exclude].filter((n) => !known.has(n));
  if (missing.length > 0) {
    throw new UsageError(`${where} has no table${missing.length > 1 ? 's' : ''} ${missing.map((n) => JSON.stringify(n)).join(', ')}`, {
      code: 'E_NOT_FOUND',
      hint: `Tables there: ${[...known].map((n) => JSON.stringify(n)).join(', ') || '(none)'}.`,
    });
  }
  const chosen = (name: string): boolean => (wanted === undefined || wanted.has(name)) && !exclude.includes(name);
  refuseUnsupported(schema, chosen);
  const tables = schema.tables.filter((t) => chosen(t.name));
  if (tables.length === 0 && exclude.length > 0) throw new UsageError(`${where}: --exclude-tables leaves no table to back up`, { code: 'E_USAGE', hint: 'Leave out fewer tables.' });
  checkContentTables(tables, schema.tables);
  return tables;
}

/** A table's digest as recomputed from a loaded target. */
export type { TableDigest };

/** The schema restricted to `names`, with their indexes and triggers (views are kept only when all tables are). */
export function subsetSchema(schema: DatabaseSchema, names: string[]): DatabaseSchema {
  const keep = new Set(names);
  const full = schema.tables.every((t) => keep.has(t.name));
  const sequences = Object.fromEntries(Object.entries(schema.meta.sequences ?? {}).filter(([name]) => keep.has(name)));
  const { unsupported: _left, ...rest } = schema; // never written into a manifest
  return {
    ...rest,
    tables: schema.tables.filter((t) => keep.has(t.name)),
    objects: schema.objects.filter((o) => full || (o.type !== 'view' && keep.has(o.table))),
    meta: { ...schema.meta, sequences },
  };
}
