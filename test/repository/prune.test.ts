import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { backup } from '../../src/repository/backup.js';
import { forget } from '../../src/repository/forget.js';
import { acquireLock } from '../../src/repository/locks.js';
import { prune } from '../../src/repository/prune.js';
import { Repository } from '../../src/repository/repository.js';
import { restore } from '../../src/repository/restore.js';
import { verify } from '../../src/repository/verify.js';
import { snapshots } from '../../src/repository/operations.js';
import { FsStore } from '../../src/stores/fs-store.js';
import { demoDb, engineDigests, tempDir } from './helpers.js';

const count = (dir: string) => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;

describe('forget and prune', () => {
  it('forget by policy keeps what the policy says, and prune then frees only unreferenced packs', async () => {
    const dir = tempDir();
    const db = demoDb(dir, 800);
    const repoDir = join(dir, 'repo');
    // Format 1: its prune consolidates the index into one file (format 2's is tested in format-v2.test.ts).
    await (await Repository.init(repoDir, { packBytes: 8 * 1024, formatVersion: 1 })).close();
    const times = [1, 2, 3].map((d) => new Date(Date.UTC(2026, 0, d, 3)));
    const first = await backup(db, repoDir, { time: times[0] });
    const conn = new Database(db);
    conn.exec("DELETE FROM regs WHERE rowid % 3 = 0; UPDATE stays SET note = 'changed'");
    conn.close();
    await backup(db, repoDir, { time: times[1] });
    await backup(db, repoDir, { time: times[2] });
    const packsBefore = count(join(repoDir, 'packs'));

    const dry = await forget(repoDir, { keepLast: 1, dryRun: true });
    expect(dry.removed.length).toBe(2);
    expect((await snapshots(repoDir)).length).toBe(3);

    const result = await forget(repoDir, { keepLast: 1, prune: true });
    expect(result.kept.map((k) => k.reasons)).toEqual([['last']]);
    expect(result.removed.map((r) => r.id).sort()).toContain(first.id);
    expect(result.pruned!.packsDeleted).toBeGreaterThan(0);
    expect(count(join(repoDir, 'packs'))).toBe(packsBefore - result.pruned!.packsDeleted);
    expect(readdirSync(join(repoDir, 'index')).length).toBe(1);
    await verify(repoDir, { readData: true });
    const out = join(dir, 'out.db');
    await restore('latest', repoDir, { into: out });
    expect(await engineDigests(out)).toEqual(await engineDigests(db));

    // Backing up the first state again must not reuse a pruned chunk.
    const again = await prune(repoDir);
    expect(again.packsDeleted).toBe(0);
  });

  it('prune removes packs that no snapshot references (an interrupted backup) and keeps the rest', async () => {
    const dir = tempDir();
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir)).close();
    await backup(demoDb(dir, 200), repoDir);
    const store = new FsStore(repoDir);
    await store.put('packs/ab/' + 'ab'.repeat(32), Buffer.from('orphan from a killed backup'));
    const result = await prune(repoDir);
    expect(result).toMatchObject({ packsDeleted: 1, bytesDeleted: 27 });
    expect(await store.has('packs/ab/' + 'ab'.repeat(32))).toBe(false);
    await verify(repoDir, { readData: true });
  });

  it('prune refuses while a backup holds the shared lock; a backup waits for prune', async () => {
    const dir = tempDir();
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir)).close();
    const store = new FsStore(repoDir);
    const shared = await acquireLock(store, 'shared', 'backup');
    await expect(prune(repoDir)).rejects.toMatchObject({ code: 'E_LOCKED' });
    await expect(prune(repoDir)).rejects.toThrow(/backup \(pid \d+/);
    await shared.release();

    const exclusive = await acquireLock(store, 'exclusive', 'prune');
    const db = demoDb(dir, 100);
    await expect(backup(db, repoDir, { lockWaitMs: 0 })).rejects.toMatchObject({ code: 'E_LOCKED' });
    const waiting = backup(db, repoDir, { lockWaitMs: 10_000 });
    setTimeout(() => void exclusive.release(), 300);
    expect((await waiting).stats.rows).toBeGreaterThan(0);
  });

  it('ignores the lock of a process that no longer exists', async () => {
    const dir = tempDir();
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir)).close();
    const store = new FsStore(repoDir);
    const { hostname } = await import('node:os');
    await store.put('locks/dead', Buffer.from(JSON.stringify({ kind: 'shared', operation: 'backup', host: hostname(), pid: 2 ** 22 + 7, time: new Date().toISOString() })));
    const result = await prune(repoDir);
    expect(result.staleLocksRemoved).toBe(1);
  });

  it('forget by id, including a damaged snapshot', async () => {
    const dir = tempDir();
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir)).close();
    const snap = await backup(demoDb(dir, 50), repoDir);
    await expect(forget(repoDir, { ids: ['zz'] })).rejects.toMatchObject({ code: 'E_USAGE' });
    await expect(forget(repoDir, { ids: ['0000'] })).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(forget(repoDir, {})).rejects.toThrow(/no policy/);
    const { truncateSync } = await import('node:fs');
    truncateSync(join(repoDir, 'snapshots', snap.id), 20);
    await expect(prune(repoDir)).rejects.toMatchObject({ code: 'E_CORRUPT' });
    const result = await forget(repoDir, { ids: [snap.id.slice(0, 6)] });
    expect(result.removed).toEqual([{ id: snap.id }]);
    expect(await snapshots(repoDir)).toEqual([]);
    expect((await prune(repoDir)).packsDeleted).toBe(1);
  });
});
