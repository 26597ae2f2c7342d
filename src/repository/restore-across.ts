/**
 * `restore` across engines: a SQLite snapshot into PostgreSQL, a PostgreSQL snapshot into SQLite.
 * The snapshot's chunks are read and checked as a same-engine restore reads them (every pack against
 * its name, every table against the manifest's digest: snapshot-reader.ts), and their rows are fed to
 * the other engine's import target, with import's type mapping and lossy check (docs/cross-engine.md):
 * every value that cannot be carried exactly is reported (E_LOSSY) before anything is committed, and
 * loaded converted only with `allowLossy`. Each table is read back and compared as import compares it.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { collectAll, GarbageGate } from '../core/memory.js';
import { ScriptoriumError } from '../core/errors.js';
import type { TargetPlan } from '../core/target-file.js';
import type { RowBatch } from '../core/encoding.js';
import { sqliteNotCarriedIntoPostgres, type DatabaseSchema, type TableSchema } from '../core/schema.js';
import { schemaProblemOf, tableSchemaProblem } from '../core/schema-check.js';
import type { DatabaseLocation, EngineTarget } from '../engines/engine.js';
import { engineOf } from '../engines/registry.js';
import { RepositoryIntegrityError } from './errors.js';
import { buildThenSwap } from './sqlite-swap.js';
import type { Snapshot, TableEntry } from './manifest.js';
import type { OperationReporter } from './progress.js';
import { PackCache, type Repository } from './repository.js';
import { manifestSchemaProblems } from './schema-check.js';
import { packOrder, readTable, type TableBatch } from './snapshot-reader.js';
import { selectTables, subsetSchema } from './source.js';

/** Options of a restore into the other engine. */
export interface AcrossOptions {
  tables?: string[];
  /** Load values that cannot be carried exactly, converted as docs/cross-engine.md says (each kind a notice). */
  allowLossy?: boolean;
  /** PostgreSQL: roll back at the end instead of committing (`verify --drill --into`). */
  rollback?: boolean;
}

/** What a restore across engines loaded. */
export interface AcrossResult {
  snapshot: string;
  into: string;
  rows: number;
  tables: Array<{ name: string; rows: number; sha256: string }>;
}

/** A pack body above this many bytes (one ending in a huge row's chunk) is read lazily. */
const LAZY_PACK_BYTES = 64 << 20;
/**
 * A chunk handed on in pieces (a row of a large value) is gathered into one batch up to this size for
 * the other engine's target, which takes whole rows; a larger one is refused.
 */
const MAX_GATHERED_BYTES = 256 << 20;

function damaged(snapshot: Snapshot, message: string, operation: string, table?: string): RepositoryIntegrityError {
  return new RepositoryIntegrityError([{ code: 'E_CORRUPT', snapshot: snapshot.id, ...(table ? { table } : {}), message }], operation);
}

/** A batch whole: one read in pieces (a huge row) gathered, up to {@link MAX_GATHERED_BYTES}. */
async function whole(batch: TableBatch, table: string, into: string): Promise<RowBatch> {
  if (!batch.pieces) return batch;
  const parts: Buffer[] = [];
  let bytes = 0;
  for await (const piece of batch.pieces) {
    bytes += piece.length;
    if (bytes > MAX_GATHERED_BYTES) {
      throw new ScriptoriumError('E_UNSUPPORTED', `restore: table ${JSON.stringify(table)} has a chunk of more than ${MAX_GATHERED_BYTES >> 20} MB (a row with a large value), which a restore into ${into} does not take yet`, {
        hint: 'Restore it into its own engine, or leave the table out (--tables). Nothing was written to the target.',
      });
    }
    parts.push(Buffer.from(piece));
  }
  const data = Buffer.concat(parts, bytes);
  // The pieces are the chunk's rows, each followed by its newline: a batch has none after its last row.
  return { data: data.subarray(0, Math.max(0, data.length - 1)), rows: batch.rows };
}

/** Says a target's error in the restore's words (the import target writes `import:`). */
function restated(err: unknown, operation: string): unknown {
  if (err instanceof ScriptoriumError && !(err instanceof RepositoryIntegrityError) && err.message.startsWith('import: ')) {
    const hint = err.hint?.replace('The file was changed or damaged after export', 'The snapshot does not hold what its manifest says');
    const again = new ScriptoriumError(err.code, `${operation}: ${err.message.slice('import: '.length)}`, { ...(hint ? { hint } : {}), cause: err });
    return again;
  }
  return err;
}

