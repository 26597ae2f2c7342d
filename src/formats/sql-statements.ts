import { ScriptoriumError } from '../core/errors.js';
import type { SchemaObject } from '../core/schema.js';
import { schemaProblem, type ClaimedObject } from '../engines/sqlite/schema-guard.js';

/** What one statement of an imported SQL script is, once judged safe. */
export type Statement =
  | { kind: 'begin' | 'commit' | 'ignore' }
  | { kind: 'create-table'; name: string }
  /** An INSERT: `head` is its text up to the VALUES list, `columns` its column list (null when it names none). */
  | { kind: 'insert'; table: string; columns: string[] | null; head: string }
  | { kind: 'object'; object: SchemaObject }
  | { kind: 'sequence'; name: string; value: string }
  | { kind: 'pragma'; name: 'user_version' | 'application_id'; value: number }
  /** ANALYZE (ours) or .dump's ANALYZE sqlite_schema before its statistics rows: the target runs ANALYZE at the end. */
  | { kind: 'analyze' };

const IDENT = String.raw`(?:"(?:[^"]|"")*"|\`(?:[^\`]|\`\`)*\`|\[[^\]]*\]|[A-Za-z_\u0080-\uffff][\w$\u0080-\uffff]*)`;
const INSERT = new RegExp(String.raw`^INSERT\s+INTO\s+(${IDENT})\s*(\(\s*${IDENT}(?:\s*,\s*${IDENT})*\s*\))?\s*VALUES\s*`, 'i');
const CREATE_TABLE = new RegExp(String.raw`^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(${IDENT})\s*\(`, 'i');
/** The virtual tables an import creates: exactly the modules scriptorium carries (CARRIED_MODULES). */
const CREATE_VIRTUAL = new RegExp(String.raw`^CREATE\s+VIRTUAL\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(${IDENT})\s+USING\s+(fts5|rtree|rtree_i32)\s*\(`, 'i');
const CREATE_OBJECT = new RegExp(
  String.raw`^CREATE\s+(UNIQUE\s+INDEX|INDEX|VIEW|TRIGGER)\s+(?:IF\s+NOT\s+EXISTS\s+)?(${IDENT})`,
  'i',
);
// A trigger may name its table as main.t (SQLite keeps that text as written).
const ON_TABLE = new RegExp(String.raw`\sON\s+(${IDENT})(?:\s*\.\s*(${IDENT}))?`, 'i');
const SEQUENCE = /^INSERT\s+INTO\s+"?sqlite_sequence"?\s*(?:\(\s*name\s*,\s*seq\s*\))?\s*VALUES\s*\(\s*'((?:[^']|'')*)'\s*,\s*(-?\d+)\s*\)\s*$/i;

/** Characters of a statement that are enough to judge it (the rest of an INSERT is its VALUES). */
export const HEAD_CHARS = 4096;

/** Characters an INSERT's head may take: 2000 column names of up to 64 characters, quoted, and more. */
export const INSERT_HEAD_CHARS = 256 << 10;

/** The unquoted name of an identifier token. */
export function unquoteIdent(token: string): string {
  const c = token[0];
  if (c === '"') return token.slice(1, -1).replaceAll('""', '"');
  if (c === '`') return token.slice(1, -1).replaceAll('``', '`');
  if (c === '[') return token.slice(1, -1);
  return token;
}

/**
 * Judges one statement. Safe means: schema DDL that runs no query, an INSERT of literal values into a
 * table this script created, or metadata scriptorium understands. Anything else throws
 * `E_UNSUPPORTED_SQL` naming the line.
 */
