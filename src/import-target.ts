import * as fs from 'node:fs';
import * as path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { TableDigest } from './core/encoding.js';
import { IntegrityError, NotFoundError, ScriptoriumError } from './core/errors.js';
import { ProgressReporter } from './core/progress.js';
import { sqliteNotCarriedIntoPostgres, type DatabaseSchema, type TableSchema } from './core/schema.js';
import { schemaProblemOf, tableSchemaProblem } from './core/schema-check.js';
import { openAgeInput } from './codecs/age-input.js';
import type { DatabaseLocation, EngineTarget } from './engines/engine.js';
import { engineOf } from './engines/registry.js';
import { iterableSource } from './formats/byte-reader.js';
import { fileSource } from './formats/input.js';
import { readJson } from './formats/json-format.js';
import { checkEndCounts, type ImportItem } from './formats/format.js';
import { readNdjson } from './formats/ndjson-format.js';
import { readPostgresSql, type PostgresSqlItem } from './formats/postgres-sql-format.js';
import type { ImportOptions, ImportResult } from './import.js';
import { openInput } from './import.js';

/** The longest row the PostgreSQL target takes (joined from its pieces). */
const HELD_ROW_BYTES = 16 << 20;

/**
 * A long row that came in pieces (the readers stream rows from 4 MB on, for SQLite's loader), joined as
 * a batch of one row: the PostgreSQL target takes rows whole. Longer than HELD_ROW_BYTES it is refused
 * (COPY of a row in pieces is not built yet).
 */
async function heldRow(pieces: AsyncIterable<Buffer>, table: string, target: string): Promise<{ data: Buffer; rows: number }> {
  const parts: Buffer[] = [];
  let length = 0;
  for await (const piece of pieces) {
    length += piece.length;
    if (length > HELD_ROW_BYTES) {
      throw new ScriptoriumError('E_UNSUPPORTED', `import: table ${JSON.stringify(table)} has a row of more than 16 MB, which cannot be imported into ${target} yet`, {
        hint: 'Import it into SQLite, or leave the table out at export (--exclude-tables). Nothing was written to the target.',
      });
    }
    parts.push(Buffer.from(piece)); // a view of the reader's buffer, reused for the next piece
  }
  return { data: Buffer.concat(parts, length), rows: 1 };
}

const STATEMENT_KINDS = new Set(['schema', 'extension', 'type', 'sequence', 'partitioned-table', 'attach-partition', 'constraint', 'index', 'foreign-key', 'view', 'sequence-value', 'owned-by', 'comment']);

/** Why one table of an export cannot be used as it is, or undefined (the rest is checked as it is created). */
function tableProblem(t: unknown): string | undefined {
  const table = t as Record<string, unknown> | null;
  if (typeof table !== 'object' || table === null || typeof table.name !== 'string' || typeof table.sql !== 'string') return 'a table without a name or sql';
  if (!Array.isArray(table.columns) || table.columns.length === 0 || table.columns.some((c) => typeof (c as { name?: unknown })?.name !== 'string' || typeof (c as { type?: unknown }).type !== 'string')) return `table ${JSON.stringify(table.name)} has no list of named, typed columns`;
  if (!Array.isArray(table.primaryKey) || table.primaryKey.some((k) => typeof k !== 'string')) return `table ${JSON.stringify(table.name)} has no primaryKey list`;
  return undefined;
}

/** Why a PostgreSQL export's schema cannot be used as it is (the field named), or undefined. */
export function postgresSchemaProblem(schema: DatabaseSchema): string | undefined {
  const s = schema as unknown as Record<string, unknown>;
  if (!Array.isArray(s.tables)) return 'tables is not a list';
  const names = new Set<string>();
  for (const [i, t] of (s.tables as unknown[]).entries()) {
    const problem = tableProblem(t);
    if (problem !== undefined) return `tables[${i}]: ${problem}`;
    const name = (t as { name: string }).name;
    if (names.has(name)) return `table ${JSON.stringify(name)} is listed twice`;
    names.add(name);
  }
  const pg = s.postgres as Record<string, unknown> | undefined;
  if (typeof pg !== 'object' || pg === null) return 'postgres is missing';
  for (const phase of ['before', 'after'] as const) {
    if (!Array.isArray(pg[phase])) return `postgres.${phase} is not a list`;
    for (const [i, st] of (pg[phase] as unknown[]).entries()) {
      const x = st as Record<string, unknown> | null;
      if (typeof x !== 'object' || x === null || typeof x.sql !== 'string' || typeof x.name !== 'string' || !STATEMENT_KINDS.has(x.kind as string) || !Array.isArray(x.tables)) return `postgres.${phase}[${i}] is not a statement`;
    }
  }
  if (!Array.isArray(pg.notCarried) || pg.notCarried.some((n) => typeof n !== 'string')) return 'postgres.notCarried is not a list of strings';
  return undefined;
}

function editedFile(message: string): IntegrityError {
  return new IntegrityError('E_CORRUPT', message, { hint: 'The file is damaged or was edited; nothing was written to the target.' });
}

/**
 * Imports an ndjson or json export, or a PostgreSQL sql export, into a database whose engine has a
 * transactional target (PostgreSQL): one transaction, committed only after every table's rows match the file's digest and
 * read back as sent. On any failure the transaction is rolled back: the target is as it was.
 */
