import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { backup } from '../../src/repository/backup.js';
import { ChunkIndex, decodeIndex, encodeIndex } from '../../src/repository/chunk-index.js';
import { Repository } from '../../src/repository/repository.js';
import { restore } from '../../src/repository/restore.js';
import type { RowSource } from '../../src/repository/source.js';
import { verify } from '../../src/repository/verify.js';
import { engineDigests, tempDir } from './helpers.js';

describe('ChunkIndex', () => {
  it('finds whole ids exactly, and after compact() finds candidates by their first 8 bytes', () => {
    const index = new ChunkIndex();
    const loaded = Array.from({ length: 5000 }, () => randomBytes(32));
    const p0 = index.addPack('a'.repeat(64));
    for (const id of loaded.slice(0, 3000)) index.add(id, p0);
    const p1 = index.addPack('b'.repeat(64));
    for (const id of loaded.slice(3000)) index.add(id, p1);
    index.compact();
    const fresh = Array.from({ length: 5000 }, () => randomBytes(32));
    const p2 = index.addPack('');
    for (const id of fresh) index.add(id, p2);
    expect(index.size).toBe(10000);

    const at = index.find(loaded[3500]);
    expect([index.packOf(at), index.entryOf(at), index.isCandidate(at)]).toEqual([p1, 500, false]);
    const twin = Buffer.from(loaded[3500]);
    twin[31] ^= 1; // same first 8 bytes, another id: not the loaded chunk
    expect(index.find(twin)).toBe(-1);

    const c = index.find(fresh[42]);
    expect([index.packOf(c), index.entryOf(c), index.isCandidate(c)]).toEqual([p2, 42, true]);
    const freshTwin = Buffer.from(fresh[42]);
    freshTwin[31] ^= 1; // only 8 bytes are kept: the caller must confirm a candidate
    expect(index.find(freshTwin)).toBe(c);
    expect(index.find(randomBytes(32))).toBe(-1);
    expect(index.chunkAt(p1, 500)).toBe(loaded[3500].toString('hex'));
    expect(index.chunkAt(p2, 42)).toBeUndefined();
  });

  it('encodes and decodes index files', async () => {
    const packs = [
      { hash: 'c'.repeat(64), chunkIds: randomBytes(32 * 3) },
      { hash: 'd'.repeat(64), chunkIds: randomBytes(32) },
    ];
    const { file, hash } = await encodeIndex(packs);
    expect(await decodeIndex(hash, file)).toEqual(packs);
  });
});

/** A database whose tables `a` and `b` hold the same rows: every chunk of `b` is a chunk of `a`. */
function twinTables(file: string, rows: number): string {
  const db = new Database(file);
  db.exec('CREATE TABLE a (id INTEGER PRIMARY KEY, t TEXT, n REAL); CREATE TABLE b (id INTEGER PRIMARY KEY, t TEXT, n REAL);');
  const insA = db.prepare('INSERT INTO a VALUES (?, ?, ?)');
  const insB = db.prepare('INSERT INTO b VALUES (?, ?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= rows; i++) {
      const t = `row ${i} ${'x'.repeat(i % 37)}`;
      insA.run(i, t, i / 3);
      insB.run(i, t, i / 3);
    }
  })();
  db.close();
  return file;
}

describe('deduplication within one backup', () => {
  for (const [path, formatVersion] of [['extension', 1], ['engine batches', 1], ['extension', 2], ['engine batches', 2]] as const) {
    it(`stores a chunk repeated later in the same backup once (${path}, format ${formatVersion}), also once its index file is written`, async () => {
      const dir = tempDir();
      const file = twinTables(join(dir, 'twins.db'), 100_000);
      const repoDir = join(dir, 'repo');
      // Small packs (a pack ends after the batch that fills it): most of a's packs are listed in index
      // files by the time b is read.
      await (await Repository.init(repoDir, { packBytes: 4096, formatVersion })).close();
      let source: string | RowSource = file;
      if (path === 'engine batches') {
        const { SqliteSource } = await import('../../src/engines/sqlite/sqlite-source.js');
        const s = SqliteSource.open(file);
        // Without `db` the backup cannot use the extension's chunk scan: it chunks the engine's batches.
        source = { schema: s.schema, rowCount: (t) => s.rowCount(t), batches: (t, e, o) => s.batches(t, e, o), close: () => s.close() };
      }
      const snap = await backup(source, repoDir);
      if (typeof source !== 'string') source.close();
      const [a, b] = snap.tables;
      expect(a.sha256).toBe(b.sha256);
      expect(b.chunkCount).toBe(a.chunkCount);
      expect(snap.stats.newChunks).toBe(a.chunkCount);
      expect(snap.stats.chunks).toBe(2 * a.chunkCount);
      const aPacks = new Set(a.chunks.map(([p]) => p));
      expect(b.chunks.every(([p]) => aPacks.has(p))).toBe(true);
      const repo = await Repository.open(repoDir);
      let indexFiles = 0;
      for await (const _ of repo.store.list('index/')) indexFiles++;
      await repo.close();
      // Format 2 writes an index file per 32 packs (format 1: per 8).
      expect(indexFiles).toBeGreaterThan(formatVersion === 1 ? 4 : 1);
      const out = join(dir, 'restored.db');
      await restore('latest', repoDir, { into: out });
      expect(await engineDigests(out)).toEqual(await engineDigests(file));
      const report = await verify(repoDir, { readData: true });
      expect(report.problems).toEqual([]);
    });
  }
});
