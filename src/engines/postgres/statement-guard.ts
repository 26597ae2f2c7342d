import type { PostgresStatement } from '../../core/schema.js';

const IDENT = String.raw`"(?:[^"]|"")+"`;
const NAME = `${IDENT}(?:\\.${IDENT})?`;
/** An identifier as the server prints it: quoted only when it must be. */
const ANY_IDENT = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)`;
const ANY_NAME = `${ANY_IDENT}(?:\\.${ANY_IDENT})?`;
const LITERAL = String.raw`'(?:[^']|'')*'`;

/** The one shape each kind of statement must have (whole statement; expressions inside are the server's to parse). */
const SHAPES: Readonly<Record<PostgresStatement['kind'] | 'table', RegExp>> = {
  schema: new RegExp(`^CREATE SCHEMA IF NOT EXISTS ${IDENT}$`),
  extension: new RegExp(`^CREATE EXTENSION IF NOT EXISTS ${IDENT} WITH SCHEMA ${IDENT}$`),
  // A domain's check added NOT VALID is an ALTER DOMAIN after its CREATE DOMAIN (which takes no NOT VALID).
  type: new RegExp(`^(?:CREATE (?:TYPE ${NAME} AS (?:ENUM |RANGE )?\\(|DOMAIN ${NAME} AS )|ALTER DOMAIN ${NAME} ADD CONSTRAINT ${IDENT} CHECK \\(.*\\) NOT VALID$)`, 's'),
  sequence: new RegExp(`^CREATE SEQUENCE ${NAME} AS [a-z]+ INCREMENT BY -?\\d+ MINVALUE -?\\d+ MAXVALUE -?\\d+ START WITH -?\\d+ CACHE \\d+(?: NO)? CYCLE$`),
  table: new RegExp(`^CREATE (?:UNLOGGED )?TABLE ${NAME} \\(`),
  // A partitioned table (no rows of its own): its columns, then the partition key the server printed.
  'partitioned-table': new RegExp(`^CREATE TABLE ${NAME} \\(.*\\n\\) PARTITION BY (?:RANGE|LIST|HASH) \\([^\\n]*\\)$`, 's'),
  // A table (or partitioned table) made a partition of its parent, with the bound the server printed.
  'attach-partition': new RegExp(`^ALTER TABLE ONLY ${NAME} ATTACH PARTITION ${NAME} (?:FOR VALUES (?:FROM|IN|WITH) \\([^\\n]*\\)|DEFAULT)$`),
  // Without ONLY on a partitioned table: the key recurses into its partitions (ONLY is refused there).
  constraint: new RegExp(`^ALTER TABLE (?:ONLY )?${NAME} ADD CONSTRAINT ${IDENT} (?:PRIMARY KEY|UNIQUE|CHECK|EXCLUDE)\\b`),
  'foreign-key': new RegExp(`^ALTER TABLE (?:ONLY )?${NAME} ADD CONSTRAINT ${IDENT} FOREIGN KEY\\b`),
  index: new RegExp(`^CREATE (?:UNIQUE )?INDEX ${ANY_IDENT} ON (?:ONLY )?${ANY_NAME} USING `, 'u'),
  // With the options the server keeps for it (check_option, security_barrier, …; a materialized view's storage parameters).
  view: new RegExp(`^CREATE (?:MATERIALIZED )?VIEW ${NAME}(?: WITH \\((?:${ANY_IDENT}=(?:[A-Za-z0-9_.]+|${LITERAL}))(?:, ${ANY_IDENT}=(?:[A-Za-z0-9_.]+|${LITERAL}))*\\))? AS `, 'u'),
  'sequence-value': new RegExp(`^SELECT pg_catalog\\.setval\\((?:pg_catalog\\.pg_get_serial_sequence\\(${LITERAL}, ${LITERAL}\\)|${LITERAL}), -?\\d+, (?:true|false)\\)$`),
  'owned-by': new RegExp(`^ALTER SEQUENCE ${NAME} OWNED BY ${NAME}\\.${IDENT}$`),
  comment: new RegExp(`^COMMENT ON (?:SCHEMA|TABLE|COLUMN|VIEW|MATERIALIZED VIEW|SEQUENCE|TYPE|DOMAIN|INDEX|CONSTRAINT) .+ IS ${LITERAL}$`, 's'),
};

/**
 * Why a statement from a file may not run as its kind, or undefined when it may. Each statement runs
 * alone through the extended protocol (one statement per query, enforced by the server), so a
 * statement cannot smuggle a second one; its shape is checked here. What the expressions inside
 * evaluate (CHECK constraints, materialized views) runs with the target role's rights: docs/postgres.md.
 */
export function statementProblem(kind: PostgresStatement['kind'] | 'table', sql: unknown): string | undefined {
  if (typeof sql !== 'string') return 'not a string';
  const shape = SHAPES[kind];
  if (!shape) return `of an unknown kind ${JSON.stringify(kind)}`;
  if (!shape.test(sql)) return `not a ${kind} statement as scriptorium writes it`;
  // ALTER TABLE takes several actions, comma-separated: a constraint's is the only one it may have.
  if ((kind === 'constraint' || kind === 'foreign-key') && !oneAction(sql)) return `not a ${kind} statement as scriptorium writes it (more than one action, or quoting the server never prints)`;
  return undefined;
}

/**
 * Whether `sql` has no comma outside parentheses, string literals and quoted names, and none of the
 * quoting the server never prints in a constraint's definition (with standard_conforming_strings on):
 * E'' strings (a backslash there escapes a quote), dollar quotes, comments. A statement that has one
 * of those is refused rather than read the way the server might not.
 */
function oneAction(sql: string): boolean {
  let depth = 0;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (c === "'" || c === '"') {
      // To the closing quote; a doubled one is a quote inside.
      for (i++; i < sql.length; i++) {
        if (sql[i] === c) {
          if (sql[i + 1] === c) i++;
          else break;
        }
      }
      if (i >= sql.length) return false; // unterminated
      continue;
    }
    if ((c === 'E' || c === 'e') && sql[i + 1] === "'" && !/[A-Za-z0-9_$]/.test(sql[i - 1] ?? ' ')) return false;
    if (c === '$' && /[$A-Za-z_]/.test(sql[i + 1] ?? '') && !/[A-Za-z0-9_]/.test(sql[i - 1] ?? ' ')) return false;
    if ((c === '-' && sql[i + 1] === '-') || (c === '/' && sql[i + 1] === '*')) return false;
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth <= 0) return false;
    if (depth < 0) return false;
  }
  return depth === 0;
}
