/**
 * Issue 13, "bounded by design": restore and verify --drill of a BLOB that does not compress. Its pack
 * file is as large as the value; it used to be read whole (Store.get) and held while its chunk
 * streamed (477 MB peak for 200 MB). Now the store hands it out in pieces (Store.getPieces, fs and
 * memory stores), restore hashes and measures it in a first pass, and decompresses it again in pieces
 * (src/repository/restore-pack.ts). Real files, the real CLI under GNU time, real zstd and gzip.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X25519Identity } from '../src/codecs/age-keys.js';
import { compress } from '../src/repository/compression.js';
import { FRAME_BYTES, openObjectBytes, openObjectPieces, sealObjectBytes, TAG_BYTES } from '../src/repository/crypto/object-seal.js';
import { decompressFrom } from '../src/repository/restore-pack.js';
import { FsStore } from '../src/stores/fs-store.js';
import { MemoryStore } from '../src/stores/memory-store.js';
import { CLI, cli, makeDb, removeDir, tempDir, withDb } from './export-import/helpers.js';

const MB = 1e6;
let dir: string;
beforeAll(() => {
  expect(fs.existsSync(CLI), 'run `npm run build` first').toBe(true);
  dir = tempDir('huge-pack-read');
});
afterAll(() => removeDir(dir));

/** Runs the CLI under GNU time; returns its exit code, stderr and peak RSS in bytes. */
function timedCli(args: string[]): { code: number | null; stderr: string; rss: number } {
  const rssFile = path.join(dir, 'rss.txt');
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', rssFile, process.execPath, CLI, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stderr: r.stderr, rss: Number(fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop()) * 1024 };
}

/** Every row of t: id, type, length and SHA-256 of v, and note. */
function digest(file: string): string[] {
  return withDb(file, (db) =>
    (db.prepare('SELECT id, typeof(v), v, note FROM t ORDER BY id').raw().all() as unknown[][]).map(
      ([id, type, v, note]) => `${String(id)} ${String(type)} ${(v as Buffer).length} ${createHash('sha256').update(v as Buffer).digest('hex')} ${String(note)}`,
    ),
  );
}

/** A database of one random BLOB of `bytes` bytes amid two small rows, backed up into a new repository. */
function backedUp(name: string, bytes: number, compression = 'zstd', env?: NodeJS.ProcessEnv): { source: string; repo: string } {
  const source = makeDb(path.join(dir, `${name}.db`), (db) => {
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB, note TEXT)');
    db.prepare("INSERT INTO t VALUES (1, x'01', 'before')").run();
    db.prepare('INSERT INTO t VALUES (2, randomblob(?), ?)').run(bytes, 'after the value');
    db.prepare("INSERT INTO t VALUES (3, x'00', NULL)").run();
  });
  const repo = path.join(dir, `${name}-repo`);
  expect(cli(['init', repo, '--compression', compression, ...(env ? ['--encrypt'] : []), '-q'], { env }).code).toBe(0);
  const b = cli(['backup', source, '--repo', repo, '-q'], { env });
  expect(b.code, b.stderr).toBe(0);
  return { source, repo };
}

