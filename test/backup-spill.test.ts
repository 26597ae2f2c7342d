/**
 * Issue 13, "bounded by design", for backup: a row whose encoding outgrows 16 MiB (a 200 MB BLOB is
 * 400 MB of hex) is no longer held whole. The extension's scan spills it to an unnamed temporary file
 * while it encodes it, hashes it from there, and the packer reads it back in pieces into the pack
 * (native/scriptorium_scan.inc, "Spilled chunks"); an encrypted repository seals such a pack frame by
 * frame (sealObjectPieces). Real SQLite files, the real CLI in child processes, peak RSS under GNU time.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FRAME_BYTES, openObjectBytes, openObjectPieces, sealObjectPieces } from '../src/repository/crypto/object-seal.js';
import { CLI, cli, makeDb, removeDir, tempDir, withDb } from './export-import/helpers.js';

const MB = 1e6;
let dir: string;
/** The children's TMPDIR: where spill files are made (unnamed: it must stay empty). */
let tmp: string;

beforeAll(() => {
  expect(fs.existsSync(CLI), 'run `npm run build` first').toBe(true);
  dir = tempDir('backup-spill');
  tmp = path.join(dir, 'tmp');
  fs.mkdirSync(tmp);
});
afterAll(() => removeDir(dir));

const PASSWORD = 'correct horse battery staple';
function env(encrypted: boolean, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, NO_COLOR: '1', TMPDIR: tmp, ...(encrypted ? { SCRIPTORIUM_PASSWORD: PASSWORD } : {}), ...extra };
}

/** Runs the CLI under GNU time; returns its exit code, stdout, stderr and peak RSS in bytes. */
function timedCli(args: string[], childEnv: NodeJS.ProcessEnv): { code: number | null; stdout: string; stderr: string; rss: number } {
  const rssFile = path.join(dir, 'rss.txt');
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', rssFile, process.execPath, CLI, ...args], { encoding: 'utf8', env: childEnv, maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, rss: Number(fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop()) * 1024 };
}

/** Every row of t: id, type, length and SHA-256 of v's bytes, read with plain SQL. */
function digest(file: string): string[] {
  return withDb(file, (db) =>
    (db.prepare('SELECT id, typeof(v), CAST(v AS BLOB), note FROM t ORDER BY id').raw().all() as unknown[][]).map(
      ([id, type, v, note]) => `${String(id)} ${String(type)} ${v === null ? 'null' : `${(v as Buffer).length} ${createHash('sha256').update(v as Buffer).digest('hex')}`} ${String(note)}`,
    ),
  );
}

/** The pack files of a repository. */
function packs(repo: string): string[] {
  return fs.readdirSync(path.join(repo, 'packs'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name)).sort();
}

/** The backup summary (`--json`): the snapshot's stats. */
function stats(stdout: string): { chunks: number; newChunks: number } {
  return (JSON.parse(stdout) as { stats: { chunks: number; newChunks: number } }).stats;
}

/** The backup summary's table digests. */
function digests(stdout: string): string[] {
  return (JSON.parse(stdout) as { tables: Array<{ sha256: string }> }).tables.map((t) => t.sha256);
}

