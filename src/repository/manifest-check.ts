/**
 * The shape and internal consistency of a snapshot manifest, checked before any of its numbers, ids or
 * names is used: a manifest is written by whoever can write to the repository, so every field is typed,
 * every count and size is a non-negative safe integer, every range lies inside what the format allows,
 * and the table entries agree with the schema and with each other. Checks that need other objects (the
 * packs' real entry counts) are in snapshot-check.ts. Schema SQL text is only type-checked here: what it
 * may contain is the schema guard's business.
 */
import { MAX_CHUNK_BYTES, MAX_PACK_ENTRIES } from './pack.js';
import { CARRIED_MODULES } from '../core/schema.js';

const HASH = /^[0-9a-f]{64}$/;
const REPOSITORY_ID = /^[0-9a-f]{32}$/;
/** The smallest row encoding: `[]` and its `\n` (every row of every chunk is at least that). */
const MIN_ROW_BYTES = 3;
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
 * The first problem of a parsed manifest, as `field: what is wrong` (e.g.
 * `tables[0] ("regs").chunks[3]: entries 5..9 of pack 1 lie beyond the 2³² a pack can hold`), or
 * undefined when it is well formed.
 */
export function manifestProblem(m: unknown): string | undefined {
  if (!isObject(m)) return 'not a JSON object';
  if (m.version !== 1) return `unsupported manifest version ${show(m.version)}`;
  if (typeof m.repository !== 'string' || !REPOSITORY_ID.test(m.repository)) return `repository: ${show(m.repository)} is not a repository id`;
  if (typeof m.time !== 'string' || !Number.isFinite(Date.parse(m.time))) return `time: ${show(m.time)} is not a time`;
  if (typeof m.host !== 'string') return 'host: not a string';
  if (typeof m.source !== 'string') return 'source: not a string';
  if (!isStringArray(m.tags)) return 'tags: not a list of strings';
  if (m.encoding !== 'ndjson') return `encoding: unsupported row encoding ${show(m.encoding)}`;
  const packs = m.packs;
  if (!Array.isArray(packs)) return 'packs: not a list';
  const packSet = new Set<string>();
  for (let i = 0; i < packs.length; i++) {
    if (typeof packs[i] !== 'string' || !HASH.test(packs[i] as string)) return `packs[${i}]: ${show(packs[i])} is not a pack id`;
    if (packSet.has(packs[i] as string)) return `packs[${i}]: pack ${(packs[i] as string).slice(0, 16)} is listed twice`;
    packSet.add(packs[i] as string);
  }
  const schemaProblem = schemaProblemOf(m.schema);
  if (schemaProblem) return `schema.${schemaProblem}`;
  const schema = m.schema as { tables: Array<{ name: string }> };
  const schemaNames = new Set(schema.tables.map((t) => t.name));
  if (!Array.isArray(m.tables)) return 'tables: not a list';
  const names = new Set<string>();
  const sums = { rows: 0 };
  for (let i = 0; i < m.tables.length; i++) {
    const t: unknown = m.tables[i];
    const where = `tables[${i}]`;
    if (!isObject(t) || typeof t.name !== 'string') return `${where}: not a table entry with a name`;
    const at = `${where} (${show(t.name)})`;
    if (names.has(t.name)) return `${at}: the table is listed twice`;
    names.add(t.name);
    if (!schemaNames.has(t.name)) return `${at}: the schema has no such table`;
    const problem = tableProblem(t, packs.length);
    if (problem) return `${at}.${problem}`;
    sums.rows += t.rows as number;
  }
  for (const name of schemaNames) if (!names.has(name)) return `schema.tables: table ${show(name)} has no entry in tables`;
  return statsProblem(m.stats, sums);
}

function tableProblem(t: Record<string, unknown>, packCount: number): string | undefined {
  for (const field of ['rows', 'bytes', 'chunkCount'] as const) {
    if (!isCount(t[field])) return `${field}: ${show(t[field])} is not a count`;
  }
  if (typeof t.sha256 !== 'string' || !HASH.test(t.sha256)) return `sha256: ${show(t.sha256)} is not a digest`;
  if (!Array.isArray(t.chunks)) return 'chunks: not a list';
  const rows = t.rows as number;
  const bytes = t.bytes as number;
  const chunkCount = t.chunkCount as number;
  let count = 0;
  for (let i = 0; i < t.chunks.length; i++) {
    const r: unknown = t.chunks[i];
    if (!Array.isArray(r) || r.length !== 3 || !r.every((n) => isCount(n))) return `chunks[${i}]: ${show(r)} is not a range [pack, first, count]`;
    const [p, first, n] = r as [number, number, number];
    if (p >= packCount) return `chunks[${i}]: pack ${p} does not exist (the manifest lists ${packCount} packs)`;
    if (n === 0) return `chunks[${i}]: an empty range`;
    if (first + n > MAX_PACK_ENTRIES) return `chunks[${i}]: entries ${first}..${first + n - 1} lie beyond the ${MAX_PACK_ENTRIES} a pack can hold`;
    count += n;
  }
  if (count !== chunkCount) return `chunkCount: ${chunkCount}, but the ranges hold ${count} chunks`;
  // Every chunk holds at least one row, and every row at least `[]\n`; no chunk is larger than the format allows.
  if (chunkCount > rows) return `rows: ${rows} rows cannot fill ${chunkCount} chunks`;
  if (rows > 0 && chunkCount === 0) return `chunks: ${rows} rows but no chunks`;
  if (bytes < MIN_ROW_BYTES * rows) return `bytes: ${bytes} bytes cannot hold ${rows} rows`;
  if (bytes > chunkCount * MAX_CHUNK_BYTES) return `bytes: ${bytes} bytes do not fit in ${chunkCount} chunks`;
  return undefined;
}

function statsProblem(stats: unknown, sums: { rows: number }): string | undefined {
  if (!isObject(stats)) return 'stats: not an object';
  for (const field of ['rows', 'bytes', 'chunks', 'newChunks', 'newChunkBytes', 'storedBytes', 'durationMs'] as const) {
    if (!isCount(stats[field])) return `stats.${field}: ${show(stats[field])} is not a count`;
  }
  // Only the row total is derived from the tables (by backup too); the other figures describe the backup run.
  if (stats.rows !== sums.rows) return `stats.rows: ${stats.rows as number}, but the tables add up to ${sums.rows}`;
  return undefined;
}

/**
 * The first problem of a DatabaseSchema read from an untrusted object (a manifest's `schema`; an
 * export's header could use it too), as `field: what is wrong` relative to the schema, or undefined.
 * SQL text is only type-checked.
 */
export function schemaProblemOf(s: unknown): string | undefined {
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
  if (meta.sequences !== undefined) {
    if (!isObject(meta.sequences)) return 'meta.sequences: not an object';
    const entries = Object.entries(meta.sequences);
    // sqlite_sequence exists only in a database with an AUTOINCREMENT table.
    if (entries.length > 0 && !autoincrement) return 'meta.sequences: AUTOINCREMENT counters, but no table uses AUTOINCREMENT';
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
