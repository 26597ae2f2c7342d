/** Quoting for SQLite identifiers and literals. Every name that reaches SQL text passes through here. */

/** `"name"` with embedded double quotes doubled: safe for any table, column or index name. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `'text'` with embedded single quotes doubled. */
export function quoteText(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** A JSON path step for an object key: `$."key"`, with `"` and `\` escaped as SQLite's JSON paths accept. */
export function jsonKeyPath(key: string): string {
  return `$."${key.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}
