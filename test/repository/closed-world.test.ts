/**
 * The repository as a closed world, against real files, real processes and real mounts: links and
 * foreign files inside a repository are never followed or deleted (and are reported), a FIFO pack
 * never hangs a read, a read-only repository can be read with --no-lock, `unlock` removes stale locks,
 * and a full disk is E_NO_SPACE, cleaned up after, and no obstacle to prune. The CLI runs from dist/.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync, existsSync, ftruncateSync, fstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, symlinkSync, writeFileSync, writeSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { backup } from '../../src/repository/backup.js';
import { forget } from '../../src/repository/forget.js';
import { prune } from '../../src/repository/prune.js';
import { Repository } from '../../src/repository/repository.js';
import { restore } from '../../src/repository/restore.js';
import { unlock } from '../../src/repository/unlock.js';
import { verify } from '../../src/repository/verify.js';
import { FsStore } from '../../src/stores/fs-store.js';
import { demoDb, engineDigests, tempDir } from './helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cliChild = fileURLToPath(new URL('./fixtures/cli-child.mjs', import.meta.url));

beforeAll(() => {
  if (!existsSync(join(root, 'dist/cli/repository-commands.js'))) throw new Error('run `npm run build` first: the CLI children run dist/');
});

function cli(args: string[], timeout = 60_000): { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cliChild, ...args], { cwd: root, encoding: 'utf8', timeout });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** A pid that ran on this host and no longer does. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

const hostTag = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

/** Files below `dir` (relative paths), links not followed. */
function walk(dir: string, base = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, base), { withFileTypes: true })) {
    const rel = base ? `${base}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...walk(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}

/** A database of `rows` incompressible BLOBs of `bytes` each. */
function randomDb(dir: string, rows: number, bytes: number, name = 'random.db'): string {
  const file = join(dir, name);
  const db = new Database(file);
  db.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)');
  const ins = db.prepare('INSERT INTO blobs (b) VALUES (?)');
  for (let i = 0; i < rows; i++) ins.run(randomBytes(bytes));
  db.close();
  return file;
}

/** Whether this sandbox lets us mount a tmpfs (root in a container usually may; skip otherwise). */
const canMount = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'scriptorium-mount-probe-'));
  try {
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]).status !== 0) return false;
    spawnSync('umount', [dir]);
    return true;
  } finally {
    rmdirSync(dir);
  }
})();
if (!canMount) console.warn('closed-world.test.ts: cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN): the read-only and full-disk tests are skipped');

/** Runs `fn` with a fresh tmpfs of `size` mounted at a new directory, unmounted afterwards. */
async function withTmpfs<T>(size: string, fn: (mnt: string) => Promise<T>): Promise<T> {
  const mnt = mkdtempSync(join(tmpdir(), 'scriptorium-tmpfs-'));
  expect(spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', mnt]).status).toBe(0);
  try {
    return await fn(mnt);
  } finally {
    spawnSync('umount', ['-l', mnt]);
    rmdirSync(mnt);
  }
}

/** Fills the file system of `dir` with `file` until a write fails with ENOSPC; returns its size. */
function fill(file: string): number {
  const fd = openSync(file, 'w');
  const piece = Buffer.alloc(64 << 10, 1);
  try {
    for (;;) {
      try {
        writeSync(fd, piece);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw err;
      }
    }
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}

describe('prune and verify leave what is not a repository object alone, and report it', () => {
  it('a symlinked folder pointing outside, with a file in it, survives prune; so do a symlinked pack and stray files', async () => {
    const dir = tempDir('closed');
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir)).close();
    const snap = await backup(demoDb(dir, 100), repoDir);
    await forget(repoDir, { ids: [snap.id] }); // every pack is unused now: prune deletes every object it lists
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere);
    const prefixes = new Set(readdirSync(join(repoDir, 'packs')));
    const free = [...Array(256).keys()].map((i) => i.toString(16).padStart(2, '0')).find((p) => !prefixes.has(p))!;
    const outsideName = free + 'e'.repeat(62);
    writeFileSync(join(elsewhere, outsideName), 'must survive');
    writeFileSync(join(elsewhere, 'secret'), 'must survive too');
    symlinkSync(elsewhere, join(repoDir, 'packs', free));
    const aPrefix = [...prefixes][0]!;
    const strays = [
      `packs/${aPrefix}/${aPrefix}${'1'.repeat(62)}`, // a link named like a pack
      `packs/${aPrefix}/README`,
      `packs/${aPrefix}/${aPrefix === 'ff' ? '00' : 'ff'}${'f'.repeat(62)}`, // a pack name in the wrong folder
      'snapshots/notes.txt',
      `index/${'a'.repeat(63)}`,
      'foreign.txt',
      `packs/${free}`,
    ];
    symlinkSync(join(elsewhere, 'secret'), join(repoDir, strays[0]!));
    for (const s of strays.slice(1, 6)) writeFileSync(join(repoDir, s), 'not an object');

    const r = cli(['prune', '--repo', repoDir]);
    expect(r.stderr).not.toMatch(/error|warning/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/deleted [1-9]\d* unreferenced packs/);
    expect(r.stdout).toContain(`left alone: ${strays.length} files that are not repository objects: `);
    for (const s of strays) expect(r.stdout).toContain(s);
    expect(readdirSync(elsewhere).sort()).toEqual([outsideName, 'secret'].sort());
    expect(readFileSync(join(elsewhere, outsideName), 'utf8')).toBe('must survive');
    for (const s of strays.slice(1, 6)) expect(readFileSync(join(repoDir, s), 'utf8')).toBe('not an object');
    // Only the strays are left in packs/ (every real pack was unused).
    expect(walk(join(repoDir, 'packs')).map((p) => `packs/${p}`).sort()).toEqual(strays.filter((s) => s.startsWith('packs/')).sort());

    // verify reports them too, and they are not problems.
    const report = await verify(repoDir);
    expect(report.strays).toEqual([...strays].sort());
    expect(cli(['verify', '--repo', repoDir]).stdout).toContain(`left alone: ${strays.length} files that are not repository objects`);
  });

  it("a manifest replaced by a link is never followed, and verify fails naming the snapshot it hides (latest would mean the one before)", async () => {
    const dir = tempDir('closed');
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir)).close();
    const db = demoDb(dir, 50);
    await backup(db, repoDir);
    const second = await backup(db, repoDir, { tags: ['second'] });
    const manifest = join(repoDir, 'snapshots', second.id);
    const elsewhere = join(dir, 'elsewhere-manifest');
    writeFileSync(elsewhere, readFileSync(manifest));
    spawnSync('rm', [manifest]);
    symlinkSync(elsewhere, manifest);
    const r = cli(['verify', '--repo', repoDir]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`E_CORRUPT`);
    expect(r.stderr).toContain(`snapshots/${second.id} is not a regular file (a link, a FIFO, a device) where a snapshot's manifest belongs: it is never read, so that snapshot is missing`);
    // The link is not read as the snapshot.
    expect(cli(['snapshots', '--repo', repoDir]).stdout).not.toContain(second.id.slice(0, 8));
  });

  it('forget --prune of every snapshot deletes only objects: a stray file survives prune and is reported', async () => {
    const dir = tempDir('closed');
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir)).close();
    const snap = await backup(demoDb(dir, 50), repoDir);
    writeFileSync(join(repoDir, 'snapshots', 'keep-me'), 'x');
    const result = await forget(repoDir, { ids: [snap.id], prune: true });
    expect(result.pruned?.packsDeleted).toBeGreaterThan(0);
    expect(result.pruned?.strays).toEqual(['snapshots/keep-me']);
    expect(readFileSync(join(repoDir, 'snapshots', 'keep-me'), 'utf8')).toBe('x');
  });
});

