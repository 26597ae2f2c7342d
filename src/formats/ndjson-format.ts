import type { TableDigest } from '../core/encoding.js';
import { IntegrityError, ScriptoriumError } from '../core/errors.js';
import type { DatabaseSchema, TableSchema } from '../core/schema.js';
import type { ExportHeader, FormatWriter, ImportItem } from './format.js';
import { ByteReader } from './byte-reader.js';

/**
 * scriptorium's own typed, line-oriented format (docs/formats.md): a header line, then per table a
 * table line, its rows as JSON arrays, and a trailer with the row count and digest; an end line last.
 */
export const NDJSON_FORMAT_ID = 'scriptorium-ndjson';
export const NDJSON_VERSION = 1;

export class NdjsonWriter implements FormatWriter {
  readonly encoding = 'ndjson' as const;
  readonly batchRows = 2000;

  header(h: ExportHeader): string {
    const { tables: _tables, ...schema } = h.schema;
    return `${JSON.stringify({
      format: NDJSON_FORMAT_ID,
      version: NDJSON_VERSION,
      generator: h.generator,
      exported_at: h.exportedAt,
      source: h.source,
      ...schema,
      table_count: h.schema.tables.length,
      total_rows: h.totalRows,
    })}\n`;
  }

  tableStart(table: TableSchema, rows: number): string {
    return `${JSON.stringify({ table, rows })}\n`;
  }

  batchPrefix(): string {
    return '';
  }

  batchSuffix(): string {
    return '\n';
  }

  tableEnd(table: TableSchema, digest: TableDigest): string {
    return `${JSON.stringify({ end: table.name, rows: digest.rows, sha256: digest.sha256 })}\n`;
  }

  footer(h: ExportHeader): string {
    return `${JSON.stringify({ end_of_export: true, tables: h.schema.tables.length, rows: h.totalRows })}\n`;
  }
}

const OPEN_BRACKET = 0x5b;
/** A row line at least this long (it holds a large value) is handed to the loader in pieces. */
export const STREAMED_LINE_BYTES = 4 << 20;


/** Reads an ndjson export; rows pass through as byte ranges, parsed only by SQLite. */
export async function* readNdjson(reader: ByteReader, batchRows = 2000): AsyncGenerator<ImportItem> {
  reader.describe = () => `ndjson: line ${reader.line + 1}`;
  let line = await reader.readLine();
  if (line === null) throw truncated(reader.line, 'no header line');
  const header = parseControl(line, reader.line);
  if (header.format !== NDJSON_FORMAT_ID) {
    throw new ScriptoriumError('E_UNKNOWN_FORMAT', `ndjson: line 1 is not a scriptorium-ndjson header`, {
      hint: 'Only files written by `scriptorium export --format ndjson` can be imported as ndjson.',
    });
  }
  if (typeof header.version !== 'number' || header.version > NDJSON_VERSION) {
    throw new ScriptoriumError('E_VERSION', `ndjson: format version ${String(header.version)} is newer than this scriptorium reads (${NDJSON_VERSION})`, {
      hint: 'Upgrade scriptorium to import this file.',
    });
  }
  const tables: TableSchema[] = [];
  const schema: DatabaseSchema = {
    engine: header.engine as DatabaseSchema['engine'],
    engineVersion: String(header.engineVersion ?? ''),
    tables,
    objects: (header.objects ?? []) as DatabaseSchema['objects'],
    meta: (header.meta ?? {}) as DatabaseSchema['meta'],
    ...(header.postgres !== undefined ? { postgres: header.postgres as DatabaseSchema['postgres'] } : {}),
  };
  // Table schemas arrive one by one; the importer needs them all up front only to create tables,
  // which it can do lazily, so hand over the schema object and fill it as table lines arrive.
  yield { kind: 'schema', schema };
  let current: TableSchema | undefined;
  for (;;) {
    if (current) {
      // Rows: take whole lines straight from the buffer, as many as fit a batch.
      const run = await reader.readLines(OPEN_BRACKET, batchRows, STREAMED_LINE_BYTES);
      if (run === 'long') {
        // A row this long holds a large value: the loader takes it in pieces, never whole.
        const pieces = reader.linePieces();
        yield { kind: 'row-pieces', table: current.name, encoding: 'ndjson', pieces };
        for await (const _ of pieces); // whatever the loader left of the line (it reads it all)
        continue;
      }
      if (run) {
        yield { kind: 'rows', table: current.name, encoding: 'ndjson', batch: run };
        continue;
      }
    }
    line = await reader.readLine();
    if (line === null) throw truncated(reader.line, current ? `inside table ${JSON.stringify(current.name)}` : 'before the end line');
    if (line.length > 0 && line[0] === OPEN_BRACKET) throw corrupt(reader.line, 'a row outside any table');
    const control = parseControl(line, reader.line);
    if (control.table && typeof control.table === 'object') {
      if (current) throw corrupt(reader.line, `table ${JSON.stringify(current.name)} has no end line`);
      current = control.table as TableSchema;
      tables.push(current);
    } else if (typeof control.end === 'string') {
      if (!current || control.end !== current.name) throw corrupt(reader.line, `unexpected end of table ${JSON.stringify(control.end)}`);
      yield { kind: 'digest', table: current.name, encoding: 'ndjson', digest: { rows: Number(control.rows), sha256: String(control.sha256) } };
      current = undefined;
    } else if (control.end_of_export === true) {
      if (current) throw corrupt(reader.line, `table ${JSON.stringify(current.name)} has no end line`);
      yield { kind: 'end', tables: Number(control.tables), rows: Number(control.rows) };
      if ((await reader.readLine()) !== null) throw corrupt(reader.line, 'data after the end line');
      return;
    } else {
      throw corrupt(reader.line, 'unknown control line');
    }
  }
}

function parseControl(line: Buffer, lineNo: number): Record<string, unknown> {
  try {
    const value = JSON.parse(line.toString('utf8')) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw corrupt(lineNo, 'not a valid control line');
}

function corrupt(line: number, what: string): IntegrityError {
  return new IntegrityError('E_CORRUPT', `ndjson: line ${line}: ${what}`, {
    hint: 'The file is damaged or was edited; nothing was written to the target.',
  });
}

function truncated(line: number, where: string): IntegrityError {
  return new IntegrityError('E_TRUNCATED', `ndjson: the file ends at line ${line}, ${where}`, {
    hint: 'The export is incomplete (interrupted copy or download?); nothing was written to the target.',
  });
}
