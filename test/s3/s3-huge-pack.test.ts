/**
 * Issue 13's huge pack (one ending in a BLOB that does not compress) restored from an S3 repository:
 * read in ranged GETs of bounded size, never in one GET of the whole file, with restore's checks of a
 * pack read in pieces (its name when it ends: one byte changed is E_CORRUPT and nothing is written).
 * The real CLI against moto_server behind the counting proxy.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../src/stores/s3-store.js';
import { cliAsync } from '../export-import/helpers.js';
import { tempDir } from '../repository/helpers.js';
import { FaultProxy } from './fault-proxy.js';
import { createBucket, MOTO, MOTO_MISSING, startMoto, TEST_CREDENTIALS, type Moto } from './moto.js';

Object.assign(process.env, TEST_CREDENTIALS);
delete process.env.AWS_PROFILE;

const MB = 1e6;
/** restore-pack.ts: a pack file this large is read in pieces of 4 MiB. */
const STREAMED = 32 << 20;
const PIECE = 4 << 20;

function digest(file: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT id, typeof(v), v, note FROM t ORDER BY id').raw().all() as unknown[][]).map(
      ([id, type, v, note]) => `${String(id)} ${String(type)} ${(v as Buffer).length} ${createHash('sha256').update(v as Buffer).digest('hex')} ${String(note)}`,
    );
  } finally {
    db.close();
  }
}

/** A database whose one random BLOB of `mb` MB, between two small rows, makes a pack too large to read whole. */
function bigDb(dir: string, mb: number): string {
  const source = path.join(dir, 'big.db');
  const db = new Database(source);
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB, note TEXT)');
  db.prepare("INSERT INTO t VALUES (1, x'01', 'before')").run();
  db.prepare('INSERT INTO t VALUES (2, randomblob(?), ?)').run(mb * MB, 'after the value');
  db.prepare("INSERT INTO t VALUES (3, x'00', NULL)").run();
  db.close();
  return source;
}