export async function importIntoEngine(file: string, location: DatabaseLocation, options: ImportOptions): Promise<ImportResult> {
  const progress = new ProgressReporter('import', options.onEvent);
  const engine = engineOf(location);
  let handle: fs.promises.FileHandle | undefined;
  const stream = options.stream ?? (file === '-' ? process.stdin : undefined);
  if (!stream) {
    try {
      handle = await fs.promises.open(file, 'r');
    } catch (err) {
      throw new NotFoundError(`import: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`, { hint: 'Check the path of the export file.', cause: err });
    }
  }
  let target: EngineTarget | undefined;
  try {
    const age = await openAgeInput(handle ? fileSource(handle) : iterableSource(stream!), options.decrypt ?? {});
    const { format, compression, reader } = await openInput(age.source);
    const script = format === 'sql';
    if (script && location.engine !== 'postgres') {
      throw new ScriptoriumError('E_UNSUPPORTED', `import: a sql export cannot be imported into ${location.display}`, { hint: 'Export with --format ndjson or json.' });
    }
    target = await engine.openTarget!(location, { allowLossy: options.allowLossy ?? false, ...(script ? { sqlScript: true } : {}) });
    progress.started({ source: file === '-' ? 'stdin' : path.basename(file), target: location.display, format });
    // A sql file is a PostgreSQL sql export (a SQLite one is refused by its head): read statement by statement.
    const items: AsyncGenerator<ImportItem | PostgresSqlItem> = format === 'ndjson' ? readNdjson(reader) : format === 'json' ? readJson(reader) : readPostgresSql(reader);
    let schema: DatabaseSchema | undefined;
    const created = new Set<string>();
    const digests = new Map<string, TableDigest>();
    let end: { tables?: number; rows?: number } | undefined;
    const create = async (table: TableSchema): Promise<void> => {
      if (created.has(table.name)) return;
      // An ndjson file's table lines come after its header: each is checked before anything uses it.
      // A sql script's tables were built by its reader from checked CREATE TABLE statements (columns from the catalog).
      const problem = script ? undefined : schema!.engine === 'postgres' ? tableProblem(table) : tableSchemaProblem(table as unknown as Record<string, unknown>);
      if (problem !== undefined) throw editedFile(`import: the file's schema: ${problem}`);
      if (schema!.engine === 'sqlite' && table.virtual) {
        throw new ScriptoriumError('E_UNSUPPORTED', `import: table ${JSON.stringify(table.name)} is a SQLite ${table.virtual.module} virtual table, which PostgreSQL has no counterpart of`, { hint: 'Export without it (--exclude-tables).' });
      }
      if (schema!.engine === 'sqlite' && table.rowidAlias) progress.notice(`table ${table.name} has no primary key: its SQLite rowid is carried as column ${table.rowidAlias}`);
      await target!.createTable(table);
      created.add(table.name);
    };
    let lastYield = Date.now();
    for await (const item of items) {
      switch (item.kind) {
        case 'schema': {
          schema = item.schema;
          const tablesFollow = format === 'ndjson';
          const problem = script ? undefined : schema.engine === 'postgres' ? postgresSchemaProblem(schema) : schemaProblemOf(schema, { tablesFollow });
          if (problem !== undefined) throw editedFile(`import: the file's schema: ${problem}`);
          if (schema.engine === 'sqlite') for (const note of sqliteNotCarriedIntoPostgres(schema)) progress.notice(note);
          for (const n of schema.postgres?.notCarried ?? []) progress.notice(`not carried (the source had it): ${n}`);
          await target.begin(schema);
          for (const table of schema.tables) await create(table);
          break;
        }
        case 'rows':
        case 'row-pieces': {
          const table = schema?.tables.find((t) => t.name === item.table);
          if (!table) throw editedFile(`import: rows for table ${JSON.stringify(item.table)}, which the file's schema does not list`);
          await create(table);
          const batch = item.kind === 'rows' ? item.batch : await heldRow(item.pieces, item.table, location.display);
          progress.rowsDone += await target.load(table, item.encoding, batch, 'line' in item ? item.line : undefined);
          progress.bytesIn = reader.bytesRead;
          progress.progress('rows', table.name);
          break;
        }
        case 'digest':
          digests.set(item.table, item.digest);
          break;
        case 'end':
          end = item;
          break;
        default:
          break; // the readers throw E_TRUNCATED themselves when the end is missing
      }
      if (Date.now() - lastYield > 50) {
        await yieldToLoop();
        lastYield = Date.now();
      }
    }
    if (!schema) throw editedFile('import: the file has no schema');
    const problem = script ? undefined : schema.engine === 'postgres' ? postgresSchemaProblem(schema) : schemaProblemOf(schema);
    if (problem !== undefined) throw editedFile(`import: the file's schema: ${problem}`);
    const tables: ImportResult['tables'] = [];
    progress.progress('verify', undefined, true);
    for (const table of schema.tables) {
      await create(table);
      const expected = digests.get(table.name);
      if (!expected) {
        throw new IntegrityError('E_TRUNCATED', `import: table ${JSON.stringify(table.name)} has no digest: the file is incomplete`, { hint: 'The export was cut short; nothing was written to the target.' });
      }
      tables.push({ name: table.name, ...(await target.verify(table, expected)) });
    }
    checkEndCounts(end, tables);
    for (const l of target.lossyValues?.() ?? []) {
      progress.notice(`lossy (--allow-lossy): table ${l.table} column ${l.column}: ${l.count} × ${l.what}; first in row ${l.row}: ${l.example}`);
    }
    progress.progress('indexes', undefined, true);
    await target.finish(schema);
    await target.commit();
    const rows = tables.reduce((a, t) => a + t.rows, 0);
    progress.rowsDone = rows;
    const result: ImportResult = {
      into: location.display,
      format,
      compression,
      ...(age.kind ? { encryption: age.kind } : {}),
      rows,
      bytes: reader.bytesRead,
      tables,
      durationMs: Date.now() - progress.startedAt,
    };
    progress.completed({ into: location.display, format, compression, tables: tables.length });
    return result;
  } catch (err) {
    await target?.abort();
    stream?.destroy();
    progress.failed(err);
    throw err;
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
