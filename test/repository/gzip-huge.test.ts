/**
 * Issue 13, "bounded by design", for repositories of gzip and of no compression: a value whose row
 * outgrows 16 MiB of encoding goes through backup, restore and verify (--read-data, --drill) without
 * being held whole, as in a zstd repository. In a gzip repository the extension's packer fills packs
 * of codec none and they are gzipped in pieces (src/repository/gzip-pack.ts); verify reads a pack
 * ending in such a chunk in pieces (StreamingPackCache). Real SQLite files, the real CLI in child
 * processes, peak RSS under GNU time; and a gzip bomb in a pack is refused in bounded memory.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createGunzip, gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/repository/object-file.js';
import { CLI, cli, makeDb, removeDir, tempDir, withDb } from '../export-import/helpers.js';
import { objectFiles, renamePackEverywhere } from '../fuzz/mutations.js';

const MB = 1e6;
/** The value: 32 MB of random bytes, 64 MB as the row's hex encoding (past the 16 MiB spill threshold). */
const VALUE = 32 * MB;
/**
 * A loose bound for this value, robust on a loaded machine: 200 MB. Before, a gzip repository's backup
 * held every chunk (about 9 × the value: 1.9 GB for 200 MB), its restore and verify --read-data held
 * the pack whole (238 MB and 226 MB here); now each is about what a zstd repository needs (115-170 MB
 * measured here, most of it the loader's one copy of the value and Node itself). At 200 MB the issue's
 * 1.5 × the value + 100 MB holds with room (at most 150 MB measured).
 */
const BOUND = 200 * MB;
const PASSWORD = 'correct horse battery staple';

let dir: string;
/** The children's TMPDIR: where the packer's and gzip's temporary files go (unnamed: it must stay empty). */
let tmp: string;
let source: string;

beforeAll(() => {
  expect(fs.existsSync(CLI), 'run `npm run build` first').toBe(true);
  dir = tempDir('gzip-huge');
  tmp = path.join(dir, 'tmp');
  fs.mkdirSync(tmp);
  source = makeDb(path.join(dir, 'huge.db'), (db) => {
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v, note TEXT)');
    const put = db.prepare('INSERT INTO t VALUES (?, ?, ?)');
    for (let i = 1; i <= 200; i++) put.run(i, `small ${i}`, 'x'.repeat(i % 40));
    db.prepare('INSERT INTO t VALUES (201, randomblob(?), ?)').run(VALUE, 'the value');
    for (let i = 202; i <= 400; i++) put.run(i, i * 7, null);
  });
}, 120_000);
afterAll(() => removeDir(dir));

function env(encrypted: boolean, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, NO_COLOR: '1', TMPDIR: tmp, ...(encrypted ? { SCRIPTORIUM_PASSWORD: PASSWORD } : {}), ...extra };
}

/** Runs the CLI under GNU time; returns its exit code, stdout, stderr and peak RSS in bytes. */
function timedCli(args: string[], childEnv: NodeJS.ProcessEnv): { code: number | null; stdout: string; stderr: string; rss: number } {
  const rssFile = path.join(dir, 'rss.txt');
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', rssFile, process.execPath, CLI, ...args], { encoding: 'utf8', env: childEnv, maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, rss: Number(fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop()) * 1024 };
}

/** Every row of t: id, type, length and SHA-256 of v's bytes, and note, read with plain SQL. */
function digest(file: string): string[] {
  return withDb(file, (db) =>
    (db.prepare('SELECT id, typeof(v), CAST(v AS BLOB), note FROM t ORDER BY id').raw().all() as unknown[][]).map(
      ([id, type, v, note]) => `${String(id)} ${String(type)} ${v === null ? 'null' : `${(v as Buffer).length} ${createHash('sha256').update(v as Buffer).digest('hex')}`} ${String(note)}`,
    ),
  );
}

/** The largest file in a repository's packs/. */
function largestPack(repo: string): string {
  return objectFiles(repo, 'packs').sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0]!;
}

