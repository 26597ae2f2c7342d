import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { FsStore } from '../../src/stores/fs-store.js';
import { describeStore } from './store-suite.js';

describeStore('FsStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'scriptorium-fs-store-'));
  return { store: new FsStore(join(dir, 'repo')), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

it('FsStore leaves no temporary files behind and ignores stray ones', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'scriptorium-fs-store-'));
  const store = new FsStore(dir);
  await store.put('a/b', Buffer.from('x'));
  expect(await readdir(join(dir, 'a'))).toEqual(['b']);
  await import('node:fs/promises').then((fs) => fs.writeFile(join(dir, 'a', '.tmp-dead'), 'partial'));
  const listed: string[] = [];
  for await (const e of store.list('a/')) listed.push(e.key);
  expect(listed).toEqual(['a/b']);
  await rm(dir, { recursive: true, force: true });
});

it('FsStore removes stale temporary files of interrupted puts, sparing recent ones', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'scriptorium-fs-store-'));
  const store = new FsStore(dir);
  await store.put('packs/ab/x', Buffer.from('x'));
  const fs = await import('node:fs/promises');
  await fs.writeFile(join(dir, 'packs', 'ab', '.tmp-old'), 'partial');
  await fs.writeFile(join(dir, 'packs', 'ab', '.tmp-new'), 'partial');
  const old = new Date(Date.now() - 2 * 3600_000);
  await fs.utimes(join(dir, 'packs', 'ab', '.tmp-old'), old, old);
  expect(await store.removeStaleTemporaries(3600_000)).toBe(1);
  expect((await readdir(join(dir, 'packs', 'ab'))).sort()).toEqual(['.tmp-new', 'x']);
  await rm(dir, { recursive: true, force: true });
});
