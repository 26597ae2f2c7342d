/**
 * `restore --into postgres://…` (and `verify --drill --into postgres://…`): a snapshot of a PostgreSQL
 * database loaded into another one in one transaction. The chunks' bytes go to `COPY … FROM STDIN` as
 * they were stored (PostgreSQL's COPY text); each table is read back right after its load (while its
 * pages are still in the server's cache; sequentially, in load order, with no sort:
 * postgres-copy-target.ts) and its digest compared with the manifest's (without the read-back, the
 * bytes sent are hashed instead). Then come the keys, indexes (with the server's parallel workers,
 * --jobs), foreign keys and sequence values. Only then is the transaction committed (or, for a drill,
 * rolled back): a failed restore leaves the target as it was.
 */
import { UsageError } from '../core/errors.js';
import type { DatabaseSchema, TableSchema } from '../core/schema.js';
import type { DatabaseLocation } from '../engines/engine.js';
import { RepositoryIntegrityError } from './errors.js';
import type { Snapshot, TableEntry } from './manifest.js';
import type { OperationReporter } from './progress.js';
import { PackCache, type Repository } from './repository.js';
import { manifestSchemaProblems } from './schema-check.js';
import { packOrder, readTable } from './snapshot-reader.js';

/** The PostgreSQL restore's options (besides the repository's). */
export interface PostgresRestoreOptions {
  tables?: string[];
  /** Processes per index build (default: CPUs, at most 4). */
  jobs?: number;
  /** Roll back at the end instead of committing (a drill: the target is left as it was). */
  rollback?: boolean;
  /** The operation, for messages. */
  operation?: string;
  /**
   * Read every table back from the target and compare its digest with the manifest's (default true).
   * Without, the digest is checked over the bytes sent, and the row count over what the server took.
   */
  readBack?: boolean;
}

/** What a PostgreSQL restore loaded. */
export interface PostgresRestoreResult {
  snapshot: string;
  into: string;
  rows: number;
  tables: Array<{ name: string; rows: number; sha256: string }>;
}

const NEWLINE = Buffer.from('\n');
/** A pack body above this many bytes (one ending in a huge row's chunk) is read lazily. */
const LAZY_PACK_BYTES = 64 << 20;

/**
 * Refuses a snapshot of one encoding for the other engine: this file's path and restore.ts's SQLite one
 * are for a snapshot's own engine (restore.ts sends the others to restore-across.ts), and a drill
 * without `--into` (RestoreOptions.sameEngineOnly) tests only that.
 */
export function checkRestoreEngine(snapshot: Snapshot, into: 'sqlite' | 'postgres'): void {
  const encoding = snapshot.encoding;
  if (into === 'postgres' && encoding !== 'pg-copy-text') {
    throw new UsageError(`snapshot ${snapshot.id.slice(0, 8)} is of a SQLite database (rows as ndjson): it restores into a SQLite file, not into PostgreSQL`, {
      code: 'E_UNSUPPORTED',
      hint: 'Restore it into a file (--into app.db), or into PostgreSQL with `scriptorium restore … --into postgres://…` (across engines: docs/cross-engine.md).',
    });
  }
  if (into === 'sqlite' && encoding !== 'ndjson') {
    throw new UsageError(`snapshot ${snapshot.id.slice(0, 8)} is of a PostgreSQL database (rows as ${encoding}): it restores into PostgreSQL`, {
      code: 'E_UNSUPPORTED',
      hint: 'Pass --into postgres://user@host/database (an existing database without its tables); for verify, --drill --into postgres://…. `scriptorium restore … --into app.db` restores it into SQLite across engines (docs/cross-engine.md).',
    });
  }
}

/**
 * Restores `snapshot` (already checked against the repository: every pack and range it names) into
 * the PostgreSQL database at `location`.
 */
