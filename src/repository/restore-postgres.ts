/**
 * `restore --into postgres://…` (and `verify --drill --into postgres://…`): a snapshot of a PostgreSQL
 * database loaded into another one in one transaction. The chunks' bytes go to `COPY … FROM STDIN` as
 * they were stored (PostgreSQL's COPY text); each table is read back right after its load (while its
 * pages are still in the server's cache; sequentially, in load order, with no sort:
 * postgres-copy-target.ts) and its digest compared with the manifest's (without the read-back, the
 * bytes sent are hashed instead). With `--jobs N`, N connections load at once: the main transaction's
 * own tables, and the large tables given to the others, each created, filled, read back and committed
 * in a staging schema, then moved in by the main transaction (StagingArea). Then come the keys,
 * indexes (with the server's parallel workers, --jobs), foreign keys and sequence values. Only then is
 * the transaction committed (or, for a drill, rolled back): a failed restore leaves the target as it
 * was, its staging schemas dropped.
 */
import { UsageError } from '../core/errors.js';
import type { DatabaseSchema, PostgresStatement, TableSchema } from '../core/schema.js';
import type { DatabaseLocation } from '../engines/engine.js';
import type { PostgresCopyTarget as CopyTarget, StagingArea } from '../engines/postgres/postgres-copy-target.js';
import { RepositoryIntegrityError } from './errors.js';
import type { Snapshot, TableEntry } from './manifest.js';
import type { OperationReporter } from './progress.js';
import { PackCache, type Repository } from './repository.js';
import { manifestSchemaProblems } from './schema-check.js';
import { packOrder, readTable } from './snapshot-reader.js';

