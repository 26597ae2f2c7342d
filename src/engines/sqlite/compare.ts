import { SqliteSource, tableDigest } from './sqlite-source.js';

/**
 * Compares two SQLite databases value for value: the schema (every CREATE statement), the metadata
 * (user_version, application_id, AUTOINCREMENT counters) and every table's rows through the exact
 * ndjson encoding. A virtual table's rows are read through it (an FTS5 table's with their rowids), and
 * an FTS5 table's configuration options count as its schema. Returns the differences; an empty list means identical.
 */
export function compareDatabases(a: string, b: string): string[] {
  const left = SqliteSource.open(a);
  const right = SqliteSource.open(b);
  try {
    const diffs: string[] = [];
    const objects = (s: SqliteSource): string[] =>
      [...s.schema.tables.map((t) => `table ${t.name}: ${t.sql}${t.virtual?.config ? ` with ${JSON.stringify(t.virtual.config)}` : ''}`), ...s.schema.objects.map((o) => `${o.type} ${o.name}: ${o.sql}`)].sort();
    const lo = objects(left);
    const ro = new Set(objects(right));
    for (const o of lo) if (!ro.has(o)) diffs.push(`schema: only in ${a}: ${o.slice(0, 80)}`);
    for (const o of ro) if (!lo.includes(o)) diffs.push(`schema: only in ${b}: ${o.slice(0, 80)}`);
    const lm = JSON.stringify(left.schema.meta);
    const rm = JSON.stringify(right.schema.meta);
    if (lm !== rm) diffs.push(`metadata differs: ${lm} vs ${rm}`);
    for (const table of left.schema.tables) {
      const other = right.schema.tables.find((t) => t.name === table.name);
      if (!other) continue;
      const digest = (s: SqliteSource): string => {
        const r = tableDigest(s.db, table, 'ndjson');
        return `${r.rows} rows, sha256 ${r.sha256}`;
      };
      const l = digest(left);
      const r = digest(right);
      if (l !== r) diffs.push(`table ${table.name}: ${l} vs ${r}`);
    }
    return diffs;
  } finally {
    left.close();
    right.close();
  }
}
