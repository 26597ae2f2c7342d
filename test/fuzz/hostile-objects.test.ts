/**
 * Named cases of hostile repository objects (each also reachable by the fuzz suite): objects re-sealed
 * under their new hashes, so that only the checks of their content can stop them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ScriptoriumError } from '../../src/core/errors.js';
import { backup } from '../../src/repository/backup.js';
import { decodeIndex } from '../../src/repository/chunk-index.js';
import { diff } from '../../src/repository/diff.js';
import { decodeManifest } from '../../src/repository/manifest.js';
import { sha256 } from '../../src/repository/object-file.js';
import { Repository } from '../../src/repository/repository.js';
import { restore } from '../../src/repository/restore.js';
import { verify } from '../../src/repository/verify.js';
import { CLI } from '../export-import/helpers.js';
import { fidelityDb, tempDir } from '../repository/helpers.js';
import { objectFiles, readBody, renamePackEverywhere, resealInPlace } from './mutations.js';

/** A zstd frame of `blocks` RLE blocks of 128 KiB each (no content size): 4 bytes a block on disk. */
function zstdBomb(blocks: number): Buffer {
  const header = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38]); // magic; no content size; 128 KiB window
  const out = [header];
  for (let i = 0; i < blocks; i++) {
    const h = ((128 << 10) << 3) | (1 << 1) | (i === blocks - 1 ? 1 : 0); // RLE block of 131072 repeats
    out.push(Buffer.from([h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff, 0x20]));
  }
  return Buffer.concat(out);
}

/** A zstd frame whose header claims `size` bytes but holds one. */
function zstdClaiming(size: number): Buffer {
  const head = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xe0]); // single segment, 8-byte content size
  const fcs = Buffer.alloc(8);
  fcs.writeBigUInt64LE(BigInt(size));
  return Buffer.concat([head, fcs, Buffer.from([0x09, 0x00, 0x00, 0x41])]); // last raw block of 1 byte
}

function framed(magic: string, codec: number, body: Buffer): { file: Buffer; hash: string } {
  const file = Buffer.concat([Buffer.from(magic, 'latin1'), Buffer.of(codec), body]);
  return { file, hash: sha256(file) };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (err === undefined) return 'succeeded';
  expect(err).toBeInstanceOf(ScriptoriumError);
  return (err as ScriptoriumError).code;
}

