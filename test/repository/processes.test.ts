/**
 * Crash safety, against real processes: a `backup` or `restore` killed with SIGKILL at random moments,
 * and operations racing each other. The children run the compiled library (dist/), built here first.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { prune } from '../../src/repository/prune.js';
import { Repository } from '../../src/repository/repository.js';
import { restore } from '../../src/repository/restore.js';
import { verify } from '../../src/repository/verify.js';
import { snapshots } from '../../src/repository/operations.js';
import { FsStore } from '../../src/stores/fs-store.js';
import { root, requireBuild, runChild, sleep, type Run } from './child-runs.js';
import { demoDb, engineDigests, tempDir } from './helpers.js';

const child = fileURLToPath(new URL('./fixtures/repo-child.mjs', import.meta.url));

beforeAll(requireBuild);

const run = (...args: string[]): Run => runChild(child, args);
const packCount = (repoDir: string) => (existsSync(join(repoDir, 'packs')) ? readdirSync(join(repoDir, 'packs'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length : 0);

describe('crash safety', () => {
  it('backup killed with SIGKILL at 20 random moments never leaves a visible partial snapshot', async () => {
    const dir = tempDir('crash');
    const db = demoDb(dir, 6000);
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir, { packBytes: 32 * 1024 })).close();
    // One complete run first, to learn how long a backup takes.
    const full = run('backup', db, repoDir);
    await full.started;
    const t1 = Date.now();
    expect((await full.done).code).toBe(0);
    const duration = Math.max(50, Date.now() - t1);
    const Database = (await import('better-sqlite3')).default;
    let completed = 1;
    let killed = 0;
    for (let i = 0; i < 20; i++) {
      // Change most rows each time, so that every backup writes many new packs.
      const conn = new Database(db);
      conn.prepare('UPDATE regs SET updatedAt = ?').run(`run ${i}`);
      conn.close();
      const r = run('backup', db, repoDir);
      await r.started;
      await sleep(Math.random() * duration * 1.2);
      r.proc.kill('SIGKILL');
      const { signal } = await r.done;
      if (signal === 'SIGKILL') killed++;
      // Whatever the moment, there is either no new snapshot or a complete one (a kill after the
      // manifest was written, before the process exited, leaves a complete snapshot).
      const visible = await snapshots(repoDir);
      expect(visible.length - completed).toBeGreaterThanOrEqual(0);
      expect(visible.length - completed).toBeLessThanOrEqual(1);
      completed = visible.length;
      await verify(repoDir);
    }
    expect(killed).toBeGreaterThan(5);
    await verify(repoDir, { readData: true });
    const before = packCount(repoDir);
    const pruned = await prune(repoDir);
    expect(pruned.packsDeleted).toBeGreaterThan(0);
    expect(packCount(repoDir)).toBe(before - pruned.packsDeleted);
    await verify(repoDir, { readData: true });
    // Pack files a killed packer had written but nobody renamed are temporaries at the top: never
    // objects, and removed once stale (prune's grace is an hour; here, any age).
    const temporaries = (): string[] => readdirSync(repoDir).filter((f) => f.startsWith('.tmp-'));
    const left = temporaries().length;
    expect(await new FsStore(repoDir).removeStaleTemporaries(-1)).toBeGreaterThanOrEqual(left);
    expect(temporaries()).toEqual([]);
    const out = join(dir, 'out.db');
    const last = run('backup', db, repoDir);
    expect((await last.done).code).toBe(0);
    await restore('latest', repoDir, { into: out });
    expect(await engineDigests(out)).toEqual(await engineDigests(db));
  });

  it('restore killed with SIGKILL leaves the target exactly as it was', async () => {
    const dir = tempDir('crash');
    const db = demoDb(dir, 8000);
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir)).close();
    const first = run('backup', db, repoDir);
    expect((await first.done).code).toBe(0);
    const target = join(dir, 'target.db');
    demoDb(dir, 10, 'target.db');
    const original = readFileSync(target);
    const timing = run('restore', repoDir, join(dir, 'timing.db'));
    await timing.started;
    const t1 = Date.now();
    expect((await timing.done).code).toBe(0);
    const duration = Math.max(50, Date.now() - t1);
    let interrupted = 0;
    for (let i = 0; i < 6; i++) {
      const r = run('restore', repoDir, target);
      await r.started;
      await sleep(((i + Math.random()) / 6) * duration * 0.9);
      r.proc.kill('SIGKILL');
      await r.done;
      // Either untouched, or (killed after the rename) wholly replaced by the verified restore.
      if (readdirSync(dir).some((f) => f.startsWith('.target.db.restore-'))) interrupted++;
      if (readFileSync(target).equals(original)) continue;
      expect(await engineDigests(target)).toEqual(await engineDigests(db));
      break;
    }
    expect(interrupted).toBeGreaterThan(0); // some kills did land in the middle of a restore
  });

  it('prune racing a backup never deletes what the backup needs', async () => {
    const dir = tempDir('crash');
    const db = demoDb(dir, 5000);
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir, { packBytes: 32 * 1024 })).close();
    for (const delay of [0, 20, 60, 150]) {
      const r = run('backup', db, repoDir);
      await r.started;
      await sleep(delay);
      const outcome = await prune(repoDir, { lockWaitMs: 0 }).then(() => 'pruned', (e: { code?: string }) => e.code);
      expect(['pruned', 'E_LOCKED']).toContain(outcome);
      const { code, stderr } = await r.done;
      expect(stderr).toBe('');
      expect(code).toBe(0);
    }
    await verify(repoDir, { readData: true, drill: true });
  });

  it('two backups into one repository at the same time both succeed', async () => {
    const dir = tempDir('crash');
    const a = demoDb(dir, 3000, 'a.db');
    const b = demoDb(dir, 2000, 'b.db');
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir, { packBytes: 32 * 1024 })).close();
    const [ra, rb] = [run('backup', a, repoDir), run('backup', b, repoDir)];
    const [da, db] = [await ra.done, await rb.done];
    expect([da.code, db.code, da.stderr, db.stderr]).toEqual([0, 0, '', '']);
    const ids = [JSON.parse(da.stdout.split('\n')[1]).id, JSON.parse(db.stdout.split('\n')[1]).id];
    await verify(repoDir, { readData: true });
    const outA = join(dir, 'out-a.db');
    const outB = join(dir, 'out-b.db');
    await restore(ids[0], repoDir, { into: outA });
    await restore(ids[1], repoDir, { into: outB });
    expect(await engineDigests(outA)).toEqual(await engineDigests(a));
    expect(await engineDigests(outB)).toEqual(await engineDigests(b));
  });
});

describe('the repository CLI', () => {
  const cliChild = fileURLToPath(new URL('./fixtures/cli-child.mjs', import.meta.url));
  function cli(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, [cliChild, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, ...env } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('init, backup, snapshots, restore, verify, diff, forget and prune', async () => {
    const dir = tempDir('cli');
    const db = demoDb(dir, 400);
    const repoDir = join(dir, 'repo');
    expect(cli(['init', repoDir, '--compression', 'zstd', '--level', '5']).stdout).toMatch(/created repository [0-9a-f]{8}/);
    const env = { SCRIPTORIUM_REPO: repoDir };
    const b1 = cli(['backup', db, '--tag', 'nightly', '--quiet'], env);
    expect(b1).toMatchObject({ code: 0, stdout: '' });
    const b2 = cli(['backup', db, '--repo', repoDir], {});
    expect(b2.stdout).toMatch(/snapshot [0-9a-f]{8} saved: .* 0 of [\d,]+ chunks new/);
    const list = JSON.parse(cli(['snapshots', '--json'], env).stdout);
    expect(list.snapshots).toHaveLength(2);
    expect(list.snapshots[0]).toMatchObject({ tags: ['nightly'], tables: 7 });
    expect(cli(['snapshots'], env).stdout).toMatch(/id\s+time\s+host.*\n.*\n[0-9a-f]{8} .*nightly/);
    const out = join(dir, 'out.db');
    expect(cli(['restore', 'latest', '--into', out], env).stdout).toMatch(/every table verified by digest/);
    expect(await engineDigests(out)).toEqual(await engineDigests(db));
    expect(cli(['verify', '--read-data', '--drill'], env).stdout).toMatch(/no problems found: 2 snapshots.*drill restore/);
    expect(cli(['diff', list.snapshots[0].id.slice(0, 8), 'latest'], env).stdout).toMatch(/unchanged regs/);
    const f = cli(['forget', '--keep-last', '1', '--prune'], env);
    expect(f.stdout).toMatch(/1 snapshot\(s\) removed, 1 kept; pruned 0 packs/);
    expect(cli(['prune', '--json'], env).stdout).toMatch(/"packsDeleted": 0/);
  });

  it('bad arguments: clear errors, non-zero exit status', () => {
    const dir = tempDir('cli');
    const noRepo = cli(['snapshots'], { SCRIPTORIUM_REPO: '' });
    expect(noRepo.code).toBe(2);
    expect(noRepo.stderr).toMatch(/error E_USAGE: no repository given\n  hint: Pass --repo/);
    const notRepo = cli(['snapshots', '--repo', dir]);
    expect(notRepo.code).toBe(1);
    expect(notRepo.stderr).toMatch(/error E_NOT_REPOSITORY: .* is not a scriptorium repository/);
    cli(['init', join(dir, 'r')]);
    const unknown = cli(['restore', 'abcdef12', '--into', join(dir, 'x.db'), '--repo', join(dir, 'r')]);
    expect(unknown.stderr).toMatch(/error E_NOT_FOUND: repository: no snapshot "abcdef12"/);
    expect(cli(['forget', '--repo', join(dir, 'r')]).stderr).toMatch(/no policy given/);
    expect(cli(['forget', '--keep-last', 'x', '--repo', join(dir, 'r')]).stderr).toMatch(/expected a whole number/);
  });
});
