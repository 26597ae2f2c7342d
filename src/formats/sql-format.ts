import type { TableDigest } from '../core/encoding.js';
import { IntegrityError, ScriptoriumError } from '../core/errors.js';
import { rowColumns, type SchemaObject, type TableSchema } from '../core/schema.js';
import { quoteIdent, quoteText } from '../engines/sqlite/sql-text.js';
import type { ByteReader } from './byte-reader.js';
import type { ExportHeader, FormatWriter, ImportItem } from './format.js';
import { SqlSplitter } from './sql-splitter.js';
import { classifyStatement } from './sql-statements.js';

/**
 * A script that SQLite's own shell loads (`sqlite3 new.db < dump.sql`): one transaction, foreign keys
 * off, tables, multi-row INSERTs of 500 rows, then indexes, triggers and views, then the metadata.
 * `-- scriptorium:` comments carry each table's digest; SQLite ignores them.
 */
export const SQL_FORMAT_ID = 'scriptorium-sql';
export const SQL_VERSION = 1;

export class SqlWriter implements FormatWriter {
  readonly encoding = 'sql' as const;
  readonly batchRows = 500;
  #objects: SchemaObject[] = [];

  header(h: ExportHeader): string {
    this.#objects = h.schema.objects;
    const lines = [
      `-- ${SQL_FORMAT_ID} ${SQL_VERSION}: ${h.generator} export of ${h.source.replaceAll('\n', ' ')} at ${h.exportedAt}`,
      `-- SQLite ${h.schema.engineVersion}; ${h.schema.tables.length} tables, ${h.totalRows} rows. Load with: sqlite3 new.db < this-file.sql`,
      'PRAGMA foreign_keys=OFF;',
      'BEGIN TRANSACTION;',
      ...h.schema.tables.map((t) => `${t.sql};`),
    ];
    return `${lines.join('\n')}\n`;
  }

  tableStart(table: TableSchema, rows: number): string {
    return `-- scriptorium:table ${JSON.stringify({ name: table.name, rows })}\n`;
  }

  batchPrefix(table: TableSchema): string {
    return `INSERT INTO ${quoteIdent(table.name)}(${rowColumns(table).map(quoteIdent).join(',')}) VALUES\n`;
  }

  batchSuffix(): string {
    return ';\n';
  }

  tableEnd(table: TableSchema, digest: TableDigest): string {
    return `-- scriptorium:digest ${JSON.stringify({ table: table.name, rows: digest.rows, sha256: digest.sha256 })}\n`;
  }

  footer(h: ExportHeader): string {
    const lines: string[] = [];
    const seq = Object.entries(h.schema.meta.sequences ?? {});
    if (seq.length > 0) {
      lines.push('DELETE FROM sqlite_sequence;');
      for (const [name, value] of seq) lines.push(`INSERT INTO sqlite_sequence(name,seq) VALUES(${quoteText(name)},${BigInt(value)});`);
    }
    for (const o of this.#objects) lines.push(`${o.sql};`);
    lines.push(`PRAGMA user_version=${h.schema.meta.userVersion ?? 0};`);
    lines.push(`PRAGMA application_id=${h.schema.meta.applicationId ?? 0};`);
    lines.push('COMMIT;');
    lines.push(`-- scriptorium:end ${JSON.stringify({ tables: h.schema.tables.length, rows: h.totalRows })}`);
    return `${lines.join('\n')}\n`;
  }
}

/**
 * Reads a SQL script written by scriptorium or by `sqlite3 .dump`. Nothing in it is executed as given
 * unless it is one of the statements those tools write: CREATE TABLE/INDEX/VIEW/TRIGGER, INSERTs of
 * literal values, the sqlite_sequence rows, and a few harmless PRAGMAs. Anything else is refused with
 * its line number.
 */
export async function* readSql(reader: ByteReader): AsyncGenerator<ImportItem> {
  const splitter = new SqlSplitter();
  let began = false;
  let committed = false;
  let sawEnd = false;
  const meta: { userVersion?: number; applicationId?: number; sequences?: Record<string, string> } = {};
  const tables = new Set<string>();
  for (;;) {
    const more = await reader.fill();
    const view = reader.view;
    const n = more ? completeUtf8(view) : view.length;
    if (n > 0) {
      splitter.push(view.toString('utf8', 0, n));
      reader.skip(n);
    }
    for (const piece of splitter.drain()) {
      if (piece.comment !== undefined) {
        const m = /^-- scriptorium:(digest|end) (\{.*\})\s*$/.exec(piece.comment);
        if (m?.[1] === 'digest') {
          const d = JSON.parse(m[2]!) as { table: string; rows: number; sha256: string };
          yield { kind: 'digest', table: d.table, encoding: 'sql', digest: { rows: d.rows, sha256: d.sha256 } };
        } else if (m?.[1] === 'end') sawEnd = true;
        continue;
      }
      if (committed) throw unsupported(piece.line, 'statements after COMMIT');
      const st = classifyStatement(piece.text, piece.line, tables);
      switch (st.kind) {
        case 'begin':
          began = true;
          break;
        case 'commit':
          committed = true;
          break;
        case 'ignore':
          break;
        case 'create-table':
          tables.add(st.name);
          yield { kind: 'exec', sql: piece.text, line: piece.line, table: st.name };
          break;
        case 'insert':
          yield { kind: 'exec', sql: piece.text, line: piece.line, table: st.table };
          break;
        case 'object':
          yield { kind: 'object', object: st.object };
          break;
        case 'sequence':
          (meta.sequences ??= {})[st.name] = st.value;
          break;
        case 'pragma':
          if (st.name === 'user_version') meta.userVersion = st.value;
          else meta.applicationId = st.value;
          break;
      }
    }
    if (!more) break;
  }
  const rest = splitter.finish();
  if (rest) {
    throw new IntegrityError('E_TRUNCATED', `sql: the script ends inside a statement that starts at line ${rest.line}`, {
      hint: 'The file is incomplete (interrupted copy or download?); nothing was written to the target.',
    });
  }
  if (!began || !committed) {
    throw new IntegrityError('E_TRUNCATED', `sql: the script ${began ? 'has no COMMIT' : 'has no BEGIN TRANSACTION'}`, {
      hint: 'scriptorium and sqlite3 .dump both write one transaction; a script without its end is incomplete.',
    });
  }
  yield { kind: 'meta', meta };
  yield { kind: 'end' };
  void sawEnd;
}

/** Length of the prefix of `buf` that ends on a UTF-8 character boundary. */
function completeUtf8(buf: Buffer): number {
  let i = buf.length;
  let back = 0;
  while (i > 0 && back < 4 && (buf[i - 1]! & 0xc0) === 0x80) {
    i--;
    back++;
  }
  if (i === 0) return buf.length;
  const lead = buf[i - 1]!;
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return need === back + 1 || need === 1 ? buf.length : i - 1;
}

function unsupported(line: number, what: string): ScriptoriumError {
  return new ScriptoriumError('E_UNSUPPORTED_SQL', `sql: line ${line}: ${what}`, {
    hint: 'Only scripts written by scriptorium or sqlite3 .dump can be imported.',
  });
}
