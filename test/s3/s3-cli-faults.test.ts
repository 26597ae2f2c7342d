/**
 * Backups and restores through the CLI to moto_server behind the fault-injecting proxy: with faults of
 * every kind they complete exactly after retries; with a fault that does not stop they fail clearly,
 * leaving no visible snapshot (backup) or no file (restore); verify --read-data passes afterwards.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cliAsync } from '../export-import/helpers.js';
import { demoDb, engineDigests, tempDir } from '../repository/helpers.js';
import { FaultProxy, type Fault } from './fault-proxy.js';
import { createBucket, MOTO, MOTO_MISSING, startMoto, TEST_CREDENTIALS, type Moto } from './moto.js';

const EVERY_FAULT: Fault[] = [
  { kind: 'status', status: 503, code: 'SlowDown' },
  { kind: 'wrong-body' },
  { kind: 'status', status: 500, code: 'InternalError' },
  { kind: 'drop-upload' },
  { kind: 'status', status: 429, code: 'TooManyRequests' },
  { kind: 'truncate-body' },
  { kind: 'slow', ms: 1500 },
  { kind: 'lose-answer' },
];

describe.skipIf(!MOTO)('backup and restore to S3 through faults (CLI, moto_server behind a proxy)', () => {
  let moto: Moto;
  let proxy: FaultProxy;
  beforeAll(async () => {
    moto = await startMoto();
    await createBucket(moto.endpoint, 'cli-faults');
    proxy = await FaultProxy.start(moto.endpoint, TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
  }, 60_000);
  afterAll(async () => {
    await proxy?.stop();
    await moto?.stop();
  });
  beforeEach(() => proxy.clearFaults());

  const run = (args: string[], repo: string, extra: NodeJS.ProcessEnv = {}) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env, NO_COLOR: '1', ...TEST_CREDENTIALS, SCRIPTORIUM_REPO: repo, AWS_ENDPOINT_URL_S3: proxy.endpoint,
      SCRIPTORIUM_S3_TIMEOUT_MS: '1000', SCRIPTORIUM_S3_RETRY_BASE_MS: '10',
    };
    delete env.AWS_PROFILE; // (the user's; a test may give one in `extra`)
    return cliAsync(args, { env: { ...env, ...extra } });
  };
  const ok = async (p: ReturnType<typeof run>) => {
    const r = await p;
    expect(r.stderr + `(exit ${r.code})`).toMatch(/\(exit 0\)$/);
    return JSON.parse(r.stdout);
  };

  it('a backup and a restore through every kind of fault complete exactly, and verify --read-data passes', async () => {
    const dir = tempDir('s3-chaos');
    const db = demoDb(dir, 3000);
    const repo = 's3://cli-faults/chaos';
    await ok(run(['init', '--json'], repo));
    proxy.chaos(2, EVERY_FAULT);
    const start = proxy.seen.length;
    const backup = await run(['backup', db, '--json', '--debug'], repo);
    const snap = await ok(Promise.resolve(backup));
    expect(snap.requests.retries).toBeGreaterThan(0);
    // --debug logs each retry: what, why and how long, never a credential.
    const retries = backup.stderr.split('\n').filter((l) => /^scriptorium: debug: s3: retry \d+\/\d+ of (GET|PUT|HEAD|LIST|DELETE) \S+ after .+: waiting \d+ ms$/.test(l));
    expect(retries.length).toBe(snap.requests.retries);
    expect(backup.stderr).not.toContain(TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
    expect(backup.stderr).not.toContain(TEST_CREDENTIALS.AWS_ACCESS_KEY_ID);
    const into = join(dir, 'restored.db');
    const restored = await ok(run(['restore', 'latest', '--into', into, '--json'], repo));
    expect(restored.requests.retries).toBeGreaterThan(0);
    proxy.clearFaults();
    const faulted = proxy.seen.slice(start).filter((r) => r.fault);
    expect(new Set(faulted.map((r) => r.fault))).toEqual(new Set(EVERY_FAULT.map((f) => f.kind)));
    expect(await engineDigests(into)).toEqual(await engineDigests(db));
    const verified = await ok(run(['verify', '--read-data', '--json'], repo));
    expect(verified.snapshots).toBe(1);
    expect(proxy.signatureProblems).toEqual([]);
  }, 240_000);

  it('a backup whose manifest upload keeps failing fails clearly and leaves no visible snapshot', async () => {
    const dir = tempDir('s3-fail');
    const db = demoDb(dir, 500);
    const repo = 's3://cli-faults/failing-backup';
    await ok(run(['init', '--json'], repo));
    const first = await ok(run(['backup', db, '--json'], repo));
    const change = new Database(db);
    change.exec("UPDATE regs SET status = 'I' WHERE rowid % 5 = 0");
    change.close();
    proxy.inject((r) => r.kind === 'PUT' && r.key.includes('/snapshots/'), { kind: 'status', status: 503, code: 'SlowDown' }, Infinity);
    const failed = await run(['backup', db], repo, { SCRIPTORIUM_S3_RETRY_ATTEMPTS: '3' });
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toMatch(/E_IO.*503 SlowDown after 3 attempts/s);
    expect(failed.stderr).not.toMatch(/looks like a bug/);
    proxy.clearFaults();
    const list = await ok(run(['snapshots', '--json'], repo));
    expect(list.snapshots.map((s: { id: string }) => s.id)).toEqual([first.id]);
    await ok(run(['verify', '--read-data', '--json'], repo));
  }, 120_000);

  it('a restore whose pack downloads keep failing writes nothing', async () => {
    const dir = tempDir('s3-restore-fail');
    const db = demoDb(dir, 500);
    const repo = 's3://cli-faults/failing-restore';
    await ok(run(['init', '--json'], repo));
    await ok(run(['backup', db, '--json'], repo));
    proxy.inject((r) => r.kind === 'GET' && r.key.includes('/packs/'), { kind: 'truncate-body' }, Infinity);
    const out = join(dir, 'out');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(out);
    const into = join(out, 'restored.db');
    const failed = await run(['restore', 'latest', '--into', into], repo, { SCRIPTORIUM_S3_RETRY_ATTEMPTS: '3' });
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toMatch(/E_IO.*body cut short.*after 3 attempts/s);
    expect(failed.stderr).not.toMatch(/E_CORRUPT/); // a network that keeps failing is not a damaged repository
    expect(existsSync(into)).toBe(false);
    expect(readdirSync(out)).toEqual([]);
    proxy.clearFaults();
    await ok(run(['verify', '--read-data', '--json'], repo));
  }, 120_000);

  // The SDK's provider chain (environment, then profiles, then instance metadata) loads its providers
  // lazily, inside the bundled SDK: a profile's keys and region must reach every signature.
  it('takes credentials and region from an AWS profile, with no AWS_* keys in the environment (and packs go up signed with their SHA-256)', async () => {
    const dir = tempDir('s3-profile');
    const db = demoDb(dir, 300);
    const { writeFileSync } = await import('node:fs');
    const keyId = 'AKIDPROFILESCRIPTOR9';
    writeFileSync(join(dir, 'credentials'), `[default]\naws_access_key_id = AKIDNOTTHISONE000000\naws_secret_access_key = wrong\n\n[scr-test]\naws_access_key_id = ${keyId}\naws_secret_access_key = ${TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY}\n`);
    writeFileSync(join(dir, 'config'), '[profile scr-test]\nregion = eu-west-3\n');
    const profile = (extra: NodeJS.ProcessEnv) => {
      const env: NodeJS.ProcessEnv = { ...extra };
      for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_REGION', 'AWS_DEFAULT_REGION']) env[name] = undefined;
      return env;
    };
    const files = { AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials'), AWS_CONFIG_FILE: join(dir, 'config'), AWS_EC2_METADATA_DISABLED: 'true' };
    const repo = 's3://cli-faults/profile';
    const start = proxy.seen.length;
    await ok(run(['init', '--json'], repo, profile({ ...files, AWS_PROFILE: 'scr-test' })));
    await ok(run(['backup', db, '--json'], repo, profile({ ...files, AWS_PROFILE: 'scr-test' })));
    const into = join(dir, 'restored.db');
    await ok(run(['restore', 'latest', '--into', into, '--json'], repo, profile({ ...files, AWS_PROFILE: 'scr-test' })));
    expect(await engineDigests(into)).toEqual(await engineDigests(db));
    const sent = proxy.seen.slice(start);
    expect(sent.length).toBeGreaterThan(3);
    expect(proxy.signatureProblems).toEqual([]);
    for (const r of sent) {
      expect(r.signature).toBe('valid');
      expect(String(r.headers.authorization)).toContain(`Credential=${keyId}/`);
      expect(String(r.headers.authorization)).toMatch(/\/eu-west-3\/s3\/aws4_request/);
    }
    expect(proxy.signatureProblems).toEqual([]);
    // The backup's packs went up signed with their own SHA-256 (their name), without an MD5 of them.
    const packs = sent.filter((r) => r.kind === 'PUT' && r.key.includes('/packs/'));
    expect(packs.length).toBeGreaterThan(0);
    for (const r of packs) {
      expect(r.headers['x-amz-content-sha256']).toBe(r.key.slice(r.key.lastIndexOf('/') + 1));
      expect(r.headers['content-md5']).toBeUndefined();
    }
    // The control: with no profile and no keys, nothing is sent and the error says where keys come from.
    const before = proxy.seen.length;
    const none = await run(['snapshots'], repo, profile({ AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'), AWS_CONFIG_FILE: join(dir, 'none'), AWS_EC2_METADATA_DISABLED: 'true' }));
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/no AWS credentials found/);
    expect(none.stderr).not.toMatch(/looks like a bug/);
    expect(proxy.seen.length).toBe(before);
  }, 120_000);
});

if (!MOTO) it.skip(MOTO_MISSING, () => undefined);
