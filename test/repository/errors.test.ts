import { existsSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup } from '../../src/repository/backup.js';
import { init, snapshots } from '../../src/repository/operations.js';
import { Repository } from '../../src/repository/repository.js';
import { restore } from '../../src/repository/restore.js';
import { verify } from '../../src/repository/verify.js';
import { diff } from '../../src/repository/diff.js';
import { demoDb, tempDir } from './helpers.js';

describe('bad arguments get clear errors', () => {
  it('not a repository', async () => {
    const dir = tempDir();
    for (const op of [() => snapshots(dir), () => verify(join(dir, 'nothing')), () => restore('latest', dir, { into: join(dir, 'x.db') })]) {
      const err = await op().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'E_NOT_REPOSITORY' });
      expect((err as Error).message).toContain('is not a scriptorium repository');
      expect((err as { hint: string }).hint).toMatch(/scriptorium init/);
    }
    await expect(snapshots(dir)).rejects.toMatchObject({ code: 'E_NOT_REPOSITORY', message: expect.stringContaining('(no config file)') });
    // A config that is there says what is wrong with it, not that there is none.
    writeFileSync(join(dir, 'config'), 'not json');
    await expect(snapshots(dir)).rejects.toMatchObject({ code: 'E_NOT_REPOSITORY', message: expect.stringContaining('its config file is not JSON') });
    writeFileSync(join(dir, 'config'), '{"format":"something-else","version":1}');
    await expect(snapshots(dir)).rejects.toMatchObject({ code: 'E_NOT_REPOSITORY', message: expect.stringContaining('its config file is not a scriptorium-repository config') });
  });

  it('a repository of a newer format version', async () => {
    const dir = tempDir();
    const config = await init(dir);
    // Version 2 (encrypted repositories) is read now; 3 is the first one this code does not know.
    writeFileSync(join(dir, 'config'), JSON.stringify({ ...config, version: 3 }));
    const err = await snapshots(dir).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_VERSION' });
    expect((err as Error).message).toMatch(/format version 3; this scriptorium reads up to version 2/);
  });

  it('init refuses an existing repository or a non-empty directory, and bad settings', async () => {
    const dir = tempDir();
    await init(dir);
    await expect(init(dir)).rejects.toMatchObject({ code: 'E_TARGET_EXISTS' });
    const other = join(tempDir(), 'x');
    mkdirSync(other);
    writeFileSync(join(other, 'file'), 'x');
    await expect(init(other)).rejects.toMatchObject({ code: 'E_TARGET_EXISTS' });
    await expect(init(join(dir, 'a'), { compression: 'brotli' as never })).rejects.toMatchObject({ code: 'E_UNKNOWN_COMPRESSION' });
    // Names every object has (a lookup with `in` took them for codecs, and wrote them into the config).
    for (const name of ['toString', '__proto__', 'constructor', 'hasOwnProperty']) {
      await expect(init(join(dir, name), { compression: name as never }), name).rejects.toMatchObject({ code: 'E_UNKNOWN_COMPRESSION' });
      expect(existsSync(join(dir, name, 'config')), name).toBe(false);
    }
    await expect(init(join(dir, 'b'), { compression: 'zstd', compressionLevel: 99 })).rejects.toMatchObject({ code: 'E_USAGE' });
    await expect(init(join(dir, 'c'), { chunkBytes: 3 })).rejects.toMatchObject({ code: 'E_USAGE' });
    await expect(init('s3://bucket/x')).rejects.toMatchObject({ code: 'E_USAGE' });
  });

  it('unknown, ambiguous and malformed snapshot ids; unknown tables; existing targets', async () => {
    const dir = tempDir();
    const repoDir = join(dir, 'repo');
    await init(repoDir);
    const db = demoDb(dir, 50);
    await expect(restore('latest', repoDir, { into: join(dir, 'o.db') })).rejects.toThrow(/has no snapshots yet/);
    const snap = await backup(db, repoDir);
    for (const id of ['deadbeef', 'not-an-id', 'ab']) {
      const err = await restore(id, repoDir, { into: join(dir, 'o.db') }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'E_NOT_FOUND' });
      expect((err as Error).message).toContain(`no snapshot "${id}"`);
    }
    await expect(diff(snap.id, 'cafe', repoDir)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(backup(db, repoDir, { tables: ['regs', 'nope'] })).rejects.toThrow(/has no table "nope"/);
    await expect(restore('latest', repoDir, { into: join(dir, 'o.db'), tables: ['nope'] })).rejects.toThrow(/has no table "nope"/);
    await expect(restore('latest', repoDir, { into: db })).rejects.toMatchObject({ code: 'E_TARGET_EXISTS' });
    await expect(backup(join(dir, 'missing.db'), repoDir)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    writeFileSync(join(dir, 'text.db'), 'hello, not sqlite at all');
    await expect(backup(join(dir, 'text.db'), repoDir)).rejects.toMatchObject({ code: 'E_NOT_SQLITE' });
    await expect(restore('latest', repoDir, {} as never)).rejects.toBeInstanceOf(TypeError);
    expect(readFileSync(db).subarray(0, 6).toString()).toBe('SQLite');
  });

  it('an ambiguous prefix names two candidates', async () => {
    const dir = tempDir();
    const repo = await Repository.init(join(dir, 'repo'));
    await repo.store.put(`snapshots/abcd1${'0'.repeat(59)}`, Buffer.from('x'));
    await repo.store.put(`snapshots/abcd2${'0'.repeat(59)}`, Buffer.from('x'));
    const err = await repo.resolve('abcd').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_USAGE' });
    expect((err as Error).message).toMatch(/"abcd" is ambiguous \(2 snapshots match\)/);
    expect((err as { hint: string }).hint).toMatch(/abcd1.* or abcd2/);
    await repo.close();
  });
});