/** The largest pack file of a repository. */
function largestPack(repo: string): string {
  const files = fs.readdirSync(path.join(repo, 'packs'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
  return files.sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0]!;
}

describe('a 200 MB BLOB that does not compress', () => {
  const VALUE = 200 * MB;
  /** Issue 13's bound: 1.5 × the value + 100 MB (measured: 303 MB restore, 298 MB drill; before: 477 MB). */
  const BOUND = 1.5 * VALUE + 100 * MB;

  it('restores and passes verify --drill exactly within 1.5x + 100 MB, its pack read in pieces', () => {
    const { source, repo } = backedUp('big', VALUE);
    expect(fs.statSync(largestPack(repo)).size).toBeGreaterThan(VALUE); // hex of random bytes: zstd halves it, no more
    const into = path.join(dir, 'big-restored.db');
    const r = timedCli(['restore', 'latest', '--repo', repo, '--into', into, '-q']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(digest(into)).toEqual(digest(source));
    expect(r.rss).toBeLessThan(BOUND);
    const d = timedCli(['verify', '--repo', repo, '--drill', '-q']);
    expect(d.stderr).toBe('');
    expect(d.code).toBe(0);
    expect(d.rss).toBeLessThan(BOUND);
    fs.rmSync(into);
  }, 240_000);
});

describe('a huge pack read in pieces is checked as one read whole', () => {
  for (const compression of ['zstd', 'gzip', 'none']) {
    it(`${compression}: restores exactly; one byte changed in the middle is E_CORRUPT and nothing is written`, () => {
      const { source, repo } = backedUp(`damaged-${compression}`, 40 * MB, compression);
      const pack = largestPack(repo);
      expect(fs.statSync(pack).size).toBeGreaterThan(32 << 20); // read in pieces (STREAMED_PACK_FILE_BYTES)
      const good = path.join(dir, `good-${compression}.db`);
      const ok = cli(['restore', 'latest', '--repo', repo, '--into', good, '-q']);
      expect(ok.code, ok.stderr).toBe(0);
      expect(digest(good)).toEqual(digest(source));

      const fd = fs.openSync(pack, 'r+');
      const at = Math.floor(fs.statSync(pack).size / 2);
      const byte = Buffer.alloc(1);
      fs.readSync(fd, byte, 0, 1, at);
      byte[0] ^= 0x20;
      fs.writeSync(fd, byte, 0, 1, at);
      fs.closeSync(fd);
      const out = path.join(dir, `damaged-out-${compression}`);
      fs.mkdirSync(out);
      const r = cli(['restore', 'latest', '--repo', repo, '--into', path.join(out, 'app.db')], { env: { ...process.env, NO_COLOR: '1' } });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/^scriptorium: error E_CORRUPT: /m);
      // the pack's hash finds it, or gzip's own check first (its CRC, its codes)
      expect(r.stderr).toMatch(compression === 'gzip' ? /does not match its name|cannot decompress/ : /does not match its name/);
      expect(r.stderr).not.toMatch(/looks like a bug|E_INTERNAL/);
      expect(fs.readdirSync(out)).toEqual([]);
    }, 120_000);
  }
});

describe('an encrypted repository: a huge pack is opened frame by frame', () => {
  const env = { ...process.env, NO_COLOR: '1', SCRIPTORIUM_PASSWORD: 'correct horse battery staple' };

  it('restores exactly; one byte changed in the middle is E_AUTH, nothing of it used, nothing written', () => {
    const { source, repo } = backedUp('sealed', 40 * MB, 'zstd', env);
    const pack = largestPack(repo);
    expect(fs.statSync(pack).size).toBeGreaterThan(32 << 20);
    const good = path.join(dir, 'sealed-good.db');
    const ok = cli(['restore', 'latest', '--repo', repo, '--into', good, '-q'], { env });
    expect(ok.code, ok.stderr).toBe(0);
    expect(digest(good)).toEqual(digest(source));

    const fd = fs.openSync(pack, 'r+');
    const at = Math.floor(fs.statSync(pack).size / 2);
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, at);
    byte[0] ^= 0x01;
    fs.writeSync(fd, byte, 0, 1, at);
    fs.closeSync(fd);
    const out = path.join(dir, 'sealed-out');
    fs.mkdirSync(out);
    const r = cli(['restore', 'latest', '--repo', repo, '--into', path.join(out, 'app.db')], { env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^scriptorium: error E_AUTH: .*does not authenticate \(frame \d+\)/m);
    expect(r.stderr).not.toMatch(/looks like a bug|E_INTERNAL/);
    expect(fs.readdirSync(out)).toEqual([]);
  }, 120_000);

  it('openObjectPieces opens what openObjectBytes opens, for any cut, and refuses what it refuses', async () => {
    const repo = 'a'.repeat(32);
    const name = `packs/${'b'.repeat(64)}`;
    const { identity } = X25519Identity.generate();
    const keys = [
      [{ kind: 'secret' as const, secret: randomBytes(32) }, { kind: 'secret' as const, secret: Buffer.alloc(0) }],
      [{ kind: 'recipient' as const, recipient: identity.recipient }, { kind: 'identity' as const, identity }],
    ] as const;
    async function* cut(data: Buffer, size: number): AsyncGenerator<Buffer> {
      const piece = Buffer.alloc(size);
      for (let at = 0; at < data.length; at += size) yield piece.subarray(0, data.copy(piece, 0, at, at + size));
    }
    const open = async (sealed: Buffer, size: number, key: Parameters<typeof openObjectBytes>[3], total = sealed.length): Promise<Buffer> => {
      const out: Buffer[] = [];
      for await (const p of openObjectPieces(cut(sealed, size), total, repo, name, key)) out.push(Buffer.from(p));
      return Buffer.concat(out);
    };
    for (const [seal, openKeyOf] of keys) {
      const openKey = openKeyOf.kind === 'secret' ? { kind: 'secret' as const, secret: (seal as { secret: Buffer }).secret } : openKeyOf;
      for (const bytes of [0, 1, FRAME_BYTES, 3 * FRAME_BYTES + 17]) {
        const plain = randomBytes(bytes);
        const sealed = sealObjectBytes(plain, repo, name, seal);
        expect(openObjectBytes(sealed, repo, name, openKey).equals(plain)).toBe(true);
        for (const size of [1, 7, FRAME_BYTES + TAG_BYTES, 1 << 20]) {
          if (size === 1 && bytes > FRAME_BYTES) continue; // (byte by byte through 200 KB: slow, and no new case)
          expect((await open(sealed, size, openKey)).equals(plain), `${bytes} in pieces of ${size}`).toBe(true);
        }
        await expect(open(sealed.subarray(0, sealed.length - 1), 4096, openKey)).rejects.toMatchObject({ code: 'E_AUTH' });
        await expect(open(Buffer.concat([sealed, Buffer.alloc(1)]), 4096, openKey)).rejects.toMatchObject({ code: 'E_AUTH' });
        await expect(open(sealed, 4096, openKey, sealed.length - 1)).rejects.toMatchObject({ code: 'E_AUTH' }); // it grew after it was measured
        const flipped = Buffer.from(sealed);
        flipped[flipped.length - 3] ^= 1;
        await expect(open(flipped, 4096, openKey)).rejects.toMatchObject({ code: 'E_AUTH' });
      }
    }
  }, 60_000);
});

describe('Store.getPieces', () => {
  const KEY = `packs/ab/ab${'c'.repeat(62)}`;

  for (const [name, make] of [
    ['FsStore', () => new FsStore(tempDir('pieces'))],
    ['MemoryStore', () => new MemoryStore()],
  ] as const) {
    it(`${name}: the object's bytes in pieces of at most pieceBytes; get's checks first`, async () => {
      const store = make();
      const data = randomBytes(1_000_003);
      await store.put(KEY, data);
      const pieces: Buffer[] = [];
      for await (const piece of store.getPieces!(KEY, { pieceBytes: 65_536 })) {
        expect(piece.length).toBeLessThanOrEqual(65_536);
        pieces.push(Buffer.from(piece)); // a view valid until the next piece
      }
      expect(Buffer.concat(pieces).equals(data)).toBe(true);
      const all = async (key: string, maxBytes?: number) => {
        for await (const _ of store.getPieces!(key, { maxBytes })) void _;
      };
      await expect(all(KEY, 1_000_000)).rejects.toMatchObject({ code: 'E_CORRUPT' });
      await expect(all(`packs/ab/ab${'d'.repeat(62)}`)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
      await store.close();
    });
  }

  it('FsStore: a FIFO or a link at the key is refused at once, never opened or followed', async () => {
    const root = tempDir('pieces-closed');
    fs.mkdirSync(path.join(root, 'packs', 'ab'), { recursive: true });
    const store = new FsStore(root);
    expect(spawnSync('mkfifo', [path.join(root, KEY)]).status).toBe(0);
    const all = async () => {
      for await (const _ of store.getPieces!(KEY)) void _;
    };
    await expect(all()).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringMatching(/FIFO/) });
    fs.rmSync(path.join(root, KEY));
    const outside = path.join(dir, 'outside-pack');
    fs.writeFileSync(outside, 'not yours');
    fs.symlinkSync(outside, path.join(root, KEY));
    await expect(all()).rejects.toMatchObject({ code: 'E_CORRUPT' });
    await store.close();
  }, 10_000);
});

