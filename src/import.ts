import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { withPrivateUmask } from './core/atomic-file.js';
import type { RowEncoding, TableDigest } from './core/encoding.js';
import { IntegrityError, NotFoundError, ScriptoriumError } from './core/errors.js';
import type { EventListener } from './core/events.js';
import { GarbageGate } from './core/memory.js';
import { ProgressReporter } from './core/progress.js';
import { checkTarget, commitTarget, discardTemp, isDiskFull, sweepStaleTemps, planError, tempFor } from './core/target-file.js';
import type { CarriedModule, DatabaseMeta, DatabaseSchema, SchemaObject, TableSchema } from './core/schema.js';
import { detectCodec, type CodecName } from './codecs/codec.js';
import { openAgeInput } from './codecs/age-input.js';
import type { AgeKeys, AgeKind } from './codecs/age-reader.js';
import type { EngineName } from './engines/engine.js';
import { resolveLocation } from './engines/registry.js';
import { quoteIdent } from './engines/sqlite/sql-text.js';
import { SqliteTarget } from './engines/sqlite/sqlite-target.js';
import { ByteReader, iterableSource, prefixedSource, readHead, type ByteSource } from './formats/byte-reader.js';
import { fileSource, gzipSource, zstdSource } from './formats/input.js';
import { checkEndCounts, type FormatName, type ImportItem } from './formats/format.js';
import { readJson } from './formats/json-format.js';
import { readNdjson } from './formats/ndjson-format.js';
import { readSql } from './formats/sql-format.js';
import { schemaProblem, type ClaimedObject } from './engines/sqlite/schema-guard.js';
import { virtualModule } from './engines/sqlite/sqlite-schema.js';
import { createdTableProblem } from './engines/sqlite/created-table.js';
import { postgresDomains, postgresStyleDigest, sqliteSchemaFromPostgres, sqliteTableFromPostgres } from './engines/sqlite/from-postgres.js';
import { describeLossyValues, NegativeZeroCheck } from './engines/sqlite/negative-zero.js';
import { ROW_SEPARATOR } from './core/encoding.js';
import type { LossyValues } from './engines/engine.js';
import { schemaProblemOf, tableSchemaProblem } from './core/schema-check.js';
import { literalsOnly, notLiteral } from './formats/sql-statements.js';

export interface ImportOptions {
  /**
   * The SQLite database to create (or, with `force`, replace), or a PostgreSQL database
   * (`postgres://…`, or with `engine: 'postgres'` the PG* variables) to load in one transaction.
   */
  into: string;
  /** The target's engine when its location does not say (see {@link resolveLocation}). */
  engine?: EngineName;
  /** Replace an existing non-empty target. */
  force?: boolean;
  /**
   * Across engines: load values that cannot be carried exactly (text in an INTEGER column, a BLOB in a
   * TEXT one, NUL in text, …), converted as docs/cross-engine.md says and reported as notices. Without
   * it every such value is reported (table, column, count, first example) as E_LOSSY and nothing is written.
   */
  allowLossy?: boolean;
  onEvent?: EventListener;
  /** Read from this stream instead of the file (the library form of `import -`). */
  stream?: Readable;
  /** Keys for an age-encrypted input (recognised by its header): identities, or a passphrase asked for when needed. */
  decrypt?: AgeKeys;
}

export interface ImportResult {
  into: string;
  format: FormatName;
  compression: CodecName;
  /** How the input was encrypted (an age file), when it was. */
  encryption?: AgeKind;
  rows: number;
  bytes: number;
  tables: { name: string; rows: number; sha256?: string; verified: boolean }[];
  durationMs: number;
}

/**
 * Imports an export file (json, ndjson or sql; plain, gzip or zstd, recognised from the content) into a
 * new SQLite database. The database is built beside the target and moved into place only after the load
 * has finished and every recorded digest matches the loaded rows; a failure leaves the target exactly
 * as it was and no temporary files behind.
 *
 * @example
 * await importFrom('backups/app.ndjson.zst', { into: 'restored.db' });
 */