describe('reads from a hostile repository are bounded and never block', () => {
  it('a FIFO pack does not hang restore or verify --read-data: both fail at once with E_CORRUPT', async () => {
    const dir = tempDir('closed');
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir)).close();
    const snap = await backup(demoDb(dir, 100), repoDir);
    const pack = snap.packs[0]!;
    const path = join(repoDir, 'packs', pack.slice(0, 2), pack);
    spawnSync('rm', [path]);
    expect(spawnSync('mkfifo', [path]).status).toBe(0);
    const restored = cli(['restore', 'latest', '--into', join(dir, 'out.db'), '--repo', repoDir], 20_000);
    expect(restored.signal).toBeNull(); // not killed by the timeout: it did not hang
    expect(restored.code).not.toBe(0);
    expect(restored.stderr).toMatch(/E_CORRUPT/);
    expect(restored.stderr).toMatch(/FIFO/);
    expect(existsSync(join(dir, 'out.db'))).toBe(false);
    const verified = cli(['verify', '--read-data', '--repo', repoDir], 20_000);
    expect(verified.signal).toBeNull();
    expect(verified.code).not.toBe(0);
    expect(verified.stderr).toMatch(/E_CORRUPT/);
    expect(verified.stderr).toMatch(new RegExp(`pack ${pack.slice(0, 16)} is not a regular file`));
  }, 60_000);

  it('an oversize config is refused at once with E_CORRUPT, not read', async () => {
    const dir = tempDir('closed');
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir)).close();
    writeFileSync(join(repoDir, 'config'), Buffer.alloc(2 << 20, 0x20));
    await expect(Repository.open(repoDir)).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringMatching(/more than the 1048576/) });
    const r = cli(['snapshots', '--repo', repoDir]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/E_CORRUPT/);
  });
});

