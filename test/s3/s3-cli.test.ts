/**
 * Every repository command against a real S3 server (moto_server, started here), through the built CLI:
 * init, backup, snapshots, restore, verify --read-data, diff, forget, prune, unlock, with the repository
 * given as --repo s3://… and as SCRIPTORIUM_REPO, the endpoint as --s3-endpoint and as AWS_ENDPOINT_URL_S3.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAsync } from '../export-import/helpers.js';
import { demoDb, engineDigests, tempDir } from '../repository/helpers.js';
import { createBucket, MOTO, MOTO_MISSING, startMoto, TEST_CREDENTIALS, type Moto } from './moto.js';

describe.skipIf(!MOTO)('the CLI on an s3:// repository (moto_server)', () => {
  let moto: Moto;
  beforeAll(async () => {
    moto = await startMoto();
    await createBucket(moto.endpoint, 'cli-e2e');
  }, 60_000);
  afterAll(async () => moto?.stop());

  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
    const e: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...TEST_CREDENTIALS, ...extra };
    delete e.AWS_PROFILE;
    return e;
  };
  const json = (r: { code: number | null; stdout: string; stderr: string }) => {
    expect(r.stderr + `(exit ${r.code})`).toMatch(/\(exit 0\)$/);
    return JSON.parse(r.stdout);
  };

  it('init, backup, snapshots, restore, verify, diff, forget, prune and unlock work, and nothing leaks a secret', async () => {
    const dir = tempDir('s3-cli');
    const db = demoDb(dir, 400);
    const repo = 's3://cli-e2e/team/app';
    const flags = ['--s3-endpoint', moto.endpoint];

    const init = json(await cliAsync(['init', '--repo', repo, ...flags, '--json'], { env: env() }));
    expect(init.version).toBeGreaterThan(0);
    expect(init.requests.PUT).toBeGreaterThan(0);
    // A second init on the same prefix is refused.
    const again = await cliAsync(['init', '--repo', repo, ...flags], { env: env() });
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/E_TARGET_EXISTS/);

    // The repository from SCRIPTORIUM_REPO and the endpoint from AWS_ENDPOINT_URL_S3 (the AWS variable).
    const viaEnv = env({ SCRIPTORIUM_REPO: repo, AWS_ENDPOINT_URL_S3: moto.endpoint });
    const first = json(await cliAsync(['backup', db, '--tag', 'one', '--json', '--debug'], { env: viaEnv }));
    expect(first.requests.PUT).toBeGreaterThanOrEqual(3); // at least a pack, an index, the manifest
    expect(first.requests.total).toBe(first.requests.GET + first.requests.PUT + first.requests.HEAD + first.requests.LIST + first.requests.DELETE);

    const change = new Database(db);
    change.exec("UPDATE regs SET status = 'I' WHERE rowid % 9 = 0");
    change.close();
    const second = json(await cliAsync(['backup', db, '--json'], { env: viaEnv }));
    expect(second.id).not.toBe(first.id);

    const list = json(await cliAsync(['snapshots', '--json'], { env: viaEnv }));
    expect(list.snapshots.map((s: { id: string }) => s.id).sort()).toEqual([first.id, second.id].sort());

    const into = join(dir, 'restored.db');
    const restored = json(await cliAsync(['restore', first.id.slice(0, 8), '--into', into, '--json', '--repo', repo, ...flags], { env: env() }));
    expect(restored.snapshot).toBe(first.id);
    const changedDigests = await engineDigests(db);
    expect(await engineDigests(into)).not.toEqual(changedDigests); // the first snapshot, before the change
    const latestInto = join(dir, 'latest.db');
    json(await cliAsync(['restore', 'latest', '--into', latestInto, '--json'], { env: viaEnv }));
    expect(await engineDigests(latestInto)).toEqual(changedDigests);

    const verified = json(await cliAsync(['verify', '--read-data', '--json'], { env: viaEnv }));
    expect(verified.snapshots).toBe(2);
    const diff = json(await cliAsync(['diff', first.id, 'latest', '--json'], { env: viaEnv }));
    expect(diff.tables.some((t: { rowsChanged: number }) => t.rowsChanged > 0)).toBe(true);

    const forgot = json(await cliAsync(['forget', '--keep-last', '1', '--prune', '--json'], { env: viaEnv }));
    expect(forgot.removed.map((s: { id: string }) => s.id)).toEqual([first.id]);
    expect(forgot.requests.DELETE).toBeGreaterThan(0);
    json(await cliAsync(['prune', '--json'], { env: viaEnv }));
    json(await cliAsync(['unlock', '--json'], { env: viaEnv }));
    const after = json(await cliAsync(['verify', '--read-data', '--json'], { env: viaEnv }));
    expect(after.snapshots).toBe(1);

    // No secret anywhere in what the commands printed (the --debug run included).
    const all = JSON.stringify([init, first, second, list, restored, verified, forgot, after]);
    expect(all).not.toContain(TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
  }, 180_000);

  it('refuses credentials on the command line and a repository on a missing bucket, clearly', async () => {
    const inUrl = await cliAsync(['snapshots', '--repo', `s3://AKID:${TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY}@cli-e2e/x`, '--s3-endpoint', moto.endpoint], { env: env() });
    expect(inUrl.code).not.toBe(0);
    expect(inUrl.stderr).toMatch(/credentials in the repository location are refused/);
    expect(inUrl.stderr).not.toContain(TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
    const missing = await cliAsync(['snapshots', '--repo', 's3://no-bucket-of-that-name/x', '--s3-endpoint', moto.endpoint], { env: env() });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/E_NOT_FOUND.*bucket does not exist/s);
    expect(missing.stderr).not.toMatch(/looks like a bug/);
    const noRepo = await cliAsync(['snapshots', '--repo', 's3://cli-e2e/empty/prefix', '--s3-endpoint', moto.endpoint], { env: env() });
    expect(noRepo.stderr).toMatch(/E_NOT_REPOSITORY/);
  }, 60_000);

  it('an encrypted repository on S3: init --encrypt, backup, restore and verify --read-data; the bucket holds no plaintext name or row', async () => {
    const dir = tempDir('s3-enc');
    const db = demoDb(dir, 300);
    const repo = 's3://cli-e2e/sealed';
    const secret = { SCRIPTORIUM_PASSWORD: 'correct horse battery staple', SCRIPTORIUM_SCRYPT_LOG_N: '10' };
    const flags = ['--repo', repo, '--s3-endpoint', moto.endpoint];
    const init = json(await cliAsync(['init', ...flags, '--encrypt', '--json'], { env: env(secret) }));
    expect(init.encryption.mode).toBe('passphrase');
    json(await cliAsync(['backup', db, ...flags, '--json'], { env: env(secret) }));
    const second = json(await cliAsync(['backup', db, ...flags, '--json'], { env: env(secret) }));
    expect(second.stats.newChunks).toBe(0);
    const into = join(dir, 'restored.db');
    json(await cliAsync(['restore', 'latest', ...flags, '--into', into, '--json'], { env: env(secret) }));
    expect(await engineDigests(into)).toEqual(await engineDigests(db));
    json(await cliAsync(['verify', ...flags, '--read-data', '--json'], { env: env(secret) }));
    const wrong = await cliAsync(['restore', 'latest', ...flags, '--into', join(dir, 'no.db')], { env: env({ ...secret, SCRIPTORIUM_PASSWORD: 'wrong' }) });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/E_AUTH/);
    // Every object in the bucket, read with a plain client: no table name, no schema text, no row value.
    const { S3Client, ListObjectsV2Command, GetObjectCommand } = await import('@aws-sdk/client-s3');
    const client = new S3Client({ endpoint: moto.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: TEST_CREDENTIALS.AWS_ACCESS_KEY_ID!, secretAccessKey: TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY! } });
    const listed = await client.send(new ListObjectsV2Command({ Bucket: 'cli-e2e', Prefix: 'sealed/' }));
    const keys = (listed.Contents ?? []).map((o) => o.Key!);
    expect(keys.some((k) => k.includes('/packs/'))).toBe(true);
    const rowValue = (new Database(db, { readonly: true }).prepare('SELECT id FROM regs WHERE id IS NOT NULL LIMIT 1').pluck().get() as string);
    for (const key of keys) {
      const body = Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: 'cli-e2e', Key: key }))).Body!.transformToByteArray());
      for (const needle of ['CREATE TABLE', '"regs"', rowValue, secret.SCRIPTORIUM_PASSWORD]) expect(body.includes(needle), `${key} holds ${needle}`).toBe(false);
    }
    client.destroy();
  }, 180_000);

});

if (!MOTO) it.skip(MOTO_MISSING, () => undefined);