/** The bytes a gzip stream expands to, decompressed in pieces (throws when it is not one). */
async function gunzipLength(data: Buffer): Promise<number> {
  const gunzip = createGunzip();
  gunzip.end(data);
  let length = 0;
  for await (const piece of gunzip) length += (piece as Buffer).length;
  return length;
}

describe('a huge value in a gzip, an uncompressed and an encrypted gzip repository', () => {
  const modes = [
    { name: 'gzip', init: ['--compression', 'gzip'], encrypted: false, codec: 1 },
    { name: 'none', init: ['--compression', 'none'], encrypted: false, codec: 0 },
    { name: 'gzip+encrypted', init: ['--compression', 'gzip', '--encrypt'], encrypted: true, codec: undefined },
  ] as const;
  for (const mode of modes) {
    it(`${mode.name}: backup, restore, verify --read-data and --drill each in bounded memory, the round trip exact`, async () => {
      const repo = path.join(dir, `repo-${mode.name.replace('+', '-')}`);
      const e = env(mode.encrypted);
      expect(cli(['init', repo, ...mode.init, '-q'], { env: e }).code).toBe(0);
      const b = timedCli(['backup', source, '--repo', repo, '-q'], e);
      expect(b.code, b.stderr).toBe(0);
      expect(b.stderr).toBe('');
      expect(b.rss, 'backup peak RSS').toBeLessThan(BOUND);
      expect(fs.readdirSync(tmp)).toEqual([]);

      const pack = fs.readFileSync(largestPack(repo));
      if (mode.codec !== undefined) {
        // The documented pack: magic, codec byte, then (gzip) one valid gzip stream of the body.
        expect(pack.subarray(0, 8).toString('latin1')).toBe('SCRPACK1');
        expect(pack[8]).toBe(mode.codec);
        const body = mode.codec === 1 ? await gunzipLength(pack.subarray(9)) : pack.length - 9;
        expect(body).toBeGreaterThan(2 * VALUE); // the value's row, as hex
        if (mode.codec === 1) expect(pack.length).toBeLessThan(body); // compressed (hex: about half)
      }

      const into = path.join(dir, `restored-${mode.name}.db`);
      const r = timedCli(['restore', 'latest', '--repo', repo, '--into', into, '-q'], e);
      expect(r.code, r.stderr).toBe(0);
      expect(r.rss, 'restore peak RSS').toBeLessThan(BOUND);
      expect(digest(into)).toEqual(digest(source));
      fs.rmSync(into);

      const v = timedCli(['verify', '--repo', repo, '--read-data', '--json'], e);
      expect(v.code, v.stderr).toBe(0);
      expect(JSON.parse(v.stdout)).toMatchObject({ problems: [] });
      expect(v.rss, 'verify --read-data peak RSS').toBeLessThan(BOUND);

      const d = timedCli(['verify', '--repo', repo, '--drill', '-q'], e);
      expect(d.code, d.stderr).toBe(0);
      expect(d.rss, 'verify --drill peak RSS').toBeLessThan(BOUND);
      expect(fs.readdirSync(tmp)).toEqual([]);
    }, 300_000);
  }

  it('gzip: the packs gzipped from the native packer hold the chunks the JavaScript packer makes (a second backup stores nothing)', () => {
    const repo = path.join(dir, 'repo-both');
    const e = env(false);
    expect(cli(['init', repo, '--compression', 'gzip', '-q'], { env: e }).code).toBe(0);
    const js = cli(['backup', source, '--repo', repo, '--json'], { env: env(false, { SCRIPTORIUM_JS_PACKS: '1' }) });
    expect(js.code, js.stderr).toBe(0);
    const native = cli(['backup', source, '--repo', repo, '--json'], { env: e });
    expect(native.code, native.stderr).toBe(0);
    const stats = (out: string) => (JSON.parse(out) as { stats: { chunks: number; newChunks: number }; tables: Array<{ sha256: string }> });
    expect(stats(native.stdout).stats).toMatchObject({ chunks: stats(js.stdout).stats.chunks, newChunks: 0 });
    expect(stats(native.stdout).tables).toEqual(stats(js.stdout).tables);
  }, 300_000);

  it('a damaged chunk in a pack ending in the huge value is reported by verify --read-data, which reads that pack in pieces', async () => {
    const repo = path.join(dir, 'repo-damaged');
    const e = env(false);
    expect(cli(['init', repo, '--compression', 'gzip', '-q'], { env: e }).code).toBe(0);
    expect(cli(['backup', source, '--repo', repo, '-q'], { env: e }).code).toBe(0);
    const victim = largestPack(repo);
    const pack = fs.readFileSync(victim);
    // Rewritten under its own name (so that it passes the name check): one byte of the value changed.
    const body = gunzipSync(pack.subarray(9));
    body[body.length >> 1] ^= 0x01;
    const file = Buffer.concat([pack.subarray(0, 9), gzipSync(body, { level: 1 })]);
    const hash = sha256(file);
    fs.mkdirSync(path.join(repo, 'packs', hash.slice(0, 2)), { recursive: true });
    fs.writeFileSync(path.join(repo, 'packs', hash.slice(0, 2), hash), file);
    await renamePackEverywhere(repo, path.basename(victim), hash);
    fs.rmSync(victim);
    const v = timedCli(['verify', '--repo', repo, '--read-data'], e);
    expect(v.code).not.toBe(0);
    // The chunk against the index, and (the one more) the table against its digest.
    expect(v.stderr).toMatch(/E_CORRUPT: .*chunk content does not match its hash \(and 1 more problem\)/);
    expect(v.stderr).not.toMatch(/looks like a bug|E_INTERNAL/);
    expect(v.rss, 'verify --read-data peak RSS').toBeLessThan(BOUND);
  }, 300_000);
});

