import type { TableDigest } from '../core/encoding.js';
import type { TableSchema } from '../core/schema.js';
import type { ExportHeader, FormatWriter } from './format.js';
import { SQL_FORMAT_ID, SQL_VERSION } from './sql-format.js';

/** A double-quoted PostgreSQL identifier. */
function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * A PostgreSQL export as a plain SQL script for `psql -v ON_ERROR_STOP=1 -1 -f dump.sql`: the dump
 * session settings, one transaction, what comes before the tables, the tables, multi-row INSERTs of
 * literal values (500 rows each), then constraints, indexes, foreign keys, views, sequence values and
 * comments. It holds no psql meta-command (no `\connect`, no `COPY … FROM stdin` with its `\.`): a dump
 * is data, not a script that runs programs. `-- scriptorium:` comments carry the digests.
 */
export class PostgresSqlWriter implements FormatWriter {
  readonly encoding = 'sql' as const;
  readonly batchRows = 500;
  #after: string[] = [];

  header(h: ExportHeader): string {
    const pg = h.schema.postgres;
    this.#after = (pg?.after ?? []).map((s) => `${s.sql};`);
    const lines = [
      `-- ${SQL_FORMAT_ID} ${SQL_VERSION}: ${h.generator} export of ${h.source.replaceAll('\n', ' ')} at ${h.exportedAt}`,
      `-- PostgreSQL ${h.schema.engineVersion}; ${h.schema.tables.length} tables, ${h.totalRows} rows. Load with: psql -v ON_ERROR_STOP=1 -d new_db -f this-file.sql`,
      ...(pg?.notCarried ?? []).map((n) => `-- not carried: ${n.replaceAll('\n', ' ')}`),
      "SET client_encoding = 'UTF8';",
      'SET standard_conforming_strings = on;',
      "SET TimeZone = 'UTC';",
      'SET DateStyle = ISO;',
      'SET IntervalStyle = postgres;',
      "SELECT pg_catalog.set_config('search_path', '', false);",
      'BEGIN;',
      ...(pg?.before ?? []).map((s) => `${s.sql};`),
      ...h.schema.tables.map((t) => `${t.sql};`),
    ];
    return `${lines.join('\n')}\n`;
  }

  tableStart(table: TableSchema, rows: number): string {
    return `-- scriptorium:table ${JSON.stringify({ name: table.name, rows })}\n`;
  }

  batchPrefix(table: TableSchema): string {
    const pg = table.postgres!;
    // OVERRIDING SYSTEM VALUE: identity columns GENERATED ALWAYS take the dumped values.
    return `INSERT INTO ${ident(pg.schema)}.${ident(pg.table)} (${table.columns.map((c) => ident(c.name)).join(', ')}) OVERRIDING SYSTEM VALUE VALUES\n`;
  }

  batchSuffix(): string {
    return ';\n';
  }

  tableEnd(table: TableSchema, digest: TableDigest): string {
    return `-- scriptorium:digest ${JSON.stringify({ table: table.name, rows: digest.rows, sha256: digest.sha256 })}\n`;
  }

  footer(h: ExportHeader): string {
    return `${[...this.#after, 'COMMIT;', `-- scriptorium:end ${JSON.stringify({ tables: h.schema.tables.length, rows: h.totalRows })}`].join('\n')}\n`;
  }
}
