/**
 * An independent picture of a database, read with better-sqlite3 rather than through scriptorium's own
 * encodings, so that the round-trip tests do not trust the code they test: every cell with its storage
 * class and exact value, every schema row, and the metadata pragmas.
 */
import type Database from 'better-sqlite3';
import { withDb } from './helpers.js';

const qi = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/** One cell as a string that differs for any two different SQLite values (class and exact value). */
export function cellText(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'bigint') return `integer:${v}`;
  if (typeof v === 'number') return `real:${Object.is(v, -0) ? '-0' : String(v)}`;
  if (typeof v === 'string') return `text:${JSON.stringify(v)}`;
  if (Buffer.isBuffer(v)) return `blob:${v.toString('hex')}`;
  throw new TypeError(`unexpected value ${String(v)}`);
}

interface TableInfo {
  name: string;
  columns: string[];
  order: string[];
  rowid?: string;
}

export function tableInfos(db: Database.Database): TableInfo[] {
  const list = db.prepare("SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name").all() as { name: string; wr: bigint }[];
  return list.map(({ name, wr }) => {
    const info = db.prepare(`SELECT name, pk, hidden FROM pragma_table_xinfo(?)`).all(name) as { name: string; pk: bigint; hidden: bigint }[];
    const columns = info.filter((c) => c.hidden === 0n).map((c) => c.name);
    if (wr === 1n) {
      const order = info.filter((c) => c.pk > 0n).sort((a, b) => Number(a.pk - b.pk)).map((c) => qi(c.name));
      return { name, columns, order };
    }
    const taken = new Set(info.map((c) => c.name.toLowerCase()));
    const rowid = ['rowid', '_rowid_', 'oid'].find((n) => !taken.has(n))!;
    return { name, columns, order: [rowid], rowid };
  });
}

export interface Snapshot {
  schema: string[];
  userVersion: string;
  applicationId: string;
  sequence: string[];
  tables: Record<string, string[]>;
}

/** Every table's rows (in key order, rowid included where it is the identity), schema and metadata. */
export function snapshot(file: string): Snapshot {
  return withDb(file, (db) => {
    const tables: Record<string, string[]> = Object.create(null); // a table may be called "__proto__"
    for (const t of tableInfos(db)) {
      const cols = [...(t.rowid ? [t.rowid] : []), ...t.columns.map(qi)];
      const rows = db.prepare(`SELECT ${cols.join(', ')} FROM ${qi(t.name)} ORDER BY ${t.order.join(', ')}`).raw().all() as unknown[][];
      tables[t.name] = rows.map((r) => r.map(cellText).join(' | '));
    }
    const schema = (db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name").all() as Record<string, unknown>[]).map((r) => JSON.stringify(r));
    const hasSeq = db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence'").get();
    const sequence = hasSeq ? (db.prepare('SELECT name, seq FROM sqlite_sequence ORDER BY name').raw().all() as unknown[][]).map((r) => r.map(cellText).join(' | ')) : [];
    return {
      schema,
      userVersion: String(db.pragma('user_version', { simple: true })),
      applicationId: String(db.pragma('application_id', { simple: true })),
      sequence,
      tables,
    };
  });
}

/** `PRAGMA integrity_check` and `foreign_key_check` agree with the source's (a restored file must be sound). */
export function integrity(file: string): string {
  return withDb(file, (db) => String(db.pragma('integrity_check', { simple: true })));
}
