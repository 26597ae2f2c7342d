/** The conformance suite every Store passes: `describeStore('fs', async () => new FsStore(dir))`. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NotFoundError } from '../../src/core/errors.js';
import type { Store } from '../../src/stores/store.js';

/** A fresh, empty store per test, and how to dispose of it. */
export type StoreFactory = () => Promise<{ store: Store; cleanup?: () => Promise<void> }>;

async function keys(store: Store, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of store.list(prefix)) out.push(entry.key);
  return out.sort();
}

export function describeStore(name: string, factory: StoreFactory): void {
  describe(`Store conformance: ${name}`, () => {
    let store: Store;
    let cleanup: (() => Promise<void>) | undefined;
    beforeEach(async () => {
      ({ store, cleanup } = await factory());
    });
    afterEach(async () => {
      await store.close();
      await cleanup?.();
    });

    it('round-trips bytes exactly, including empty and binary objects', async () => {
      const binary = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 37) % 256));
      await store.put('packs/ab/abcdef', binary);
      await store.put('empty', Buffer.alloc(0));
      expect((await store.get('packs/ab/abcdef')).equals(binary)).toBe(true);
      expect((await store.get('empty')).length).toBe(0);
    });

    it('replaces an object on a second put', async () => {
      await store.put('config', Buffer.from('one'));
      await store.put('config', Buffer.from('two, longer'));
      expect((await store.get('config')).toString()).toBe('two, longer');
    });

    it('throws NotFoundError for a missing key on get and stat', async () => {
      await expect(store.get('snapshots/nope')).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.get('snapshots/nope')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
      await expect(store.stat('nope')).rejects.toBeInstanceOf(NotFoundError);
    });

    it('reports existence and size', async () => {
      expect(await store.has('a/b')).toBe(false);
      await store.put('a/b', Buffer.from('12345'));
      expect(await store.has('a/b')).toBe(true);
      expect(await store.stat('a/b')).toEqual({ key: 'a/b', size: 5 });
    });

    it('lists by prefix, including partial segments and nested keys', async () => {
      for (const key of ['snapshots/s1', 'snapshots/s2', 'packs/ab/ab1', 'packs/ab/ab2', 'packs/cd/cd1', 'config']) {
        await store.put(key, Buffer.from(key));
      }
      expect(await keys(store, 'snapshots/')).toEqual(['snapshots/s1', 'snapshots/s2']);
      expect(await keys(store, 'packs/')).toEqual(['packs/ab/ab1', 'packs/ab/ab2', 'packs/cd/cd1']);
      expect(await keys(store, 'packs/a')).toEqual(['packs/ab/ab1', 'packs/ab/ab2']);
      expect(await keys(store, 'packs/ab/ab2')).toEqual(['packs/ab/ab2']);
      expect(await keys(store, 'nothing/')).toEqual([]);
      expect((await keys(store, '')).length).toBe(6);
      for await (const entry of store.list('snapshots/s1')) expect(entry.size).toBe('snapshots/s1'.length);
    });

    it('deletes, and a delete of a missing key is harmless', async () => {
      await store.put('locks/l1', Buffer.from('x'));
      await store.delete('locks/l1');
      await store.delete('locks/l1');
      expect(await store.has('locks/l1')).toBe(false);
      expect(await keys(store, 'locks/')).toEqual([]);
    });

    it('rejects invalid keys with a TypeError', async () => {
      for (const bad of ['', '/abs', 'a//b', '../up', 'a/../b', '.hidden', 'a/.tmp-x', 'sp ace', 'a/']) {
        await expect(store.put(bad, Buffer.from('x'))).rejects.toBeInstanceOf(TypeError);
        await expect(store.get(bad)).rejects.toBeInstanceOf(TypeError);
      }
    });

    it('copes with concurrent puts of distinct keys', async () => {
      const all = Array.from({ length: 40 }, (_, i) => `data/${String(i % 4)}/k${i}`);
      await Promise.all(all.map((key) => store.put(key, Buffer.from(key))));
      expect(await keys(store, 'data/')).toEqual([...all].sort());
      for (const key of all) expect((await store.get(key)).toString()).toBe(key);
    });

    it('does not alias the caller\'s buffers', async () => {
      const data = Buffer.from('abc');
      await store.put('k', data);
      data.write('xyz');
      const got = await store.get('k');
      got.write('qqq');
      expect((await store.get('k')).toString()).toBe('abc');
    });

    it('bounds a read: an object of exactly maxBytes is read, a longer one is refused with E_CORRUPT', async () => {
      await store.put('snapshots/big', Buffer.alloc(1000, 7));
      expect((await store.get('snapshots/big', { maxBytes: 1000 })).length).toBe(1000);
      await expect(store.get('snapshots/big', { maxBytes: 999 })).rejects.toMatchObject({ code: 'E_CORRUPT' });
      await expect(store.get('snapshots/big', { maxBytes: 0 })).rejects.toMatchObject({ code: 'E_CORRUPT' });
      await store.put('empty', Buffer.alloc(0));
      expect((await store.get('empty', { maxBytes: 0 })).length).toBe(0);
      await expect(store.get('missing', { maxBytes: 10 })).rejects.toBeInstanceOf(NotFoundError);
    });

    it('lists nothing and reports no strays for what it holds itself', async () => {
      await store.put('packs/ab/abcdef', Buffer.from('x'));
      await store.put('config', Buffer.from('{}'));
      const strays: string[] = [];
      const listed: string[] = [];
      for await (const e of store.list('', { strays })) listed.push(e.key);
      expect(listed.sort()).toEqual(['config', 'packs/ab/abcdef']);
      expect(strays).toEqual([]);
      expect(await keys(store, 'nothing/')).toEqual([]);
    });

    it('putIfAbsent creates once: of racing callers exactly one wins, and the object stays the winner\'s', async () => {
      if (!store.putIfAbsent) return; // optional (the lock protocol then also lists locks)
      expect(await store.putIfAbsent('locks/exclusive', Buffer.from('first'))).toBe(true);
      expect(await store.putIfAbsent('locks/exclusive', Buffer.from('second'))).toBe(false);
      expect((await store.get('locks/exclusive')).toString()).toBe('first');
      await store.delete('locks/exclusive');
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => store.putIfAbsent!('locks/race', Buffer.from(`writer ${i}`))));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect((await store.get('locks/race')).toString()).toBe(`writer ${results.indexOf(true)}`);
      expect(await keys(store, 'locks/')).toEqual(['locks/race']); // no temporary left behind
    });

    it('getPieces (where it has it) gives the object\'s bytes in pieces of at most pieceBytes, with get\'s checks before the first', async (ctx) => {
      if (!store.getPieces) return ctx.skip();
      const read = async (key: string, options: { pieceBytes?: number; maxBytes?: number }): Promise<Buffer[]> => {
        const pieces: Buffer[] = [];
        for await (const piece of store.getPieces!(key, options)) {
          expect(piece.length).toBeGreaterThan(0);
          expect(piece.length).toBeLessThanOrEqual(options.pieceBytes ?? 4 << 20);
          pieces.push(Buffer.from(piece)); // a view valid only until the next piece
        }
        return pieces;
      };
      const piece = 1000;
      for (const size of [0, 1, piece - 1, piece, piece + 1, 3 * piece + 7]) {
        const data = Buffer.from(Array.from({ length: size }, (_, i) => (i * 131 + size) % 251));
        const key = `packs/ab/ab${size}`;
        await store.put(key, data);
        const pieces = await read(key, { pieceBytes: piece });
        expect(pieces.length, `${size} bytes`).toBe(Math.ceil(size / piece));
        expect(Buffer.concat(pieces).equals(data), `${size} bytes`).toBe(true);
        expect(Buffer.concat(await read(key, { pieceBytes: piece, maxBytes: size })).equals(data)).toBe(true);
        if (size > 0) await expect(read(key, { pieceBytes: piece, maxBytes: size - 1 })).rejects.toMatchObject({ code: 'E_CORRUPT' });
      }
      await expect(read('packs/ab/missing', {})).rejects.toBeInstanceOf(NotFoundError);
      await expect(read('packs/ab/ab1', { pieceBytes: 0 })).rejects.toBeInstanceOf(TypeError);
      await expect(read('../x', {})).rejects.toBeInstanceOf(TypeError);
    });

    it('putFile (where it has it) stores a file made under tempPrefix, removes the file, and never lists it meanwhile', async (ctx) => {
      if (!store.tempPrefix || !store.putFile) return ctx.skip();
      const { writeFileSync, existsSync } = await import('node:fs');
      const data = Buffer.from(Array.from({ length: 70_001 }, (_, i) => (i * 7) % 256));
      await store.put('config', Buffer.from('{}')); // a repository's folder exists once it has a config
      const path = `${store.tempPrefix()}0`;
      writeFileSync(path, data);
      expect(await keys(store, '')).toEqual(['config']);
      await store.putFile('packs/cd/cdef', path);
      expect(existsSync(path)).toBe(false);
      expect((await store.get('packs/cd/cdef')).equals(data)).toBe(true);
      expect(await keys(store, '')).toEqual(['config', 'packs/cd/cdef']);
      if (store.putFileNew) {
        const again = `${store.tempPrefix()}1`;
        writeFileSync(again, data);
        expect(await store.putFileNew('packs/cd/cdef', again)).toBe(false); // there already
        expect(existsSync(again)).toBe(false);
        const other = `${store.tempPrefix()}2`;
        writeFileSync(other, data.subarray(1));
        expect(await store.putFileNew('packs/cd/cd01', other)).toBe(true);
        expect((await store.get('packs/cd/cd01')).equals(data.subarray(1))).toBe(true);
      }
    });

    it('declares its capabilities as data', () => {
      expect(typeof store.capabilities.atomicPut).toBe('boolean');
      expect(store.capabilities.maxConcurrency).toBeGreaterThan(0);
      expect(typeof store.location).toBe('string');
    });
  });
}