export function classifyStatement(sql: string, line: number, tables: ReadonlySet<string>): Statement {
  const head = sql.length > HEAD_CHARS ? sql.slice(0, HEAD_CHARS) : sql;
  if (/^BEGIN(?:\s+(?:DEFERRED|IMMEDIATE|EXCLUSIVE))?(?:\s+TRANSACTION)?\s*$/i.test(head)) return { kind: 'begin' };
  if (/^(?:COMMIT|END)(?:\s+TRANSACTION)?\s*$/i.test(head)) return { kind: 'commit' };
  if (/^PRAGMA\s+(?:foreign_keys|defer_foreign_keys)\s*=\s*\w+\s*$/i.test(head)) return { kind: 'ignore' };
  const pragma = /^PRAGMA\s+(user_version|application_id)\s*=\s*(-?\d+)\s*$/i.exec(head);
  if (pragma) return { kind: 'pragma', name: pragma[1]!.toLowerCase() as 'user_version', value: Number(pragma[2]) };
  // sqlite3 .dump writes optimizer statistics after ANALYZE sqlite_schema; they are rebuilt by ANALYZE
  // once the rows and indexes are in (meta.analyzed), not restored; our own exports end with ANALYZE.
  if (/^ANALYZE(?:\s+(?:sqlite_schema|sqlite_master))?\s*$/i.test(head)) return { kind: 'analyze' };
  if (/^INSERT\s+INTO\s+"?sqlite_stat[1-4]"?\s/i.test(head)) return { kind: 'ignore' };
  if (/^DELETE\s+FROM\s+"?sqlite_sequence"?\s*$/i.test(head)) return { kind: 'ignore' };
  const seq = SEQUENCE.exec(head);
  if (seq) return { kind: 'sequence', name: seq[1]!.replaceAll("''", "'"), value: seq[2]! };

  // The column list of an INSERT into a wide table (up to 2000 quoted names) is longer than any other head.
  const insert = INSERT.exec(head) ?? (sql.length > HEAD_CHARS && /^INSERT\s/i.test(head) ? INSERT.exec(sql.slice(0, INSERT_HEAD_CHARS)) : null);
  if (insert) {
    const table = unquoteIdent(insert[1]!);
    if (!tables.has(table)) throw refuse(line, `INSERT into ${insert[1]}, a table this script did not create`);
    // The VALUES list is judged later: by the extension's parser, or by literalsOnly() before exec.
    const columns = insert[2] ? [...insert[2].slice(1, -1).matchAll(new RegExp(IDENT, 'g'))].map((m) => unquoteIdent(m[0])) : null;
    return { kind: 'insert', table, columns, head: insert[0] };
  }
  const create = CREATE_TABLE.exec(head) ?? CREATE_VIRTUAL.exec(head);
  if (create) {
    const name = unquoteIdent(create[1]!);
    plainCreate({ type: 'table', name }, sql, line);
    return { kind: 'create-table', name };
  }
  if (/^CREATE\s+VIRTUAL\s+TABLE\s/i.test(head)) {
    throw refuse(line, `CREATE VIRTUAL TABLE of a module other than fts5, rtree and rtree_i32: ${head.slice(0, 60).replace(/\s+/g, ' ')}`);
  }
  const object = CREATE_OBJECT.exec(head);
  if (object) {
    const word = object[1]!.toUpperCase();
    const type = word.endsWith('INDEX') ? 'index' : word === 'VIEW' ? 'view' : 'trigger';
    const name = unquoteIdent(object[2]!);
    const on = type === 'view' ? undefined : ON_TABLE.exec(head.slice(object[0].length));
    const table = on ? unquoteIdent(on[2] ?? on[1]!) : name;
    plainCreate({ type, name, table }, sql, line);
    return { kind: 'object', object: { type, name, table, sql } };
  }
  if (/^PRAGMA\s+writable_schema/i.test(head)) {
    throw refuse(line, 'PRAGMA writable_schema (sqlite3 .dump writes it for virtual tables, whose shadow tables it copies as they are; export the database with scriptorium export --format sql, which carries FTS5 and R*Tree tables)');
  }
  throw refuse(line, `unsupported statement: ${head.slice(0, 60).replace(/\s+/g, ' ')}${head.length > 60 ? '…' : ''}`);
}

/**
 * True when a VALUES list holds nothing but literals: numbers, strings, X'' blobs, NULL, and the
 * expressions the two writers use for awkward text (CAST(X'..' AS TEXT), replace(..., char(10)),
 * unistr('...')). Function calls, subqueries, names and comments are all refused.
 */
export function literalsOnly(values: string): boolean {
  const noStrings = values.replace(/'[^']*'/g, ' ');
  if (noStrings.includes('--')) return false;
  const noNumbers = noStrings.replace(/(?<![\w.])(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![\w.])/g, ' ');
  const noWords = noNumbers.replace(/\b(?:NULL|X|CAST|AS|TEXT|replace|char|unistr)\b/gi, ' ');
  return /^[\s(),+-]*$/.test(noWords);
}

/** The error for an INSERT whose VALUES hold something other than literals. */
export function notLiteral(line: number, table: string, detail?: string): ScriptoriumError {
  return refuse(line, `INSERT into ${JSON.stringify(table)} with something other than literal values${detail ? ` (${detail})` : ''}`);
}

/** Refuses a CREATE that is not exactly the plain CREATE of the object it names (schema-guard.ts). */
function plainCreate(claimed: ClaimedObject, sql: string, line: number): void {
  const problem = schemaProblem(claimed, sql);
  if (problem !== undefined) throw refuse(line, `the CREATE of ${claimed.type} ${JSON.stringify(claimed.name)} is ${problem}`);
}

function refuse(line: number, what: string): ScriptoriumError {
  return new ScriptoriumError('E_UNSUPPORTED_SQL', `sql: line ${line}: ${what}`, {
    hint: 'import runs only the statements scriptorium and sqlite3 .dump write; nothing was written to the target.',
  });
}
