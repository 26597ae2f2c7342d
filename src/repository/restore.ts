/** `restore`: rebuilds a database from a snapshot beside the target, verifies it, then swaps it in. */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { collectAll } from '../core/memory.js';
import { checkTarget, type TargetPlan } from '../core/target-file.js';
import type { EventListener } from '../core/events.js';
import { RepositoryIntegrityError } from './errors.js';
import { buildThenSwap } from './sqlite-swap.js';
import type { Snapshot, TableEntry } from './manifest.js';
import type { DatabaseSchema, TableSchema } from '../core/schema.js';
import type { SqliteTarget } from '../engines/sqlite/sqlite-target.js';
import { nativeDigest } from './native-chunks.js';
import { OperationReporter } from './progress.js';
import { lazyPackBytes, StreamingPackCache } from './restore-pack.js';
import { withRepository, type OpenOptions, type Repository, type RepositoryLocation } from './repository.js';
import { manifestSchemaProblems } from './schema-check.js';
import { checkSnapshot } from './snapshot-check.js';
import { createdTableProblem } from '../engines/sqlite/created-table.js';
import { packOrder, readTable } from './snapshot-reader.js';
import { selectTables, subsetSchema } from './source.js';
import type { DatabaseLocation, EngineName } from '../engines/engine.js';
import { resolveLocation } from '../engines/registry.js';
import { checkRestoreEngine, restoreIntoPostgres } from './restore-postgres.js';
import { restorePostgresIntoSqlite, restoreSqliteIntoPostgres } from './restore-across.js';

export interface RestoreOptions extends OpenOptions {
  /** The database file to create or (with `force`) replace. */
  into: string;
  /** Restore only these tables (default: all in the snapshot). */
  tables?: string[];
  /** Replace `into` if it exists. */
  force?: boolean;
  onEvent?: EventListener;
  lockWaitMs?: number;
  /** The engine of `into` when its location does not say (`postgres` for the PG* environment variables). */
  engine?: EngineName;
  /** PostgreSQL: processes per index build (default: CPUs, at most 4). */
  jobs?: number;
  /** PostgreSQL: roll the load back at the end instead of committing (`verify --drill --into`). */
  rollback?: boolean;
  /** PostgreSQL: read every table back and compare its digest (default true; a drill always does). */
  readBack?: boolean;
  /**
   * Into the other engine (a SQLite snapshot into PostgreSQL, a PostgreSQL one into SQLite): load values
   * that cannot be carried exactly, converted as docs/cross-engine.md says and each kind said as a
   * notice. Without it every such value is reported (table, column, count, first example) as E_LOSSY
   * and nothing is written.
   */
  allowLossy?: boolean;
  /** Refuse a snapshot of the other engine (E_UNSUPPORTED) instead of restoring across engines (a drill of the same engine). */
  sameEngineOnly?: boolean;
}

export interface RestoreResult {
  snapshot: string;
  into: string;
  rows: number;
  tables: Array<{ name: string; rows: number; sha256: string }>;
}

/**
 * Restores snapshot `ref` (`latest`, an id or a unique id prefix) into `options.into`. The database is
 * built under a temporary name in the same directory, every table's digest is recomputed from it and
 * compared with the manifest, and only then is it renamed over the target: on any failure, including
 * a crash, the target is left exactly as it was.
 *
 * @example
 * ```ts
 * await restore('latest', '/mnt/nas/backups', { into: 'app.db', force: true });
 * ```
 */
export async function restore(ref: string, repository: RepositoryLocation | Repository, options: RestoreOptions): Promise<RestoreResult> {
  if (!options || typeof options.into !== 'string' || options.into === '') {
    throw new TypeError('restore: options.into must name the database file to restore into');
  }
  const reporter = new OperationReporter('restore', options.onEvent);
  const location = resolveLocation(options.into, options.engine);
  if (location.engine === 'postgres') return restorePostgres(ref, repository, location, options, reporter);
  const into = resolve(options.into);
  return reporter.run(() =>
    withRepository(repository, options, async (repo) => {
      const plan = checkTarget(into, {
        op: 'restore',
        force: options.force ?? false,
        existsHint: 'Pass --force to replace it (only after the restore is verified), or restore into a new file.',
        database: true,
        notInside: [{ path: repo.location, what: 'the repository' }],
      });
      const lock = await repo.lock('shared', 'restore', options.lockWaitMs ?? 60_000);
      try {
        const snapshot = await repo.resolve(ref);
        if (snapshot.encoding === 'pg-copy-text' && options.sameEngineOnly) checkRestoreEngine(snapshot, 'sqlite');
        const sizes = await checkSnapshot(repo, snapshot, 'restore'); // every pack and range it names, before the target exists
        if (snapshot.encoding === 'pg-copy-text') {
          return await restorePostgresIntoSqlite(repo, snapshot, plan, { ...(options.tables ? { tables: options.tables } : {}), ...(options.allowLossy ? { allowLossy: true } : {}) }, reporter);
        }
        return await restoreSnapshot(repo, snapshot, plan, options, reporter, sizes);
      } finally {
        await lock.release();
      }
    }),
  );
}

