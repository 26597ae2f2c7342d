/**
 * The extension's packer (native/scriptorium_pack.inc) builds a backup's packs in C. Its packs must
 * hold exactly what the JavaScript PackWriter puts in them (same entries, same bytes, same order), so
 * that the repository does not depend on which wrote it; and its own calls must fail clearly.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { loadExtension } from '../../src/engines/sqlite/extension.js';
import { backup } from '../../src/repository/backup.js';
import type { CompressionCodec } from '../../src/repository/compression.js';
import type { Snapshot } from '../../src/repository/manifest.js';
import { NativePacker } from '../../src/repository/native-packer.js';
import { Pack, packKey } from '../../src/repository/pack.js';
import { Repository } from '../../src/repository/repository.js';
import { restore } from '../../src/repository/restore.js';
import { verify } from '../../src/repository/verify.js';
import { demoDb, engineDigests, fidelityDb, tempDir } from './helpers.js';

afterEach(() => {
  delete process.env.SCRIPTORIUM_JS_PACKS;
});

/** A database whose second table repeats the first row for row: its chunks are all found in this backup. */
function twinsDb(dir: string): string {
  const file = join(dir, 'twins.db');
  const db = new Database(file);
  db.exec('CREATE TABLE a (k INTEGER PRIMARY KEY, v TEXT); CREATE TABLE b (k INTEGER PRIMARY KEY, v TEXT);');
  const ins = db.prepare('INSERT INTO a VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= 6000; i++) ins.run(i, `row ${i} ${'x'.repeat(i % 97)}`);
  })();
  db.exec('INSERT INTO b SELECT * FROM a');
  db.close();
  return file;
}

/** Backs `file` up into a new repository, with the native packer or (`js`) without it. */
async function backupWith(dir: string, file: string, codec: CompressionCodec, js: boolean): Promise<{ repo: string; snap: Snapshot }> {
  const repo = join(dir, `${codec}-${js ? 'js' : 'native'}-${file.split('/').pop()}`);
  await (await Repository.init(repo, { compression: codec, packBytes: 8 << 10 })).close();
  if (js) process.env.SCRIPTORIUM_JS_PACKS = '1';
  try {
    return { repo, snap: await backup(file, repo, { time: new Date('2026-01-02T03:04:05Z') }) };
  } finally {
    delete process.env.SCRIPTORIUM_JS_PACKS;
  }
}

/** Every pack of the snapshot, opened: per pack, its entries' bytes and rows. */
async function packContents(repoDir: string, snap: Snapshot): Promise<Array<Array<[string, number]>>> {
  const repo = await Repository.open(repoDir);
  try {
    const out = [];
    for (const hash of snap.packs) {
      const pack = await Pack.open(hash, await repo.store.get(packKey(hash)));
      const entries: Array<[string, number]> = [];
      for (let i = 0; i < pack.entries; i++) entries.push([pack.chunk(i).toString('latin1'), pack.rows(i)]);
      out.push(entries);
    }
    return out;
  } finally {
    await repo.close();
  }
}