describe('backup of a 200 MB random BLOB spills its row instead of holding it', () => {
  const VALUE = 200 * MB;
  /** The project's bound for a value of V bytes: 2 × V (before: 483.5 MB for 200 MB). */
  const BOUND = 2 * VALUE;
  let source: string;
  beforeAll(() => {
    source = makeDb(path.join(dir, 'big.db'), (db) => {
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB, note TEXT)');
      db.prepare("INSERT INTO t VALUES (1, x'01', 'before')").run();
      db.prepare('INSERT INTO t VALUES (2, randomblob(?), ?)').run(VALUE, 'after the value');
      db.prepare("INSERT INTO t VALUES (3, x'00', NULL)").run();
    });
  }, 120_000);

  for (const encrypted of [false, true]) {
    const kind = encrypted ? 'encrypted' : 'plain';
    it(`${kind}: peak RSS under 2x the value, restores byte for byte, a second backup stores no new pack, no temporary file left`, () => {
      const repo = path.join(dir, `repo-${kind}`);
      expect(cli(['init', repo, ...(encrypted ? ['--encrypt'] : []), '-q'], { env: env(encrypted) }).code).toBe(0);
      const b = timedCli(['backup', source, '--repo', repo, '--json'], env(encrypted));
      expect(b.stderr).toBe('');
      expect(b.code).toBe(0);
      expect(b.rss).toBeLessThan(BOUND);
      const first = packs(repo);
      // the value's chunk is stored (hex of random bytes: zstd leaves it about as large as the value)
      expect(Math.max(...first.map((f) => fs.statSync(f).size))).toBeGreaterThan(VALUE);
      expect(fs.readdirSync(tmp)).toEqual([]);

      const into = path.join(dir, `restored-${kind}.db`);
      const r = cli(['restore', 'latest', '--repo', repo, '--into', into, '-q'], { env: env(encrypted) });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(digest(into)).toEqual(digest(source));
      fs.rmSync(into);

      const again = timedCli(['backup', source, '--repo', repo, '--json'], env(encrypted));
      expect(again.code, again.stderr).toBe(0);
      expect(stats(again.stdout).newChunks).toBe(0);
      expect(packs(repo)).toEqual(first);
      expect(again.rss).toBeLessThan(BOUND);
      expect(fs.readdirSync(tmp)).toEqual([]);
    }, 300_000);
  }

  it('a backup killed while it spills leaves no temporary file', async () => {
    const repo = path.join(dir, 'repo-killed');
    expect(cli(['init', repo, '-q'], { env: env(false) }).code).toBe(0);
    const child = spawn(process.execPath, [CLI, 'backup', source, '--repo', repo, '-q'], { env: env(false), stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // Wait until the child holds a spill file in TMPDIR (unnamed: /proc shows it as deleted), then kill it.
    let seen = false;
    for (let i = 0; i < 2000 && !seen && child.exitCode === null; i++) {
      try {
        seen = fs.readdirSync(`/proc/${child.pid}/fd`).some((fd) => {
          try {
            return fs.readlinkSync(`/proc/${child.pid}/fd/${fd}`).startsWith(tmp);
          } catch {
            return false;
          }
        });
      } catch {
        // not there yet, or gone
      }
      if (!seen) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    child.kill('SIGKILL');
    await exited;
    expect(seen).toBe(true);
    expect(fs.readdirSync(tmp)).toEqual([]);
  }, 120_000);
});

describe('spilled chunks are the chunks held in memory', () => {
  it('several huge rows amid small ones, two in one row, a chunk in progress before one: the JavaScript packer finds every chunk already stored', () => {
    const source = makeDb(path.join(dir, 'mixed.db'), (db) => {
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v, note TEXT)');
      const put = db.prepare('INSERT INTO t VALUES (?, ?, ?)');
      let id = 1;
      for (let i = 0; i < 300; i++) put.run(id++, `small ${i}`, 'x'.repeat(i % 50));
      db.prepare('INSERT INTO t VALUES (?, randomblob(?), ?)').run(id++, 20 * MB, 'a blob just past the spill threshold');
      for (let i = 0; i < 5; i++) put.run(id++, i, null);
      db.prepare('INSERT INTO t VALUES (?, hex(randomblob(?)), ?)').run(id++, 12 * MB, 'text of 24 MB');
      db.prepare('INSERT INTO t VALUES (?, randomblob(?), hex(randomblob(?)))').run(id++, 9 * MB, 9 * MB); // two large values
      db.prepare('INSERT INTO t VALUES (?, randomblob(?), ?)').run(id++, 8 * MB, 'under the threshold: held');
      for (let i = 0; i < 300; i++) put.run(id++, randomBytes(20), `tail ${i}`);
    });
    // Background readers (ids hashed on the scan's hasher thread) or none (hashed as the batch is cut).
    for (const [name, encrypted, readers] of [['plain', false, 'auto'], ['no-readers', false, '1'], ['encrypted', true, 'auto']] as const) {
      const repo = path.join(dir, `mixed-${name}`);
      expect(cli(['init', repo, ...(encrypted ? ['--encrypt'] : []), '-q'], { env: env(encrypted) }).code).toBe(0);
      const spilled = cli(['backup', source, '--repo', repo, '--json'], { env: env(encrypted, readers === '1' ? { SCRIPTORIUM_READERS: '1' } : {}) });
      expect(spilled.code, spilled.stderr).toBe(0);
      const s = stats(spilled.stdout);
      expect(s.newChunks).toBe(s.chunks);
      // The JavaScript packer (no extension packer, no spilling) holds every chunk: the same ids, the same digest.
      const js = cli(['backup', source, '--repo', repo, '--json'], { env: env(encrypted, { SCRIPTORIUM_JS_PACKS: '1' }) });
      expect(js.code, js.stderr).toBe(0);
      expect(stats(js.stdout)).toMatchObject({ chunks: s.chunks, newChunks: 0 });
      expect(digests(js.stdout)).toEqual(digests(spilled.stdout));
      const into = path.join(dir, `mixed-restored-${name}.db`);
      const r = cli(['restore', 'latest', '--repo', repo, '--into', into, '-q'], { env: env(encrypted) });
      expect(r.code, r.stderr).toBe(0);
      expect(digest(into)).toEqual(digest(source));
      const d = cli(['verify', '--repo', repo, '--read-data', '-q'], { env: env(encrypted) });
      expect(d.code, d.stderr).toBe(0);
    }
    expect(fs.readdirSync(tmp)).toEqual([]);
  }, 300_000);
});

describe('a store without files of its own (MemoryStore)', () => {
  it('takes a pack too large to hold from its unnamed file, read whole: restores exactly, an unchanged row is not stored again', async () => {
    const { backup } = await import('../src/repository/backup.js');
    const { Repository } = await import('../src/repository/repository.js');
    const { restore } = await import('../src/repository/restore.js');
    const { MemoryStore } = await import('../src/stores/memory-store.js');
    const source = makeDb(path.join(dir, 'memory.db'), (db) => {
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB, note TEXT)');
      db.prepare('INSERT INTO t VALUES (1, randomblob(?), ?)').run(24 * MB, 'spilled');
      db.prepare("INSERT INTO t VALUES (2, x'02', 'small')").run();
    });
    const repo = await Repository.init(new MemoryStore());
    try {
      const first = await backup(source, repo);
      expect(first.stats.newChunks).toBe(first.stats.chunks);
      const second = await backup(source, repo);
      expect(second.stats.newChunks).toBe(0);
      const into = path.join(dir, 'memory-restored.db');
      await restore(second.id, repo, { into });
      expect(digest(into)).toEqual(digest(source));
    } finally {
      await repo.close();
    }
  }, 120_000);
});