/**
 * Loads the rows of `entries` into `target`. Pack memory is pooled and given back at the end (in a
 * function of its own, so that no variable of the loop keeps the last pack alive afterwards).
 */
async function loadTables(repo: Repository, snapshot: Snapshot, schema: DatabaseSchema, entries: TableEntry[], target: SqliteTarget, reporter: OperationReporter, sizes: ReadonlyMap<string, number>): Promise<void> {
  // Each batch is loaded before the next is read. A pack that ends in a huge row's chunk stays
  // compressed, and that chunk reaches the loader in pieces (lazy packs); a huge pack file is read from
  // the store in pieces too, never whole (restore-pack.ts).
  // Open packs: four packs' worth, evicted by next use in the reading order (pack-cache.ts): an
  // incremental snapshot's alternating chunks read each pack about once, a first snapshot holds one.
  // On a remote store the next packs are downloaded ahead (`order`).
  const cache = new StreamingPackCache(repo, { recycle: true, lazyAbove: lazyPackBytes(repo.config.packBytes), order: packOrder(snapshot, entries), sizes });
  const tables = tablesByName(schema);
  /** Bytes of rows loaded since the last full collection. */
  let uncollected = 0;
  try {
    for (const entry of entries) {
      const table = tables.get(entry.name)!;
      // Packs are checked as they are read; the digest is recomputed from the loaded table below.
      for await (const batch of readTable(repo, cache, snapshot, entry, 'restore', false)) {
        if (batch.pieces) {
          const loaded = await target.loadPieces(table, 'ndjson', counted(batch.pieces, reporter));
          if (loaded !== batch.rows) throw new RepositoryIntegrityError([{ code: 'E_CORRUPT', snapshot: snapshot.id, table: entry.name, message: `a chunk of ${batch.rows} rows loaded as ${loaded}` }], 'restore');
          uncollected = COLLECT_AFTER_BYTES; // a chunk too large to hold: its pack's memory goes before the next table
        } else {
          target.load(table, 'ndjson', batch);
          reporter.bytesIn += batch.data.length + 1;
          uncollected += batch.data.length;
        }
        reporter.rowsDone += batch.rows;
        reporter.progress('rows', entry.name);
      }
      // Buffers that outlived a table's load (pooled packs it dropped, the last batches) sit in the old
      // generation, which V8 grows for a long time before collecting: free them before the next table.
      // Only once enough was loaded to matter: a full collection costs time in proportion to the heap,
      // which grows with the schema, and one per table made restoring 40,000 small tables quadratic.
      if (uncollected >= COLLECT_AFTER_BYTES) {
        collectAll();
        uncollected = 0;
      }
      target.endTable();
    }
  } finally {
    await cache.close();
  }
}

/** Rows loaded (bytes of ndjson) after which a table's end runs a full collection. */
const COLLECT_AFTER_BYTES = 8 << 20;

/** The manifest's tables by name (looked up once per table: a list search made many tables quadratic). */
function tablesByName(schema: DatabaseSchema): Map<string, TableSchema> {
  const byName = new Map<string, TableSchema>();
  for (const t of schema.tables) if (!byName.has(t.name)) byName.set(t.name, t);
  return byName;
}


async function* counted(pieces: AsyncIterable<Buffer>, reporter: OperationReporter): AsyncGenerator<Buffer> {
  for await (const piece of pieces) {
    reporter.bytesIn += piece.length;
    yield piece;
  }
}