export async function restoreIntoPostgres(
  repo: Repository,
  snapshot: Snapshot,
  location: DatabaseLocation,
  options: PostgresRestoreOptions,
  reporter: OperationReporter,
): Promise<PostgresRestoreResult> {
  const operation = options.operation ?? 'restore';
  checkRestoreEngine(snapshot, 'postgres');
  const schemaProblems = manifestSchemaProblems(snapshot);
  if (schemaProblems.length > 0) throw new RepositoryIntegrityError(schemaProblems, operation);
  const [{ PostgresCopyTarget }, { selectSchema }, { defaultJobs }] = await Promise.all([
    import('../engines/postgres/postgres-copy-target.js'),
    import('../engines/postgres/postgres-copy-source.js'),
    import('./postgres-backup-source.js'),
  ]);
  const schema: DatabaseSchema = selectSchema(snapshot.schema, options.tables, { ...location, display: `snapshot ${snapshot.id.slice(0, 8)}` });
  const entries = schema.tables.map((t) => snapshot.tables.find((e) => e.name === t.name)!);
  reporter.started({
    source: `${repo.location}#${snapshot.id.slice(0, 8)}`, target: location.display, format: 'repository',
    totalRows: entries.reduce((a, t) => a + t.rows, 0), tables: entries.length,
  });
  const target = await PostgresCopyTarget.open(location, { jobs: options.jobs ?? (await defaultJobs()), operation });
  let rows = 0;
  try {
    await target.begin(schema);
    for (const table of schema.tables) await target.createTable(table);
    const cache = new PackCache(repo, { recycle: true, lazyAbove: LAZY_PACK_BYTES, order: packOrder(snapshot, entries) });
    try {
      for (const [i, entry] of entries.entries()) {
        const table = schema.tables[i]!;
        const loaded = await target.load(table, copyText(readTable(repo, cache, snapshot, entry, operation, options.readBack === false), entry, reporter));
        if (loaded !== entry.rows) throw mismatch(snapshot, entry, `the server took ${loaded} rows, the manifest says ${entry.rows}`, operation);
        rows += loaded;
        // Before the indexes: nothing after the rows changes a value, and the pages are still cached.
        if (options.readBack !== false) {
          reporter.progress('verify', entry.name, true);
          await checkDigest(target, table, entry, snapshot, operation);
        }
      }
    } finally {
      await cache.close();
    }
    reporter.progress('indexes', undefined, true);
    await target.finish(schema);
    if (options.rollback) await target.abort();
    else await target.commit();
  } catch (err) {
    await target.abort();
    throw err;
  }
  reporter.completed({ snapshot: snapshot.id, into: location.display, tables: entries.length, ...(options.rollback ? { rolledBack: true } : {}) });
  return { snapshot: snapshot.id, into: location.display, rows, tables: entries.map((t) => ({ name: t.name, rows: t.rows, sha256: t.sha256 })) };
}

/**
 * The stored COPY text of a table: each batch, then the newline the reader leaves off, as views of
 * the reader's memory (valid until the next is asked for: the target copies them).
 */
async function* copyText(batches: ReturnType<typeof readTable>, entry: TableEntry, reporter: OperationReporter): AsyncGenerator<Buffer> {
  for await (const batch of batches) {
    if (batch.pieces) {
      for await (const piece of batch.pieces) {
        reporter.bytesIn += piece.length;
        yield piece;
      }
    } else {
      reporter.bytesIn += batch.data.length + 1;
      yield batch.data;
      yield NEWLINE;
    }
    reporter.rowsDone += batch.rows;
    reporter.progress('rows', entry.name);
  }
}

type Digest = { rows: number; sha256: string; order: 'load' | 'key' };

/**
 * Reads `table` back and compares it with the manifest's digest: first in load order (no sort); if
 * that differs, again in key order, since only the order may be what differs (the rows are hashed as
 * one stream). A table passes only when a read of what it holds hashes as the manifest says.
 */
async function checkDigest(target: { digest(t: TableSchema, order: 'load' | 'key'): Promise<Digest> }, table: TableSchema, entry: TableEntry, snapshot: Snapshot, operation: string): Promise<void> {
  const matches = (d: Digest): boolean => d.sha256 === entry.sha256 && d.rows === entry.rows;
  let digest = await target.digest(table, 'load');
  if (!matches(digest) && digest.order === 'load') digest = await target.digest(table, 'key');
  if (!matches(digest)) {
    throw mismatch(snapshot, entry, `the restored table reads back as ${digest.rows} rows with digest ${digest.sha256.slice(0, 16)}…, the manifest says ${entry.rows} rows, ${entry.sha256.slice(0, 16)}… (the target server changed some value: another version or setting?)`, operation);
  }
}

function mismatch(snapshot: Snapshot, entry: TableEntry, message: string, operation: string): RepositoryIntegrityError {
  return new RepositoryIntegrityError([{ code: 'E_DIGEST_MISMATCH', snapshot: snapshot.id, table: entry.name, message }], operation);
}
