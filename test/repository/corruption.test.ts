import { existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { backup } from '../../src/repository/backup.js';
import { RepositoryIntegrityError } from '../../src/repository/errors.js';
import { Repository } from '../../src/repository/repository.js';
import { restore } from '../../src/repository/restore.js';
import { verify } from '../../src/repository/verify.js';
import type { Snapshot } from '../../src/repository/manifest.js';
import { demoDb, tempDir } from './helpers.js';

function packFiles(repoDir: string): string[] {
  const out: string[] = [];
  for (const sub of readdirSync(join(repoDir, 'packs'))) for (const f of readdirSync(join(repoDir, 'packs', sub))) out.push(join(repoDir, 'packs', sub, f));
  return out;
}

/** The pack that holds the chunks of `table` in `snap`, and the file path of that pack. */
function packOf(repoDir: string, snap: Snapshot, table: string): string {
  const entry = snap.tables.find((t) => t.name === table)!;
  const hash = snap.packs[entry.chunks[0][0]];
  return join(repoDir, 'packs', hash.slice(0, 2), hash);
}

describe.each([1, 2] as const)('damage is detected by verify --read-data and by restore (format %i)', (formatVersion) => {
  let dir: string;
  let repoDir: string;
  let snap: Snapshot;
  beforeEach(async () => {
    dir = tempDir();
    const db = demoDb(dir, 1500);
    repoDir = join(dir, 'repo');
    // Small packs, so that each table has packs of its own.
    await (await Repository.init(repoDir, { packBytes: 16 * 1024, formatVersion })).close();
    snap = await backup(db, repoDir);
    await verify(repoDir, { readData: true });
  });

  async function expectDamage(pattern: RegExp, table?: string): Promise<void> {
    const err = await verify(repoDir, { readData: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RepositoryIntegrityError);
    const problems = (err as RepositoryIntegrityError).problems;
    const problem = problems.find((p) => p.table === table) ?? problems[0];
    expect((err as Error).message).toMatch(pattern);
    expect((err as Error).message).toContain(`snapshot ${snap.id.slice(0, 8)}`);
    if (table) {
      expect(problem).toMatchObject({ snapshot: snap.id, table });
      // A chunk is named by its id from the index: whole in format 1, its 8-byte fingerprint in format 2.
      expect(problem.chunk).toMatch(formatVersion === 1 ? /^[0-9a-f]{64}$/ : /^[0-9a-f]{16}$/);
      expect((err as Error).message).toMatch(/table "[a-z_]+", chunk [0-9a-f]{16}/);
    }
    const into = join(dir, 'restored.db');
    const rerr = await restore(snap.id, repoDir, { into }).catch((e: unknown) => e);
    expect(rerr).toBeInstanceOf(RepositoryIntegrityError);
    if (table) expect((rerr as Error).message).toMatch(/table "[a-z_]+", chunk [0-9a-f]{16}/);
    expect(existsSync(into)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('restore'))).toEqual([]);
  }

  it('a flipped byte in a pack', async () => {
    const file = packOf(repoDir, snap, 'stays');
    const data = readFileSync(file);
    data[Math.floor(data.length / 2)] ^= 0x01;
    writeFileSync(file, data);
    await expectDamage(/does not match its name/, 'stays');
  });

  it('a truncated pack', async () => {
    const file = packOf(repoDir, snap, 'room_bookings');
    truncateSync(file, statSync(file).size - 10);
    await expectDamage(/damaged or truncated/, 'room_bookings');
  });

  it('a missing pack (verify without --read-data already sees it)', async () => {
    const file = packOf(repoDir, snap, 'regs');
    writeFileSync(file + '.moved', readFileSync(file));
    truncateSync(file, 0);
    const { rmSync } = await import('node:fs');
    rmSync(file);
    const err = await verify(repoDir).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/table "regs", chunk [0-9a-f]{16}.*is missing/);
    await expectDamage(/missing/, 'regs');
  });

  it('a truncated manifest', async () => {
    const file = join(repoDir, 'snapshots', snap.id);
    truncateSync(file, statSync(file).size - 7);
    const err = await verify(repoDir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RepositoryIntegrityError);
    expect((err as Error).message).toMatch(new RegExp(`snapshot ${snap.id.slice(0, 8)}.*manifest.*damaged or truncated`));
    const into = join(dir, 'restored.db');
    await expect(restore(snap.id, repoDir, { into })).rejects.toMatchObject({ code: 'E_CORRUPT' });
    expect(existsSync(into)).toBe(false);
  });

  it('an existing target is left untouched when the restore fails', async () => {
    const into = join(dir, 'existing.db');
    writeFileSync(into, 'precious');
    const file = packFiles(repoDir).at(-1)!;
    const data = readFileSync(file);
    data[20] ^= 0xff;
    writeFileSync(file, data);
    await expect(restore('latest', repoDir, { into, force: true })).rejects.toBeInstanceOf(RepositoryIntegrityError);
    expect(readFileSync(into, 'utf8')).toBe('precious');
  });
});

it('a backup after a pack was lost stores its chunks again (repairing it) instead of referring to the missing pack', async () => {
  const dir = tempDir();
  const db = demoDb(dir, 300);
  const repoDir = join(dir, 'repo');
  await (await Repository.init(repoDir, { packBytes: 16 * 1024 })).close();
  const first = await backup(db, repoDir);
  const lost = packFiles(repoDir)[0];
  const { rmSync } = await import('node:fs');
  rmSync(lost);
  const second = await backup(db, repoDir);
  expect(second.stats.newChunks).toBeGreaterThan(0);
  // The same chunks in the same order make the same pack, under the same name: the loss is repaired.
  expect(existsSync(lost)).toBe(true);
  await verify(repoDir, { readData: true });
  await restore(first.id, repoDir, { into: join(dir, 'ok.db') });
});
