/**
 * The S3 store behind a fault-injecting proxy in front of moto_server: every fault is survived by a
 * retry (and the data stays exact), a fault that does not stop fails clearly within the retry bound,
 * every request carries a valid SigV4 signature and no credential in its URL, and uploads are plain
 * bodies (no aws-chunked framing, no checksum trailers) as custom endpoints need.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { S3Store } from '../../src/stores/s3-store.js';
import { FaultProxy, type Fault, type SeenRequest } from './fault-proxy.js';
import { createBucket, MOTO, MOTO_MISSING, rawGet, rawList, startMoto, TEST_CREDENTIALS, type Moto } from './moto.js';

Object.assign(process.env, TEST_CREDENTIALS);
delete process.env.AWS_PROFILE;

describe.skipIf(!MOTO)('S3Store behind a fault-injecting proxy', () => {
  let moto: Moto;
  let proxy: FaultProxy;
  const bucket = 'faults';
  const log: string[] = [];
  beforeAll(async () => {
    moto = await startMoto();
    await createBucket(moto.endpoint, bucket);
    proxy = await FaultProxy.start(moto.endpoint, TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
  }, 60_000);
  afterAll(async () => {
    await proxy?.stop();
    await moto?.stop();
  });
  beforeEach(() => proxy.clearFaults());

  const open = (prefix: string, retry = {}) => S3Store.open(`s3://${bucket}/${prefix}`, {
    endpoint: proxy.endpoint, timeoutMs: 800, retry: { baseMs: 5, capMs: 50, ...retry }, log: (line) => log.push(line),
  });
  const isKey = (kind: SeenRequest['kind'], key: string) => (r: SeenRequest) => r.kind === kind && r.key.endsWith(key);
  const packKey = (data: Buffer) => { const h = createHash('sha256').update(data).digest('hex'); return `packs/${h.slice(0, 2)}/${h}`; };

  const faults: [string, Fault][] = [
    ['503 SlowDown', { kind: 'status', status: 503, code: 'SlowDown' }],
    ['500 InternalError', { kind: 'status', status: 500, code: 'InternalError' }],
    ['429 TooManyRequests', { kind: 'status', status: 429, code: 'TooManyRequests' }],
    ['408 RequestTimeout', { kind: 'status', status: 408, code: 'RequestTimeout' }],
    ['an answer slower than the timeout', { kind: 'slow', ms: 2000 }],
    ['a connection dropped mid-upload', { kind: 'drop-upload' }],
    ['an answer lost after the server stored the object', { kind: 'lose-answer' }],
  ];
  for (const [name, fault] of faults) {
    it(`a put survives ${name} (twice) and stores the bytes exactly`, async () => {
      const store = await open(`put-${fault.kind}-${randomBytes(3).toString('hex')}`);
      const data = randomBytes(64 * 1024);
      const key = packKey(data);
      proxy.inject(isKey('PUT', key), fault, 2);
      await store.put(key, data);
      expect(store.requestCounts().retries).toBe(2);
      expect((await rawGet(moto.endpoint, bucket, `${store.location.slice(`s3://${bucket}/`.length)}/${key}`)).equals(data)).toBe(true);
      await store.close();
    }, 20_000);
  }

  const readFaults: [string, Fault][] = [
    ['503 SlowDown', { kind: 'status', status: 503, code: 'SlowDown' }],
    ['an answer slower than the timeout', { kind: 'slow', ms: 2000 }],
    ['a body cut short', { kind: 'truncate-body' }],
    ['a wrong body with a 200', { kind: 'wrong-body' }],
  ];
  for (const [name, fault] of readFaults) {
    it(`a get survives ${name} and returns the exact bytes`, async () => {
      const store = await open(`get-${fault.kind}-${randomBytes(3).toString('hex')}`);
      const data = randomBytes(200 * 1024);
      const key = packKey(data);
      await store.put(key, data);
      proxy.inject(isKey('GET', key), fault, 2);
      expect((await store.get(key)).equals(data)).toBe(true);
      expect(store.requestCounts().retries).toBe(2);
      expect(proxy.seen.filter((r) => r.key.endsWith(key) && r.kind === 'GET').length).toBe(3);
      await store.close();
    }, 20_000);
  }

  it('a list survives a 500 and a body cut short', async () => {
    const store = await open(`list-${randomBytes(3).toString('hex')}`);
    for (let i = 0; i < 5; i++) await store.put(`index/k${i}`, Buffer.from(String(i)));
    proxy.inject((r) => r.kind === 'LIST', { kind: 'status', status: 500, code: 'InternalError' });
    proxy.inject((r) => r.kind === 'LIST', { kind: 'truncate-body' });
    const keys: string[] = [];
    for await (const e of store.list('index/')) keys.push(e.key);
    expect(keys.sort()).toEqual(['index/k0', 'index/k1', 'index/k2', 'index/k3', 'index/k4']);
    expect(store.requestCounts().LIST).toBe(3);
    await store.close();
  }, 20_000);

  it('a fault that does not stop fails clearly after the bounded attempts, logging each retry without a secret', async () => {
    const store = await open(`give-up-${randomBytes(3).toString('hex')}`, { attempts: 4 });
    log.length = 0;
    proxy.inject((r) => r.kind === 'GET', { kind: 'status', status: 503, code: 'SlowDown' }, Infinity);
    const err = await store.get('index/x').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_IO', message: expect.stringMatching(/503 SlowDown after 4 attempts/) });
    expect(store.requestCounts()).toMatchObject({ GET: 4, retries: 3 });
    expect(log.filter((l) => /retry \d\/3 of GET index\/x after 503 SlowDown/.test(l))).toHaveLength(3);
    expect(log.join('\n')).not.toContain(TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
    expect(log.join('\n')).not.toContain(TEST_CREDENTIALS.AWS_ACCESS_KEY_ID);
    // A client error is not retried at all.
    proxy.clearFaults();
    proxy.inject((r) => r.kind === 'GET', { kind: 'status', status: 403, code: 'AccessDenied' });
    await expect(store.get('index/y')).rejects.toMatchObject({ code: 'E_IO', message: expect.stringMatching(/access denied/) });
    expect(store.requestCounts().GET).toBe(5);
    await store.close();
  }, 20_000);

  it('every request is signed (SigV4 verified by the proxy), carries no credential in its URL, and uploads plain bodies', async () => {
    const store = await open(`strict-${randomBytes(3).toString('hex')}`);
    const start = proxy.seen.length;
    const data = randomBytes(100_000);
    await store.put(packKey(data), data);
    await store.put('locks/abc', Buffer.from('{}'));
    await store.get(packKey(data));
    await store.has('locks/nope');
    for await (const _ of store.list('')) void _;
    await store.delete('locks/abc');
    const mine = proxy.seen.slice(start);
    expect(mine.map((r) => r.kind).sort()).toEqual(['DELETE', 'GET', 'HEAD', 'HEAD', 'LIST', 'PUT', 'PUT']); // one HEAD of config: the Object Lock settings, as no config was read
    expect(proxy.signatureProblems).toEqual([]);
    expect(mine.every((r) => r.signature === 'valid')).toBe(true);
    for (const r of mine) {
      expect(r.url).not.toContain(TEST_CREDENTIALS.AWS_ACCESS_KEY_ID);
      expect(r.url).not.toMatch(/X-Amz-(Credential|Signature)/i);
      expect(JSON.stringify(r.headers)).not.toContain(TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
      expect(String(r.headers['content-encoding'] ?? '')).not.toMatch(/aws-chunked/);
      expect(String(r.headers['x-amz-content-sha256'])).not.toMatch(/^STREAMING/);
      expect(Object.keys(r.headers).filter((h) => h.startsWith('x-amz-checksum-') || h === 'x-amz-sdk-checksum-algorithm' || h === 'x-amz-trailer')).toEqual([]);
    }
    const put = mine.find((r) => r.kind === 'PUT' && r.key.includes('packs/'))!;
    expect(put.headers['content-length']).toBe('100000');
    expect(put.headers['if-none-match']).toBe('*');
    expect(put.headers['content-md5']).toBe(createHash('md5').update(data).digest('base64'));
    await store.close();
  }, 20_000);

  it('a pack file uploaded with its SHA-256 known sends that as the signed payload hash, without an MD5 pass; the server refuses a body that does not match it', async () => {
    const store = await open(`vouched-${randomBytes(3).toString('hex')}`);
    const prefix = store.location.slice(`s3://${bucket}/`.length);
    const data = randomBytes(300_000);
    const key = packKey(data);
    const sha256 = key.slice(key.lastIndexOf('/') + 1);
    const file = `${store.tempPrefix!()}a`;
    writeFileSync(file, data);
    const start = proxy.seen.length;
    expect(await store.putFileNew!(key, file, sha256)).toBe(true);
    const [put] = proxy.seen.slice(start).filter(isKey('PUT', key));
    expect(put!.headers['x-amz-content-sha256']).toBe(sha256);
    expect(put!.headers['content-md5']).toBeUndefined();
    expect(put!.signature).toBe('valid');
    expect((await rawGet(moto.endpoint, bucket, `${prefix}/${key}`)).equals(data)).toBe(true);
    expect(existsSync(file)).toBe(false); // removed once uploaded
    // A file that is not the content its caller vouched for (damaged on the disk after it was hashed).
    const meant = randomBytes(50_000);
    const damaged = `${store.tempPrefix!()}b`;
    writeFileSync(damaged, randomBytes(50_000));
    const other = packKey(meant);
    await expect(store.putFileNew!(other, damaged, other.slice(other.lastIndexOf('/') + 1))).rejects.toThrow(/XAmzContentSHA256Mismatch/);
    expect(await rawList(moto.endpoint, bucket, `${prefix}/${other}`)).toEqual([]);
    expect(existsSync(damaged)).toBe(false);
    // Without a hash, a file goes with its Content-MD5, as before.
    const plain = `${store.tempPrefix!()}c`;
    writeFileSync(plain, meant);
    const before = proxy.seen.length;
    expect(await store.putFileNew!(other, plain)).toBe(true);
    const [md5Put] = proxy.seen.slice(before).filter(isKey('PUT', other));
    expect(md5Put!.headers['content-md5']).toBe(createHash('md5').update(meant).digest('base64'));
    expect(md5Put!.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    await store.close();
  }, 20_000);

  it('the proxy\'s signature check fails a request signed with another secret (the check can fail)', async () => {
    const saved = process.env.AWS_SECRET_ACCESS_KEY;
    process.env.AWS_SECRET_ACCESS_KEY = 'not-the-secret-the-proxy-knows';
    try {
      const store = await open(`wrong-secret-${randomBytes(3).toString('hex')}`);
      const before = proxy.signatureProblems.length;
      await store.has('config');
      expect(proxy.signatureProblems.length).toBe(before + 1);
      expect(proxy.signatureProblems.at(-1)).toMatch(/does not verify/);
      proxy.signatureProblems.length = before;
      await store.close();
    } finally {
      process.env.AWS_SECRET_ACCESS_KEY = saved;
    }
  }, 20_000);
});

if (!MOTO) it.skip(MOTO_MISSING, () => undefined);
