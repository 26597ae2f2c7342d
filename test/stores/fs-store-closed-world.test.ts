/**
 * FsStore as a closed world: a repository written by an attacker (links inside it, FIFOs, devices,
 * oversized files, foreign names) is never followed, never blocks a read, never lets a key resolve
 * outside the root; files are private whatever the umask; temporaries of dead writers are removed.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsStore } from '../../src/stores/fs-store.js';
import { tempDir } from '../repository/helpers.js';

const HASH = 'ab' + 'c'.repeat(62);

async function listAll(store: FsStore, prefix = ''): Promise<{ keys: string[]; strays: string[] }> {
  const strays: string[] = [];
  const keys: string[] = [];
  for await (const e of store.list(prefix, { strays })) keys.push(e.key);
  return { keys: keys.sort(), strays: strays.sort() };
}

/** A pid that surely ran on this host and no longer does. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

const hostTag = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

describe('FsStore never follows a link inside the repository', () => {
  it('a symlinked pack is neither read, listed, stat-ed nor deleted, and its target is untouched', async () => {
    const dir = tempDir('closed');
    const outside = join(dir, 'secret');
    writeFileSync(outside, 'not yours');
    const root = join(dir, 'repo');
    mkdirSync(join(root, 'packs', 'ab'), { recursive: true });
    symlinkSync(outside, join(root, 'packs', 'ab', HASH));
    const store = new FsStore(root);
    await expect(store.get(`packs/ab/${HASH}`)).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringMatching(/symbolic link/) });
    await expect(store.stat(`packs/ab/${HASH}`)).rejects.toMatchObject({ code: 'E_CORRUPT' });
    await expect(store.delete(`packs/ab/${HASH}`)).rejects.toMatchObject({ code: 'E_CORRUPT' });
    expect(await listAll(store, 'packs/')).toEqual({ keys: [], strays: [`packs/ab/${HASH}`] });
    expect(readFileSync(outside, 'utf8')).toBe('not yours');
  });

  it('a symlinked folder pointing outside (packs/ab -> elsewhere) is never entered: the file in it survives', async () => {
    const dir = tempDir('closed');
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, HASH), 'important');
    const root = join(dir, 'repo');
    mkdirSync(join(root, 'packs'), { recursive: true });
    symlinkSync(elsewhere, join(root, 'packs', 'ab'));
    const store = new FsStore(root);
    expect(await listAll(store, 'packs/')).toEqual({ keys: [], strays: ['packs/ab'] });
    expect(await listAll(store, 'packs/ab/')).toEqual({ keys: [], strays: ['packs/ab'] });
    await expect(store.get(`packs/ab/${HASH}`)).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringMatching(/packs\/ab: is a symbolic link/) });
    await expect(store.delete(`packs/ab/${HASH}`)).rejects.toMatchObject({ code: 'E_CORRUPT' });
    await expect(store.put(`packs/ab/${'ab' + 'd'.repeat(62)}`, Buffer.from('x'))).rejects.toMatchObject({ code: 'E_CORRUPT' });
    expect(readdirSync(elsewhere)).toEqual([HASH]);
    expect(readFileSync(join(elsewhere, HASH), 'utf8')).toBe('important');
    // A whole linked top folder too.
    symlinkSync(elsewhere, join(root, 'index'));
    expect(await listAll(store, 'index/')).toEqual({ keys: [], strays: ['index'] });
    await expect(store.get(`index/${HASH}`)).rejects.toMatchObject({ code: 'E_CORRUPT' });
  });

  it('the root itself may be a link (the user gave it)', async () => {
    const dir = tempDir('closed');
    mkdirSync(join(dir, 'real'));
    symlinkSync(join(dir, 'real'), join(dir, 'link'));
    const store = new FsStore(join(dir, 'link'));
    await store.put('config', Buffer.from('{}'));
    expect((await store.get('config')).toString()).toBe('{}');
    expect((await listAll(store)).keys).toEqual(['config']);
  });
});

describe('FsStore opens only regular files, at once', () => {
  it('a FIFO pack fails at once with E_CORRUPT and does not block', async () => {
    const dir = tempDir('closed');
    mkdirSync(join(dir, 'packs', 'ab'), { recursive: true });
    const fifo = join(dir, 'packs', 'ab', HASH);
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const store = new FsStore(dir);
    const started = Date.now();
    await expect(store.get(`packs/ab/${HASH}`, { maxBytes: 1 << 20 })).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringMatching(/FIFO/) });
    await expect(store.get(`packs/ab/${HASH}`)).rejects.toMatchObject({ code: 'E_CORRUPT' });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await listAll(store, 'packs/')).toEqual({ keys: [], strays: [`packs/ab/${HASH}`] });
    await expect(store.delete(`packs/ab/${HASH}`)).rejects.toMatchObject({ code: 'E_CORRUPT' });
    expect(statSync(fifo).isFIFO()).toBe(true);
  }, 10_000);

  it('a device, and a folder, at a key are refused with E_CORRUPT', async () => {
    const dir = tempDir('closed');
    const store = new FsStore(dir);
    mkdirSync(join(dir, 'snapshots', HASH), { recursive: true });
    await expect(store.get(`snapshots/${HASH}`)).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringMatching(/folder/) });
    if (spawnSync('mknod', [join(dir, 'config'), 'c', '1', '5']).status === 0) { // /dev/zero: a read would never end
      await expect(store.get('config')).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringMatching(/device/) });
      await expect(store.get('config', { maxBytes: 100 })).rejects.toMatchObject({ code: 'E_CORRUPT' });
    }
  });

  it('an oversize object is refused at once with E_CORRUPT, naming both sizes', async () => {
    const dir = tempDir('closed');
    const store = new FsStore(dir);
    await store.put('config', Buffer.alloc(4096, 1));
    await expect(store.get('config', { maxBytes: 4095 })).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringMatching(/4096 bytes, more than the 4095/) });
  });

  it('names that are not keys, dot files and links are strays: never listed, reported', async () => {
    const dir = tempDir('closed');
    const store = new FsStore(dir);
    await store.put('snapshots/a', Buffer.from('x'));
    writeFileSync(join(dir, 'snapshots', 'with space'), 'x');
    writeFileSync(join(dir, '.DS_Store'), 'x');
    symlinkSync('/etc/hostname', join(dir, 'snapshots', 'b'));
    writeFileSync(join(dir, 'snapshots', '.tmp-dead'), 'x'); // a temporary: neither an object nor a stray
    expect(await listAll(store)).toEqual({ keys: ['snapshots/a'], strays: ['.DS_Store', 'snapshots/b', 'snapshots/with space'] });
  });
});

describe('FsStore files are private', () => {
  it('files are 0600 and folders 0700 under umask 022, for put and putFile', async () => {
    const old = process.umask(0o022);
    try {
      const dir = tempDir('closed');
      const root = join(dir, 'repo');
      const store = new FsStore(root);
      await store.put(`packs/ab/${HASH}`, Buffer.from('x'));
      await store.put('config', Buffer.from('{}'));
      const file = `${store.tempPrefix()}0`;
      writeFileSync(file, 'pack', { mode: 0o644 }); // as the native packer creates them (0666 & ~umask)
      await store.putFile(`packs/cd/${'cd' + 'e'.repeat(62)}`, file);
      const mode = (p: string) => statSync(join(root, p)).mode & 0o777;
      expect(mode('.')).toBe(0o700);
      expect(mode('packs')).toBe(0o700);
      expect(mode('packs/ab')).toBe(0o700);
      expect(mode('packs/cd')).toBe(0o700);
      expect(mode(`packs/ab/${HASH}`)).toBe(0o600);
      expect(mode('config')).toBe(0o600);
      expect(mode(`packs/cd/${'cd' + 'e'.repeat(62)}`)).toBe(0o600);
    } finally {
      process.umask(old);
    }
  });
});

describe('FsStore temporaries of dead writers', () => {
  it('temporary names carry this host and pid', () => {
    const store = new FsStore(tempDir('closed'));
    expect(store.tempPrefix()).toMatch(new RegExp(`/\\.tmp-${hostTag}-${process.pid}-[0-9a-f]{16}-$`));
  });

  it('stale temporaries of a dead pid are removed (put and packer names), live and foreign ones stay', async () => {
    const dir = tempDir('closed');
    const store = new FsStore(dir);
    await store.put(`packs/ab/${HASH}`, Buffer.from('x'));
    const dead = deadPid();
    const live = process.ppid; // runs, and is not this process
    const names = {
      deadPut: `packs/ab/.tmp-${hostTag}-${dead}-0123456789abcdef`,
      deadPack: `.tmp-${hostTag}-${dead}-0123456789abcdef-3`,
      deadSnapshot: `snapshots/.tmp-${hostTag}-${dead}-fedcba9876543210`,
      livePut: `packs/ab/.tmp-${hostTag}-${live}-0123456789abcdef`,
      mine: `.tmp-${hostTag}-${process.pid}-0123456789abcdef-0`,
      otherHost: `.tmp-00000000-${dead}-0123456789abcdef-0`,
      old: '.tmp-0123456789abcdef-1', // an older name without a pid: only the age sweep removes it
      notOurs: `foreign/.tmp-${hostTag}-${dead}-0123456789abcdef`, // not a repository folder
    };
    mkdirSync(join(dir, 'snapshots'));
    mkdirSync(join(dir, 'foreign'));
    for (const name of Object.values(names)) writeFileSync(join(dir, name), 'partial');
    const removed = await store.removeDeadTemporaries();
    expect(removed.map((r) => r.name).sort()).toEqual([names.deadPack, names.deadPut, names.deadSnapshot].sort());
    expect(removed.every((r) => r.pid === dead)).toBe(true);
    for (const [what, name] of Object.entries(names)) {
      expect([what, existsSync(join(dir, name))]).toEqual([what, !['deadPut', 'deadPack', 'deadSnapshot'].includes(what)]);
    }
    expect((await store.get(`packs/ab/${HASH}`)).toString()).toBe('x');
  });
});