/** The PostgreSQL restore's options (besides the repository's). */
export interface PostgresRestoreOptions {
  tables?: string[];
  /** Connections loading at once, and processes per index build (default: CPUs, at most 4). */
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
/**
 * A table of at least this many bytes of rows may be loaded on another connection, beside the main
 * one (StagingArea); smaller ones cost less on the main connection than a connection and a move.
 */
const STAGED_MIN_BYTES = 4 << 20;
/** Connections a restore loads on at most, whatever --jobs says. */
const MAX_CONNECTIONS = 8;
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
  const [{ PostgresCopyTarget, StagingArea }, { selectSchema }, { defaultJobs }, { quoteIdent }, { pgCode }] = await Promise.all([
    import('../engines/postgres/postgres-copy-target.js'),
    import('../engines/postgres/postgres-copy-source.js'),
    import('./postgres-backup-source.js'),
    import('../engines/postgres/sql-text.js'),
    import('../engines/postgres/connect.js'),
  ]);
  const schema: DatabaseSchema = selectSchema(snapshot.schema, options.tables, { ...location, display: `snapshot ${snapshot.id.slice(0, 8)}` });
  const entries = schema.tables.map((t) => snapshot.tables.find((e) => e.name === t.name)!);
  const tableOf = (s: DatabaseSchema, e: TableEntry): TableSchema => s.tables.find((t) => t.name === e.name)!;
  reporter.started({
    source: `${repo.location}#${snapshot.id.slice(0, 8)}`, target: location.display, format: 'repository',
    totalRows: entries.reduce((a, t) => a + t.rows, 0), tables: entries.length,
  });
  const jobs = options.jobs ?? (await defaultJobs());
  const target = await PostgresCopyTarget.open(location, { jobs, operation });
  const load = async (into: CopyTarget, cache: PackCache, table: TableSchema, entry: TableEntry): Promise<number> => {
    const loaded = await into.load(table, copyText(readTable(repo, cache, snapshot, entry, operation, options.readBack === false), entry, reporter));
    if (loaded !== entry.rows) throw mismatch(snapshot, entry, `the server took ${loaded} rows, the manifest says ${entry.rows}`, operation);
    // Before the indexes: nothing after the rows changes a value, and the pages are still cached.
    if (options.readBack !== false) {
      reporter.progress('verify', entry.name, true);
      await checkDigest(into, table, entry, snapshot, operation);
    }
    // Its own indexes and keys now, on its connection, beside the other connections' loads.
    for (const s of await into.tableStatements(table, naming.get(table.name) ?? [])) done.add(s);
    return loaded;
  };
  /** The statements after the rows, by the table they name first. */
  const naming = new Map<string, PostgresStatement[]>();
  for (const s of schema.postgres?.after ?? []) {
    const first = s.tables[0];
    if (first === undefined) continue;
    const list = naming.get(first);
    if (list) list.push(s);
    else naming.set(first, [s]);
  }
  /** The statements after the rows that were run table by table. */
  const done = new Set<PostgresStatement>();
  let staging: StagingArea | undefined;
  let rows = 0;
  try {
    await target.begin(schema);
    // `jobs` connections load at once: this one, and jobs - 1 that stage their tables. Each one's
    // share is planned before it starts (the largest first, each to the connection with the fewest
    // bytes so far; the small ones are this connection's), so it reads them through one cache that
    // knows their packs' order; this one may take over the end of another's share (takeOver below),
    // whose cache then reads ahead (a remote store: 2 packs) for tables it will not load.
    const shares = Array.from({ length: Math.max(1, Math.min(jobs, MAX_CONNECTIONS)) }, () => ({ bytes: 0, entries: [] as TableEntry[] }));
    for (const entry of [...entries].sort((a, b) => b.bytes - a.bytes)) {
      const least = entry.bytes < STAGED_MIN_BYTES ? shares[0]! : shares.reduce((a, b) => (b.bytes < a.bytes ? b : a));
      least.bytes += entry.bytes;
      least.entries.push(entry);
    }
    const others = shares.slice(1).filter((s) => s.entries.length > 0);
    if (others.length > 0) staging = await StagingArea.create(location, [...new Set(others.flatMap((s) => s.entries).map((e) => tableOf(schema, e).postgres!.schema))]);
    const staged = staging ? others.map((s) => s.entries) : [];
    await target.refuseExisting(staged.flat().map((e) => tableOf(schema, e)));
    const own = entries.filter((e) => !staged.some((share) => share.includes(e))); // in snapshot order
    // The connections build indexes at once: they share the 256 MB one would have.
    const maintenanceMb = Math.max(32, Math.floor(256 / (1 + staged.length)));
    if (staged.length > 0) await target.run(`SET LOCAL maintenance_work_mem = '${maintenanceMb}MB'`);
    // The first failure ends every connection (their transactions roll back) and, once all have
    // stopped, the restore.
    const open = new Set<CopyTarget>();
    let failed = false;
    const errors: unknown[] = [];
    const guard = (p: Promise<unknown>): Promise<unknown> => p.catch(async (err) => {
      errors.push(err);
      if (failed) return;
      failed = true;
      for (const into of open) await into.abort();
      await target.abort();
    });
    /**
     * Creates `list` in this transaction, then loads them through one cache that knows their packs'
     * order, or through `shared` (kept open: its close collects garbage, ~20 ms of this thread).
     */
    const loadHere = async (list: TableEntry[], shared?: PackCache): Promise<void> => {
      for (const entry of list) await target.createTable(tableOf(schema, entry));
      const cache = shared ?? new PackCache(repo, { recycle: true, lazyAbove: LAZY_PACK_BYTES, order: packOrder(snapshot, list) });
      try {
        for (const entry of list) {
          const loaded = await load(target, cache, tableOf(schema, entry), entry);
          rows += loaded; // after the await: the other connections add to it meanwhile
        }
      } finally {
        if (!shared) await cache.close();
      }
    };
    // Once its own tables are in, this transaction takes the tables no other connection has started
    // (the last of the largest remaining share first; the workers take theirs from the front), so
    // that it does not idle while a worker still has a queue: the shares are balanced by bytes, and
    // index builds are not (1M demo rows: this connection was idle 0.44 s of a 3.2 s restore while its
    // worker loaded, indexed and read back the last, small table).
    const bytesOf = (q: TableEntry[]): number => q.reduce((n, e) => n + e.bytes, 0);
    const takeOver = async (): Promise<void> => {
      let cache: PackCache | undefined; // one for all it takes (their order is not known in advance)
      try {
        for (;;) {
          if (failed) return;
          const share = staged.filter((q) => q.length > 0).sort((a, b) => bytesOf(b) - bytesOf(a))[0];
          if (!share) return;
          cache ??= new PackCache(repo, { recycle: true, lazyAbove: LAZY_PACK_BYTES });
          await loadHere([share.pop()!], cache);
        }
      } finally {
        await cache?.close();
      }
    };
    // This transaction's own tables and those it takes over; then, as the other connections queue
    // them, the moves of their staged tables and the tables they could not take.
    let main: Promise<unknown> = loadHere(own).then(takeOver);
    const onMain = (task: () => Promise<void>): void => {
      main = main.then(task);
      void guard(main); // a failure stops the others at once, not when they are done
    };
    const worker = async (share: TableEntry[]): Promise<void> => {
      const cache = new PackCache(repo, { recycle: true, lazyAbove: LAZY_PACK_BYTES, order: packOrder(snapshot, share) });
      try {
        // Taken from the front, one at a time: what is left may be taken over by this transaction.
        for (let entry = share.shift(); entry !== undefined; entry = share.shift()) {
          if (failed) return;
          const table = tableOf(schema, entry);
          let into: CopyTarget;
          try {
            into = await PostgresCopyTarget.open(location, { operation, maintenanceMb });
          } catch (err) {
            // The server takes no more connections (max_connections, the role's limit): this
            // transaction loads the rest of this share.
            if (pgCode(err) !== '53300') throw err;
            for (const rest of [entry, ...share.splice(0)]) onMain(() => loadHere([rest]));
            return;
          }
          open.add(into);
          try {
            if (failed) return; // while this one connected
            if (await into.createTable(table, { into: staging!.schemaOf(table) })) {
              const loaded = await load(into, cache, table, entry);
              await into.commit();
              // Moved when this transaction is free; this connection goes on meanwhile.
              onMain(async () => {
                if (await target.adopt(table, staging!.schemaOf(table))) rows += loaded;
                else await loadHere([entry]); // a name the server gave it is taken here
              });
            } else onMain(() => loadHere([entry])); // it needs an object only this transaction sees
          } finally {
            open.delete(into);
            await into.abort();
          }
        }
      } finally {
        await cache.close();
      }
    };
    await Promise.all([...staged.map((share) => guard(worker(share))), guard(main)]);
    await guard(main); // with what the workers queued
    if (errors.length > 0) throw errors[0];
    reporter.progress('indexes', undefined, true);
    await target.finish(schema, done);
    // Emptied by the moves (but for a table loaded here instead); dropped inside this transaction.
    for (const name of staging?.schemas ?? []) await target.run(`DROP SCHEMA ${quoteIdent(name)} CASCADE`);
    if (options.rollback) await target.abort();
    else await target.commit();
  } catch (err) {
    await target.abort();
    await dropStaging(staging, reporter, `this failed ${operation}`);
    throw err;
  }
  // A drill's moves were rolled back: the tables are in the staging schemas again.
  if (options.rollback) await dropStaging(staging, reporter, `this ${operation}`);
  reporter.completed({ snapshot: snapshot.id, into: location.display, tables: entries.length, ...(options.rollback ? { rolledBack: true } : {}) });
  return { snapshot: snapshot.id, into: location.display, rows, tables: entries.map((t) => ({ name: t.name, rows: t.rows, sha256: t.sha256 })) };
}

/** Drops a restore's staging schemas (once its transaction is over); says which could not be. */
async function dropStaging(staging: StagingArea | undefined, reporter: OperationReporter, of: string): Promise<void> {
  const left = (await staging?.drop()) ?? [];
  if (left.length > 0) reporter.notice(`the staging schema${left.length > 1 ? 's' : ''} ${left.join(', ')} of ${of} could not be dropped: drop ${left.length > 1 ? 'them' : 'it'} with DROP SCHEMA … CASCADE`);
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