/**
 * Restores `snapshot`, of a SQLite database (rows as ndjson), into the PostgreSQL database at
 * `location` through PostgreSQL's import target: tables created in `public` with the mapped types,
 * rows by COPY, each table's rows compared with the manifest's digest and read back as sent, lossy
 * values refused before the commit (or, with `allowLossy`, loaded converted and said as notices),
 * then the primary keys, then COMMIT (or, for a drill, ROLLBACK).
 */
export async function restoreSqliteIntoPostgres(repo: Repository, snapshot: Snapshot, location: DatabaseLocation, options: AcrossOptions, reporter: OperationReporter): Promise<AcrossResult> {
  const operation = options.rollback ? 'verify --drill' : 'restore';
  const schemaProblems = manifestSchemaProblems(snapshot);
  if (schemaProblems.length > 0) throw new RepositoryIntegrityError(schemaProblems, operation);
  const shape = schemaProblemOf(snapshot.schema);
  if (shape !== undefined) throw damaged(snapshot, `its manifest's schema: ${shape}`, operation);
  const selected = selectTables(snapshot.schema, options.tables, `snapshot ${snapshot.id.slice(0, 8)}`);
  const schema: DatabaseSchema = structuredClone(subsetSchema(snapshot.schema, selected.map((t) => t.name)));
  const entries = schema.tables.map((t) => entryOf(snapshot, t, operation));
  for (const table of schema.tables) {
    if (table.virtual) {
      throw new ScriptoriumError('E_UNSUPPORTED', `${operation}: table ${JSON.stringify(table.name)} is a SQLite ${table.virtual.module} virtual table, which PostgreSQL has no counterpart of`, {
        hint: 'Leave it out (--tables), or restore the snapshot into a SQLite file. Nothing was written to the target.',
      });
    }
  }
  reporter.started({
    source: `${repo.location}#${snapshot.id.slice(0, 8)}`, target: location.display, format: 'repository',
    totalRows: entries.reduce((a, t) => a + t.rows, 0), tables: entries.length,
  });
  for (const note of sqliteNotCarriedIntoPostgres(schema)) reporter.notice(note);
  const target: EngineTarget = await engineOf(location).openTarget!(location, { allowLossy: options.allowLossy ?? false });
  const tables: AcrossResult['tables'] = [];
  try {
    await target.begin(schema);
    for (const table of schema.tables) {
      if (table.rowidAlias) reporter.notice(`table ${table.name} has no primary key: its SQLite rowid is carried as column ${table.rowidAlias}`);
      await target.createTable(table);
    }
    const cache = new PackCache(repo, { recycle: true, lazyAbove: LAZY_PACK_BYTES, order: packOrder(snapshot, entries) });
    // Each batch becomes COPY text and its read-back encoding in new buffers outside the V8 heap, which
    // does not see them pile up (peak RSS 119 MB at 100k rows without): collect as they go.
    const gate = new GarbageGate(512 << 10);
    try {
      for (const [i, entry] of entries.entries()) {
        const table = schema.tables[i]!;
        for await (const batch of readTable(repo, cache, snapshot, entry, operation, true)) {
          const rows = await whole(batch, table.name, location.display);
          gate.add(rows.data.length * 3);
          reporter.bytesIn += rows.data.length + 1;
          const loaded = await target.load(table, 'ndjson', rows);
          if (loaded !== batch.rows) throw damaged(snapshot, `a chunk of ${batch.rows} rows holds ${loaded}`, operation, entry.name);
          reporter.rowsDone += loaded;
          reporter.progress('rows', entry.name);
        }
      }
    } finally {
      await cache.close();
    }
    reporter.progress('verify', undefined, true);
    // The manifest's digest is over the rows' ndjson, as an export's: the target compares it as import does.
    for (const [i, entry] of entries.entries()) {
      const checked = await target.verify(schema.tables[i]!, { rows: entry.rows, sha256: entry.sha256 });
      tables.push({ name: entry.name, rows: checked.rows, sha256: entry.sha256 });
    }
    for (const l of target.lossyValues?.() ?? []) {
      reporter.notice(`lossy (--allow-lossy): table ${l.table} column ${l.column}: ${l.count} × ${l.what}; first in row ${l.row}: ${l.example}`);
    }
    reporter.progress('indexes', undefined, true);
    await target.finish(schema);
    if (options.rollback) await target.abort();
    else await target.commit();
  } catch (err) {
    await target.abort();
    throw restated(err, operation);
  }
  reporter.completed({ snapshot: snapshot.id, into: location.display, tables: entries.length, ...(options.rollback ? { rolledBack: true } : {}) });
  return { snapshot: snapshot.id, into: location.display, rows: reporter.rowsDone, tables };
}

