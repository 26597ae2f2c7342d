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

it('FsStore puts a file written under its temporary prefix by moving it, and moves nothing else', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'scriptorium-fs-store-'));
  const store = new FsStore(dir);
  const fs = await import('node:fs/promises');
  const prefix = store.tempPrefix();
  expect(prefix.startsWith(join(dir, '.tmp-'))).toBe(true);
  expect(store.tempPrefix()).not.toBe(prefix); // unique per call
  const file = `${prefix}0`;
  await fs.writeFile(file, 'pack bytes');
  const listed: string[] = [];
  for await (const e of store.list('')) listed.push(e.key);
  expect(listed).toEqual([]); // a temporary file until it is put
  await store.putFile('packs/cd/cdef', file); // packs/cd/ does not exist yet
  expect((await store.get('packs/cd/cdef')).toString()).toBe('pack bytes');
  expect(await readdir(dir)).not.toContain(file.slice(dir.length + 1));
  // A later put over the same key replaces it, like put.
  await fs.writeFile(`${prefix}1`, 'again');
  await store.putFile('packs/cd/cdef', `${prefix}1`);
  expect((await store.get('packs/cd/cdef')).toString()).toBe('again');
  // Not one of its temporary files: refused, and left alone.
  const outside = join(dir, 'packs', 'cd', 'cdef');
  await expect(store.putFile('packs/zz/z', outside)).rejects.toBeInstanceOf(TypeError);
  await expect(store.putFile('packs/zz/z', join(dir, 'plain'))).rejects.toBeInstanceOf(TypeError);
  expect((await store.get('packs/cd/cdef')).toString()).toBe('again');
  // A missing file fails with E_IO and leaves no key behind.
  await expect(store.putFile('packs/ee/e', `${prefix}9`)).rejects.toMatchObject({ code: 'E_IO' });
  expect(await store.has('packs/ee/e')).toBe(false);
  await rm(dir, { recursive: true, force: true });
});
