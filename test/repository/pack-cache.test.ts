/**
 * Restore's pack cache (src/repository/pack-cache.ts): bounded by bytes, evicted by next use. Real
 * SQLite files, real repositories on the file system; pack reads are counted through a Store that
 * passes every call to the real FsStore, and by the cache's own counter.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { backup } from '../../src/repository/backup.js';
import { packBufferBytes } from '../../src/repository/pack.js';
import { DEFAULT_PACKS, PackCache } from '../../src/repository/pack-cache.js';
import { Repository } from '../../src/repository/repository.js';
import { StreamingPackCache } from '../../src/repository/restore-pack.js';
import { restore } from '../../src/repository/restore.js';
import { packOrder, readTable } from '../../src/repository/snapshot-reader.js';
import type { Snapshot } from '../../src/repository/manifest.js';
import { FsStore } from '../../src/stores/fs-store.js';
import type { Store } from '../../src/stores/store.js';
import { demoDb, engineDigests, tempDir } from './helpers.js';

const PACK_BYTES = 16 << 10;

/** `store` with every call passed on, and each read of a pack file (get or getPieces) counted in `reads`. */
function counting(store: FsStore, reads: Map<string, number>): Store {
  const count = (key: string): void => {
    if (key.startsWith('packs/')) reads.set(key, (reads.get(key) ?? 0) + 1);
  };
  const wrapper: Record<string, unknown> = {};
  const names = new Set([...Object.getOwnPropertyNames(FsStore.prototype), ...Object.keys(store)]);
  names.delete('constructor');
  for (const name of names) {
    const value = (store as unknown as Record<string, unknown>)[name];
    wrapper[name] = typeof value === 'function' ? value.bind(store) : value;
  }
  wrapper.get = (key: string, options?: object) => {
    count(key);
    return store.get(key, options);
  };
  wrapper.getPieces = (key: string, options?: object) => {
    count(key);
    return store.getPieces(key, options);
  };
  return wrapper as unknown as Store;
}

/** A repository of small packs holding the demo database, then an incremental snapshot after scattered updates. */
async function incremental(): Promise<{ dir: string; db: string; repoDir: string; first: Snapshot; second: Snapshot }> {
  const dir = tempDir('packcache');
  const db = demoDb(dir, 3000);
  const repoDir = join(dir, 'repo');
  await (await Repository.init(repoDir, { packBytes: PACK_BYTES })).close();
  const first = await backup(db, repoDir);
  const conn = new Database(db);
  // Every 25th row of the two largest tables: the second snapshot's chunks alternate between the
  // first snapshot's packs (unchanged rows) and its own (changed ones).
  conn.exec("UPDATE regs SET addr = addr || ' (moved)' WHERE rowid % 25 = 0; UPDATE reg_additional_info SET notes = 'changed' WHERE id % 25 = 0;");
  conn.close();
  const second = await backup(db, repoDir);
  return { dir, db, repoDir, first, second };
}

/** What a cache may hold at most: its budget, plus the excess of its largest pack over a pack's size. */
function bound(cache: PackCache): number {
  const { budgetBytes, largestPackBytes, expectedBytes } = cache.stats;
  return budgetBytes + Math.max(0, largestPackBytes - expectedBytes);
}

/** Reads every table of `snapshot` through `cache`, as restore does (each batch used before the next). */
async function readAll(repo: Repository, cache: PackCache, snapshot: Snapshot): Promise<number> {
  let rows = 0;
  for (const table of snapshot.tables) for await (const batch of readTable(repo, cache, snapshot, table, 'test')) rows += batch.rows;
  await cache.close();
  return rows;
}