describe.skipIf(!MOTO)('a huge pack restored from S3', () => {
  let moto: Moto;
  let proxy: FaultProxy;
  beforeAll(async () => {
    moto = await startMoto();
    await createBucket(moto.endpoint, 'huge');
    proxy = await FaultProxy.start(moto.endpoint, TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
  }, 60_000);
  afterAll(async () => {
    await proxy?.stop();
    await moto?.stop();
  });

  it('is read in ranged GETs of at most 4 MiB, restores exactly, and one byte changed is E_CORRUPT with nothing written', async () => {
    const dir = tempDir('s3-huge-pack');
    const source = bigDb(dir, 40);
    const prefix = `huge-${randomBytes(3).toString('hex')}`;
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', SCRIPTORIUM_REPO: `s3://huge/${prefix}`, AWS_ENDPOINT_URL_S3: proxy.endpoint, SCRIPTORIUM_CACHE_DIR: path.join(dir, 'cache') };
    const run = (args: string[]) => cliAsync(args, { env, cwd: dir });
    expect((await run(['init', '--compression', 'none', '-q'])).code).toBe(0);
    const b = await run(['backup', source, '--json']);
    expect(b.code, b.stderr).toBe(0);
    const snap = JSON.parse(b.stdout) as { packs: string[] };

    const store = await S3Store.open(`s3://huge/${prefix}`, { endpoint: moto.endpoint, cacheDir: false, immutablePrefixes: [] });
    const sizes = await Promise.all(snap.packs.map(async (h) => ({ key: `packs/${h.slice(0, 2)}/${h}`, size: (await store.stat(`packs/${h.slice(0, 2)}/${h}`)).size })));
    const huge = sizes.sort((x, y) => y.size - x.size)[0]!;
    expect(huge.size).toBeGreaterThan(STREAMED);

    const start = proxy.seen.length;
    const into = path.join(dir, 'back.db');
    const r = await run(['restore', 'latest', '--into', into, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(digest(into)).toEqual(digest(source));
    const gets = proxy.seen.slice(start).filter((q) => q.kind === 'GET' && q.key.endsWith(huge.key));
    const ranges = gets.map((q) => q.headers.range).filter((x): x is string => typeof x === 'string');
    // Every read of the huge pack asks for a bounded range (a read-ahead asks for the whole file and
    // is refused from its length before its body is read); the pieces cover it, read twice (measure, then load).
    for (const range of ranges) {
      const [a, z] = /^bytes=(\d+)-(\d+)$/.exec(range)!.slice(1).map(Number);
      expect(z! - a! + 1).toBeLessThanOrEqual(PIECE);
    }
    expect(ranges.length).toBeGreaterThanOrEqual(2 * Math.ceil(huge.size / PIECE));
    expect(gets.length - ranges.length).toBeLessThanOrEqual(1);

    // One byte changed in the middle of the huge pack (by a writer that replaces objects).
    const bytes = Buffer.from(await store.get(huge.key));
    bytes[Math.floor(bytes.length / 2)] ^= 0x20;
    await store.put(huge.key, bytes);
    await store.close();
    const out = path.join(dir, 'out');
    fs.mkdirSync(out);
    const bad = await run(['restore', 'latest', '--into', path.join(out, 'app.db')]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/^scriptorium: error E_CORRUPT: .*does not match its name/m);
    expect(bad.stderr).not.toMatch(/looks like a bug|E_INTERNAL/);
    expect(fs.readdirSync(out)).toEqual([]);
  }, 180_000);

  it('in a gzip repository: backup, restore and verify --read-data of a 100 MB value stay under 1.5x it + 100 MB, exactly', async () => {
    const dir = tempDir('s3-huge-gzip');
    // 100 MB, not 40: the SDK and its sockets cost an S3 command ~15-25 MB of heap that a local one does
    // not have, a constant that at 40 MB left restore 149-166 MB against a bound of 160 (measured), so
    // the test would have failed on noise rather than on a value held twice. 100 MB: 210-216 of 250.
    const value = 100;
    const source = bigDb(dir, value);
    const tmp = path.join(dir, 'tmp');
    fs.mkdirSync(tmp);
    const prefix = `gzip-${randomBytes(3).toString('hex')}`;
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', TMPDIR: tmp, SCRIPTORIUM_REPO: `s3://huge/${prefix}`, AWS_ENDPOINT_URL_S3: proxy.endpoint, SCRIPTORIUM_CACHE_DIR: path.join(dir, 'cache') };
    const bound = 1.5 * value * MB + 100 * MB;
    expect((await cliAsync(['init', '--compression', 'gzip', '-q'], { env, cwd: dir })).code).toBe(0);
    const backup = await timedCliAsync(['backup', source, '-q'], env, dir);
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.rss, 'backup peak RSS').toBeLessThan(bound);
    const into = path.join(dir, 'back.db');
    const restore = await timedCliAsync(['restore', 'latest', '--into', into, '-q'], env, dir);
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.rss, 'restore peak RSS').toBeLessThan(bound);
    expect(digest(into)).toEqual(digest(source));
    const verify = await timedCliAsync(['verify', '--read-data', '-q'], env, dir);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.rss, 'verify --read-data peak RSS').toBeLessThan(bound);
    expect(fs.readdirSync(tmp)).toEqual([]);
  }, 180_000);
});

/** The CLI under GNU time, asynchronously (the proxy answers in this process): exit code, stderr, peak RSS in bytes. */
function timedCliAsync(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number | null; stderr: string; rss: number }> {
  const rssFile = path.join(cwd, `rss-${args[0]}.txt`);
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '%M', '-o', rssFile, process.execPath, path.resolve('dist/cli/main.js'), ...args], { env, cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr, rss: Number(fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop()) * 1024 }));
  });
}

if (!MOTO) it.skip(MOTO_MISSING, () => undefined);
