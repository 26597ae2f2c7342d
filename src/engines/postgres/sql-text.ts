/** A PostgreSQL identifier, always quoted (so case and Unicode survive). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `schema.name`, both quoted. */
export function qualified(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/**
 * A PostgreSQL string literal with standard_conforming_strings on (backslashes are plain characters);
 * PostgreSQL text cannot hold NUL, which callers refuse before.
 */
export function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
