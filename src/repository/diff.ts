/**
 * `diff`: what changed between two snapshots, per table. Chunks shared by both are unchanged by
 * construction; only the chunks unique to either side are read, and their rows compared by identity
 * (the leading key values the chunker uses).
 */
import type { EventListener } from '../core/events.js';
import { identityValues, keyEndOf } from './chunker.js';
import type { Snapshot, TableEntry } from './manifest.js';
import { OperationReporter } from './progress.js';
import { IntegrityError } from '../core/errors.js';
import { checkSnapshot } from './snapshot-check.js';
import { packBufferBytes } from './pack.js';
import { PackCache, withRepository, type OpenOptions, type Repository, type RepositoryLocation } from './repository.js';

export interface TableDiff {
  name: string;
  status: 'added' | 'removed' | 'changed' | 'unchanged';
  rowsBefore: number;
  rowsAfter: number;
  rowsAdded: number;
  rowsRemoved: number;
  rowsChanged: number;
  chunksAdded: number;
  chunksRemoved: number;
  chunksShared: number;
  schemaChanged: boolean;
}

export interface SnapshotDiff {
  a: string;
  b: string;
  tables: TableDiff[];
}

export interface DiffOptions extends OpenOptions {
  onEvent?: EventListener;
  lockWaitMs?: number;
}

/**
 * Compares snapshot `a` with snapshot `b` (ids, prefixes or `latest`).
 *
 * @example
 * ```ts
 * const { tables } = await diff('1a2b', 'latest', '/mnt/nas/backups');
 * ```
 */
export async function diff(a: string, b: string, repository: RepositoryLocation | Repository, options: DiffOptions = {}): Promise<SnapshotDiff> {
  const reporter = new OperationReporter('diff', options.onEvent);
  return reporter.run(() =>
    withRepository(repository, options, async (repo) => {
      const lock = await repo.lock('shared', 'diff', options.lockWaitMs ?? 60_000);
      try {
        const [sa, sb] = [await repo.resolve(a), await repo.resolve(b)];
        // Every range is checked against its pack before the chunk sets below are built from the counts.
        await checkSnapshot(repo, sa, 'diff', { openUnindexed: true });
        if (sb.id !== sa.id) await checkSnapshot(repo, sb, 'diff', { openUnindexed: true });
        reporter.started({ source: sa.id, target: sb.id });
        // Not pooled, read in no order known ahead: the least recently used of three packs' worth goes.
        const cache = new PackCache(repo, { budgetBytes: 3 * packBufferBytes(repo.config.packBytes) });
        const names = [...new Set([...sa.tables.map((t) => t.name), ...sb.tables.map((t) => t.name)])];
        const tables: TableDiff[] = [];
        const lookup = { a: byName(sa.tables), b: byName(sb.tables), schemaA: byName(sa.schema.tables), schemaB: byName(sb.schema.tables) };
        for (const name of names) tables.push(await diffTable(cache, sa, sb, name, lookup));
        reporter.completed({ a: sa.id, b: sb.id, changed: tables.filter((t) => t.status !== 'unchanged').length });
        return { a: sa.id, b: sb.id, tables };
      } finally {
        await lock.release();
      }
    }),
  );
}

/** The first of each name, as `list.find((t) => t.name === name)` answers (one search per table was quadratic). */
function byName<T extends { name: string }>(list: T[]): Map<string, T> {
  const map = new Map<string, T>();
  for (const t of list) if (!map.has(t.name)) map.set(t.name, t);
  return map;
}

interface Lookup {
  a: Map<string, Snapshot['tables'][number]>;
  b: Map<string, Snapshot['tables'][number]>;
  schemaA: Map<string, Snapshot['schema']['tables'][number]>;
  schemaB: Map<string, Snapshot['schema']['tables'][number]>;
}

async function diffTable(cache: PackCache, sa: Snapshot, sb: Snapshot, name: string, lookup: Lookup): Promise<TableDiff> {
  const ta = lookup.a.get(name);
  const tb = lookup.b.get(name);
  const schemaA = lookup.schemaA.get(name);
  const schemaB = lookup.schemaB.get(name);
  const ca = chunkIds(sa, ta);
  const cb = chunkIds(sb, tb);
  const shared = [...cb.keys()].filter((k) => ca.has(k)).length;
  const keyValues = identityValues((schemaB ?? schemaA)!);
  const before = await rowsOf(cache, [...ca.keys()].filter((k) => !cb.has(k)), keyValues);
  const after = await rowsOf(cache, [...cb.keys()].filter((k) => !ca.has(k)), keyValues);
  let added = 0;
  let changed = 0;
  for (const [key, lines] of after) {
    const old = before.get(key);
    const common = Math.min(old?.length ?? 0, lines.length);
    for (let i = 0; i < common; i++) if (old![i] !== lines[i]) changed++;
    added += lines.length - common;
  }
  let removed = 0;
  for (const [key, lines] of before) removed += Math.max(0, lines.length - (after.get(key)?.length ?? 0));
  // An FTS5 table's options (virtual.config) are part of its schema too.
  const schemaChanged = !!schemaA && !!schemaB && (schemaA.sql !== schemaB.sql || JSON.stringify(schemaA.virtual ?? null) !== JSON.stringify(schemaB.virtual ?? null));
  const status = !ta ? 'added' : !tb ? 'removed' : ta.sha256 === tb.sha256 && !schemaChanged ? 'unchanged' : 'changed';
  return {
    name, status, rowsBefore: ta?.rows ?? 0, rowsAfter: tb?.rows ?? 0, rowsAdded: added, rowsRemoved: removed,
    rowsChanged: changed, chunksAdded: cb.size - shared, chunksRemoved: ca.size - shared, chunksShared: shared, schemaChanged,
  };
}

/** The table's chunks as `pack:entry` identities. */
function chunkIds(snapshot: Snapshot, table: TableEntry | undefined): Map<string, [string, number]> {
  const ids = new Map<string, [string, number]>();
  for (const [p, first, count] of table?.chunks ?? []) {
    for (let e = first; e < first + count; e++) ids.set(`${snapshot.packs[p]}:${e}`, [snapshot.packs[p], e]);
  }
  return ids;
}

/** Rows of the given chunks, grouped by identity key (a key may repeat in a table without one). */
async function rowsOf(cache: PackCache, ids: string[], keyValues: number): Promise<Map<string, string[]>> {
  const rows = new Map<string, string[]>();
  for (const id of ids) {
    const at = id.lastIndexOf(':');
    const pack = id.slice(0, at);
    const data = (await cache.get(pack)).chunk(Number(id.slice(at + 1)));
    // A pack's content matches its name, but whoever wrote it chose it: every row must end with '\n'.
    if (data[data.length - 1] !== 10) {
      throw new IntegrityError('E_CORRUPT', `diff: pack ${pack.slice(0, 16)}, entry ${id.slice(at + 1)}: the chunk does not end with a whole row`, {
        hint: 'The pack is damaged or was forged; run `scriptorium verify --read-data` to list the snapshots that use it.',
      });
    }
    for (let start = 0; start < data.length; ) {
      const end = data.indexOf(10, start);
      const keyEnd = keyValues > 0 ? keyEndOf(data, start, end, keyValues) : end;
      const key = data.toString('latin1', start, keyEnd);
      const list = rows.get(key);
      const line = data.toString('latin1', start, end);
      if (list) list.push(line);
      else rows.set(key, [line]);
      start = end + 1;
    }
  }
  return rows;
}
