/**
 * The shape and internal consistency of a snapshot manifest, checked before any of its numbers, ids or
 * names is used: a manifest is written by whoever can write to the repository, so every field is typed,
 * every count and size is a non-negative safe integer, every range lies inside what the format allows,
 * and the table entries agree with the schema and with each other. Checks that need other objects (the
 * packs' real entry counts) are in snapshot-check.ts. Schema SQL text is only type-checked here: what it
 * may contain is the schema guard's business.
 */
import { schemaProblemOf } from '../core/schema-check.js';
import { postgresSchemaShapeProblem } from './postgres-manifest-check.js';
import { MAX_CHUNK_BYTES, MAX_PACK_ENTRIES } from './pack.js';

export { schemaProblemOf, tableSchemaProblem } from '../core/schema-check.js';

const HASH = /^[0-9a-f]{64}$/;
const REPOSITORY_ID = /^[0-9a-f]{32}$/;
/** The smallest row encoding: `[]` and its `\n` (every row of every chunk is at least that). */
const MIN_ROW_BYTES = 3;
/** The smallest row of PostgreSQL's COPY text: one empty value and its `\n`. */
const MIN_COPY_ROW_BYTES = 1;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
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
  if (m.version !== 1 && m.version !== 2) return `unsupported manifest version ${show(m.version)}`;
  if (typeof m.repository !== 'string' || !REPOSITORY_ID.test(m.repository)) return `repository: ${show(m.repository)} is not a repository id`;
  if (typeof m.time !== 'string' || !Number.isFinite(Date.parse(m.time))) return `time: ${show(m.time)} is not a time`;
  if (typeof m.host !== 'string') return 'host: not a string';
  if (typeof m.source !== 'string') return 'source: not a string';
  if (!isStringArray(m.tags)) return 'tags: not a list of strings';
  if (m.encoding !== 'ndjson' && !(m.encoding === 'pg-copy-text' && isObject(m.schema) && m.schema.engine === 'postgres')) return `encoding: unsupported row encoding ${show(m.encoding)}`;
  const packs = m.packs;
  if (!Array.isArray(packs)) return 'packs: not a list';
  const packSet = new Set<string>();
  for (let i = 0; i < packs.length; i++) {
    if (typeof packs[i] !== 'string' || !HASH.test(packs[i] as string)) return `packs[${i}]: ${show(packs[i])} is not a pack id`;
    if (packSet.has(packs[i] as string)) return `packs[${i}]: pack ${(packs[i] as string).slice(0, 16)} is listed twice`;
    packSet.add(packs[i] as string);
  }
  if (m.version === 2) {
    const problem = indexHintsProblem(m.index, m.packIndex, packs.length);
    if (problem) return problem;
  }
  const schemaProblem = isObject(m.schema) && m.schema.engine === 'postgres' ? postgresSchemaShapeProblem(m.schema) : schemaProblemOf(m.schema);
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
    const problem = tableProblem(t, packs.length, m.encoding === 'pg-copy-text' ? MIN_COPY_ROW_BYTES : MIN_ROW_BYTES);
    if (problem) return `${at}.${problem}`;
    sums.rows += t.rows as number;
  }
  for (const name of schemaNames) if (!names.has(name)) return `schema.tables: table ${show(name)} has no entry in tables`;
  return statsProblem(m.stats, sums);
}

function tableProblem(t: Record<string, unknown>, packCount: number, minRowBytes = MIN_ROW_BYTES): string | undefined {
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
  if (bytes < minRowBytes * rows) return `bytes: ${bytes} bytes cannot hold ${rows} rows`;
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
 * Format 2's hints of where each pack's fingerprints are: `index` lists index files (64 hex digits, each
 * once), `packIndex[i]` is the position in `index` of the file listing `packs[i]`, or -1.
 */
function indexHintsProblem(index: unknown, packIndex: unknown, packCount: number): string | undefined {
  if (!Array.isArray(index)) return 'index: not a list';
  const seen = new Set<string>();
  for (let i = 0; i < index.length; i++) {
    if (typeof index[i] !== 'string' || !HASH.test(index[i] as string)) return `index[${i}]: ${show(index[i])} is not an index file id`;
    if (seen.has(index[i] as string)) return `index[${i}]: index file ${(index[i] as string).slice(0, 16)} is listed twice`;
    seen.add(index[i] as string);
  }
  if (!Array.isArray(packIndex) || packIndex.length !== packCount) return 'packIndex: not a list as long as packs';
  for (let i = 0; i < packIndex.length; i++) {
    const v: unknown = packIndex[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < -1 || v >= index.length) return `packIndex[${i}]: ${show(v)} is not -1 or a position in index`;
  }
  return undefined;
}