function entryOf(snapshot: Snapshot, table: TableSchema, operation: string): TableEntry {
  const entry = snapshot.tables.find((e) => e.name === table.name);
  if (!entry) throw damaged(snapshot, `its manifest lists no rows for table ${JSON.stringify(table.name)}`, operation, table.name);
  return entry;
}

/** The value kind of a PostgreSQL column in SQLite, by its type as format_type prints it (from-postgres.ts's mapping). */
function kindOf(pgType: string): 'int' | 'float' | 'bool' | 'bytea' | 'text' {
  if (pgType === 'smallint' || pgType === 'integer' || pgType === 'bigint') return 'int';
  if (pgType === 'boolean') return 'bool';
  if (pgType === 'real' || pgType === 'double precision') return 'float';
  if (pgType === 'bytea') return 'bytea';
  return 'text'; // domains, arrays, numeric, dates, json…: their text form, in a TEXT column
}

/**
 * Restores `snapshot`, of a PostgreSQL database (rows as COPY text), into a new SQLite file (`plan`,
 * checked by the caller: `--force` to replace one) through SQLite's import of a PostgreSQL export:
 * the tables mapped as docs/cross-engine.md says (keyless tables refused), each chunk's COPY text
 * turned into ndjson as export does, loaded, and every table read back value by value against what
 * was loaded. -0.0 in a float column, which SQLite stores as 0.0, is E_LOSSY unless `allowLossy`.
 * The file is built under a temporary name and renamed over the target only at the end.
 */
