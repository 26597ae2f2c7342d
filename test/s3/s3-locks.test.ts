/**
 * The lock protocol on S3 (moto_server behind the counting proxy): a shared lock lists nothing (it
 * reads the well-known `locks/exclusive`), an exclusive one creates `locks/exclusive` with
 * `If-None-Match: *` and lists the shared ones; prune and backup still exclude each other, racing
 * lockers never hold an exclusive lock beside another, and a stale `locks/exclusive` blocks nobody and
 * is removed by prune or `unlock`.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backup } from '../../src/repository/backup.js';
import { acquireLock, EXCLUSIVE_LOCK_KEY, type LockKind } from '../../src/repository/locks.js';
import { prune } from '../../src/repository/prune.js';
import { Repository } from '../../src/repository/repository.js';
import { restore } from '../../src/repository/restore.js';
import { readSnapshotList } from '../../src/repository/snapshot-list.js';
import { unlock } from '../../src/repository/unlock.js';
import { S3Store } from '../../src/stores/s3-store.js';
import { demoDb, tempDir } from '../repository/helpers.js';
import { FaultProxy } from './fault-proxy.js';
import { createBucket, MOTO, MOTO_MISSING, startMoto, TEST_CREDENTIALS, type Moto } from './moto.js';

Object.assign(process.env, TEST_CREDENTIALS);
delete process.env.AWS_PROFILE;

describe.skipIf(!MOTO)('repository locks on S3', () => {
  let moto: Moto;
  let proxy: FaultProxy;
  const bucket = 'locking';
  beforeAll(async () => {
    moto = await startMoto();
    await createBucket(moto.endpoint, bucket);
    proxy = await FaultProxy.start(moto.endpoint, TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
    process.env.AWS_ENDPOINT_URL_S3 = proxy.endpoint;
    process.env.SCRIPTORIUM_CACHE_DIR = join(tempDir('s3-locks-cache'), 'cache');
  }, 60_000);
  afterAll(async () => {
    delete process.env.AWS_ENDPOINT_URL_S3;
    delete process.env.SCRIPTORIUM_CACHE_DIR;
    await proxy?.stop();
    await moto?.stop();
  });

  const location = () => `s3://${bucket}/r-${randomBytes(4).toString('hex')}`;
  const open = (loc: string) => S3Store.open(loc, { endpoint: proxy.endpoint, cacheDir: false });

  it('a shared lock lists nothing; prune and backup exclude each other', async () => {
    const dir = tempDir('s3-locks');
    const db = demoDb(dir, 300);
    const loc = location();
    await (await Repository.init(loc)).close();
    const store = await open(loc);
    const start = proxy.seen.length;
    const shared = await acquireLock(store, 'shared', 'backup');
    const taken = proxy.seen.slice(start).map((r) => `${r.kind} ${r.key.replace(/^[^/]+\//, '')}`);
    expect(taken).toEqual([`PUT ${shared.key}`, `GET ${EXCLUSIVE_LOCK_KEY}`]);
    // A backup holds a shared lock: prune cannot take its exclusive one, and leaves no locks/exclusive behind.
    await expect(prune(loc, { lockWaitMs: 0 })).rejects.toMatchObject({ code: 'E_LOCKED', message: /backup \(pid/ });
    expect(await store.has(EXCLUSIVE_LOCK_KEY)).toBe(false);
    await shared.release();
    // Prune holds the exclusive lock: a backup waits, then fails naming it; afterwards it runs.
    const exclusive = await acquireLock(store, 'exclusive', 'prune');
    expect(exclusive.key).toBe(EXCLUSIVE_LOCK_KEY);
    await expect(backup(db, loc, { lockWaitMs: 300 })).rejects.toMatchObject({ code: 'E_LOCKED', message: /prune \(pid/ });
    await expect(acquireLock(store, 'exclusive', 'prune')).rejects.toMatchObject({ code: 'E_LOCKED' });
    await exclusive.release();
    expect(await store.has(EXCLUSIVE_LOCK_KEY)).toBe(false);
    const snap = await backup(db, loc, { lockWaitMs: 0 });
    await prune(loc);
    await restore(snap.id, loc, { into: join(dir, 'back.db') });
    const left: string[] = [];
    for await (const { key } of store.list('locks/')) left.push(key);
    expect(left).toEqual([]);
    await store.close();
  }, 120_000);

  it('two backups at once both complete; the snapshot list, read once by each, is made whole again by prune', async () => {
    const dir = tempDir('s3-two');
    const a = demoDb(dir, 400, 'a.db');
    const b = demoDb(dir, 500, 'b.db');
    const loc = location();
    await (await Repository.init(loc)).close();
    const [sa, sb] = await Promise.all([backup(a, loc, { lockWaitMs: 0 }), backup(b, loc, { lockWaitMs: 0 })]);
    const repo = await Repository.open(loc);
    expect((await repo.snapshotIds()).sort()).toEqual([sa.id, sb.id].sort());
    await prune(repo);
    const list = await readSnapshotList(repo.store);
    expect(list?.snapshots.map((s) => s.id).sort()).toEqual([sa.id, sb.id].sort());
    expect(list?.config).toBe(repo.configHash);
    await repo.close();
    await restore(sa.id, loc, { into: join(dir, 'ra.db') });
    await restore(sb.id, loc, { into: join(dir, 'rb.db') });
  }, 120_000);

  it('racing lockers never hold an exclusive lock beside any other', async () => {
    const loc = location();
    const stores = await Promise.all(Array.from({ length: 6 }, () => open(loc)));
    const held = new Map<number, LockKind>();
    const violations: string[] = [];
    let exclusives = 0;
    let shareds = 0;
    await Promise.all(stores.map(async (store, worker) => {
      for (let round = 0; round < 4; round++) {
        const kind: LockKind = (worker + round) % 3 === 0 ? 'exclusive' : 'shared';
        const lock = await acquireLock(store, kind, kind === 'exclusive' ? 'prune' : 'backup', 60_000);
        const others = [...held.values()];
        if (kind === 'exclusive' ? others.length > 0 : others.includes('exclusive')) violations.push(`worker ${worker} took ${kind} beside ${others.join(', ')}`);
        held.set(worker, kind);
        if (kind === 'exclusive') exclusives++;
        else shareds++;
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 40));
        held.delete(worker);
        await lock.release();
      }
    }));
    expect(violations).toEqual([]);
    expect(exclusives).toBeGreaterThan(0);
    expect(shareds).toBeGreaterThan(0);
    for (const store of stores) await store.close();
  }, 180_000);

  it('a stale locks/exclusive blocks nobody: backup ignores it, prune replaces it, unlock removes it', async () => {
    const dir = tempDir('s3-stale');
    const db = demoDb(dir, 200);
    const loc = location();
    await (await Repository.init(loc)).close();
    const store = await open(loc);
    const stale = (holder: string) => Buffer.from(JSON.stringify({
      kind: 'exclusive', operation: 'prune', host: `gone-${hostname()}`, pid: 1, time: new Date(Date.now() - 3600_000).toISOString(), holder,
    }));
    await store.put(EXCLUSIVE_LOCK_KEY, stale('dead1'));
    await backup(db, loc, { lockWaitMs: 0 });
    const result = await prune(loc, { lockWaitMs: 0 });
    expect(result.staleLocksRemoved).toBe(0); // prune broke the stale one to take its place, then removed its own at the end
    expect(await store.has(EXCLUSIVE_LOCK_KEY)).toBe(false);
    await store.put(EXCLUSIVE_LOCK_KEY, stale('dead2'));
    const report = await unlock(loc);
    expect(report.removed.map((l) => l.key)).toEqual([EXCLUSIVE_LOCK_KEY]);
    expect(await store.has(EXCLUSIVE_LOCK_KEY)).toBe(false);
    // A live one (this host, a running pid, fresh) is left, and reported as held.
    await store.put(EXCLUSIVE_LOCK_KEY, Buffer.from(JSON.stringify({ kind: 'exclusive', operation: 'prune', host: hostname(), pid: process.pid, time: new Date().toISOString(), holder: 'x' })));
    expect((await unlock(loc)).held.map((l) => l.key)).toEqual([EXCLUSIVE_LOCK_KEY]);
    await expect(backup(db, loc, { lockWaitMs: 0 })).rejects.toMatchObject({ code: 'E_LOCKED' });
    await store.delete(EXCLUSIVE_LOCK_KEY);
    await store.close();
  }, 120_000);
});

if (!MOTO) it.skip(MOTO_MISSING, () => undefined);
