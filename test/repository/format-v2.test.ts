/**
 * Repository format 2: the fingerprint index, deduplication against the previous snapshot, the
 * snapshot list, prune's rewrite of the index, and version-1 repositories still read.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { backup } from '../../src/repository/backup.js';
import { decodeIndex } from '../../src/repository/chunk-index.js';
import { decodeFingerprintIndex, encodeFingerprintIndex } from '../../src/repository/fingerprint-index.js';
import { forget } from '../../src/repository/forget.js';
import { MAGIC, sha256 } from '../../src/repository/object-file.js';
import { prune } from '../../src/repository/prune.js';
import { Repository } from '../../src/repository/repository.js';
import { restore } from '../../src/repository/restore.js';
import { readSnapshotList } from '../../src/repository/snapshot-list.js';
import { verify } from '../../src/repository/verify.js';
import { demoDb, engineDigests, tempDir } from './helpers.js';

const FIXTURE = join(__dirname, 'fixtures', 'v1');

const indexFiles = (repoDir: string): string[] => (existsSync(join(repoDir, 'index')) ? readdirSync(join(repoDir, 'index')) : []);
const packFiles = (repoDir: string): string[] =>
  readdirSync(join(repoDir, 'packs'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);

describe('a version-1 repository (written by the code before format 2)', () => {
  it('still restores both snapshots, verifies with --read-data, and takes further version-1 backups', async () => {
    const dir = tempDir('v1');
    const repoDir = join(dir, 'repo');
    cpSync(join(FIXTURE, 'repo'), repoDir, { recursive: true });
    const db = join(dir, 'v1.db');
    cpSync(join(FIXTURE, 'v1.db'), db);
    const repo = await Repository.open(repoDir);
    expect(repo.config.version).toBe(1);
    const snaps = await repo.snapshots();
    await repo.close();
    expect(snaps.map((s) => s.tags[0])).toEqual(['first', 'second']);
    expect(snaps.every((s) => s.version === 1)).toBe(true);
    const out = join(dir, 'second.db');
    await restore(snaps[1].id, repoDir, { into: out });
    expect(await engineDigests(out)).toEqual(await engineDigests(db));
    const first = join(dir, 'first.db');
    await restore(snaps[0].id, repoDir, { into: first });
    const conn = new Database(first, { readonly: true });
    expect(conn.prepare('SELECT count(*) AS n FROM people').get()).toEqual({ n: 3000 });
    conn.close();
    expect((await verify(repoDir, { readData: true })).problems).toEqual([]);
    // A backup into it stays format 1 (its readers may be older versions), and deduplicates as before.
    const third = await backup(db, repoDir);
    expect(third.version).toBe(1);
    expect(third.stats.newChunks).toBe(0);
    expect(indexFiles(repoDir).every((f) => readFileSync(join(repoDir, 'index', f)).subarray(0, 8).equals(MAGIC.index))).toBe(true);
    expect(existsSync(join(repoDir, 'snapshot-list'))).toBe(false);
  });
});

describe('format 2', () => {
  it('a new repository is version 2; a second snapshot after 1% updates stores only the changed chunks, found through the parent\'s fingerprints', async () => {
    const dir = tempDir('v2');
    const db = demoDb(dir, 4000);
    const repoDir = join(dir, 'repo');
    // Small packs: many packs and index files, so the parent's fingerprints come from several files.
    await (await Repository.init(repoDir, { packBytes: 2 * 1024 })).close();
    const first = await backup(db, repoDir, { time: new Date('2026-02-01T00:00:00Z') });
    expect(first.version).toBe(2);
    expect(first.packIndex!.every((i) => i >= 0)).toBe(true);
    const files = indexFiles(repoDir);
    expect(files.length).toBeGreaterThanOrEqual(Math.ceil(first.packs.length / 32));
    let entries = 0;
    for (const f of files) {
      const file = readFileSync(join(repoDir, 'index', f));
      expect(file.subarray(0, 8).equals(MAGIC.index2)).toBe(true);
      for (const p of await decodeIndex(f, file)) entries += p.chunkIds.length / 8;
    }
    expect(entries).toBe(first.stats.newChunks);
    // 8 bytes a chunk and a small header per pack: far below format 1's 32 bytes a chunk.
    const indexBytes = files.reduce((a, f) => a + readFileSync(join(repoDir, 'index', f)).length, 0);
    expect(indexBytes).toBeLessThan(8 * entries + 40 * first.packs.length + 64 * files.length);

    const conn = new Database(db);
    conn.exec("UPDATE regs SET updatedAt = 'changed' WHERE rowid % 100 = 7");
    conn.exec("DELETE FROM stays WHERE rowid BETWEEN 300 AND 900"); // a stretch deleted: the window moves on
    conn.close();
    const second = await backup(db, repoDir, { time: new Date('2026-02-02T00:00:00Z') });
    expect(second.stats.newChunks).toBeGreaterThan(0);
    expect(second.stats.newChunks).toBeLessThan(0.05 * second.stats.chunks);
    const list = await readSnapshotList((await Repository.open(repoDir)).store);
    expect(list?.snapshots.map((s) => s.id)).toEqual([first.id, second.id]);
    expect(new Set(list?.index)).toEqual(new Set(indexFiles(repoDir)));
    const out = join(dir, 'out.db');
    await restore('latest', repoDir, { into: out });
    expect(await engineDigests(out)).toEqual(await engineDigests(db));
    expect((await verify(repoDir, { readData: true })).problems).toEqual([]);
    // Unchanged: nothing new, even without the snapshot list (the parent is found by listing snapshots/).
    const { rmSync } = await import('node:fs');
    rmSync(join(repoDir, 'snapshot-list'));
    const third = await backup(db, repoDir, { time: new Date('2026-02-03T00:00:00Z') });
    expect(third.stats.newChunks).toBe(0);
  });

  it('a backup after an interrupted one reuses the packs the interrupted one indexed (no manifest names them)', async () => {
    const dir = tempDir('v2');
    const db = demoDb(dir, 3000);
    const done = join(dir, 'done');
    await (await Repository.init(done, { packBytes: 16 * 1024 })).close();
    const complete = await backup(db, done);
    // The repository a backup killed before its manifest leaves: its packs and index files, no manifest,
    // no snapshot list entry (here: an empty list, as after an earlier snapshot was forgotten and pruned).
    const killed = join(dir, 'killed');
    mkdirSync(killed);
    cpSync(join(done, 'config'), join(killed, 'config'));
    cpSync(join(done, 'packs'), join(killed, 'packs'), { recursive: true });
    cpSync(join(done, 'index'), join(killed, 'index'), { recursive: true });
    const empty = Buffer.concat([MAGIC.snapshotList, Buffer.of(0), Buffer.from(JSON.stringify({ version: 2, snapshots: [], index: [] }))]);
    writeFileSync(join(killed, 'snapshot-list'), empty);
    const packsBefore = packFiles(killed).sort();
    const snap = await backup(db, killed);
    expect(snap.stats.newChunks).toBe(0);
    expect(packFiles(killed).sort()).toEqual(packsBefore);
    expect(new Set(snap.packs)).toEqual(new Set(complete.packs));
    expect(snap.packIndex!.every((i) => i >= 0)).toBe(true); // the orphans' index files, named now
    const out = join(dir, 'out.db');
    await restore('latest', killed, { into: out });
    expect(await engineDigests(out)).toEqual(await engineDigests(db));
  });

  it('verify --read-data reads packs no snapshot references, and fails on a damaged one (a backup would reuse it); prune removes it', async () => {
    const dir = tempDir('v2');
    const db = demoDb(dir, 1500);
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir, { packBytes: 16 * 1024 })).close();
    const kept = await backup(db, repoDir);
    const conn = new Database(db);
    conn.exec("UPDATE regs SET updatedAt = 'orphan' WHERE rowid % 3 = 0");
    conn.close();
    const dropped = await backup(db, repoDir);
    await forget(repoDir, { ids: [dropped.id] }); // its new packs are now referenced by no snapshot
    const orphan = dropped.packs.find((p) => !kept.packs.includes(p))!;
    const file = join(repoDir, 'packs', orphan.slice(0, 2), orphan);
    const bytes = readFileSync(file);
    bytes[bytes.length >> 1] ^= 0x40;
    writeFileSync(file, bytes);
    const err = await verify(repoDir, { readData: true }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_CORRUPT' });
    expect((err as Error).message).toContain(`pack ${orphan.slice(0, 16)}`);
    expect((err as Error).message).toMatch(/no snapshot uses it/);
    await verify(repoDir); // without --read-data: the structure is fine
    await prune(repoDir);
    expect(existsSync(file)).toBe(false);
    expect((await verify(repoDir, { readData: true })).problems).toEqual([]);
  });

  it('prune rewrites index files that list deleted packs, keeps whole ones, and the next backup still deduplicates', async () => {
    const dir = tempDir('v2');
    const db = demoDb(dir, 3000);
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir, { packBytes: 16 * 1024 })).close();
    const first = await backup(db, repoDir, { time: new Date('2026-03-01T00:00:00Z') });
    const conn = new Database(db);
    conn.exec("UPDATE regs SET updatedAt = 'changed' WHERE rowid % 2 = 0");
    conn.close();
    await backup(db, repoDir, { time: new Date('2026-03-02T00:00:00Z') });
    const before = new Set(indexFiles(repoDir));
    await forget(repoDir, { ids: [first.id] });
    const forgotten = await readSnapshotList((await Repository.open(repoDir)).store);
    expect(forgotten?.snapshots.map((s) => s.id)).not.toContain(first.id); // forget drops it from the list
    const result = await prune(repoDir);
    expect(result.packsDeleted).toBeGreaterThan(0);
    expect(result.indexFilesDeleted).toBeGreaterThan(0);
    expect(result.indexFilesWritten).toBeGreaterThan(0);
    const after = indexFiles(repoDir);
    const live = new Set(packFiles(repoDir));
    for (const f of after) {
      for (const p of await decodeIndex(f, readFileSync(join(repoDir, 'index', f)))) expect(live.has(p.hash)).toBe(true);
    }
    expect(after.some((f) => before.has(f))).toBe(true); // files whose packs all stay are kept as they are
    const list = await readSnapshotList((await Repository.open(repoDir)).store);
    expect(list?.snapshots).toHaveLength(1);
    expect(new Set(list?.index)).toEqual(new Set(after));
    expect((await verify(repoDir, { readData: true })).problems).toEqual([]);
    // The remaining snapshot's hints name deleted files for some packs: the backup finds them through the list.
    const third = await backup(db, repoDir, { time: new Date('2026-03-03T00:00:00Z') });
    expect(third.stats.newChunks).toBe(0);
  });

  it('a damaged or hostile snapshot list costs only deduplication: it is ignored, and a snapshot it names that is gone is passed over', async () => {
    const dir = tempDir('v2');
    const db = demoDb(dir, 1000);
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir)).close();
    const first = await backup(db, repoDir);
    const listFile = join(repoDir, 'snapshot-list');
    const lists = [
      Buffer.from('not a list'),
      Buffer.concat([MAGIC.snapshotList, Buffer.of(0), Buffer.from('{"version":2,"snapshots":[{"id":"../../etc"}],"index":[]}')]),
      Buffer.concat([MAGIC.snapshotList, Buffer.of(0), Buffer.from(JSON.stringify({ version: 2, index: [],
        snapshots: [{ id: 'ee'.repeat(32), time: '2999-01-01T00:00:00Z', host: first.host, source: first.source, rows: first.stats.rows }, { id: first.id, time: first.time, host: first.host, source: first.source }] }))]),
    ];
    for (const list of lists) {
      writeFileSync(listFile, list);
      const again = await backup(db, repoDir);
      expect(again.stats.newChunks).toBe(0);
    }
    const out = join(dir, 'out.db');
    await restore('latest', repoDir, { into: out });
    expect(await engineDigests(out)).toEqual(await engineDigests(db));
  });

  it('refuses a damaged version-2 index file with E_CORRUPT (counts beyond the file, a pack twice, trailing bytes)', async () => {
    const pack = { hash: 'ab'.repeat(32), chunkIds: Buffer.alloc(3 * 32, 7) };
    const { file, hash } = encodeFingerprintIndex([pack]);
    expect((await decodeFingerprintIndex(hash, file))[0].chunkIds.length).toBe(24);
    const forged = (edit: (body: Buffer) => Buffer) => {
      const f = Buffer.concat([file.subarray(0, 9), edit(Buffer.from(file.subarray(9)))]);
      return decodeFingerprintIndex(sha256(f), f);
    };
    await expect(forged((b) => { b.writeUInt32LE(4, 36); return b; })).rejects.toMatchObject({ code: 'E_CORRUPT' });
    await expect(forged((b) => Buffer.concat([b, Buffer.alloc(8)]))).rejects.toMatchObject({ code: 'E_CORRUPT' });
    await expect(forged((b) => { b.writeUInt32LE(0, 36); return b; })).rejects.toMatchObject({ code: 'E_CORRUPT' });
    const twice = encodeFingerprintIndex([pack, pack]);
    await expect(decodeFingerprintIndex(twice.hash, twice.file)).rejects.toMatchObject({ code: 'E_CORRUPT' });
    await expect(decodeFingerprintIndex('00'.repeat(32), file)).rejects.toMatchObject({ code: 'E_CORRUPT' });
  });
});
