import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup } from '../../src/repository/backup.js';
import { Repository } from '../../src/repository/repository.js';
import { restore } from '../../src/repository/restore.js';
import type { OperationEvent } from '../../src/core/events.js';
import { demoDb, engineDigests, fidelityDb, tempDir } from './helpers.js';

describe('backup and restore', () => {
  it('round-trips every value, schema object and pragma exactly', async () => {
    const dir = tempDir();
    const db = fidelityDb(dir);
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir, { chunkBytes: 256 })).close();
    const events: OperationEvent[] = [];
    const snap = await backup(db, repoDir, { onEvent: (e) => events.push(e), tags: ['t1'] });
    expect(snap.tables.map((t) => t.name)).toEqual(['we"ird table', 'nokey', 'pairs']);
    expect(snap.stats.chunks).toBeGreaterThan(5);
    const out = join(dir, 'restored.db');
    const result = await restore(snap.id.slice(0, 8), repoDir, { into: out });
    expect(result.rows).toBe(snap.stats.rows);
    expect(await engineDigests(out)).toEqual(await engineDigests(db));
    expect(events[0].type).toBe('started');
    expect(events.at(-1)).toMatchObject({ type: 'completed', kind: 'backup' });
  });

  it('round-trips the demo database, and a second backup of it stores almost nothing', async () => {
    const dir = tempDir();
    const db = demoDb(dir, 2000);
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir)).close();
    const first = await backup(db, repoDir);
    const second = await backup(db, repoDir);
    expect(second.stats.newChunks).toBe(0);
    expect(second.stats.storedBytes).toBe(0);
    expect(second.manifestBytes).toBeLessThan(first.stats.storedBytes / 50);
    const out = join(dir, 'restored.db');
    await restore('latest', repoDir, { into: out });
    expect(await engineDigests(out)).toEqual(await engineDigests(db));
  });
});

describe('restore options, codecs and stores', () => {
  it('restores a subset of tables, and replaces an existing database only with force', async () => {
    const dir = tempDir();
    const db = demoDb(dir, 500);
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir)).close();
    await backup(db, repoDir);
    const out = join(dir, 'subset.db');
    const result = await restore('latest', repoDir, { into: out, tables: ['regs', 'stays'] });
    expect(result.tables.map((t) => t.name)).toEqual(['regs', 'stays']);
    const digests = await engineDigests(out);
    const full = await engineDigests(db);
    expect(Object.keys(digests).filter((k) => k !== '#meta')).toEqual(['regs', 'stays']);
    expect(digests.regs).toBe(full.regs);
    await expect(restore('latest', repoDir, { into: out })).rejects.toMatchObject({ code: 'E_TARGET_EXISTS' });
    await restore('latest', repoDir, { into: out, force: true });
    expect(await engineDigests(out)).toEqual(full);
  });

  it.each(['gzip', 'none'] as const)('works with %s compression, and in a MemoryStore', async (codec) => {
    const dir = tempDir();
    const db = fidelityDb(dir);
    const { MemoryStore } = await import('../../src/stores/memory-store.js');
    const repo = await Repository.init(new MemoryStore(), { compression: codec });
    const snap = await backup(db, repo, { tables: ['pairs', 'nokey'] });
    expect(snap.tables.map((t) => t.name)).toEqual(['nokey', 'pairs']);
    const out = join(dir, `${codec}.db`);
    await restore(snap.id, repo, { into: out });
    const got = await engineDigests(out);
    const want = await engineDigests(db);
    expect([got.pairs, got.nokey]).toEqual([want.pairs, want.nokey]);
    await repo.close();
  });

  it('a second snapshot after a small change stores only the chunks around it', async () => {
    const dir = tempDir();
    const db = demoDb(dir, 3000);
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir)).close();
    const first = await backup(db, repoDir);
    const Database = (await import('better-sqlite3')).default;
    const conn = new Database(db);
    conn.exec("UPDATE regs SET status = 'I' WHERE rowid IN (100, 1500, 2900); INSERT INTO stays (visitor_id, start_date, end_date) SELECT id, '2026-01-01', '2026-01-02' FROM regs LIMIT 1");
    conn.close();
    const second = await backup(db, repoDir);
    expect(second.stats.newChunks).toBeGreaterThanOrEqual(3);
    expect(second.stats.newChunks).toBeLessThanOrEqual(8);
    expect(second.stats.storedBytes + second.manifestBytes).toBeLessThan((first.stats.storedBytes + first.manifestBytes) * 0.03);
    const out = join(dir, 'out.db');
    await restore('latest', repoDir, { into: out });
    expect(await engineDigests(out)).toEqual(await engineDigests(db));
  });
});

describe('packs larger than the pack size', () => {
  it.each(['zstd', 'gzip', 'none'] as const)('%s: rows far beyond packBytes restore, verify and diff exactly (the body is measured, then read once at its size)', async (codec) => {
    const dir = tempDir();
    const file = join(dir, 'big.db');
    const { default: Database } = await import('better-sqlite3');
    const { randomBytes } = await import('node:crypto');
    const h = new Database(file);
    h.exec('CREATE TABLE big (id INTEGER PRIMARY KEY, b BLOB, t TEXT)');
    const insert = h.prepare('INSERT INTO big VALUES (?, ?, ?)');
    // 200 KB (its pack is a little oversized, back to the pool) and 900 KB (far beyond: a buffer of its own).
    for (const [id, size] of [[1, 200_000], [2, 10], [3, 900_000], [4, 5]] as const) insert.run(id, randomBytes(size), 'x'.repeat(size));
    h.close();
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir, { packBytes: 4096, compression: codec })).close();
    const first = await backup(file, repoDir);
    const out = join(dir, 'restored.db');
    await restore(first.id, repoDir, { into: out });
    expect(await engineDigests(out)).toEqual(await engineDigests(file));
    const { verify } = await import('../../src/repository/verify.js');
    const report = await verify(repoDir, { readData: true });
    expect(report.problems).toEqual([]);
    const h2 = new Database(file);
    h2.prepare('UPDATE big SET t = ? WHERE id = 3').run('y'.repeat(900_000));
    h2.close();
    const second = await backup(file, repoDir);
    const { diff } = await import('../../src/repository/diff.js');
    const d = await diff(first.id, second.id, repoDir);
    expect(d.tables.find((t) => t.name === 'big')).toMatchObject({ rowsChanged: 1, rowsAdded: 0, rowsRemoved: 0 });
  });
});
