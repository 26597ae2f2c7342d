/**
 * The S3 store against a real S3 server (moto_server, started here): the same conformance suite as the
 * directory and memory stores, plus what only S3 has (conditional puts, byte-exact bodies with the
 * checksum setting of custom endpoints, bounded reads, clear errors).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotFoundError, UsageError } from '../../src/core/errors.js';
import { openStore } from '../../src/stores/registry.js';
import { S3Store } from '../../src/stores/s3-store.js';
import { parseS3Location } from '../../src/stores/s3-location.js';
import { describeStore } from '../stores/store-suite.js';
import { createBucket, MOTO, rawGet, MOTO_MISSING, startMoto, TEST_CREDENTIALS, type Moto } from './moto.js';

Object.assign(process.env, TEST_CREDENTIALS);
delete process.env.AWS_PROFILE;

it('parses s3:// locations and refuses bad ones', () => {
  expect(parseS3Location('s3://bucket-1/a/b/')).toEqual({ bucket: 'bucket-1', prefix: 'a/b/' });
  expect(parseS3Location('s3://bucket-1')).toEqual({ bucket: 'bucket-1', prefix: '' });
  for (const bad of ['s3://', 's3://B', 's3://bucket/../x', 's3://bucket/a//b', 's3://bucket/.hidden', 's3://AK:SK@bucket/x']) {
    expect(() => parseS3Location(bad), bad).toThrow(UsageError);
  }
  expect(() => parseS3Location('s3://AK:SK@bucket/x')).toThrow(/credentials/);
  expect(() => parseS3Location('s3://AK:S/K@bucket/x')).toThrow(/credentials/);
  expect(() => parseS3Location('s3://AK:S/K@bucket/x')).not.toThrow(/S\/K/);
});

describe.skipIf(!MOTO)('S3Store against moto_server', () => {
  let moto: Moto;
  let n = 0;
  const bucket = 'conformance';
  beforeAll(async () => {
    moto = await startMoto();
    await createBucket(moto.endpoint, bucket);
  }, 60_000);
  afterAll(async () => moto?.stop());

  const open = (prefix: string, options = {}) => S3Store.open(`s3://${bucket}/${prefix}`, { endpoint: moto.endpoint, ...options });

  describeStore('S3Store', async () => ({ store: await open(`suite-${++n}-${randomBytes(4).toString('hex')}`) }));

  it('opens through the registry for s3:// and keeps to its prefix', async () => {
    const a = await openStore(`s3://${bucket}/iso/a`, new Map([['s3', (l: string) => S3Store.open(l, { endpoint: moto.endpoint })]]));
    const b = await open('iso/ab');
    await a.put('config', Buffer.from('a'));
    await b.put('config', Buffer.from('b'));
    const listed: string[] = [];
    for await (const e of a.list('')) listed.push(e.key);
    expect(listed).toEqual(['config']);
    expect((await a.get('config')).toString()).toBe('a');
    await a.close();
    await b.close();
  });

  it('stores a 100,000-byte upload byte-exact (no aws-chunked framing, no trailing checksum in the object)', async () => {
    const store = await open('exact');
    const data = randomBytes(100_000);
    await store.put('packs/ab/' + 'ab'.repeat(32), data);
    expect(await store.stat('packs/ab/' + 'ab'.repeat(32))).toEqual({ key: 'packs/ab/' + 'ab'.repeat(32), size: 100_000 });
    // Read it back with another client, not through the store: the server's bytes are ours, exactly.
    const raw = await rawGet(moto.endpoint, bucket, `exact/packs/ab/${'ab'.repeat(32)}`);
    expect(raw.length).toBe(100_000);
    expect(raw.equals(data)).toBe(true);
    await store.close();
  });

  it('writes content-addressed objects with If-None-Match: a second writer never replaces the first', async () => {
    const store = await open('immutable');
    expect(store.capabilities.conditionalPut).toBe(true);
    const key = 'snapshots/' + 'cd'.repeat(32);
    await store.put(key, Buffer.from('first'));
    await store.put(key, Buffer.from('second writer')); // a 412: the object is there already, and stays
    expect((await store.get(key)).toString()).toBe('first');
    // A mutable object (a lock, the config) is replaced as the Store contract says.
    await store.put('locks/abc', Buffer.from('1'));
    await store.put('locks/abc', Buffer.from('2'));
    expect((await store.get('locks/abc')).toString()).toBe('2');
    await store.close();
  });

  it('putNew creates an object once, in one request, and says whether it did', async () => {
    const store = await open('put-new');
    const key = 'packs/ef/' + 'ef'.repeat(32);
    const before = store.requestCounts();
    expect(await store.putNew(key, Buffer.from('mine'))).toBe(true);
    expect(await store.putNew(key, Buffer.from('theirs'))).toBe(false);
    const after = store.requestCounts();
    expect(after.PUT - before.PUT).toBe(2);
    expect(after.HEAD - before.HEAD).toBe(1); // the Object Lock settings, once (no config was read): no HEAD per put
    expect((await store.get(key)).toString()).toBe('mine');
    // A mutable key: has, then put.
    expect(await store.putNew('locks/x', Buffer.from('1'))).toBe(true);
    expect(await store.putNew('locks/x', Buffer.from('2'))).toBe(false);
    await store.close();
  });

  it('refuses an object longer than maxBytes from its length, and counts requests by kind', async () => {
    const store = await open('bounded');
    await store.put('index/x', Buffer.alloc(5000, 1));
    const before = store.requestCounts();
    await expect(store.get('index/x', { maxBytes: 4999 })).rejects.toMatchObject({ code: 'E_CORRUPT' });
    await expect(store.get('index/nope')).rejects.toBeInstanceOf(NotFoundError);
    expect(await store.has('index/nope')).toBe(false);
    const after = store.requestCounts();
    expect(after.GET - before.GET).toBe(2);
    expect(after.HEAD - before.HEAD).toBe(1);
    expect(after.LIST).toBe(0);
    await store.close();
  });

  it('fails clearly for a bucket that does not exist, without retrying', async () => {
    const store = await S3Store.open('s3://no-such-bucket-here/x', { endpoint: moto.endpoint });
    await expect(store.get('config')).rejects.toMatchObject({ code: 'E_NOT_FOUND', message: expect.stringMatching(/bucket does not exist/) });
    expect(store.requestCounts().retries).toBe(0);
    await store.close();
  });
});

if (!MOTO) it.skip(MOTO_MISSING, () => undefined);