describe('temporaries of killed processes', () => {
  it('stale temporaries of a dead pid are removed by the next run, which says so', async () => {
    const dir = tempDir('closed');
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir)).close();
    const db = demoDb(dir, 50);
    await backup(db, repoDir);
    const dead = deadPid();
    const packTemp = `.tmp-${hostTag}-${dead}-0123456789abcdef-0`; // a native packer's file of a killed backup
    const putTemp = join('snapshots', `.tmp-${hostTag}-${dead}-fedcba9876543210`);
    writeFileSync(join(repoDir, packTemp), 'half a pack');
    writeFileSync(join(repoDir, putTemp), 'half a manifest');
    const r = cli(['backup', db, '--repo', repoDir]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`removed 2 temporary file\\(s\\) left in .* by a process that no longer runs \\(pid ${dead}\\)`));
    expect(existsSync(join(repoDir, packTemp))).toBe(false);
    expect(existsSync(join(repoDir, putTemp))).toBe(false);
  });
});

describe('unlock', () => {
  it('removes locks of dead processes on this host and old ones, reports a lock dated in the future and leaves it and live ones', async () => {
    const dir = tempDir('closed');
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir)).close();
    const store = new FsStore(repoDir);
    const now = Date.now();
    const put = (name: string, info: object) => store.put(`locks/${name}`, Buffer.from(JSON.stringify({ kind: 'shared', operation: 'backup', ...info })));
    await put('a'.repeat(32), { host: hostname(), pid: deadPid(), time: new Date(now).toISOString() });
    await put('b'.repeat(32), { host: 'elsewhere', pid: 12, time: new Date(now - 2 * 3600_000).toISOString() });
    await put('c'.repeat(32), { kind: 'exclusive', operation: 'prune', host: 'skewed', pid: 13, time: new Date(now + 86400_000).toISOString() });
    await put('d'.repeat(32), { host: hostname(), pid: process.pid, time: new Date(now).toISOString() });
    await put('e'.repeat(32), { host: 'elsewhere', pid: 14, time: new Date(now - 30 * 60_000).toISOString() });

    // With a limit of an hour the lock 30 minutes old stays; without one (5 minutes) it goes.
    const first = await unlock(repoDir, { olderThanMs: 3600_000 });
    expect(first.removed.map((l) => l.key).sort()).toEqual([`locks/${'a'.repeat(32)}`, `locks/${'b'.repeat(32)}`]);
    expect(first.removed.find((l) => l.host === hostname())!.reason).toMatch(/no longer runs on this host/);
    expect(first.future).toMatchObject([{ key: `locks/${'c'.repeat(32)}`, host: 'skewed', reason: expect.stringMatching(/dated in the future/) }]);
    expect(first.held.map((l) => l.key).sort()).toEqual([`locks/${'d'.repeat(32)}`, `locks/${'e'.repeat(32)}`]);

    const r = cli(['unlock', '--repo', repoDir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/removed shared lock of backup \(pid 14 on elsewhere, .*\): not refreshed for 30 minutes/);
    expect(r.stdout).toMatch(new RegExp(`left exclusive lock of prune \\(pid 13 on skewed\\): dated in the future \\(${new Date(now + 86400_000).toISOString().slice(0, 16)}`));
    expect(r.stdout).toMatch(/1 stale lock\(s\) removed, 2 left/);
    const left: string[] = [];
    for await (const e of store.list('locks/')) left.push(e.key);
    expect(left.sort()).toEqual([`locks/${'c'.repeat(32)}`, `locks/${'d'.repeat(32)}`]);
  });
});

