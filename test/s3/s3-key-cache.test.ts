/**
 * An encrypted repository on S3 (moto_server behind the counting proxy): its key objects and config
 * come from the local cache on an unchanged backup (no LIST of keys/, no key or config GET), a cached
 * key is used only if the passphrase unwraps it, and a damaged or useless cache entry is fetched again.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAsync } from '../export-import/helpers.js';
import { demoDb, tempDir } from '../repository/helpers.js';
import { FaultProxy } from './fault-proxy.js';
import { createBucket, MOTO, MOTO_MISSING, startMoto, TEST_CREDENTIALS, type Moto } from './moto.js';

Object.assign(process.env, TEST_CREDENTIALS);
delete process.env.AWS_PROFILE;

function findFiles(dir: string, name: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && join(e.parentPath, e.name).includes(name))
    .map((e) => join(e.parentPath, e.name));
}

describe.skipIf(!MOTO)('S3: cached keys of an encrypted repository', () => {
  let moto: Moto;
  let proxy: FaultProxy;
  beforeAll(async () => {
    moto = await startMoto();
    await createBucket(moto.endpoint, 'keycache');
    proxy = await FaultProxy.start(moto.endpoint, TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
  }, 60_000);
  afterAll(async () => {
    await proxy?.stop();
    await moto?.stop();
  });

  it('an unchanged encrypted backup makes at most 6 requests and no LIST; damaged or useless cached keys are fetched again', async () => {
    const dir = tempDir('s3-key-cache');
    const db = demoDb(dir, 2000);
    const cache = join(dir, 'cache');
    const env = (password: string): NodeJS.ProcessEnv => ({
      ...process.env, NO_COLOR: '1', SCRIPTORIUM_REPO: 's3://keycache/enc', AWS_ENDPOINT_URL_S3: proxy.endpoint,
      SCRIPTORIUM_CACHE_DIR: cache, SCRIPTORIUM_PASSWORD: password, SCRIPTORIUM_SCRYPT_LOG_N: '10',
    });
    const run = (args: string[], password = 'correct horse') => cliAsync(args, { env: env(password), cwd: dir });
    const ok = async (args: string[]) => {
      const r = await run(args);
      expect(r.stderr + `(exit ${r.code})`).toMatch(/\(exit 0\)$/);
      return JSON.parse(r.stdout);
    };
    const init = await ok(['init', '--encrypt', '--json']);
    expect(init.encryption.mode).toBe('passphrase');
    await ok(['backup', db, '--json']);
    const backup = async () => {
      const start = proxy.seen.length;
      const snap = await ok(['backup', db, '--json']);
      return { snap, seen: proxy.seen.slice(start) };
    };
    for (let runNo = 0; runNo < 2; runNo++) {
      const { snap, seen } = await backup();
      console.log(`unchanged encrypted backup on S3, run ${runNo + 1}: ${JSON.stringify(snap.requests)}`);
      expect(snap.stats.newChunks).toBe(0);
      expect(seen.filter((r) => r.kind === 'LIST')).toEqual([]);
      expect(seen.filter((r) => r.key.includes('/keys/') || r.key.endsWith('/config'))).toEqual([]);
      expect(seen.length).toBeLessThanOrEqual(6);
      expect(snap.requests.total).toBe(seen.length);
    }

    // A damaged cached key object: fetched again (one GET of it), never trusted; still no LIST.
    const [keyEntry] = findFiles(cache, `${join('keys', '')}`);
    expect(keyEntry).toBeDefined();
    const file = readFileSync(keyEntry!);
    file[file.length - 5] ^= 0x01;
    writeFileSync(keyEntry!, file);
    const damaged = await backup();
    expect(damaged.seen.filter((r) => r.kind === 'LIST')).toEqual([]);
    expect(damaged.seen.filter((r) => r.kind === 'GET' && r.key.includes('/keys/'))).toHaveLength(1);
    expect((await backup()).seen.filter((r) => r.key.includes('/keys/'))).toEqual([]); // cached again

    // A wrong passphrase opens no cached key: the keys are read from the store again, and still refused.
    const start = proxy.seen.length;
    const wrong = await run(['backup', db, '--json'], 'wrong horse');
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/E_AUTH|passphrase/i);
    expect(wrong.stderr).not.toMatch(/looks like a bug|E_INTERNAL/);
    expect(proxy.seen.slice(start).filter((r) => r.kind === 'LIST' && r.url.includes('keys'))).toHaveLength(1);

    // The cached key listing replaced by garbage: a fresh LIST, and the backup completes.
    const [listing] = findFiles(cache, join('meta', 'keys'));
    expect(listing).toBeDefined();
    writeFileSync(listing!, 'scriptorium-cache-1\nnot a hash\n');
    const relisted = await backup();
    expect(relisted.seen.filter((r) => r.kind === 'LIST')).toHaveLength(1);
    // The restored snapshot is the database (the secrets the cached key gave are the repository's).
    const r = await run(['restore', relisted.snap.id, '--into', join(dir, 'back.db')]);
    expect(r.stderr + `(exit ${r.code})`).toMatch(/\(exit 0\)$/);
  }, 120_000);
});

if (!MOTO) it.skip(MOTO_MISSING, () => undefined);
