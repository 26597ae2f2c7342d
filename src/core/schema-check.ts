/**
 * The shape of a database schema read from an untrusted place (a snapshot manifest, the header of an
 * ndjson or json export), checked before any of its names or flags is used: every field typed, names
 * unique as SQLite compares them, a primary key and rowid alias that agree with the columns. Schema SQL
 * text is only type-checked here: what it may contain is the schema guard's business
 * (engines/sqlite/schema-guard.ts).
 */
import { CARRIED_MODULES } from './schema.js';

const ROWID_NAMES = new Set(['rowid', '_rowid_', 'oid']);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** SQLite folds only ASCII letters when it compares names. */
function sqlName(name: string): string {
  return name.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isInt32(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

function show(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/**
 * The first problem of a DatabaseSchema read from an untrusted object (a manifest's `schema`, an
 * export's header), as `field: what is wrong` relative to the schema, or undefined.
 * SQL text is only type-checked. With `tablesFollow` (an ndjson header, whose tables come on lines of
 * their own), AUTOINCREMENT counters are not matched with the tables yet.
 */
export function schemaProblemOf(s: unknown, options: { tablesFollow?: boolean } = {}): string | undefined {
  if (!isObject(s)) return 'not an object';
  if (s.engine !== 'sqlite') return `engine: unsupported engine ${show(s.engine)}`;
  if (typeof s.engineVersion !== 'string') return 'engineVersion: not a string';
  if (!Array.isArray(s.tables)) return 'tables: not a list';
  if (!Array.isArray(s.objects)) return 'objects: not a list';
  const names = new Set<string>();
  let autoincrement = false;
  for (let i = 0; i < s.tables.length; i++) {
    const t: unknown = s.tables[i];
    if (!isObject(t) || typeof t.name !== 'string') return `tables[${i}]: not a table with a name`;
    const problem = tableSchemaProblem(t);
    if (problem) return `tables[${i}] (${show(t.name)}).${problem}`;
    if (names.has(sqlName(t.name))) return `tables[${i}] (${show(t.name)}): the name is used twice`;
    names.add(sqlName(t.name));
    if (/\bautoincrement\b/i.test(t.sql as string)) autoincrement = true;
  }
  for (let i = 0; i < s.objects.length; i++) {
    const o: unknown = s.objects[i];
    if (!isObject(o) || typeof o.name !== 'string' || typeof o.table !== 'string' || typeof o.sql !== 'string') {
      return `objects[${i}]: not a schema object with a name, table and sql`;
    }
    if (o.type !== 'index' && o.type !== 'view' && o.type !== 'trigger') return `objects[${i}] (${show(o.name)}).type: ${show(o.type)} is not index, view or trigger`;
    if (names.has(sqlName(o.name))) return `objects[${i}] (${show(o.name)}): the name is used twice`;
    names.add(sqlName(o.name));
  }
  const meta = s.meta;
  if (!isObject(meta)) return 'meta: not an object';
  if (meta.userVersion !== undefined && !isInt32(meta.userVersion)) return `meta.userVersion: ${show(meta.userVersion)} is not a 32-bit integer`;
  if (meta.applicationId !== undefined && !isInt32(meta.applicationId)) return `meta.applicationId: ${show(meta.applicationId)} is not a 32-bit integer`;
  if (meta.analyzed !== undefined && typeof meta.analyzed !== 'boolean') return `meta.analyzed: ${show(meta.analyzed)} is not a boolean`;
  if (meta.sequences !== undefined) {
    if (!isObject(meta.sequences)) return 'meta.sequences: not an object';
    const entries = Object.entries(meta.sequences);
    // sqlite_sequence exists only in a database with an AUTOINCREMENT table.
    if (entries.length > 0 && !autoincrement && !options.tablesFollow) return 'meta.sequences: AUTOINCREMENT counters, but no table uses AUTOINCREMENT';
    for (const [name, seq] of entries) {
      if (typeof seq !== 'string' || !/^-?[0-9]{1,19}$/.test(seq) || BigInt(seq) < INT64_MIN || BigInt(seq) > INT64_MAX) {
        return `meta.sequences[${show(name)}]: ${show(seq)} is not a 64-bit integer`;
      }
    }
  }
  return undefined;
}

/**
 * The first problem of one TableSchema from an untrusted object: typed fields, unique columns, a primary
 * key and rowid alias that agree with them (relative to the table, e.g. `primaryKey: ...`), or undefined.
 */
export function tableSchemaProblem(t: Record<string, unknown>): string | undefined {
  if (typeof t.name !== 'string') return 'name: not a string';
  if (typeof t.sql !== 'string') return 'sql: not a string';
  if (typeof t.withoutRowid !== 'boolean') return 'withoutRowid: not a boolean';
  if (!Array.isArray(t.columns) || t.columns.length === 0) return 'columns: not a list of columns';
  if (!isStringArray(t.primaryKey)) return 'primaryKey: not a list of names';
  const columns = new Map<string, number>();
  const byPk = new Map<number, string>();
  for (let i = 0; i < t.columns.length; i++) {
    const c: unknown = t.columns[i];
    if (!isObject(c) || typeof c.name !== 'string' || typeof c.type !== 'string' || typeof c.notNull !== 'boolean' || !isCount(c.pk)) {
      return `columns[${i}]: not a column (name, type, notNull, pk)`;
    }
    if (c.generated !== undefined && typeof c.generated !== 'boolean') return `columns[${i}].generated: not a boolean`;
    if (columns.has(sqlName(c.name))) return `columns[${i}] (${show(c.name)}): the name is used twice`;
    columns.set(sqlName(c.name), i);
    if (c.pk > 0) {
      if (c.pk > t.columns.length || byPk.has(c.pk)) return `columns[${i}].pk: ${c.pk} is not a free primary-key position`;
      byPk.set(c.pk, c.name);
    }
  }
  const pk = t.primaryKey;
  if (pk.length !== byPk.size || pk.some((name, i) => byPk.get(i + 1) !== name)) return 'primaryKey: does not match the columns\' pk positions';
  if (t.withoutRowid && pk.length === 0) return 'primaryKey: a WITHOUT ROWID table needs one';
  const virtual = (t as { virtual?: unknown }).virtual;
  if (virtual !== undefined) {
    const module = (virtual as { module?: unknown } | null)?.module;
    if (typeof virtual !== 'object' || virtual === null || !(CARRIED_MODULES as readonly unknown[]).includes(module)) return `virtual: ${show(virtual)} is not a carried virtual table`;
  }
  // The mark decides how rows are read back; the target checks the module against the statement too.
  const createsVirtual = /^\s*CREATE\s+VIRTUAL\s+TABLE\b/i.test(t.sql);
  if (createsVirtual !== (virtual !== undefined)) {
    return `virtual: marked as ${virtual === undefined ? 'a plain table' : 'a virtual table'}, but its statement creates ${createsVirtual ? 'a virtual table' : 'a plain table'}`;
  }
  // An R*Tree's first column is its rowid; every other rowid table without a key carries its rowid.
  const rtree = virtual !== undefined && (virtual as { module: string }).module !== 'fts5';
  const wantsAlias = !t.withoutRowid && pk.length === 0 && !rtree;
  if (t.rowidAlias === undefined) return wantsAlias ? 'rowidAlias: missing for a table without a primary key' : undefined;
  if (!wantsAlias) return 'rowidAlias: only a rowid table without a primary key has one';
  if (typeof t.rowidAlias !== 'string' || !ROWID_NAMES.has(t.rowidAlias) || columns.has(t.rowidAlias)) {
    return `rowidAlias: ${show(t.rowidAlias)} is not a free name of the rowid`;
  }
  return undefined;
}