describe('the native packer', () => {
  const available = (() => {
    const db = new Database(':memory:');
    try {
      const handle = loadExtension(db) ? (db.prepare('SELECT scriptorium_packer(2, 1)').pluck().get() as number) : 0;
      if (handle) db.prepare('SELECT scriptorium_packer_close(?)').get(handle);
      return handle !== 0;
    } catch {
      return false;
    } finally {
      db.close();
    }
  })();

  it.each<CompressionCodec>(['zstd', 'none'])('writes the packs the JavaScript writer writes (%s)', async (codec) => {
    const dir = tempDir('packer');
    for (const file of [fidelityDb(dir), demoDb(dir, 1500), twinsDb(dir)]) {
      const native = await backupWith(dir, file, codec, false);
      const js = await backupWith(dir, file, codec, true);
      // Same tables, digests, chunk lists and counts; the packs hold the same entries in the same order.
      expect(native.snap.tables).toEqual(js.snap.tables);
      const { durationMs: _a, storedBytes: nativeStored, ...nativeStats } = native.snap.stats;
      const { durationMs: _b, storedBytes: jsStored, ...jsStats } = js.snap.stats;
      expect(nativeStats).toEqual(jsStats);
      expect(native.snap.packs.length).toBe(js.snap.packs.length);
      expect(native.snap.packs.length).toBeGreaterThan(1);
      expect(await packContents(native.repo, native.snap)).toEqual(await packContents(js.repo, js.snap));
      if (codec === 'none') {
        // Without compression the files are the same bytes, so the same names.
        expect(native.snap.packs).toEqual(js.snap.packs);
        expect(nativeStored).toBe(jsStored);
      }
      const report = await verify(native.repo, { readData: true });
      expect(report.problems).toEqual([]);
      const out = join(dir, `restored-${codec}-${file.split('/').pop()}`);
      await restore('latest', native.repo, { into: out });
      expect(await engineDigests(out)).toEqual(await engineDigests(file));
    }
  });

  it('finds a chunk it stored earlier in the same backup, and stores it once', async () => {
    const dir = tempDir('packer');
    const { snap } = await backupWith(dir, twinsDb(dir), 'zstd', false);
    const [a, b] = snap.tables;
    expect(b!.sha256).toBe(a!.sha256);
    expect(b!.chunks).toEqual(a!.chunks); // b's chunks are a's entries
    expect(snap.stats.newChunks).toBe(a!.chunkCount);
    expect(snap.stats.chunks).toBe(2 * a!.chunkCount);
  });

  it('is what backup uses when the extension has it', async () => {
    const dir = tempDir('packer');
    const packer = await NativePacker.open('zstd', undefined);
    expect(packer !== undefined).toBe(available);
    packer?.close();
    expect(await NativePacker.open('gzip', undefined)).toBeUndefined(); // gzip packs are written in JavaScript
    // A repository written either way is read the same: a JavaScript backup after a native one stores nothing new.
    const file = demoDb(dir, 800);
    const repo = join(dir, 'repo');
    await (await Repository.init(repo)).close();
    const first = await backup(file, repo);
    process.env.SCRIPTORIUM_JS_PACKS = '1';
    const second = await backup(file, repo);
    expect(second.stats.newChunks).toBe(0);
    expect(second.tables).toEqual(first.tables);
    expect(readdirSync(join(repo, 'snapshots'))).toHaveLength(2);
  });

  it('writes and syncs the pack files itself when asked: the same bytes, and none left that nobody took', () => {
    if (!available) return;
    const dir = tempDir('packer-files');
    const file = twinsDb(dir);
    const db = new Database(file);
    loadExtension(db);
    const packer = (files: string | null): number => {
      const handle = db.prepare('SELECT scriptorium_packer(2, 1)').pluck().get() as number;
      if (files !== null) db.prepare('SELECT scriptorium_packer_files(?, ?)').get(handle, files);
      return handle;
    };
    const take = db.prepare('SELECT scriptorium_pack_take(?, 1)').pluck();
    const close = db.prepare('SELECT scriptorium_packer_close(?)').pluck();
    const add = db.prepare('SELECT scriptorium_pack_add(?, ?)').pluck();
    const seal = db.prepare('SELECT scriptorium_pack_seal(?)').pluck();
    /** Packs table a's rows, every chunk new (each batch is handed over as it is yielded), and seals one pack. */
    const packTable = (handle: number): void => {
      // Reading the data column hands the batch over (it is NULL here: the packer has it).
      const scan = db.prepare("SELECT data, chunks FROM scriptorium_chunks('SELECT * FROM a', 1, 256, 512, 65536, 65536, 1, ?)").raw();
      for (const [data, chunks] of scan.iterate(handle) as Iterable<[null, Buffer]>) {
        expect(data).toBeNull();
        if (chunks.length > 0) add.get(handle, Buffer.alloc(chunks.length / 8, 1)); // the last batch only has the digest
      }
      seal.get(handle);
    };
    const prefix = join(dir, '.tmp-test-');
    const inFiles = packer(prefix);
    const inMemory = packer(null);
    try {
      packTable(inFiles);
      packTable(inMemory);
      const written = take.get(inFiles) as Buffer;
      const held = take.get(inMemory) as Buffer;
      const path = written.toString('utf8', 40);
      expect(path).toBe(`${prefix}0`);
      const onDisk = readFileSync(path);
      expect(onDisk.equals(held.subarray(32))).toBe(true); // the file the packer would have returned
      expect(Number(written.readBigUInt64LE(32))).toBe(onDisk.length);
      expect(written.subarray(0, 32).equals(createHash('sha256').update(onDisk).digest())).toBe(true); // named by its hash
      // Set once, before the first seal.
      expect(() => db.prepare('SELECT scriptorium_packer_files(?, ?)').get(inFiles, prefix)).toThrow(/set once/);
      // A pack sealed and never taken: once its file is written, closing the packer removes it.
      packTable(inFiles);
      const deadline = Date.now() + 10_000;
      while (!existsSync(`${prefix}1`) && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      expect(existsSync(`${prefix}1`)).toBe(true);
    } finally {
      expect(close.get(inFiles)).toBe(1);
      expect(close.get(inMemory)).toBe(1);
    }
    expect(readdirSync(dir).filter((f) => f.startsWith('.tmp-test-'))).toEqual(['.tmp-test-0']);
    // A file it cannot write fails the take with the reason, and E_IO through NativePacker.
    const broken = packer(join(dir, 'missing', '.tmp-x-'));
    try {
      packTable(broken);
      expect(() => take.get(broken)).toThrow(/could not write the pack file: No such file or directory/);
    } finally {
      close.get(broken);
      db.close();
    }
  });

  it('hands the pack files to JavaScript for a store without files of its own (MemoryStore): the same packs', async () => {
    const dir = tempDir('packer-files');
    const file = demoDb(dir, 1500);
    const time = new Date('2026-01-02T03:04:05Z');
    const { MemoryStore } = await import('../../src/stores/memory-store.js');
    const inMemory = await Repository.init(new MemoryStore(), { packBytes: 8 << 10 });
    const onDisk = join(dir, 'repo');
    await (await Repository.init(onDisk, { packBytes: 8 << 10 })).close();
    const a = await backup(file, inMemory, { time });
    const b = await backup(file, onDisk, { time });
    expect(a.packs.length).toBeGreaterThan(1);
    expect(a.packs).toEqual(b.packs); // zstd at one level: the same files, so the same names
    expect(a.tables).toEqual(b.tables);
    const out = join(dir, 'restored.db');
    await restore(a.id, inMemory, { into: out });
    expect(await engineDigests(out)).toEqual(await engineDigests(file));
    await inMemory.close();
  });

  it('fails a backup whose pack files cannot be written with E_IO, and leaves no temporary files', async () => {
    if (!available) return;
    const dir = tempDir('packer-files');
    const file = demoDb(dir, 400);
    const repo = join(dir, 'repo');
    await (await Repository.init(repo, { packBytes: 8 << 10 })).close();
    const ok = await backup(file, repo);
    expect(ok.packs.length).toBeGreaterThan(1);
    expect(readdirSync(repo).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
    // The packs go into packs/<2 hex>/: a file where that directory would be makes every pack put fail.
    const full = join(dir, 'full');
    await (await Repository.init(full, { packBytes: 8 << 10 })).close();
    rmSync(join(full, 'packs'), { recursive: true, force: true });
    writeFileSync(join(full, 'packs'), 'not a directory');
    await expect(backup(file, full)).rejects.toMatchObject({ code: 'E_IO' });
    expect(readdirSync(full).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
    const repoAfter = await Repository.open(full);
    try {
      expect(await repoAfter.snapshots()).toEqual([]);
    } finally {
      await repoAfter.close();
    }
  });

  it('outlives the connection that made it (the extension is never unloaded under its thread)', () => {
    if (!available) return;
    const first = new Database(':memory:');
    loadExtension(first);
    const handle = first.prepare('SELECT scriptorium_packer(2, 1)').pluck().get() as number;
    first.close(); // the last connection with the extension: SQLite would unload it here
    const second = new Database(':memory:');
    try {
      loadExtension(second);
      // Same packer table, same thread: the library stayed loaded.
      expect(second.prepare('SELECT scriptorium_pack_take(?, 1)').pluck().get(handle)).toBeNull();
      expect(second.prepare('SELECT scriptorium_packer_close(?)').pluck().get(handle)).toBe(1);
    } finally {
      second.close();
    }
  });

  it('takes a batch cut elsewhere (PostgreSQL COPY text): the ids and the running digest are SHA-256s, and the pack holds the flagged chunks', async () => {
    if (!available) return;
    const packer = (await NativePacker.open('zstd', 1))!;
    try {
      expect(packer.handsBatches).toBe(true);
      const sha = (b: Buffer): Buffer => createHash('sha256').update(b).digest();
      const chunks = [Buffer.from('1\tone\n2\ttwo\n'), Buffer.from('3\tthree\n'), Buffer.from(`4\t${'x'.repeat(70_000)}\n`)];
      const table = (cs: Buffer[], rows: number[]): Buffer => {
        const t = Buffer.alloc(8 * cs.length);
        cs.forEach((c, i) => { t.writeUInt32LE(c.length, 8 * i); t.writeUInt32LE(rows[i]!, 8 * i + 4); });
        return t;
      };
      const ids = packer.handBatch(Buffer.concat(chunks.slice(0, 2)), table(chunks.slice(0, 2), [2, 1]))!;
      packer.addEntry(chunks[0]!.length);
      packer.add(Uint8Array.from([1, 0]));
      const more = packer.handBatch(chunks[2]!, table([chunks[2]!], [1]))!;
      packer.addEntry(chunks[2]!.length);
      packer.add(Uint8Array.from([1]));
      expect(Buffer.concat([ids, more]).equals(Buffer.concat(chunks.map(sha)))).toBe(true);
      expect(packer.batchDigest().equals(sha(Buffer.concat(chunks)))).toBe(true);
      expect(packer.batchDigest().equals(sha(Buffer.alloc(0)))).toBe(true); // the next table's starts afresh
      packer.seal();
      const file = packer.take(true)! as { hash: string; file: Buffer };
      const pack = await Pack.open(file.hash, file.file);
      expect([pack.chunk(0), pack.chunk(1)]).toEqual([chunks[0], chunks[2]]);
      expect([pack.rows(0), pack.rows(1)]).toEqual([2, 1]);
      // A table that does not add up to the data is refused before anything is handed over.
      expect(() => packer.handBatch(Buffer.from('abc'), table([Buffer.from('ab')], [1]))).toThrow(/entry table does not match the data/);
      expect(() => packer.handBatch(Buffer.from('abc'), Buffer.alloc(5))).toThrow(/not \(length, rows\) pairs/);
    } finally {
      packer.close();
    }
  });

  it('refuses calls out of order with a clear error', () => {
    if (!available) return;
    const db = new Database(':memory:');
    loadExtension(db);
    const handle = db.prepare('SELECT scriptorium_packer(2, 1)').pluck().get() as number;
    try {
      expect(() => db.prepare('SELECT scriptorium_pack_add(?, ?)').get(handle, Buffer.alloc(0))).toThrow(/no batch was handed over/);
      expect(() => db.prepare('SELECT scriptorium_pack_seal(?)').get(handle)).toThrow(/the pack is empty/);
      expect(db.prepare('SELECT scriptorium_pack_take(?, 1)').pluck().get(handle)).toBeNull(); // nothing sealed: no wait
      expect(() => db.prepare('SELECT scriptorium_pack_seal(?)').get(999)).toThrow(/no such packer/);
      expect(() => db.prepare("SELECT count(*) FROM scriptorium_chunks('SELECT 1', 0, 1, 2, 4, 64, 0, ?)").get(handle)).toThrow(/no chunk ids/);
    } finally {
      expect(db.prepare('SELECT scriptorium_packer_close(?)').pluck().get(handle)).toBe(1);
      expect(db.prepare('SELECT scriptorium_packer_close(?)').pluck().get(handle)).toBe(0);
      db.close();
    }
  });
});
