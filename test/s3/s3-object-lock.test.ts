/**
 * `init --object-lock DAYS` against moto_server's Object Lock: every snapshot, index and pack is written
 * with COMPLIANCE retention (locks and config are not, so that they can be removed), and forget/prune
 * never try to delete what is held; they say which snapshots are held and until when.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAsync } from '../export-import/helpers.js';
import { demoDb, tempDir } from '../repository/helpers.js';
import { FaultProxy } from './fault-proxy.js';
import { createBucket, MOTO, MOTO_MISSING, rawList, rawRetention, startMoto, TEST_CREDENTIALS, type Moto } from './moto.js';

describe.skipIf(!MOTO)('Object Lock (moto_server)', () => {
  let moto: Moto;
  let proxy: FaultProxy;
  beforeAll(async () => {
    moto = await startMoto();
    await createBucket(moto.endpoint, 'locked', true);
    await createBucket(moto.endpoint, 'unlocked');
    proxy = await FaultProxy.start(moto.endpoint, TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
  }, 60_000);
  afterAll(async () => {
    await proxy?.stop();
    await moto?.stop();
  });

  const run = (args: string[]) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...TEST_CREDENTIALS, AWS_ENDPOINT_URL_S3: proxy.endpoint };
    delete env.AWS_PROFILE;
    return cliAsync(args, { env });
  };
  const ok = async (args: string[]) => {
    const r = await run(args);
    expect(r.stderr + `(exit ${r.code})`).toMatch(/\(exit 0\)$/);
    return r;
  };

  it('retains immutable objects, and forget/prune leave held snapshots and packs alone, saying until when', async () => {
    const dir = tempDir('s3-lock');
    const db = demoDb(dir, 500);
    const repo = 's3://locked/app';
    await ok(['init', '--repo', repo, '--object-lock', '2', '--json']);
    const first = JSON.parse((await ok(['backup', db, '--repo', repo, '--json'])).stdout);
    const keys = await rawList(moto.endpoint, 'locked', 'app/');
    const immutable = keys.filter((k) => /^app\/(snapshots|index|packs)\//.test(k));
    expect(immutable.length).toBeGreaterThanOrEqual(3);
    for (const key of immutable) {
      const r = await rawRetention(moto.endpoint, 'locked', key);
      expect(r.mode, key).toBe('COMPLIANCE');
      const days = (r.until!.getTime() - Date.now()) / 86_400_000;
      expect(days).toBeGreaterThan(1.9);
      expect(days).toBeLessThan(2.1);
    }
    expect(await rawRetention(moto.endpoint, 'locked', 'app/config')).toEqual({});
    expect(keys.some((k) => k.startsWith('app/locks/'))).toBe(false); // the backup's lock was deleted: locks are not retained

    const change = new Database(db);
    change.exec("UPDATE regs SET status = 'I' WHERE rowid % 3 = 0");
    change.close();
    await ok(['backup', db, '--repo', repo, '--json']);
    const start = proxy.seen.length;
    const forgot = await ok(['forget', '--repo', repo, '--keep-last', '1', '--prune']);
    expect(forgot.stdout).toMatch(new RegExp(`held\\s+${first.id.slice(0, 8)}.*Object Lock until 20\\d\\d-`));
    expect(forgot.stdout).toMatch(/0 snapshot\(s\) removed, 1 kept, 1 held by Object Lock until/);
    // No delete of a snapshot, index file or pack was even tried.
    expect(proxy.seen.slice(start).filter((r) => r.kind === 'DELETE' && !r.key.includes('/locks/'))).toEqual([]);
    const list = JSON.parse((await ok(['snapshots', '--repo', repo, '--json'])).stdout);
    expect(list.snapshots).toHaveLength(2);
    await ok(['verify', '--repo', repo, '--read-data']);
  }, 120_000);

  // A retention scriptorium did not set: S3 then wants a Content-MD5 (or a checksum) on every upload,
  // and refuses a pack signed with its SHA-256 alone.
  it('backs up into a bucket whose default Object Lock retention was set outside scriptorium', async () => {
    const { S3Client, PutObjectLockConfigurationCommand } = await import('@aws-sdk/client-s3');
    await createBucket(moto.endpoint, 'default-held', true);
    const client = new S3Client({
      endpoint: moto.endpoint, region: 'us-east-1', forcePathStyle: true,
      credentials: { accessKeyId: TEST_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY },
    });
    await client.send(new PutObjectLockConfigurationCommand({
      Bucket: 'default-held', ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1 } } },
    }));
    client.destroy();
    const dir = tempDir('s3-default-held');
    const db = demoDb(dir, 3000);
    const repo = 's3://default-held/app';
    await ok(['init', '--repo', repo, '--json']);
    const start = proxy.seen.length;
    const backup = await ok(['backup', db, '--repo', repo, '--json', '--debug']);
    expect(backup.stderr).toMatch(/asks for a Content-MD5 with every upload/);
    const packPuts = proxy.seen.slice(start).filter((r) => r.kind === 'PUT' && r.key.includes('/packs/'));
    expect(packPuts.length).toBeGreaterThanOrEqual(2); // the refused one, then each pack with its MD5
    expect(packPuts[0]!.headers['content-md5']).toBeUndefined();
    expect(packPuts.slice(1).every((r) => typeof r.headers['content-md5'] === 'string')).toBe(true);
    const packs = (await rawList(moto.endpoint, 'default-held', 'app/packs/'));
    expect(packs.length).toBeGreaterThan(0);
    expect((await rawRetention(moto.endpoint, 'default-held', packs[0]!)).mode).toBe('GOVERNANCE');
    const into = join(dir, 'restored.db');
    await ok(['restore', 'latest', '--repo', repo, '--into', into, '--json']);
    await ok(['verify', '--read-data', '--repo', repo, '--json']);
  }, 120_000);

  it('refuses --object-lock on a bucket without Object Lock, and on a local directory', async () => {
    const noLock = await run(['init', '--repo', 's3://unlocked/app', '--object-lock', '7']);
    expect(noLock.code).not.toBe(0);
    expect(noLock.stderr).toMatch(/does not have Object Lock enabled/);
    expect(await rawList(moto.endpoint, 'unlocked', 'app/')).toEqual([]); // nothing was written
    const local = await run(['init', '--repo', join(tempDir('s3-lock-local'), 'repo'), '--object-lock', '7']);
    expect(local.code).not.toBe(0);
    expect(local.stderr).toMatch(/--object-lock needs an s3:\/\/ repository/);
  }, 60_000);
});

if (!MOTO) it.skip(MOTO_MISSING, () => undefined);
