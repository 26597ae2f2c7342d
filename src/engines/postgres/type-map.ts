/**
 * The PostgreSQL type a SQLite column becomes, by SQLite's own affinity rules (docs/postgres.md):
 * INT → bigint; CHAR, CLOB, TEXT → text; BLOB → bytea; REAL, FLOA, DOUB → double precision; BOOL →
 * boolean; DATE, TIME → text (SQLite keeps them as text); other NUMERIC → numeric; no type → text.
 */
export function sqliteColumnType(declared: string): string {
  const t = declared.toUpperCase();
  if (t.includes('INT')) return 'bigint';
  if (t.includes('CHAR') || t.includes('CLOB') || t.includes('TEXT')) return 'text';
  if (t.includes('BLOB')) return 'bytea';
  if (t.includes('REAL') || t.includes('FLOA') || t.includes('DOUB')) return 'double precision';
  if (t.includes('BOOL')) return 'boolean';
  if (t.includes('DATE') || t.includes('TIME')) return 'text';
  if (t.trim() === '') return 'text';
  return 'numeric';
}