describe('decompressFrom: a body decompressed from pieces', () => {
  const body = Buffer.concat([randomBytes(3 << 20), Buffer.alloc(5 << 20, 'x'), randomBytes(1 << 20)]);

  /** `data` cut into views of one reused buffer, as a store hands them out. */
  async function* reused(data: Buffer, size: number): AsyncGenerator<Buffer> {
    const piece = Buffer.alloc(size);
    for (let at = 0; at < data.length; at += size) {
      const n = data.copy(piece, 0, at, at + size);
      yield piece.subarray(0, n);
    }
  }

  async function all(pieces: AsyncIterable<Buffer>): Promise<Buffer> {
    const out: Buffer[] = [];
    for await (const p of pieces) {
      expect(p.length).toBeLessThanOrEqual(1 << 20);
      out.push(Buffer.from(p));
    }
    return Buffer.concat(out);
  }

  it.each([
    ['zstd', 2, async () => compress(body, 'zstd')],
    ['gzip', 1, async () => gzipSync(body)],
    ['none', 0, async () => body],
  ] as const)('%s: the same bytes, for any cut of its input', async (_name, id, make) => {
    const compressed = await make();
    for (const size of [1, 7, 65_536, 4 << 20]) {
      if (size < 1000 && id !== 2) continue; // (byte-sized pieces through gzip's stream take long; zstd's loop is the one at risk)
      const input = size < 1000 ? compressed.subarray(0, 300_000) : compressed;
      const got = await all(decompressFrom(reused(input, size), () => id, 'pack test')).catch((err: unknown) => err);
      if (size < 1000) {
        expect(got).toMatchObject({ code: 'E_CORRUPT', message: expect.stringMatching(/truncated/) }); // a prefix only
      } else {
        expect((got as Buffer).equals(body), `pieces of ${size}`).toBe(true);
      }
    }
  }, 60_000);

  it('a damaged or truncated zstd or gzip body is E_CORRUPT, and an unknown codec too', async () => {
    const z = await compress(body, 'zstd');
    const damaged = Buffer.from(z);
    damaged[0] ^= 0xff; // its magic (zstd stores random bytes raw: a change there is for the pack's hash to find)
    await expect(all(decompressFrom(reused(damaged, 65_536), () => 2, 'pack d'))).rejects.toMatchObject({ code: 'E_CORRUPT' });
    await expect(all(decompressFrom(reused(z.subarray(0, z.length - 10), 65_536), () => 2, 'pack t'))).rejects.toMatchObject({ code: 'E_CORRUPT' });
    const g = gzipSync(body);
    await expect(all(decompressFrom(reused(g.subarray(0, g.length - 10), 65_536), () => 1, 'pack g'))).rejects.toMatchObject({ code: 'E_CORRUPT' });
    await expect(all(decompressFrom(reused(body, 65_536), () => 9, 'pack u'))).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringMatching(/unknown codec/) });
  }, 60_000);
});
