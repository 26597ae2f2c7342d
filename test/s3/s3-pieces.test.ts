/**
 * The S3 store's reads in pieces (ranged GETs, for restore's huge packs) and its uploads from a file
 * (the backup's native packer writes pack files that never enter the process's memory), against
 * moto_server behind the fault-injecting proxy, which shows what goes over the wire.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { S3Store } from '../../src/stores/s3-store.js';
import { FaultProxy, type Fault, type SeenRequest } from './fault-proxy.js';
import { createBucket, MOTO, rawGet, startMoto, TEST_CREDENTIALS, type Moto } from './moto.js';

Object.assign(process.env, TEST_CREDENTIALS);
delete process.env.AWS_PROFILE;

describe.skipIf(!MOTO)('S3Store: ranged reads in pieces, uploads from a file', () => {
  let moto: Moto;
  let proxy: FaultProxy;
  const bucket = 'pieces';
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'scriptorium-s3-pieces-'));
  beforeAll(async () => {
    moto = await startMoto();
    await createBucket(moto.endpoint, bucket);
    proxy = await FaultProxy.start(moto.endpoint, TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
  }, 60_000);
  afterAll(async () => {
    await proxy?.stop();
    await moto?.stop();
    fs.rmSync(cacheDir, { recursive: true, force: true });
  });
  beforeEach(() => proxy.clearFaults());

  let n = 0;
  const open = (prefix = `p${++n}-${randomBytes(3).toString('hex')}`, options = {}) => S3Store.open(`s3://${bucket}/${prefix}`, {
    endpoint: proxy.endpoint, timeoutMs: 800, retry: { baseMs: 5, capMs: 50 }, cacheDir, ...options,
  });
  const packKey = (data: Buffer) => { const h = createHash('sha256').update(data).digest('hex'); return `packs/${h.slice(0, 2)}/${h}`; };
  const mine = (key: string, kind: SeenRequest['kind'], from: number) => proxy.seen.slice(from).filter((r) => r.kind === kind && r.key.endsWith(key));
  const readAll = async (store: S3Store, key: string, pieceBytes: number): Promise<Buffer> => {
    const pieces: Buffer[] = [];
    for await (const piece of store.getPieces(key, { pieceBytes })) {
      expect(piece.length).toBeLessThanOrEqual(pieceBytes);
      pieces.push(Buffer.from(piece));
    }
    return Buffer.concat(pieces);
  };

  it('reads an object in ranged GETs of at most pieceBytes, one a piece, the later ones tied to the first one\'s ETag', async () => {
    const store = await open();
    const data = randomBytes(10_000);
    const key = packKey(data);
    await store.put(key, data);
    const before = store.requestCounts();
    const from = proxy.seen.length;
    expect((await readAll(store, key, 3000)).equals(data)).toBe(true);
    const gets = mine(key, 'GET', from);
    expect(gets.map((r) => r.headers.range)).toEqual(['bytes=0-2999', 'bytes=3000-5999', 'bytes=6000-8999', 'bytes=9000-11999']);
    expect(gets[0]!.headers['if-match']).toBeUndefined();
    expect(new Set(gets.slice(1).map((r) => r.headers['if-match']))).toEqual(new Set([`"${createHash('md5').update(data).digest('hex')}"`]));
    expect(store.requestCounts()).toMatchObject({ GET: before.GET + 4, HEAD: before.HEAD });
    // Its size is known now: restore's stat before reading a pack in pieces costs no HEAD.
    expect(await store.stat(key)).toEqual({ key, size: 10_000 });
    expect(store.requestCounts().HEAD).toBe(before.HEAD);
    await store.close();
  });

  const faults: [string, Fault][] = [
    ['503 SlowDown', { kind: 'status', status: 503, code: 'SlowDown' }],
    ['an answer slower than the timeout', { kind: 'slow', ms: 2000 }],
    ['a body cut short', { kind: 'truncate-body' }],
  ];
  for (const [name, fault] of faults) {
    it(`a piece that meets ${name} is asked for again on its own, and the bytes are exact`, async () => {
      const store = await open();
      const data = randomBytes(50_000);
      const key = packKey(data);
      await store.put(key, data);
      proxy.inject((r) => r.kind === 'GET' && r.key.endsWith(key) && r.headers.range === 'bytes=20000-39999', fault, 2);
      const from = proxy.seen.length;
      expect((await readAll(store, key, 20_000)).equals(data)).toBe(true);
      expect(store.requestCounts().retries).toBe(2);
      expect(mine(key, 'GET', from).map((r) => r.headers.range)).toEqual(['bytes=0-19999', 'bytes=20000-39999', 'bytes=20000-39999', 'bytes=20000-39999', 'bytes=40000-59999']);
      await store.close();
    }, 20_000);
  }

  it('an object replaced or removed while it is read in pieces is E_CORRUPT, never a mix of two', async () => {
    const prefix = `replaced-${randomBytes(3).toString('hex')}`;
    const store = await open(prefix);
    // A writer that replaces objects (no If-None-Match), as only a damaged or hostile one would.
    const other = await open(prefix, { immutablePrefixes: [] });
    const key = 'packs/ab/abcdef';
    for (const change of ['replace', 'remove'] as const) {
      await other.put(key, Buffer.alloc(30_000, 1));
      const pieces = store.getPieces(key, { pieceBytes: 10_000 })[Symbol.asyncIterator]();
      expect((await pieces.next()).value).toEqual(Buffer.alloc(10_000, 1));
      if (change === 'replace') await other.put(key, Buffer.alloc(30_000, 2));
      else await other.delete(key);
      await expect(pieces.next()).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringMatching(/changed while it was read/) });
    }
    await store.close();
    await other.close();
  });

  it('refuses an object longer than maxBytes from its first answer\'s Content-Range, before reading its body', async () => {
    const store = await open();
    const data = randomBytes(40_000);
    const key = packKey(data);
    await store.put(key, data);
    const from = proxy.seen.length;
    const read = async () => {
      for await (const _ of store.getPieces(key, { pieceBytes: 10_000, maxBytes: 39_999 })) void _;
    };
    await expect(read()).rejects.toMatchObject({ code: 'E_CORRUPT' });
    expect(mine(key, 'GET', from).length).toBe(1);
    await store.close();
  });

  it('uploads a pack file from the disk in one conditional PUT, removes it, and keeps its folder only while open', async () => {
    const store = await open();
    await store.objectLock(); // the repository's settings, which opening it reads with its config
    const prefix = store.tempPrefix();
    const folder = path.dirname(prefix);
    expect(folder.startsWith(path.join(cacheDir, 'upload'))).toBe(true);
    expect(fs.statSync(folder).mode & 0o777).toBe(0o700);
    const data = randomBytes(300_000);
    const key = packKey(data);
    fs.writeFileSync(`${prefix}0`, data);
    const from = proxy.seen.length;
    expect(await store.putFileNew(key, `${prefix}0`)).toBe(true);
    const puts = mine(key, 'PUT', from);
    expect(puts.length).toBe(1);
    expect(puts[0]!.headers['if-none-match']).toBe('*');
    expect(puts[0]!.headers['content-md5']).toBe(createHash('md5').update(data).digest('base64'));
    expect(store.requestCounts()).toMatchObject({ PUT: 1, HEAD: 1 });
    expect(fs.existsSync(`${prefix}0`)).toBe(false);
    expect((await rawGet(moto.endpoint, bucket, `${store.location.slice(`s3://${bucket}/`.length)}/${key}`)).equals(data)).toBe(true);
    // The same pack again (another backup wrote it meanwhile): not created, still one request.
    fs.writeFileSync(`${prefix}1`, data);
    expect(await store.putFileNew(key, `${prefix}1`)).toBe(false);
    expect(store.requestCounts()).toMatchObject({ PUT: 2, HEAD: 1 });
    // An empty file is an empty object.
    fs.writeFileSync(`${prefix}2`, '');
    expect(await store.putFileNew('packs/00/empty', `${prefix}2`)).toBe(true);
    expect((await store.get('packs/00/empty')).length).toBe(0);
    // Never a file that is not one of its own temporaries (and that file is left alone).
    const elsewhere = path.join(cacheDir, 'not-a-temporary');
    fs.writeFileSync(elsewhere, data);
    await expect(store.putFile(key, elsewhere)).rejects.toBeInstanceOf(TypeError);
    await store.close();
    expect(fs.existsSync(folder)).toBe(false);
    fs.rmSync(elsewhere);
  });

  it('an upload that keeps failing leaves no object and no file; a retried one is exact', async () => {
    const store = await open();
    const data = randomBytes(100_000);
    const key = packKey(data);
    const file = `${store.tempPrefix()}0`;
    fs.writeFileSync(file, data);
    proxy.inject((r) => r.kind === 'PUT' && r.key.endsWith(key), { kind: 'drop-upload' }, 2);
    expect(await store.putFileNew(key, file)).toBe(true);
    expect(store.requestCounts().retries).toBe(2);
    expect((await rawGet(moto.endpoint, bucket, `${store.location.slice(`s3://${bucket}/`.length)}/${key}`)).equals(data)).toBe(true);
    const other = randomBytes(1000);
    const otherKey = packKey(other);
    const file2 = `${store.tempPrefix()}0`;
    fs.writeFileSync(file2, other);
    proxy.inject((r) => r.kind === 'PUT' && r.key.endsWith(otherKey), { kind: 'status', status: 500, code: 'InternalError' }, Infinity);
    await expect(store.putFileNew(otherKey, file2)).rejects.toMatchObject({ code: 'E_IO' });
    expect(fs.existsSync(file2)).toBe(false);
    expect(await store.has(otherKey)).toBe(false);
    await store.close();
  }, 30_000);

  it('removes the upload folders of processes on this host that no longer run', async () => {
    const first = await open();
    const root = path.dirname(path.dirname(first.tempPrefix()));
    await first.close();
    const { HOST_TAG } = await import('../../src/core/atomic-file.js');
    // A pid that is not running: a child that has exited.
    const { spawnSync } = await import('node:child_process');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const leftover = path.join(root, `scriptorium-upload-${dead}-h${HOST_TAG}-abcdef`);
    const live = path.join(root, `scriptorium-upload-${process.ppid}-h${HOST_TAG}-abcdef`);
    for (const dir of [leftover, live]) {
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'p0-1'), 'a pack file of a killed backup');
    }
    const store = await open();
    store.tempPrefix();
    expect(fs.existsSync(leftover)).toBe(false);
    expect(fs.existsSync(live)).toBe(true);
    await store.close();
    fs.rmSync(live, { recursive: true, force: true });
  });
});