describe.skipIf(!canMount)('a read-only repository (a tmpfs remounted read-only)', () => {
  it('snapshots, restore, verify and diff run with --no-lock and write nothing; without it, a clear error naming --no-lock', async () => {
    const dir = tempDir('closed');
    const db = demoDb(dir, 100);
    await withTmpfs('16m', async (mnt) => {
      const repoDir = join(mnt, 'repo');
      await (await Repository.init(repoDir)).close();
      const a = await backup(db, repoDir);
      const b = await backup(db, repoDir);
      const before = walk(repoDir);
      expect(spawnSync('mount', ['-o', 'remount,ro', mnt]).status).toBe(0);

      const denied = cli(['restore', 'latest', '--into', join(dir, 'denied.db'), '--repo', repoDir]);
      expect(denied.code).not.toBe(0);
      expect(denied.stderr).toMatch(/cannot lock the repository .*: it cannot be written here \(EROFS\)/);
      expect(denied.stderr).toMatch(/--no-lock/);
      expect(existsSync(join(dir, 'denied.db'))).toBe(false);

      expect(cli(['snapshots', '--no-lock', '--repo', repoDir]).stdout).toMatch(/2 snapshot\(s\)/);
      const restored = cli(['restore', 'latest', '--no-lock', '--into', join(dir, 'out.db'), '--repo', repoDir]);
      expect(restored.stderr).not.toMatch(/error|warning/);
      expect(restored.stdout).toMatch(/every table verified by digest/);
      expect(await engineDigests(join(dir, 'out.db'))).toEqual(await engineDigests(db));
      expect(cli(['verify', '--read-data', '--drill', '--no-lock', '--repo', repoDir]).stdout).toMatch(/no problems found: 2 snapshots/);
      expect(cli(['diff', a.id, b.id, '--no-lock', '--repo', repoDir]).stdout).toMatch(new RegExp(`snapshot ${a.id.slice(0, 8)} → ${b.id.slice(0, 8)}`));
      // The library: the same, and a writing operation refuses --no-lock.
      await restore(a.id, repoDir, { into: join(dir, 'lib.db'), noLock: true });
      await expect(backup(db, repoDir, { noLock: true })).rejects.toMatchObject({ code: 'E_USAGE', message: expect.stringMatching(/--no-lock is only for reading/) });
      await expect(prune(repoDir, { noLock: true })).rejects.toMatchObject({ code: 'E_USAGE' });
      expect(walk(repoDir)).toEqual(before);
    });
  }, 120_000);
});