export async function restorePostgresIntoSqlite(repo: Repository, snapshot: Snapshot, plan: TargetPlan, options: AcrossOptions, reporter: OperationReporter): Promise<AcrossResult> {
  const operation = 'restore';
  const schemaProblems = manifestSchemaProblems(snapshot);
  if (schemaProblems.length > 0) throw new RepositoryIntegrityError(schemaProblems, operation);
  const [{ selectSchema }, { postgresSchemaProblem }, { SqliteTarget }, { sqliteSchemaFromPostgres, sqliteTableFromPostgres, postgresStyleDigest, postgresDomains, baseTypeOf }, { NegativeZeroCheck }, { CopyTextEncoder }, { createdTableProblem }, { schemaProblem }, { lossyError }] = await Promise.all([
    import('../engines/postgres/postgres-copy-source.js'),
    import('../import-target.js'),
    import('../engines/sqlite/sqlite-target.js'),
    import('../engines/sqlite/from-postgres.js'),
    import('../engines/sqlite/negative-zero.js'),
    import('../engines/postgres/copy-out.js'),
    import('../engines/sqlite/created-table.js'),
    import('../engines/sqlite/schema-guard.js'),
    import('../import.js'),
  ]);
  const shape = postgresSchemaProblem(snapshot.schema);
  if (shape !== undefined) throw damaged(snapshot, `its manifest's schema: ${shape}`, operation);
  const into = plan.given;
  const schema: DatabaseSchema = structuredClone(selectSchema(snapshot.schema, options.tables, { engine: 'postgres', raw: '', display: `snapshot ${snapshot.id.slice(0, 8)}`, baseName: '' }));
  const entries = schema.tables.map((t) => entryOf(snapshot, t, operation));
  const domains = postgresDomains(schema);
  const kinds = schema.tables.map((t) => t.columns.map((c) => kindOf(baseTypeOf(String(c.type), domains))));
  const keyless = schema.tables.find((t) => t.primaryKey.length === 0);
  if (keyless) {
    // SQLite carries a keyless table's rowid in every row; a PostgreSQL snapshot's rows have none to give.
    throw new ScriptoriumError('E_UNSUPPORTED', `${operation}: table ${JSON.stringify(keyless.name)} of the PostgreSQL snapshot has no primary key, which a restore into SQLite does not take yet`, {
      hint: 'Leave it out (--tables), or restore the snapshot into PostgreSQL. Nothing was written to the target.',
    });
  }
  const notes = sqliteSchemaFromPostgres(schema);
  const booleans = schema.tables.map((t) => sqliteTableFromPostgres(t, domains));
  reporter.started({
    source: `${repo.location}#${snapshot.id.slice(0, 8)}`, target: into, format: 'repository',
    totalRows: entries.reduce((a, t) => a + t.rows, 0), tables: entries.length,
  });
  for (const note of notes) reporter.notice(note);
  await buildThenSwap(plan, operation, reporter, (path) => SqliteTarget.create(path), async (target) => {
    for (const table of schema.tables) {
      const problem = tableSchemaProblem(table as unknown as Record<string, unknown>) ?? schemaProblem({ type: 'table', name: table.name }, table.sql);
      if (problem !== undefined) throw damaged(snapshot, `table ${JSON.stringify(table.name)} cannot be made a SQLite table: ${problem}`, operation, table.name);
      target.createTables([table]);
      const differs = createdTableProblem(target.db, table);
      if (differs !== undefined) throw damaged(snapshot, differs, operation, table.name);
    }
    const checks = schema.tables.map((t) => new NegativeZeroCheck(t.name, t.columns.map((c) => c.name), t.columns.map((c) => c.type === 'REAL'), 'ndjson'));
    const held = schema.tables.map(() => createHash('sha256'));
    const cache = new PackCache(repo, { recycle: true, lazyAbove: LAZY_PACK_BYTES, order: packOrder(snapshot, entries) });
    const newline = Buffer.from('\n');
    try {
      for (const [i, entry] of entries.entries()) {
        const table = schema.tables[i]!;
        const encoder = new CopyTextEncoder(kinds[i]!, { keys: null, separator: '\n', batchRows: 2000, batchBytes: 1 << 20 });
        let loaded = 0;
        const load = (batches: RowBatch[]): void => {
          for (const b of batches) {
            held[i]!.update(checks[i]!.check(b.data));
            held[i]!.update(newline);
            loaded += target!.load(table, 'ndjson', b);
          }
        };
        // readTable checks every pack against its name and the table's COPY text against the manifest's digest.
        for await (const batch of readTable(repo, cache, snapshot, entry, operation, true)) {
          const rows = await whole(batch, table.name, into);
          reporter.bytesIn += rows.data.length + 1;
          try {
            load(encoder.push(rows.data));
            load(encoder.push(newline));
          } catch (err) {
            if (err instanceof ScriptoriumError) throw err;
            throw damaged(snapshot, `its COPY text does not fit the table: ${(err as Error).message}`, operation, entry.name);
          }
          reporter.rowsDone += batch.rows;
          reporter.progress('rows', entry.name);
        }
        let last: RowBatch | undefined;
        try {
          last = encoder.finish();
        } catch (err) {
          throw damaged(snapshot, (err as Error).message, operation, entry.name);
        }
        if (last) load([last]);
        if (loaded !== entry.rows) throw damaged(snapshot, `${loaded} rows loaded, the manifest says ${entry.rows}`, operation, entry.name);
        collectAll();
        target.endTable();
      }
    } finally {
      await cache.close();
    }
    const lossy = checks.flatMap((c) => c.lossy);
    if (lossy.length > 0 && !options.allowLossy) throw lossyError(lossy, into, operation);
    for (const l of lossy) reporter.notice(`lossy (--allow-lossy): table ${l.table} column ${l.column}: ${l.count} × ${l.what}; first in row ${l.row}: ${l.example}`);
    reporter.progress('indexes', undefined, true);
    target.endLoad();
    target.finish([], {});
    reporter.progress('verify', undefined, true);
    for (const [i, entry] of entries.entries()) {
      // What the table holds, in the row encoding it was loaded in: any value SQLite changed shows.
      const digest = postgresStyleDigest(target.db, schema.tables[i]!, booleans[i]!, 'ndjson');
      const sent = held[i]!.digest('hex');
      if (digest.rows !== entry.rows || digest.sha256 !== sent) {
        throw new RepositoryIntegrityError([{
          code: 'E_DIGEST_MISMATCH', snapshot: snapshot.id, table: entry.name,
          message: `the restored table reads back as ${digest.rows} rows with digest ${digest.sha256.slice(0, 16)}…, not as the ${entry.rows} rows loaded (${sent.slice(0, 16)}…): SQLite changed some value`,
        }], operation);
      }
    }
  });
  reporter.bytesOut = statSync(plan.path).size;
  reporter.completed({ snapshot: snapshot.id, into, tables: entries.length });
  return { snapshot: snapshot.id, into, rows: reporter.rowsDone, tables: entries.map((t) => ({ name: t.name, rows: t.rows, sha256: t.sha256 })) };
}