describe('hostile repository objects', () => {
  let dir: string;
  let repo: string;
  let out: string;
  beforeEach(async () => {
    dir = tempDir('hostile');
    repo = join(dir, 'repo');
    out = join(dir, 'out');
    mkdirSync(out);
    await (await Repository.init(repo, { packBytes: 4096 })).close();
    await backup(fidelityDb(dir), repo);
  });

  it('a manifest that is a zstd bomb (1 GiB of RLE blocks in 32 KB) is refused with E_CORRUPT without expanding it', async () => {
    const { file, hash } = framed('SCRSNAP1', 2, zstdBomb(8192));
    expect(file.length).toBeLessThan(40_000);
    const before = process.memoryUsage().rss;
    await expect(decodeManifest(hash, file)).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringMatching(/expands to more than/) });
    expect(process.memoryUsage().rss - before).toBeLessThan(200 << 20);
    writeFileSync(join(repo, 'snapshots', hash), file);
    await expect(verify(repo)).rejects.toMatchObject({ code: 'E_CORRUPT' });
    await expect(restore(hash, repo, { into: join(out, 'r.db') })).rejects.toMatchObject({ code: 'E_CORRUPT' });
    expect(readdirSync(out)).toEqual([]);
  });

  it('an index file that is a zstd bomb is refused with E_CORRUPT, and a frame claiming 2^40 bytes before any allocation', async () => {
    const bomb = framed('SCRINDX1', 2, zstdBomb(8192));
    await expect(decodeIndex(bomb.hash, bomb.file)).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringMatching(/expands to more than/) });
    const claim = framed('SCRINDX1', 2, zstdClaiming(2 ** 40));
    await expect(decodeIndex(claim.hash, claim.file)).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringMatching(/expands to more than/) });
  });

  it('a pack whose zstd frame claims 4 GiB is refused by restore and verify --read-data with E_CORRUPT', async () => {
    const victim = objectFiles(repo, 'packs').sort()[0];
    const from = victim.slice(victim.lastIndexOf('/') + 1);
    const { file, hash } = framed('SCRPACK1', 2, zstdClaiming(2 ** 32));
    mkdirSync(join(repo, 'packs', hash.slice(0, 2)), { recursive: true });
    writeFileSync(join(repo, 'packs', hash.slice(0, 2), hash), file);
    await renamePackEverywhere(repo, from, hash);
    await expect(restore('latest', repo, { into: join(out, 'r.db') })).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringMatching(/claims 4294967296 bytes|expands to more than/) });
    await expect(verify(repo, { readData: true })).rejects.toMatchObject({ code: 'E_CORRUPT' });
    expect(readdirSync(out)).toEqual([]);
  });

  it('a chunk range beyond its pack\'s entries is refused by verify, restore and diff before a target exists', async () => {
    const file = objectFiles(repo, 'snapshots')[0];
    const { body, codec } = await readBody('snapshot', file);
    const m = JSON.parse(body.toString('utf8'));
    const table = m.tables.find((t: { chunks: unknown[] }) => t.chunks.length > 0);
    table.chunks[table.chunks.length - 1][2] += 1000;
    table.chunkCount += 1000;
    table.rows += 1000;
    table.bytes += 3000;
    m.stats.rows += 1000;
    const id = await resealInPlace(repo, 'snapshot', file, Buffer.from(JSON.stringify(m)), codec);
    await expect(verify(repo)).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringMatching(/are named, but it has \d+/) });
    await expect(restore(id, repo, { into: join(out, 'r.db') })).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringMatching(/are named, but it has/) });
    expect(readdirSync(out)).toEqual([]);
    await expect(diff(id, id, repo)).rejects.toMatchObject({ code: 'E_CORRUPT' });
  });

  it('manifest ids, counts and names out of range are refused with E_CORRUPT naming the field', async () => {
    const file = objectFiles(repo, 'snapshots')[0];
    const { body } = await readBody('snapshot', file);
    const original = JSON.parse(body.toString('utf8'));
    const cases: Array<[string, (m: typeof original) => void, RegExp]> = [
      ['a pack id that walks out of the repository', (m) => { m.packs[0] = '../../../../../tmp/x'; }, /packs\[0\]: .* is not a pack id/],
      ['a negative entry number', (m) => { m.tables[0].chunks[0][1] = -1; }, /tables\[0\] .*chunks\[0\]: .* is not a range/],
      ['an unsafe integer count', (m) => { m.tables[0].chunks[0][2] = 2 ** 53 + 2; }, /is not a range/],
      ['a range past the 2^32 entries a pack can hold', (m) => { m.tables[0].chunks[0][1] = 2 ** 32; }, /lie beyond the 4294967295 a pack can hold/],
      ['a chunk count that disagrees with the ranges', (m) => { m.tables[0].chunkCount += 1; }, /chunkCount: .* but the ranges hold/],
      ['more bytes than the chunks can hold', (m) => { m.tables[0].bytes = m.tables[0].chunkCount * 2 ** 31 + 1; }, /bytes: .* do not fit/],
      ['a table listed twice', (m) => { m.tables.push(m.tables[0]); }, /listed twice/],
      ['a table without a schema', (m) => { m.tables[0].name = 'nope'; }, /the schema has no such table/],
      ['a schema table without an entry', (m) => { m.schema.tables.push({ ...m.schema.tables[0], name: 'extra' }); }, /has no entry in tables/],
      ['a user_version that is no integer', (m) => { m.schema.meta.userVersion = '1; ATTACH'; }, /meta.userVersion/],
      ['a sequence that is no integer', (m) => { m.schema.meta.sequences = { x: '1e999' }; }, /meta.sequences/],
      ['columns that do not match the primary key', (m) => { m.schema.tables[0].primaryKey = ['nope']; }, /primaryKey/],
      ['a time that is not a time', (m) => { m.time = 12; }, /time: /],
    ];
    for (const [name, mutate, pattern] of cases) {
      const m = structuredClone(original);
      mutate(m);
      const { sealObject } = await import('../../src/repository/object-file.js');
      const { file: data, hash } = await sealObject('snapshot', Buffer.from(JSON.stringify(m)), 'none');
      const err = await decodeManifest(hash, data).then(() => undefined, (e: unknown) => e);
      expect(err, name).toBeInstanceOf(ScriptoriumError);
      expect((err as ScriptoriumError).code, name).toBe('E_CORRUPT');
      expect((err as Error).message, name).toMatch(pattern);
      expect((err as Error).message, name).toMatch(new RegExp(`^snapshot ${hash.slice(0, 8)}: manifest: `));
    }
  });

  it('columns described in another order than the CREATE statement makes them are refused by restore (the digest alone would pass)', async () => {
    const file = objectFiles(repo, 'snapshots')[0];
    const { body, codec } = await readBody('snapshot', file);
    const m = JSON.parse(body.toString('utf8'));
    const pairs = m.schema.tables.find((t: { name: string }) => t.name === 'pairs');
    // x and y swapped in the description (and the key), so that the row values would land in each other's columns.
    [pairs.columns[0].name, pairs.columns[1].name] = [pairs.columns[1].name, pairs.columns[0].name];
    [pairs.columns[0].type, pairs.columns[1].type] = [pairs.columns[1].type, pairs.columns[0].type];
    pairs.primaryKey = [pairs.columns[0].name, pairs.columns[1].name];
    const id = await resealInPlace(repo, 'snapshot', file, Buffer.from(JSON.stringify(m)), codec);
    const code = await codeOf(restore(id, repo, { into: join(out, 'r.db') }));
    expect(code).toBe('E_CORRUPT');
    expect(readdirSync(out)).toEqual([]);
  });

  it('diff of a chunk that does not end with a whole row fails with E_CORRUPT (it looped forever)', async () => {
    const db = fidelityDb(dir, 'second.db');
    const { default: Database } = await import('better-sqlite3');
    const h = new Database(db);
    h.exec("INSERT INTO nokey VALUES ('changed', 99)");
    h.close();
    await backup(db, repo);
    // Forge every pack: the last byte of each entry (its row's newline) becomes a space.
    for (const file of objectFiles(repo, 'packs')) {
      const from = file.slice(file.lastIndexOf('/') + 1);
      const { body: view, codec } = await readBody('pack', file);
      const body = Buffer.from(view);
      const count = body.readUInt32LE(body.length - 4);
      const table = body.length - 4 - 8 * count;
      let end = 0;
      for (let i = 0; i < count; i++) {
        end += body.readUInt32LE(table + 8 * i);
        body[end - 1] = 0x20;
      }
      const to = await resealInPlace(repo, 'pack', file, body, codec);
      await renamePackEverywhere(repo, from, to);
    }
    const ids = readdirSync(join(repo, 'snapshots'));
    expect(await codeOf(diff(ids[0], ids[1], repo))).toBe('E_CORRUPT');
    expect(existsSync(join(repo, 'config'))).toBe(true);
    expect(readFileSync(join(repo, 'config'), 'utf8')).toContain('scriptorium-repository');
  });

  it('a pack that is a zstd bomb (1 GiB in 32 KB, no content size) fails restore, diff and prune with E_CORRUPT in bounded memory', async () => {
    // It took 2 GiB: the pooled decompression doubled its buffer up to 1 GiB and kept every step; diff
    // and prune (which open packs without the pool) grew theirs to 1.5 GiB.
    expect(existsSync(CLI), 'run `npm run build` first').toBe(true);
    const db = fidelityDb(dir, 'second.db');
    const { default: Database } = await import('better-sqlite3');
    const h = new Database(db);
    h.exec("INSERT INTO nokey VALUES ('changed', 99)");
    h.close();
    const first = readdirSync(join(repo, 'snapshots'))[0];
    const firstPacks = new Set(JSON.parse((await readBody('snapshot', join(repo, 'snapshots', first))).body.toString('utf8')).packs as string[]);
    await backup(db, repo);
    const second = readdirSync(join(repo, 'snapshots')).find((id) => id !== first)!;
    // A pack only the second snapshot uses, so that diff must read it.
    const victim = objectFiles(repo, 'packs').map((f) => f.slice(f.lastIndexOf('/') + 1)).filter((p) => !firstPacks.has(p)).sort()[0];
    expect(victim).toBeDefined();
    const { file, hash } = framed('SCRPACK1', 2, zstdBomb(8192));
    expect(file.length).toBeLessThan(40_000);
    mkdirSync(join(repo, 'packs', hash.slice(0, 2)), { recursive: true });
    writeFileSync(join(repo, 'packs', hash.slice(0, 2), hash), file);
    await renamePackEverywhere(repo, victim, hash);
    rmSync(join(repo, 'packs', victim.slice(0, 2), victim));
    const second2 = readdirSync(join(repo, 'snapshots')).find((id) => id !== first)!;
    expect(second2).not.toBe(second); // re-sealed under its new name

    /** Runs the CLI under /usr/bin/time -v: its exit, stderr and peak RSS in MB. */
    const run = (args: string[]): { code: number | null; stderr: string; peakMb: number } => {
      const r = spawnSync('/usr/bin/time', ['-v', process.execPath, CLI, ...args], { env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 16 << 20 });
      const stderr = r.stderr.toString('utf8');
      const kb = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      expect(kb, stderr).not.toBeNull();
      return { code: r.status, stderr, peakMb: Number(kb![1]) / 1024 };
    };
    const into = join(out, 'r.db');
    const cases: Array<[string, string[]]> = [
      ['restore', ['restore', second2, '--repo', repo, '--into', into]],
      ['diff', ['diff', first, second2, '--repo', repo]],
    ];
    const results: Record<string, number> = {};
    for (const [name, args] of cases) {
      const r = run(args);
      expect(r.code, `${name}: ${r.stderr}`).not.toBe(0);
      expect(r.stderr, name).toMatch(/^scriptorium: error E_CORRUPT: .*pack/m);
      expect(r.stderr, name).not.toMatch(/looks like a bug|E_INTERNAL/);
      results[name] = r.peakMb;
    }
    expect(readdirSync(out)).toEqual([]);
    // Prune opens a pack itself when no index lists it.
    for (const f of objectFiles(repo, 'index')) rmSync(f);
    const p = run(['prune', '--repo', repo]);
    expect(p.code, p.stderr).not.toBe(0);
    expect(p.stderr).toMatch(/^scriptorium: error E_CORRUPT: .*pack/m);
    results.prune = p.peakMb;
    for (const [name, mb] of Object.entries(results)) expect(mb, `${name} peak RSS (MB)`).toBeLessThan(400);
    expect(readFileSync(join(repo, 'packs', hash.slice(0, 2), hash)).equals(file)).toBe(true); // the bomb is left for verify to report
  }, 120_000);
});