/** {@link restore} into a PostgreSQL database (restore-postgres.ts): one transaction, committed after every digest matches. */
function restorePostgres(ref: string, repository: RepositoryLocation | Repository, location: DatabaseLocation, options: RestoreOptions, reporter: OperationReporter): Promise<RestoreResult> {
  return reporter.run(() =>
    withRepository(repository, options, async (repo) => {
      const lock = await repo.lock('shared', 'restore', options.lockWaitMs ?? 60_000);
      try {
        const snapshot = await repo.resolve(ref);
        if (snapshot.encoding === 'ndjson' && options.sameEngineOnly) checkRestoreEngine(snapshot, 'postgres');
        await checkSnapshot(repo, snapshot, 'restore');
        if (snapshot.encoding === 'ndjson') {
          return await restoreSqliteIntoPostgres(repo, snapshot, location, {
            ...(options.tables ? { tables: options.tables } : {}), ...(options.allowLossy ? { allowLossy: true } : {}), ...(options.rollback ? { rollback: true } : {}),
          }, reporter);
        }
        return await restoreIntoPostgres(repo, snapshot, location, {
          ...(options.tables ? { tables: options.tables } : {}), ...(options.jobs ? { jobs: options.jobs } : {}), ...(options.rollback ? { rollback: true, operation: 'verify --drill' } : {}), ...(options.readBack === false && !options.rollback ? { readBack: false } : {}),
        }, reporter);
      } finally {
        await lock.release();
      }
    }),
  );
}

async function restoreSnapshot(repo: Repository, snapshot: Snapshot, plan: TargetPlan, options: RestoreOptions, reporter: OperationReporter, sizes: ReadonlyMap<string, number>): Promise<RestoreResult> {
  checkRestoreEngine(snapshot, 'sqlite');
  const { SqliteTarget } = await import('../engines/sqlite/sqlite-target.js');
  // The manifest's schema SQL runs only if every statement is the plain CREATE it claims to be.
  const schemaProblems = manifestSchemaProblems(snapshot);
  if (schemaProblems.length > 0) throw new RepositoryIntegrityError(schemaProblems, 'restore');
  const into = plan.given;
  const schemaTables = selectTables(snapshot.schema, options.tables, `snapshot ${snapshot.id.slice(0, 8)}`);
  const selected = new Set(schemaTables.map((t) => t.name));
  const entries = snapshot.tables.filter((t) => selected.has(t.name));
  const schema = subsetSchema(snapshot.schema, schemaTables.map((t) => t.name));
  reporter.started({
    source: `${repo.location}#${snapshot.id.slice(0, 8)}`, target: into, format: 'repository',
    totalRows: entries.reduce((a, t) => a + t.rows, 0), tables: entries.length,
  });
  await buildThenSwap(plan, 'restore', reporter, (path) => SqliteTarget.create(path), async (target) => {
    target.createTables(schema.tables);
    // Rows load and re-digest by the manifest's description: it must be what the CREATE statements made.
    const differs = schema.tables.flatMap((t) => {
      const message = createdTableProblem(target.db, t, 'the manifest');
      return message === undefined ? [] : [{ code: 'E_CORRUPT', snapshot: snapshot.id, table: t.name, message }];
    });
    if (differs.length > 0) throw new RepositoryIntegrityError(differs, 'restore');
    await loadTables(repo, snapshot, schema, entries, target, reporter, sizes);
    reporter.progress('indexes', undefined, true);
    target.endLoad(); // index builds reuse the load's page cache memory instead of adding to it
    target.finish(schema.objects, schema.meta);
    reporter.progress('verify', undefined, true);
    const tables = tablesByName(schema);
    for (const entry of entries) {
      const table = tables.get(entry.name)!;
      const digest = (await nativeDigest(target.db, table)) ?? target.digest(table, 'ndjson');
      if (digest.sha256 !== entry.sha256 || digest.rows !== entry.rows) {
        throw new RepositoryIntegrityError([{
          code: 'E_DIGEST_MISMATCH', snapshot: snapshot.id, table: entry.name,
          message: `the restored table re-encodes to ${digest.rows} rows with digest ${digest.sha256.slice(0, 16)}…, the manifest says ${entry.rows} rows, ${entry.sha256.slice(0, 16)}…`,
        }], 'restore');
      }
    }
  });
  reporter.bytesOut = statSync(plan.path).size;
  const result: RestoreResult = {
    snapshot: snapshot.id, into, rows: reporter.rowsDone,
    tables: entries.map((t) => ({ name: t.name, rows: t.rows, sha256: t.sha256 })),
  };
  reporter.completed({ snapshot: snapshot.id, into, tables: entries.length });
  return result;
}