describe.skipIf(!canMount)('a full disk (a small tmpfs)', () => {
  for (const packer of ['native', 'js'] as const) {
    it(`a backup that runs out of space is E_NO_SPACE naming the repository, and removes the packs it wrote (${packer} packs)`, async () => {
      const dir = tempDir('closed');
      const db = randomDb(dir, 40, 100_000); // about 4 MB that does not compress
      await withTmpfs('2m', async (mnt) => {
        const repoDir = join(mnt, 'repo');
        await (await Repository.init(repoDir, { packBytes: 256 << 10 })).close();
        const before = walk(repoDir);
        const old = process.env.SCRIPTORIUM_JS_PACKS;
        process.env.SCRIPTORIUM_JS_PACKS = packer === 'js' ? '1' : '0';
        try {
          await expect(backup(db, repoDir)).rejects.toMatchObject({ code: 'E_NO_SPACE', message: expect.stringMatching(/no space left on the device/) });
        } finally {
          if (old === undefined) delete process.env.SCRIPTORIUM_JS_PACKS;
          else process.env.SCRIPTORIUM_JS_PACKS = old;
        }
        // Nothing of it is left: no pack, no index file, no temporary, no lock.
        expect(walk(repoDir)).toEqual(before);
        // And the CLI says where.
        const r = cli(['backup', db, '--repo', repoDir]);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(/E_NO_SPACE/);
        expect(r.stderr).toContain(repoDir);
        expect(r.stderr).not.toMatch(/looks like a bug|E_INTERNAL|E_CORRUPT/);
        expect(walk(repoDir)).toEqual(before);
      });
    }, 120_000);
  }

  it('a backup that runs out of space while another operation holds a lock leaves its packs for prune, and says so', async () => {
    const dir = tempDir('closed');
    const db = randomDb(dir, 40, 100_000);
    await withTmpfs('2m', async (mnt) => {
      const repoDir = join(mnt, 'repo');
      await (await Repository.init(repoDir, { packBytes: 256 << 10 })).close();
      const other = await Repository.open(repoDir);
      const held = await other.lock('shared', 'verify'); // e.g. a verify that may have loaded its index files
      try {
        const notices: string[] = [];
        await expect(backup(db, repoDir, { onNotice: (m) => notices.push(m) })).rejects.toMatchObject({ code: 'E_NO_SPACE' });
        expect(notices.join('\n')).toMatch(/left [1-9]\d* pack\(s\) of the failed backup for prune: 1 other operation\(s\) hold a lock/);
        expect(walk(repoDir).filter((f) => f.startsWith('packs/')).length).toBeGreaterThan(0);
        expect(walk(repoDir).filter((f) => f.startsWith('index/'))).toEqual([]);
      } finally {
        await held.release();
        await other.close();
      }
      const pruned = await prune(repoDir);
      expect(pruned.packsDeleted).toBeGreaterThan(0);
      expect(walk(repoDir).filter((f) => f.startsWith('packs/'))).toEqual([]);
    });
  }, 120_000);

  it('prune works on a disk filled by a killed backup\'s temporaries: it removes them first, then prunes', async () => {
    const dir = tempDir('closed');
    const small = demoDb(dir, 100);
    const big = randomDb(dir, 6, 100_000);
    await withTmpfs('2m', async (mnt) => {
      const repoDir = join(mnt, 'repo');
      await (await Repository.init(repoDir, { packBytes: 256 << 10 })).close();
      const keep = await backup(small, repoDir);
      const drop = await backup(big, repoDir);
      await forget(repoDir, { ids: [drop.id] });
      // A killed backup's pack files fill the disk to the last byte.
      const dead = deadPid();
      for (let i = 0; ; i++) {
        try {
          writeFileSync(join(repoDir, `.tmp-${hostTag}-${dead}-${i.toString(16).padStart(16, '0')}-0`), Buffer.alloc(64 << 10, 1));
        } catch (err) {
          expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
          break;
        }
      }
      await expect(new FsStore(repoDir).put('locks/probe', Buffer.from('x'))).rejects.toMatchObject({ code: 'E_NO_SPACE' });
      const notices: string[] = [];
      const result = await prune(repoDir, { onNotice: (m) => notices.push(m) });
      expect(result.packsDeleted).toBeGreaterThan(0);
      expect(notices.join('\n')).toMatch(new RegExp(`temporary file\\(s\\) left .* by a process that no longer runs \\(pid ${dead}\\)`));
      expect(walk(repoDir).filter((f) => f.includes('.tmp-'))).toEqual([]);
      await restore(keep.id, repoDir, { into: join(dir, 'kept.db') });
      expect(await engineDigests(join(dir, 'kept.db'))).toEqual(await engineDigests(small));
      await verify(repoDir, { readData: true });
    });
  }, 120_000);

  it.each([1, 2] as const)('prune works on a full disk where its new index does not fit: it deletes the unused packs first (format %i)', async (formatVersion) => {
    const dir = tempDir('closed');
    const small = demoDb(dir, 100);
    const big = randomDb(dir, 6, 100_000);
    await withTmpfs('2m', async (mnt) => {
      const repoDir = join(mnt, 'repo');
      await (await Repository.init(repoDir, { packBytes: 256 << 10, formatVersion })).close();
      const keep = await backup(small, repoDir);
      const drop = await backup(big, repoDir);
      await forget(repoDir, { ids: [drop.id] });
      // Full, but for one page: room for prune's lock, none for its index.
      const filler = join(mnt, 'filler');
      const size = fill(filler);
      const fd = openSync(filler, 'r+');
      ftruncateSync(fd, size - 4096);
      closeSync(fd);
      const result = await prune(repoDir);
      // Format 2 keeps the kept snapshot's index file as it is (no new one to fit); format 1 writes one.
      if (formatVersion === 1) expect(result).toMatchObject({ freedSpaceFirst: true, indexFilesWritten: 1 });
      else expect(result).toMatchObject({ indexFilesWritten: 0, indexFilesDeleted: 1 });
      expect(result.packsDeleted).toBeGreaterThan(0);
      await restore(keep.id, repoDir, { into: join(dir, 'kept.db') });
      expect(await engineDigests(join(dir, 'kept.db'))).toEqual(await engineDigests(small));
      await verify(repoDir, { readData: true });
    });
  }, 120_000);
});
