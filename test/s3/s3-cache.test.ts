/**
 * The S3 store's local cache of index files and manifests, and its connection limit, against
 * moto_server (behind the counting proxy): a cached object is read without a request, a damaged cache
 * entry is fetched again (never trusted), and no more requests run at once than `connections`.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../src/stores/s3-store.js';
import { LocalCache } from '../../src/stores/local-cache.js';
import { cliAsync } from '../export-import/helpers.js';
import { demoDb, tempDir } from '../repository/helpers.js';
import { FaultProxy } from './fault-proxy.js';
import { createBucket, MOTO, MOTO_MISSING, startMoto, TEST_CREDENTIALS, type Moto } from './moto.js';

Object.assign(process.env, TEST_CREDENTIALS);
delete process.env.AWS_PROFILE;

describe.skipIf(!MOTO)('S3 local cache and connection limit', () => {
  let moto: Moto;
  let proxy: FaultProxy;
  beforeAll(async () => {
    moto = await startMoto();
    await createBucket(moto.endpoint, 'cache');
    proxy = await FaultProxy.start(moto.endpoint, TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
  }, 60_000);
  afterAll(async () => {
    await proxy?.stop();
    await moto?.stop();
  });

  it('reads a cached manifest without a request, and fetches a damaged entry again', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'scriptorium-cache-test-'));
    const prefix = `c-${randomBytes(3).toString('hex')}`;
    const store = await S3Store.open(`s3://cache/${prefix}`, { endpoint: proxy.endpoint, cacheDir });
    const data = randomBytes(3000);
    const key = `snapshots/${'ab'.repeat(32)}`;
    await store.put(key, data); // what it wrote, it caches
    expect((await store.get(key)).equals(data)).toBe(true);
    expect((await store.get(key)).equals(data)).toBe(true);
    expect(store.requestCounts()).toMatchObject({ GET: 0, cacheHits: 2 });

    // The entry is keyed by endpoint, bucket and prefix; flip a byte of its content: fetched again.
    const entry = new LocalCache(cacheDir, `${proxy.endpoint}\ncache\n${prefix}/`).path(key);
    const file = readFileSync(entry);
    file[file.length - 10] ^= 0x40;
    writeFileSync(entry, file);
    expect((await store.get(key)).equals(data)).toBe(true);
    expect(store.requestCounts()).toMatchObject({ GET: 1, cacheHits: 2 });
    // Cut it short: fetched again too. Then whole again: a hit.
    truncateSync(entry, 40);
    expect((await store.get(key)).equals(data)).toBe(true);
    expect((await store.get(key)).equals(data)).toBe(true);
    expect(store.requestCounts()).toMatchObject({ GET: 2, cacheHits: 3 });
    // A cached entry longer than the caller's bound is not returned: the store refuses from the source.
    await expect(store.get(key, { maxBytes: 100 })).rejects.toMatchObject({ code: 'E_CORRUPT' });
    // Packs are not cached; a deleted object leaves the cache too.
    await store.delete(key);
    await expect(store.get(key)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await store.close();
  }, 30_000);

  it('an unchanged backup downloads no index or manifest, and --json reports the requests the server saw', async () => {
    const dir = tempDir('s3-economy');
    const db = demoDb(dir, 2000);
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', SCRIPTORIUM_REPO: 's3://cache/economy', AWS_ENDPOINT_URL_S3: proxy.endpoint, SCRIPTORIUM_CACHE_DIR: join(dir, 'cache') };
    const ok = async (args: string[]) => {
      const r = await cliAsync(args, { env, cwd: dir });
      expect(r.stderr + `(exit ${r.code})`).toMatch(/\(exit 0\)$/);
      return JSON.parse(r.stdout);
    };
    await ok(['init', '--json']);
    let start = proxy.seen.length;
    const first = await ok(['backup', db, '--json']);
    // The first backup: no LIST either (no snapshot list yet: the config is read to be checked, and the
    // parent is looked for in snapshots/, which is one LIST of an empty folder).
    const firstSeen = proxy.seen.slice(start);
    console.log(`first backup on S3: ${JSON.stringify(first.requests)}`);
    const lists = firstSeen.filter((r) => r.kind === 'LIST').map((r) => new URL(r.url, 'http://x').searchParams.get('prefix'));
    expect(lists).toEqual(['economy/snapshots/']);
    const counted = [];
    for (let run = 0; run < 2; run++) {
      start = proxy.seen.length;
      const snap = await ok(['backup', db, '--json']);
      expect(snap.stats.newChunks).toBe(0);
      const seen = proxy.seen.slice(start);
      const byKind = (kind: string) => seen.filter((r) => r.kind === kind).length;
      expect(snap.requests).toMatchObject({ GET: byKind('GET'), PUT: byKind('PUT'), HEAD: byKind('HEAD'), LIST: byKind('LIST'), DELETE: byKind('DELETE'), total: seen.length });
      // Index files, manifests and the config come from the cache (the config checked against the hash
      // the snapshot list records); the snapshot list is read once, and the lock protocol reads the
      // well-known exclusive lock (absent) instead of listing locks/.
      const gets = seen.filter((r) => r.kind === 'GET').map((r) => r.key).sort();
      expect(gets).toEqual(['economy/locks/exclusive', 'economy/snapshot-list']);
      console.log(`unchanged backup on S3, run ${run + 1}: ${JSON.stringify(snap.requests)}`);
      expect(seen.filter((r) => r.kind === 'PUT' && r.key.includes('/packs/'))).toEqual([]);
      counted.push(snap.requests);
      // Issue 15's request economy: no LIST, no HEAD, at most 6 requests: PUT lock, GET locks/exclusive,
      // GET snapshot-list, PUT manifest, PUT snapshot-list, DELETE lock.
      expect(seen.map((r) => r.kind).sort()).toEqual(['DELETE', 'GET', 'GET', 'PUT', 'PUT', 'PUT']);
      expect(snap.requests.total).toBeLessThanOrEqual(6);
      expect(snap.requests.LIST).toBe(0);
    }
    // A changed database: about one PUT per new pack, plus the same few as an unchanged backup (and an
    // index file per 32 new packs); still no LIST and no HEAD.
    const sqlite = new Database(db);
    sqlite.exec(`UPDATE regs SET phone = 'changed ' || id WHERE rowid % 400 = 0`);
    sqlite.close();
    start = proxy.seen.length;
    const changed = await ok(['backup', db, '--json']);
    const changedSeen = proxy.seen.slice(start);
    console.log(`changed backup on S3: ${JSON.stringify(changed.requests)}, ${changed.stats.newChunks} new chunks`);
    expect(changed.stats.newChunks).toBeGreaterThan(0);
    const packPuts = changedSeen.filter((r) => r.kind === 'PUT' && r.key.includes('/packs/')).length;
    const indexPuts = changedSeen.filter((r) => r.kind === 'PUT' && r.key.includes('/index/')).length;
    expect(packPuts).toBeGreaterThanOrEqual(1);
    expect(indexPuts).toBeLessThanOrEqual(Math.ceil(packPuts / 32));
    expect(changedSeen.length - packPuts - indexPuts).toBeLessThanOrEqual(6);
    expect(changed.requests).toMatchObject({ LIST: 0, HEAD: 0 });
    // The history records them too, by kind (those made until the backup completed).
    const history: Array<{ result: { requests: Record<string, number> } }> = await ok(['history', '--kind', 'backup', '--json']);
    const last = history.at(-1)!;
    expect(last.result.requests.GET).toBe(changed.requests.GET);
    expect(last.result.requests.PUT).toBe(changed.requests.PUT);
  }, 60_000);

  it('restore makes no HEAD (one GET a pack); a missing pack fails clearly and writes nothing', async () => {
    const dir = tempDir('s3-restore-heads');
    const db = demoDb(dir, 3000);
    const prefix = `restore-${randomBytes(3).toString('hex')}`;
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', SCRIPTORIUM_REPO: `s3://cache/${prefix}`, AWS_ENDPOINT_URL_S3: proxy.endpoint, SCRIPTORIUM_CACHE_DIR: join(dir, 'cache') };
    const run = (args: string[]) => cliAsync(args, { env, cwd: dir });
    expect((await run(['init', '--pack-size', '65536'])).code).toBe(0);
    const snap = JSON.parse((await run(['backup', db, '--json'])).stdout);
    const start = proxy.seen.length;
    const r = await run(['restore', snap.id, '--into', join(dir, 'back.db'), '--json']);
    expect(r.stderr + `(exit ${r.code})`).toMatch(/\(exit 0\)$/);
    const seen = proxy.seen.slice(start);
    const packGets = seen.filter((q) => q.kind === 'GET' && q.key.includes('/packs/')).length;
    expect(packGets).toBe(snap.packs.length);
    expect(packGets).toBeGreaterThan(1);
    expect(seen.filter((q) => q.kind === 'HEAD' || q.kind === 'LIST')).toEqual([]);
    // A pack gone from the bucket: the restore fails naming it, and leaves no target.
    const store = await S3Store.open(`s3://cache/${prefix}`, { endpoint: proxy.endpoint, cacheDir: false });
    const lost = snap.packs.at(-1);
    await store.delete(`packs/${lost.slice(0, 2)}/${lost}`);
    await store.close();
    const failed = await run(['restore', snap.id, '--into', join(dir, 'lost.db')]);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toContain(lost.slice(0, 2));
    expect(failed.stderr).not.toMatch(/looks like a bug|E_INTERNAL/);
    expect(existsSync(join(dir, 'lost.db'))).toBe(false);
  }, 60_000);

  it('runs at most --s3-connections requests at once', async () => {
    for (const connections of [2, 5]) {
      const store = await S3Store.open(`s3://cache/conn-${connections}-${randomBytes(3).toString('hex')}`, { endpoint: proxy.endpoint, connections, cacheDir: false });
      proxy.maxInFlight = 0;
      await Promise.all(Array.from({ length: 30 }, (_, i) => store.put(`locks/l${i}`, randomBytes(20_000))));
      expect(proxy.maxInFlight).toBeLessThanOrEqual(connections);
      expect(proxy.maxInFlight).toBeGreaterThan(1);
      await store.close();
    }
  }, 30_000);
});

if (!MOTO) it.skip(MOTO_MISSING, () => undefined);
