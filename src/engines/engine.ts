import type { RowBatch, RowEncoding, TableDigest } from '../core/encoding.js';
import type { EventListener } from '../core/events.js';
import type { DatabaseSchema, TableSchema } from '../core/schema.js';

/** The engines scriptorium reads and writes. */
export type EngineName = 'sqlite' | 'postgres';

/**
 * What an engine can do, as data (callers branch on these, never on the engine's name where a
 * capability says it).
 */
export interface EngineCapabilities {
  /** The location is a file (checked against outputs, named in default file names by its base name). */
  fileLocation: boolean;
  /** CREATE TABLE and friends roll back with the transaction (a failed load leaves nothing). */
  transactionalDdl: boolean;
  /** Rows are encoded inside the engine (SQLite's extension); otherwise by the engine's adapter in JS. */
  nativeRowEncoding: boolean;
  /** Tables live in named schemas (`schema.table`). */
  namedSchemas: boolean;
}

/** A database location, parsed by the engine that owns it. */
export interface DatabaseLocation {
  engine: EngineName;
  /** As given by the user (may hold a password: never show or record it). */
  raw: string;
  /** As shown in messages, progress, --json and history: passwords removed. */
  display: string;
  /** A short name for default file names (a file's base name, a database's name). */
  baseName: string;
}

/**
 * A consistent read view of one database: every table is read at the same point in time, whatever
 * writes meanwhile. Obtained from {@link Engine.openSource}; `close` must be called once, also after
 * a failure.
 */
export interface EngineSource {
  /** The whole schema, as read at the snapshot (unsupported tables listed, not yet refused). */
  readonly schema: DatabaseSchema;
  /** Connections that read rows. */
  readonly readers: number;
  /** Things the source has that are not carried (each said once, as a notice). */
  readonly warnings: readonly string[];
  /**
   * The schema narrowed to `include` (or all) minus `exclude`; throws E_NOT_FOUND for an unknown
   * name and E_UNSUPPORTED for a selected table the engine cannot carry.
   */
  select(include?: string[], exclude?: string[]): DatabaseSchema;
  /** Exact row count of a table at the snapshot. */
  rowCount(table: TableSchema): number | Promise<number>;
  /**
   * A table's rows in key order (the order digests are defined in), encoded in `encoding`, in batches of
   * about `batchRows` rows. Consume one table's batches before asking for the next table's.
   */
  batches(table: TableSchema, encoding: RowEncoding, options: { batchRows: number }): Iterable<RowBatch> | AsyncIterable<RowBatch>;
  close(): void | Promise<void>;
}

/**
 * Where an import writes: the load of one export into one database. Every change stays invisible
 * until {@link EngineTarget.commit}; after any failure {@link EngineTarget.abort} leaves the database
 * as it was before {@link Engine.openTarget}.
 */
export interface EngineTarget {
  readonly location: DatabaseLocation;
  /** Creates what comes before the tables (schemas, extensions, types, sequences). */
  begin(schema: DatabaseSchema): Promise<void>;
  /** Creates one table of the schema given to {@link begin}; throws E_TARGET_EXISTS when it exists. */
  createTable(table: TableSchema): Promise<void>;
  /**
   * Loads rows of one table in `encoding` (the file's); returns the rows loaded. Checks each row's
   * bytes into the file digest and each value into the load digest as it goes. A table's rows come
   * together: rows of another table end the previous table's load.
   */
  load(table: TableSchema, encoding: 'ndjson' | 'json' | 'sql', batch: RowBatch, line?: number): Promise<number>;
  /**
   * Ends a table's load and compares: the file's rows with `expected` (the digest the file records),
   * and the rows sent with the rows the table now holds. Throws E_DIGEST_MISMATCH on a difference.
   */
  verify(table: TableSchema, expected: TableDigest | undefined): Promise<{ rows: number; sha256?: string; verified: boolean }>;
  /** Creates what comes after the rows (constraints, indexes, views, sequence values, comments). */
  finish(schema: DatabaseSchema): Promise<void>;
  /** The values loaded so far that could not be carried exactly (with `allowLossy`; otherwise `verify` throws). */
  lossyValues?(): LossyValues[];
  /** Makes everything visible at once. */
  commit(): Promise<void>;
  /** Undoes everything; never throws. */
  abort(): Promise<void>;
}

/** One kind of value in one column that cannot be carried exactly into the target (docs/cross-engine.md). */
export interface LossyValues {
  table: string;
  column: string;
  /** What the values are, and what `--allow-lossy` loads instead. */
  what: string;
  count: number;
  /** The first one as the file has it (shortened), and its row (1-based, in file order). */
  example: string;
  row: number;
}

/** Options for {@link Engine.openTarget}. */
export interface TargetOptions {
  /**
   * Load values that cannot be carried exactly, converted as docs/cross-engine.md says (each kind is
   * still reported by {@link EngineTarget.lossyValues}). Without it, such a value makes `verify` throw
   * E_LOSSY with every case, and nothing is committed.
   */
  allowLossy?: boolean;
  /**
   * The rows come as the literal tuples of a PostgreSQL sql export (`load` with encoding 'sql'): a
   * table may be described without its columns (the target's catalog gives them), and each table is
   * read back in that encoding and compared with the file's digest.
   */
  sqlScript?: boolean;
}

/** Options for {@link Engine.openSource}. */
export interface SourceOptions {
  onEvent?: EventListener;
}

/** One database engine: opens consistent sources and transactional targets at its locations. */
export interface Engine {
  readonly name: EngineName;
  readonly capabilities: EngineCapabilities;
  /** Opens a consistent source at `location`. Throws E_NOT_FOUND (no such database) or E_AUTH. */
  openSource(location: DatabaseLocation, options?: SourceOptions): Promise<EngineSource>;
  /** Opens a target for import; undefined when the engine's import is done by its own path (SQLite's). */
  openTarget?(location: DatabaseLocation, options?: TargetOptions): Promise<EngineTarget>;
}
