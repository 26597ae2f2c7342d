/**
 * `verify --read-data` reads every pack in the repository, not only those a snapshot references: a
 * backup killed after writing packs (and the index that lists them) but before its manifest leaves
 * packs no snapshot uses, and the next backup, finding their chunks in the index, reuses them instead
 * of storing them again. A damaged one must fail verify, naming it; an intact one passes and is counted;
 * prune still removes them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { backup } from '../../src/repository/backup.js';
import { RepositoryIntegrityError } from '../../src/repository/errors.js';
import { prune } from '../../src/repository/prune.js';
import { Repository } from '../../src/repository/repository.js';
import { restore } from '../../src/repository/restore.js';
import { verify } from '../../src/repository/verify.js';
import { demoDb, engineDigests, tempDir } from './helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cliChild = fileURLToPath(new URL('./fixtures/cli-child.mjs', import.meta.url));

beforeAll(() => {
  if (!existsSync(join(root, 'dist/cli/repository-commands.js'))) throw new Error('run `npm run build` first: the CLI children run dist/');
});

/** Every pack file of the repository, by hash. */
function packHashes(repoDir: string): string[] {
  const out: string[] = [];
  for (const sub of readdirSync(join(repoDir, 'packs'))) out.push(...readdirSync(join(repoDir, 'packs', sub)));
  return out.sort();
}

const packPath = (repoDir: string, hash: string): string => join(repoDir, 'packs', hash.slice(0, 2), hash);

/**
 * A repository with one snapshot, plus the leftovers of a second backup of a changed database that was
 * killed just before it wrote its manifest: its new packs and its index files are there, no snapshot
 * refers to them. (The state is made by removing that backup's manifest, the one file written after the
 * packs and the index, which is what a SIGKILL at that moment leaves; killing at a random moment would
 * make the test depend on timing.) Returns the leftover packs.
 */
async function repositoryWithLeftovers(): Promise<{ dir: string; repoDir: string; db: string; kept: string; leftovers: string[]; leftoverIndexes: string[] }> {
  const dir = tempDir('unref');
  const db = demoDb(dir, 600);
  const repoDir = join(dir, 'repo');
  // Small packs, so that the changed tables' chunks land in packs of their own.
  await (await Repository.init(repoDir, { packBytes: 16 * 1024 })).close();
  const kept = await backup(db, repoDir);
  const before = new Set(packHashes(repoDir));
  const indexesBefore = new Set(readdirSync(join(repoDir, 'index')));
  const conn = new Database(db);
  conn.exec("UPDATE stays SET note = 'changed after the first snapshot'; UPDATE regs SET status = 'X' WHERE rowid % 2 = 0");
  conn.close();
  const lost = await backup(db, repoDir);
  rmSync(join(repoDir, 'snapshots', lost.id));
  const leftovers = packHashes(repoDir).filter((h) => !before.has(h));
  const leftoverIndexes = readdirSync(join(repoDir, 'index')).filter((f) => !indexesBefore.has(f));
  return { dir, repoDir, db, kept: kept.id, leftovers, leftoverIndexes };
}

describe('verify --read-data reads packs no snapshot references', () => {
  it('an intact leftover pack passes and is counted; prune still removes it', async () => {
    const { dir, repoDir, db, kept, leftovers } = await repositoryWithLeftovers();
    expect(leftovers.length).toBeGreaterThan(0);

    const report = await verify(repoDir, { readData: true });
    expect(report.snapshots).toBe(1);
    expect(report.unreferencedPacks).toBe(leftovers.length);
    expect(report.packs + report.unreferencedPacks).toBe(packHashes(repoDir).length);
    // Structure only: packs are not read, so none is counted.
    expect((await verify(repoDir)).unreferencedPacks).toBe(0);

    const pruned = await prune(repoDir);
    expect(pruned.packsDeleted).toBe(leftovers.length);
    for (const h of leftovers) expect(existsSync(packPath(repoDir, h))).toBe(false);
    expect((await verify(repoDir, { readData: true })).unreferencedPacks).toBe(0);
    const out = join(dir, 'out.db');
    await restore(kept, repoDir, { into: out });
    expect(Object.keys(await engineDigests(out))).toEqual(Object.keys(await engineDigests(db)));
  });

  it('a damaged leftover pack fails verify --read-data with an error naming it; prune removes it and verify passes again', async () => {
    const { repoDir, leftovers } = await repositoryWithLeftovers();
    const damaged = leftovers[0]!;
    const file = packPath(repoDir, damaged);
    const data = readFileSync(file);
    data[Math.floor(data.length / 2)] ^= 0x01;
    writeFileSync(file, data);

    // The snapshot that remains does not use the pack: without --read-data nothing looks wrong.
    await verify(repoDir);
    const err = await verify(repoDir, { readData: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RepositoryIntegrityError);
    expect((err as RepositoryIntegrityError).code).toBe('E_CORRUPT');
    const problems = (err as RepositoryIntegrityError).problems;
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ code: 'E_CORRUPT', pack: damaged });
    expect(problems[0]!.snapshot).toBeUndefined();
    expect((err as Error).message).toContain(`pack ${damaged.slice(0, 16)}`);
    expect((err as Error).message).toMatch(/unreferenced/);
    expect((err as Error).message).toMatch(/does not match its name/);

    // The CLI: a non-zero exit and the pack named on stderr.
    const r = spawnSync(process.execPath, [cliChild, 'verify', '--read-data', '--repo', repoDir], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/E_CORRUPT/);
    expect(r.stderr).toContain(`pack ${damaged.slice(0, 16)}`);

    expect((await prune(repoDir)).packsDeleted).toBe(leftovers.length);
    expect(existsSync(file)).toBe(false);
    await verify(repoDir, { readData: true });
  });

  it('a damaged leftover pack that no index lists (killed before the index was written) fails too', async () => {
    const { repoDir, leftovers, leftoverIndexes } = await repositoryWithLeftovers();
    // The interrupted backup's index files list only its own packs: without them, no index lists any.
    expect(leftoverIndexes.length).toBeGreaterThan(0);
    for (const f of leftoverIndexes) rmSync(join(repoDir, 'index', f));
    expect((await verify(repoDir, { readData: true })).unreferencedPacks).toBe(leftovers.length);
    const damaged = leftovers[leftovers.length - 1]!;
    const file = packPath(repoDir, damaged);
    const data = readFileSync(file);
    data[data.length - 3] ^= 0x40;
    writeFileSync(file, data);
    const err = await verify(repoDir, { readData: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RepositoryIntegrityError);
    expect((err as RepositoryIntegrityError).problems.map((p) => p.pack)).toContain(damaged);
  });

  it('a garbage file under packs/ with a pack name fails verify --read-data until prune removes it', async () => {
    const dir = tempDir('unref');
    const repoDir = join(dir, 'repo');
    await (await Repository.init(repoDir)).close();
    await backup(demoDb(dir, 100), repoDir);
    const name = 'ab'.repeat(32);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(repoDir, 'packs', 'ab'), { recursive: true });
    writeFileSync(packPath(repoDir, name), 'orphan from a killed backup');
    const err = await verify(repoDir, { readData: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RepositoryIntegrityError);
    expect((err as Error).message).toContain(`pack ${name.slice(0, 16)}`);
    expect((await prune(repoDir)).packsDeleted).toBe(1);
    await verify(repoDir, { readData: true });
  });
});