describe('restore pack cache', () => {
  it('reads each pack of an incremental snapshot once, where a one-pack cache reads packs again at every switch', async () => {
    const { dir, db, repoDir, second } = await incremental();
    const used = new Set(second.tables.flatMap((t) => t.chunks.map(([p]) => second.packs[p]!)));
    const switches = [...packOrder(second, second.tables)].length;
    // The chunks do alternate: many more switches between packs than packs.
    expect(switches).toBeGreaterThan(3 * used.size);
    expect(used.size).toBeGreaterThan(8);

    const reads = new Map<string, number>();
    const repo = await Repository.open(counting(new FsStore(repoDir), reads));
    try {
      const out = join(dir, 'restored.db');
      await restore('latest', repo, { into: out });
      expect(await engineDigests(out)).toEqual(await engineDigests(db));
      expect(reads.size).toBe(used.size);
      expect(Math.max(...reads.values())).toBe(1); // no pack read twice

      // The same reading through a cache of one pack's worth: it thrashes (the test above can fail).
      const one = new PackCache(repo, { recycle: true, budgetBytes: packBufferBytes(PACK_BYTES), order: packOrder(second, second.tables) });
      const rows = await readAll(repo, one, second);
      expect(rows).toBe(second.stats.rows);
      expect(one.stats.opened).toBeGreaterThan(2 * used.size);

      // The default: four packs' worth, of the largest pack when packs overshoot the pack size (the
      // 16 KiB packs here do, by a batch of rows), and what it holds is what it will read again.
      const byDefault = new PackCache(repo, { recycle: true, order: packOrder(second, second.tables) });
      await readAll(repo, byDefault, second);
      expect(byDefault.stats.opened).toBe(used.size);
      expect(byDefault.stats.budgetBytes).toBe(DEFAULT_PACKS * Math.max(packBufferBytes(PACK_BYTES), byDefault.stats.largestPackBytes));
      expect(byDefault.stats.peakHeldBytes).toBeLessThanOrEqual(bound(byDefault));
      expect(byDefault.stats.peakHeldBytes).toBeGreaterThan(packBufferBytes(PACK_BYTES)); // it did hold two at once
      expect(byDefault.stats.heldBytes).toBe(0); // closed
    } finally {
      await repo.close();
    }
  });

  it('holds one pack at a time for a snapshot whose packs come in order, and stays within a budget without an order', async () => {
    const { repoDir, first, second } = await incremental();
    const repo = await Repository.open(repoDir);
    try {
      const used = new Set(first.tables.flatMap((t) => t.chunks.map(([p]) => first.packs[p]!)));
      const ordered = new PackCache(repo, { recycle: true, order: packOrder(first, first.tables) });
      await readAll(repo, ordered, first);
      expect(ordered.stats.opened).toBe(used.size);
      // A pack not used again is dropped as soon as the reader asks for the next: never two at once.
      expect(ordered.stats.peakHeldBytes).toBe(ordered.stats.largestPackBytes);
      expect(ordered.stats.peakHeldBytes).toBeLessThan(2 * packBufferBytes(PACK_BYTES));

      // No order (as diff reads): least recently used within the bytes given, whatever the snapshot.
      const budget = 3 * packBufferBytes(PACK_BYTES);
      const unordered = new PackCache(repo, { recycle: true, budgetBytes: budget });
      expect(await readAll(repo, unordered, second)).toBe(second.stats.rows);
      expect(unordered.stats.peakHeldBytes).toBeLessThanOrEqual(bound(unordered));
      expect(unordered.stats.peakHeldBytes).toBeGreaterThanOrEqual(2 * packBufferBytes(PACK_BYTES));
    } finally {
      await repo.close();
    }
  });

  it('takes a pack size given ahead as a bound on what it reads, never as a fact', async () => {
    const { repoDir, first } = await incremental();
    const repo = await Repository.open(repoDir);
    try {
      const hash = first.packs[0]!;
      const { size } = await repo.store.stat(`packs/${hash.slice(0, 2)}/${hash}`);
      // A size smaller than the file (it grew since it was looked at): refused unread.
      const small = new StreamingPackCache(repo, { recycle: true, lazyAbove: 64 << 20, sizes: new Map([[hash, size - 1]]) });
      await expect(small.get(hash)).rejects.toMatchObject({ code: 'E_CORRUPT' });
      await small.close();
      // A size far larger than the file: read in pieces, measured, found small, and opened whole after all.
      const large = new StreamingPackCache(repo, { recycle: true, lazyAbove: 64 << 20, sizes: new Map([[hash, 1 << 30]]) });
      const pack = await large.get(hash);
      expect(pack.lazy).toBe(false);
      expect(pack.entries).toBeGreaterThan(0);
      await large.close();
    } finally {
      await repo.close();
    }
  });
});