describe('a spill file that cannot be written', () => {
  it('is E_IO naming TMPDIR (never "looks like a bug"), and the failed backup leaves no pack', () => {
    const source = makeDb(path.join(dir, 'nowhere.db'), (db) => {
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB, note TEXT)');
      db.prepare('INSERT INTO t VALUES (1, randomblob(?), NULL)').run(20 * MB);
    });
    for (const encrypted of [false, true]) {
      const repo = path.join(dir, `nowhere-${encrypted}`);
      expect(cli(['init', repo, ...(encrypted ? ['--encrypt'] : []), '-q'], { env: env(encrypted) }).code).toBe(0);
      const missing = path.join(dir, 'no-such-dir');
      const b = cli(['backup', source, '--repo', repo, '-q'], { env: env(encrypted, { TMPDIR: missing }) });
      expect(b.code).not.toBe(0);
      expect(b.stderr).toMatch(new RegExp(`^scriptorium: error E_IO: backup: temporary file in ${missing}: could not write a temporary file`, 'm'));
      expect(b.stderr).toMatch(/hint: .*TMPDIR/);
      expect(b.stderr).not.toMatch(/looks like a bug|E_INTERNAL/);
      expect(fs.existsSync(path.join(repo, 'packs')) ? packs(repo) : []).toEqual([]);
    }
  }, 120_000);
});

describe('sealObjectPieces', () => {
  it('seals what openObjectBytes and openObjectPieces open, at every frame boundary', async () => {
    const key = { kind: 'secret' as const, secret: randomBytes(32) };
    const open = { kind: 'secret' as const, secret: key.secret };
    for (const size of [0, 1, FRAME_BYTES - 1, FRAME_BYTES, FRAME_BYTES + 1, 3 * FRAME_BYTES, 3 * FRAME_BYTES + 17]) {
      const plain = randomBytes(size);
      const parts: Buffer[] = [];
      const read = async (into: Buffer, at: number): Promise<void> => {
        plain.copy(into, 0, at, at + into.length);
      };
      for await (const part of sealObjectPieces(size, read, 'repo-id', `packs/${'ab'.repeat(32)}`, key)) parts.push(Buffer.from(part));
      const sealed = Buffer.concat(parts);
      expect(openObjectBytes(sealed, 'repo-id', `packs/${'ab'.repeat(32)}`, open).equals(plain)).toBe(true);
      const pieces: Buffer[] = [];
      async function* source(): AsyncGenerator<Buffer> {
        for (let at = 0; at < sealed.length; at += 1000) yield sealed.subarray(at, at + 1000);
      }
      for await (const p of openObjectPieces(source(), sealed.length, 'repo-id', `packs/${'ab'.repeat(32)}`, open)) pieces.push(Buffer.from(p));
      expect(Buffer.concat(pieces).equals(plain)).toBe(true);
      // bound to its name like every sealed object
      expect(() => openObjectBytes(sealed, 'repo-id', `packs/${'cd'.repeat(32)}`, open)).toThrow(/does not authenticate/);
    }
  });
});