describe('a gzip bomb in a pack of a gzip repository', () => {
  it('is refused by restore and verify --read-data with E_CORRUPT, in bounded memory, nothing written', async () => {
    const repo = path.join(dir, 'repo-bomb');
    const small = makeDb(path.join(dir, 'small.db'), (db) => {
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v, note TEXT)');
      for (let i = 1; i <= 50; i++) db.prepare('INSERT INTO t VALUES (?, ?, ?)').run(i, `row ${i}`, null);
    });
    expect(cli(['init', repo, '--compression', 'gzip', '-q'], { env: env(false) }).code).toBe(0);
    expect(cli(['backup', small, '--repo', repo, '-q'], { env: env(false) }).code).toBe(0);
    const [victim] = objectFiles(repo, 'packs');
    // 35 gzip members of 64 MiB of zeros each: 2.3 MB that expand to 2.35 GB, more than any pack's
    // body may hold (the repository's pack size plus the largest chunk the format allows, 2 GiB).
    const member = gzipSync(Buffer.alloc(64 << 20), { level: 9 });
    const file = Buffer.concat([Buffer.from('SCRPACK1', 'latin1'), Buffer.of(1), ...Array.from({ length: 35 }, () => member)]);
    expect(file.length).toBeLessThan(3 * MB);
    const hash = sha256(file);
    fs.mkdirSync(path.join(repo, 'packs', hash.slice(0, 2)), { recursive: true });
    fs.writeFileSync(path.join(repo, 'packs', hash.slice(0, 2), hash), file);
    await renamePackEverywhere(repo, path.basename(victim!), hash);
    fs.rmSync(victim!);

    const out = path.join(dir, 'bomb-out');
    fs.mkdirSync(out);
    const r = timedCli(['restore', 'latest', '--repo', repo, '--into', path.join(out, 'r.db')], env(false));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/E_CORRUPT: .*expands to more than/);
    expect(r.stderr).not.toMatch(/looks like a bug|E_INTERNAL/);
    expect(r.rss, 'restore peak RSS').toBeLessThan(300 * MB);
    expect(fs.readdirSync(out)).toEqual([]);

    const v = timedCli(['verify', '--repo', repo, '--read-data'], env(false));
    expect(v.code).not.toBe(0);
    expect(v.stderr).toMatch(/E_CORRUPT.*expands to more than/);
    expect(v.stderr).not.toMatch(/looks like a bug|E_INTERNAL/);
    expect(v.rss, 'verify --read-data peak RSS').toBeLessThan(300 * MB);
    expect(fs.readdirSync(tmp)).toEqual([]);
  }, 300_000);
});