export async function importFrom(file: string, options: ImportOptions): Promise<ImportResult> {
  const location = resolveLocation(options.into, options.engine);
  if (location.engine !== 'sqlite') {
    const { importIntoEngine } = await import('./import-target.js');
    return importIntoEngine(file, location, options);
  }
  const progress = new ProgressReporter('import', options.onEvent);
  const plan = checkTarget(options.into, {
    op: 'import',
    force: options.force ?? false,
    replaceEmpty: true,
    existsHint: 'Choose a new file, or pass --force to replace it (it is replaced only after the import succeeds).',
    database: true,
    sources: options.stream || file === '-' ? [] : [{ path: file, what: 'the file being imported' }],
  });
  let stream: Readable | undefined;
  let handle: fs.promises.FileHandle | undefined;
  if (options.stream) stream = options.stream;
  else if (file === '-') stream = process.stdin;
  else {
    try {
      handle = await fs.promises.open(file, 'r');
    } catch (err) {
      throw new NotFoundError(`import: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`, {
        hint: 'Check the path of the export file.',
        cause: err,
      });
    }
  }
  sweepStaleTemps(plan, (message, stale) => progress.notice(message, stale));
  const temp = tempFor(plan, 'import');
  let target: SqliteTarget | undefined;
  try {
    const age = await openAgeInput(handle ? fileSource(handle) : iterableSource(stream!), options.decrypt ?? {});
    const { format, compression, reader } = await openInput(age.source);
    progress.started({ source: file === '-' ? 'stdin' : path.basename(file), target: options.into, format });
    target = withPrivateUmask(() => SqliteTarget.create(temp)); // private from its first byte
    // sql tuples too long to hold come in pieces when the target's extension loads them that way.
    const items = format === 'ndjson' ? readNdjson(reader) : format === 'json' ? readJson(reader) : readSql(reader, { streamTuples: target.streamsPieces() });
    const load = await loadItems(items, target, progress, () => {
      progress.bytesIn = reader.bytesRead;
    });
    target.endLoad();
    progress.progress('verify', undefined, true);
    const tables = verify(target, load, options.allowLossy ?? false, progress, options.into);
    checkEndCounts(load.end, tables);
    progress.progress('indexes', undefined, true);
    target.finish(load.objects, load.meta);
    target.close();
    progress.progress('swap', undefined, true);
    commitTarget(plan, temp); // the replaced file's mode, owner and group; 0600 for a new one
    const rows = tables.reduce((a, t) => a + t.rows, 0);
    progress.rowsDone = rows;
    progress.bytesOut = fs.statSync(plan.path).size;
    const result: ImportResult = {
      into: options.into,
      format,
      compression,
      ...(age.kind ? { encryption: age.kind } : {}),
      rows,
      bytes: reader.bytesRead,
      tables,
      durationMs: Date.now() - progress.startedAt,
    };
    progress.completed({ into: options.into, format, compression, tables: tables.length });
    return result;
  } catch (caught) {
    try {
      target?.close();
    } catch {
      // the temporary goes anyway
    }
    discardTemp(temp);
    const err = planError(plan, caught, `import: writing ${options.into}`);
    stream?.destroy();
    progress.failed(err);
    throw err;
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * Looks at the first bytes to find the compression, then at the first decompressed bytes to find the
 * format; returns a reader positioned at the start of the content.
 */
export async function openInput(raw: ByteSource): Promise<{ format: FormatName; compression: CodecName; reader: ByteReader }> {
  const head = await readHead(raw, 4);
  const codec = detectCodec(head);
  const rest = prefixedSource(head, raw);
  const content = codec.name === 'zstd' ? await zstdSource(rest) : codec.name === 'gzip' ? await gzipSource(rest) : rest;
  const reader = new ByteReader(content);
  while (reader.view.length < 64 && (await reader.fill()));
  const text = reader.view.subarray(0, 64).toString('utf8').replace(/^\uFEFF/, '').trimStart();
  let format: FormatName;
  if (text.startsWith('{"format":"scriptorium-ndjson"')) format = 'ndjson';
  else if (text.startsWith('{')) format = 'json';
  else if (/^(--|\/\*|PRAGMA|BEGIN|CREATE|INSERT)/i.test(text)) format = 'sql';
  else {
    throw new ScriptoriumError('E_UNKNOWN_FORMAT', 'import: the input is not a json, ndjson or sql export', {
      hint: text.length === 0 ? 'The input is empty.' : 'Give a file written by scriptorium export or sqlite3 .dump (optionally gzip- or zstd-compressed).',
    });
  }
  return { format, compression: codec.name, reader };
}

interface LoadState {
  schema: DatabaseSchema | undefined;
  objects: SchemaObject[];
  meta: DatabaseMeta;
  digests: Map<string, { encoding: RowEncoding; digest: TableDigest }>;
  /** Set for a PostgreSQL export: each table's boolean columns (compared as false/true, loaded as 0/1). */
  fromPostgres?: Map<string, boolean[]>;
  /** For a PostgreSQL export: its domains' base types (postgresDomains). */
  pgDomains?: Map<string, string>;
  /** For a PostgreSQL export: each loaded table's file digest, read-back digest and -0.0 check. */
  fromPostgresRows?: Map<string, PostgresRows>;
  /** What the file says it holds (its end item). */
  end?: { tables?: number; rows?: number; digested?: boolean };
}

/**
 * The rows of one table of a PostgreSQL export on their way into SQLite: hashed as the file has them
 * (compared with the file's digest) and as the table will read back (a -0.0 as 0.0, compared with the
 * loaded table), and checked for values SQLite cannot hold exactly.
 */
interface PostgresRows {
  file: Hash;
  held: Hash;
  separator: string;
  check: NegativeZeroCheck;
}

function postgresRows(state: LoadState, table: TableSchema, encoding: RowEncoding): PostgresRows | undefined {
  if (!state.fromPostgres?.has(table.name) || encoding === 'sql') return undefined;
  state.fromPostgresRows ??= new Map();
  let rows = state.fromPostgresRows.get(table.name);
  if (!rows) {
    // sqliteTableFromPostgres made the float columns REAL.
    const floats = table.columns.map((c) => c.type === 'REAL');
    rows = { file: createHash('sha256'), held: createHash('sha256'), separator: ROW_SEPARATOR[encoding], check: new NegativeZeroCheck(table.name, table.columns.map((c) => c.name), floats, encoding) };
    state.fromPostgresRows.set(table.name, rows);
  }
  return rows;
}

async function* teePieces(pieces: AsyncIterable<Buffer>, rows: PostgresRows): AsyncGenerator<Buffer> {
  for await (const piece of pieces) {
    rows.file.update(piece);
    rows.held.update(piece); // a row this long is not looked into: a -0.0 in it is a digest mismatch, never silent
    yield piece;
  }
  rows.file.update(rows.separator);
  rows.held.update(rows.separator);
}

/**
 * Consecutive INSERTs into the same table and columns, merged into one VALUES list for the parser. The
 * lists are copied as they come (the reader's buffer is reused) into one buffer that is reused too.
 */
interface PendingInsert {
  table: TableSchema;
  columns: string[] | null;
  key: string | null;
  statements: number;
  bytes: number;
  line: number;
}

const MAX_PENDING_BYTES = 512 << 10;
const COMMA = 0x2c;

/** Feeds a format reader's items into the target. */
async function loadItems(items: AsyncGenerator<ImportItem>, target: SqliteTarget, progress: ProgressReporter, tick: () => void): Promise<LoadState> {
  const state: LoadState = { schema: undefined, objects: [], meta: {}, digests: new Map() };
  /** A table of a PostgreSQL export, made a SQLite one (once) before anything reads its description. */
  const adopt = (table: TableSchema): void => {
    if (state.fromPostgres && !state.fromPostgres.has(table.name) && table && typeof table === 'object' && Array.isArray(table.columns) && Array.isArray(table.primaryKey)) {
      state.fromPostgres.set(table.name, sqliteTableFromPostgres(table, state.pgDomains));
    }
  };
  const created = new Set<string>();
  const tables = new Map<string, TableSchema>();
  const declaredTables = new TableIndex();
  /** A sql script's CREATE TABLE statements by the table they create (the first one: IF NOT EXISTS may repeat it). */
  const createdBy = new Map<string, string>();
  const gate = new GarbageGate();
  let pending: PendingInsert | undefined;
  /** The long tuple being loaded in pieces, if any. */
  let streamed: { feed(piece: Buffer): void; end(): number } | undefined;
  let values: Buffer = Buffer.alloc(0);
  let lastYield = Date.now();

  const flush = (): void => {
    if (!pending) return;
    const p = pending;
    pending = undefined;
    const data = values.subarray(0, p.bytes);
    if (values.length > 4 * MAX_PENDING_BYTES) values = Buffer.alloc(0); // one huge statement: do not keep its memory
    try {
      progress.rowsDone += target.load(p.table, 'sql', { data, rows: -1 }, p.columns ?? p.table.columns.map((c) => c.name));
    } catch (err) {
      if (isDiskFull(err)) throw err; // not the statement's fault: reported as E_NO_SPACE
      throw notLiteral(p.line, p.table.name, (err as Error).message.replace(/^load [^:]*: /, ''));
    }
    gate.add(data.length);
  };

  /** The table rows of the file's schema go to, created on first use. */
  const rowsTable = (name: string): TableSchema => {
    let table = tables.get(name);
    if (!table) {
      table = state.schema ? declaredTables.get(state.schema.tables, name) : undefined;
      if (!table) throw new IntegrityError('E_CORRUPT', `import: rows for table ${JSON.stringify(name)}, which the file's schema does not list`);
      tables.set(name, table);
    }
    if (!created.has(table.name)) {
      adopt(table);
      createTable(target, table);
      created.add(table.name);
    }
    return table;
  };

  for await (const item of items) {
    if (item.kind !== 'insert') flush();
    switch (item.kind) {
      case 'schema':
        if (item.schema?.engine === 'postgres' && !state.fromPostgres) {
          // A PostgreSQL export: its tables become SQLite tables of the mapped types (docs/postgres.md).
          state.fromPostgres = new Map();
          state.pgDomains = postgresDomains(item.schema);
          for (const note of sqliteSchemaFromPostgres(item.schema)) progress.notice(note);
          for (const table of Array.isArray(item.schema.tables) ? item.schema.tables : []) adopt(table);
        }
        checkFileSchema(item.schema, item.schema.tables?.length === 0);
        state.schema = item.schema;
        state.objects = item.schema.objects;
        state.meta = item.schema.meta;
        break;
      case 'rows': {
        const table = rowsTable(item.table);
        const pgRows = postgresRows(state, table, item.encoding);
        if (pgRows) {
          const data = item.batch.data;
          pgRows.file.update(data);
          pgRows.held.update(item.batch.partial ? data : pgRows.check.check(data));
          if (!item.batch.partial) {
            pgRows.file.update(pgRows.separator);
            pgRows.held.update(pgRows.separator);
          }
        }
        progress.rowsDone += target.load(table, item.encoding, item.batch); // rows -1: counted by the parser
        gate.add(item.batch.data.length);
        break;
      }
      case 'row-pieces': {
        const table = rowsTable(item.table);
        const pgRows = postgresRows(state, table, item.encoding);
        progress.rowsDone += await target.loadPieces(table, item.encoding, pgRows ? teePieces(item.pieces, pgRows) : item.pieces);
        break;
      }
      case 'insert': {
        let table = tables.get(item.table);
        if (!table) {
          table = target.table(item.table, createdBy.get(item.table))!;
          tables.set(item.table, table);
        }
        const ncols = item.columns?.length ?? table.columns.length;
        if (!target.native(table, ncols)) {
          // Without the extension each piece runs as an INSERT of its own, after a strict literal check.
          const text = item.values.toString('utf8');
          if (!literalsOnly(text)) throw notLiteral(item.line, item.table);
          execAt(target, item.head + text, item.line);
          break;
        }
        if (item.partial || item.cont) {
          // A tuple too long to hold (readSql streams tuples for a target that loads them in pieces).
          try {
            if (!item.cont) {
              flush();
              streamed = target.beginPieces(table, 'sql', item.columns ?? table.columns.map((c) => c.name));
            }
            if (!streamed) throw new IntegrityError('E_CORRUPT', `sql: line ${item.line}: the rest of a tuple without its start`);
            streamed.feed(item.values);
            if (!item.partial) {
              const load = streamed;
              streamed = undefined;
              progress.rowsDone += load.end();
            }
          } catch (err) {
            if (isDiskFull(err) || err instanceof IntegrityError) throw err;
            throw notLiteral(item.line, table.name, (err as Error).message.replace(/^load [^:]*: /, ''));
          }
          break;
        }
        const key = item.columns?.join('\0') ?? null;
        if (pending && (pending.table !== table || pending.key !== key || pending.bytes > MAX_PENDING_BYTES)) flush();
        const length = item.values.length;
        if (!pending && length > MAX_PENDING_BYTES) {
          // A long piece (of a long INSERT) loads straight from the reader's buffer, not copied first.
          const kept = values;
          pending = { table, columns: item.columns, key, statements: 1, bytes: length, line: item.line };
          values = item.values;
          flush();
          values = kept;
          break;
        }
        pending ??= { table, columns: item.columns, key, statements: 0, bytes: 0, line: item.line };
        const need = pending.bytes + 1 + length;
        if (need > values.length) {
          const grown = Buffer.allocUnsafe(Math.max(need, 2 * values.length, MAX_PENDING_BYTES + (64 << 10)));
          values.copy(grown, 0, 0, pending.bytes);
          values = grown;
        }
        if (pending.statements++ > 0) values[pending.bytes++] = COMMA;
        pending.bytes += item.values.copy(values, pending.bytes);
        break;
      }
      case 'exec':
        // A sql script's CREATE TABLE (readSql has checked it); SqliteTarget checks it again.
        if (item.table !== undefined) {
          execAt(target, item.sql, item.line, item.table);
          if (!createdBy.has(item.table)) createdBy.set(item.table, item.sql);
        }
        else execAt(target, item.sql, item.line);
        break;
      case 'object':
        state.objects.push(item.object);
        break;
      case 'meta':
        state.meta = { ...state.meta, ...item.meta };
        break;
      case 'digest':
        checkDigest(item.table, item.digest);
        state.digests.set(item.table, { encoding: item.encoding, digest: item.digest });
        break;
      case 'end':
        state.end = item; // (readers throw E_TRUNCATED themselves when the end is missing)
        break;
    }
    tick();
    progress.progress('rows', item.kind === 'rows' || item.kind === 'insert' ? item.table : undefined);
    if (Date.now() - lastYield > 50) {
      await yieldToLoop();
      lastYield = Date.now();
    }
  }
  flush();
  // An ndjson file's tables arrive after its header: the schema is whole (names unique, counters of
  // AUTOINCREMENT tables) only now.
  for (const table of state.fromPostgres ? (state.schema?.tables ?? []) : []) adopt(table);
  if (state.schema) checkFileSchema(state.schema);
  // Tables with no rows still exist in the file's schema.
  for (const table of state.schema?.tables ?? []) {
    if (created.has(table.name)) continue;
    createTable(target, table);
  }
  for (const object of state.objects) checkSchemaSql({ type: object.type, name: object.name, table: object.table }, object.sql);
  return state;
}

function editedFile(message: string): IntegrityError {
  return new IntegrityError('E_CORRUPT', message, { hint: 'The file is damaged or was edited; nothing was written to the target.' });
}

/**
 * A json or ndjson file's schema is written by whoever wrote the file: its shape is checked
 * (core/schema-check.ts) before a name or flag of it is used, E_CORRUPT naming the field. (An ndjson
 * header holds no tables yet: each is checked as it is created, by {@link createTable}.)
 */
function checkFileSchema(schema: DatabaseSchema, tablesFollow = false): void {
  const problem = schemaProblemOf(schema, { tablesFollow });
  if (problem !== undefined) throw editedFile(`import: the file's schema: ${problem}`);
}

/**
 * Creates one table of the file's schema: its description is checked, then its CREATE statement
 * (schema-guard.ts), and what the statement made is compared with the description, which loads its rows.
 */
function createTable(target: SqliteTarget, table: TableSchema): void {
  const problem = tableSchemaProblem(table as unknown as Record<string, unknown>);
  if (problem !== undefined) throw editedFile(`import: the file's schema of table ${JSON.stringify(table.name)}: ${problem}`);
  checkSchemaSql({ type: 'table', name: table.name }, table.sql);
  target.createTables([table]);
  const differs = createdTableProblem(target.db, table);
  if (differs !== undefined) throw editedFile(`import: table ${JSON.stringify(table.name)}: ${differs}`);
}

/** A table's digest from the file: a row count and a SHA-256, as export writes them. */
function checkDigest(table: string, digest: TableDigest): void {
  const d = digest as unknown as Record<string, unknown> | null;
  if (typeof table !== 'string' || typeof d !== 'object' || d === null || !Number.isSafeInteger(d.rows) || (d.rows as number) < 0 || typeof d.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(d.sha256)) {
    throw editedFile(`import: the digest of table ${JSON.stringify(table)} is not a row count and a SHA-256: ${JSON.stringify(digest)?.slice(0, 80)}`);
  }
}

/**
 * json and ndjson files carry their schema as SQL text: it runs only if it is exactly the one CREATE
 * statement of the object it claims to be (schema-guard.ts), never anything else.
 */
function checkSchemaSql(claimed: ClaimedObject, sql: string): void {
  const problem = schemaProblem(claimed, sql);
  if (problem !== undefined) {
    const shown = typeof sql === 'string' ? `: ${sql.slice(0, 60).replace(/\s+/g, ' ')}` : '';
    throw new ScriptoriumError('E_UNSUPPORTED_SQL', `import: the schema of ${claimed.type} ${JSON.stringify(claimed.name)} is ${problem}${shown}`, {
      hint: 'import runs only the CREATE statements scriptorium writes; the file was edited or is not a scriptorium export. Nothing was written to the target.',
    });
  }
}

/**
 * Runs a statement the reader judged safe (an INSERT, or with `table` the CREATE TABLE of that table),
 * naming its line if SQLite refuses it.
 */
function execAt(target: SqliteTarget, sql: string, line: number, table?: string): void {
  try {
    if (table !== undefined) {
      // A script's CREATE VIRTUAL TABLE marks itself; its FTS5 options follow as INSERTs into it.
      const module = /^\s*CREATE\s+VIRTUAL\s+TABLE\b/i.test(sql) ? virtualModule(sql) : undefined;
      target.createTables([{ name: table, sql, ...(module ? { virtual: { module: module as CarriedModule } } : {}) }]);
    } else target.exec(sql);
  } catch (err) {
    throw new ScriptoriumError('E_CORRUPT', `sql: line ${line}: ${(err as Error).message}`, {
      hint: 'The statement is damaged or does not fit the table; nothing was written to the target.',
      cause: err,
    });
  }
}

/**
 * The first table of a list by name, as `tables.find((t) => t.name === name)` answers, in constant time:
 * a file's schema has one lookup per table, and a list search made tens of thousands of tables take
 * quadratic time. The list may grow between lookups (an ndjson file's tables arrive one by one); what
 * was added since the last lookup is indexed then.
 */
class TableIndex {
  readonly #byName = new Map<string, TableSchema>();
  #indexed = 0;
  #list: TableSchema[] | undefined;

  get(tables: TableSchema[], name: string): TableSchema | undefined {
    if (tables !== this.#list) {
      this.#list = tables;
      this.#indexed = 0;
      this.#byName.clear();
    }
    for (; this.#indexed < tables.length; this.#indexed++) {
      const t = tables[this.#indexed];
      if (t && typeof t === 'object' && !this.#byName.has(t.name)) this.#byName.set(t.name, t);
    }
    return this.#byName.get(name);
  }
}

/**
 * Compares every recorded digest with the loaded table; throws E_DIGEST_MISMATCH on the first
 * difference. A PostgreSQL export's values that SQLite cannot hold exactly (-0.0) throw E_LOSSY, all
 * of them listed, unless `allowLossy` (then each kind is a notice).
 */
function verify(target: SqliteTarget, load: LoadState, allowLossy: boolean, progress: ProgressReporter, into: string): ImportResult['tables'] {
  const schema = target.schema();
  const out: ImportResult['tables'] = [];
  const held = new Map<string, string>();
  for (const [name, rows] of load.fromPostgresRows ?? []) {
    const expected = load.digests.get(name);
    const file = rows.file.digest('hex');
    if (expected && file !== expected.digest.sha256) {
      throw new IntegrityError('E_DIGEST_MISMATCH', `import: table ${JSON.stringify(name)} does not match its digest (expected sha256 ${expected.digest.sha256.slice(0, 12)}…; the file has sha256 ${file.slice(0, 12)}…)`, {
        hint: 'The file was changed or damaged after export; nothing was written to the target.',
      });
    }
    held.set(name, rows.held.digest('hex'));
  }
  const lossy: LossyValues[] = [...(load.fromPostgresRows?.values() ?? [])].flatMap((r) => r.check.lossy);
  if (lossy.length > 0 && !allowLossy) throw lossyError(lossy, into, 'import');
  for (const l of lossy) progress.notice(`lossy (--allow-lossy): table ${l.table} column ${l.column}: ${l.count} × ${l.what}; first in row ${l.row}: ${l.example}`);
  const declaredTables = new TableIndex();
  for (const table of schema.tables) {
    // The file's own schema (ndjson/json) knows which tables carry their rowid.
    const declared = (load.schema ? declaredTables.get(load.schema.tables, table.name) : undefined) ?? table;
    const expected = load.digests.get(table.name);
    if (expected) {
      const booleans = load.fromPostgres?.get(table.name);
      // A PostgreSQL export's digests are over its own encoding (other float digits): compared value by value.
      const actual = booleans && expected.encoding !== 'sql' ? postgresStyleDigest(target.db, declared, booleans, expected.encoding) : target.digest(declared, expected.encoding);
      // A PostgreSQL export's table reads back as its rows were sent (-0.0 as 0.0); the file's own digest was compared above.
      const heldSha = held.get(table.name);
      if (heldSha !== undefined && actual.rows === expected.digest.rows && actual.sha256 === heldSha) {
        out.push({ name: table.name, rows: actual.rows, sha256: expected.digest.sha256, verified: true });
        continue;
      }
      if (actual.rows !== expected.digest.rows || actual.sha256 !== expected.digest.sha256) {
        throw new IntegrityError(
          'E_DIGEST_MISMATCH',
          `import: table ${JSON.stringify(table.name)} does not match its digest (expected ${expected.digest.rows} rows, sha256 ${expected.digest.sha256.slice(0, 12)}…; loaded ${actual.rows} rows, sha256 ${actual.sha256.slice(0, 12)}…)`,
          { hint: 'The file was changed or damaged after export; nothing was written to the target.' },
        );
      }
      out.push({ name: table.name, rows: actual.rows, sha256: actual.sha256, verified: true });
    } else {
      const rows = Number((target.db.prepare(`SELECT count(*) AS n FROM ${quoteIdent(table.name)}`).get() as { n: bigint }).n);
      out.push({ name: table.name, rows, verified: false });
    }
  }
  if (load.schema && load.digests.size < load.schema.tables.length) {
    const missing = load.schema.tables.find((t) => !load.digests.has(t.name));
    throw new IntegrityError('E_TRUNCATED', `import: table ${JSON.stringify(missing?.name)} has no digest: the file is incomplete`, {
      hint: 'The export was cut short; nothing was written to the target.',
    });
  }
  return out;
}

/** E_LOSSY: every value of a PostgreSQL source that SQLite cannot hold exactly, before anything is committed. */
export function lossyError(lossy: readonly LossyValues[], into: string, operation: string): ScriptoriumError {
  const values = lossy.reduce((a, l) => a + l.count, 0);
  return new ScriptoriumError('E_LOSSY', `${operation}: ${values} value${values === 1 ? '' : 's'} cannot be carried exactly into ${into}:\n${describeLossyValues(lossy)}`, {
    hint: 'Nothing was written to the target. Pass --allow-lossy to load them as docs/cross-engine.md says (each kind is listed above), or fix them in the source first.',
  });
}
