/**
 * Packs sealed in C (native/scriptorium_seal.inc): the native packer's thread seals the pack files of
 * an encrypted repository with the AES-GCM of the OpenSSL node links. What it writes must be exactly
 * what object-seal.ts writes (same header, frames, nonces, associated data), open with openObjectBytes
 * under the pack's name only, and fail on any flipped bit; a backup sealed that way and one sealed in
 * JavaScript must be one repository to every reader.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadExtension } from '../../src/engines/sqlite/extension.js';
import { backup, init, restore, verify } from '../../src/repository/index.js';
import { FRAME_BYTES, openObjectBytes, sealObjectBytes, TAG_BYTES } from '../../src/repository/crypto/object-seal.js';
import { NativePacker } from '../../src/repository/native-packer.js';
import { demoDb, engineDigests, tempDir } from './helpers.js';

afterEach(() => {
  delete process.env.SCRIPTORIUM_JS_PACKS;
  vi.restoreAllMocks();
});

const repoId = 'f'.repeat(32);

function extensionDb(): Database.Database {
  const db = new Database(':memory:');
  if (!loadExtension(db)) throw new Error('the extension is not built (npm run install)');
  return db;
}

function authFails(f: () => unknown): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toMatchObject({ code: 'E_AUTH' });
}

/** Every file under `dir`, recursively. */
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe('objects sealed in C', () => {
  it('are byte for byte what sealObjectBytes writes with the same salt, for every frame layout; a flipped bit fails', () => {
    const db = extensionDb();
    try {
      const sealC = db.prepare('SELECT scriptorium_seal_object(?, ?, ?, ?, ?)').pluck();
      const secret = randomBytes(32);
      const key = { kind: 'secret' as const, secret };
      const name = `packs/${'c'.repeat(64)}`;
      for (const size of [0, 1, FRAME_BYTES - 1, FRAME_BYTES, FRAME_BYTES + 1, 3 * FRAME_BYTES, 3 * FRAME_BYTES + 17]) {
        const plain = randomBytes(size);
        const js = sealObjectBytes(plain, repoId, name, key);
        const salt = js.subarray(9, 25); // "SCRSEAL2", the stanza byte, then the salt
        const c = sealC.get(plain, secret, salt, repoId, name) as Buffer | null;
        expect(c, 'OpenSSL not found in node').not.toBeNull();
        expect(c!.equals(js), String(size)).toBe(true);
        expect(openObjectBytes(c!, repoId, name, key).equals(plain)).toBe(true);
        // Header, first frame, its tag, last byte.
        for (const at of [9, 25, Math.min(c!.length - 1, 25 + FRAME_BYTES + TAG_BYTES - 1), c!.length - 1]) {
          const bad = Buffer.from(c!);
          bad[at]! ^= 0x01;
          authFails(() => openObjectBytes(bad, repoId, name, key));
        }
        authFails(() => openObjectBytes(c!, repoId, `packs/${'d'.repeat(64)}`, key));
        authFails(() => openObjectBytes(c!, 'e'.repeat(32), name, key));
      }
      expect(() => sealC.get(Buffer.alloc(1), randomBytes(31), randomBytes(16), repoId, name)).toThrow(/32-byte secret/);
      expect(() => sealC.get(Buffer.alloc(1), secret, randomBytes(15), repoId, name)).toThrow(/16-byte salt/);
    } finally {
      db.close();
    }
  });

  it('the packer seals the files it writes as packs/<SHA-256 of the plaintext>: they open to the pack it would have handed over', () => {
    const dir = tempDir('native-seal');
    const file = demoDb(dir, 400);
    const db = new Database(file);
    loadExtension(db);
    const secret = randomBytes(32);
    const take = db.prepare('SELECT scriptorium_pack_take(?, 1)').pluck();
    const close = db.prepare('SELECT scriptorium_packer_close(?)').pluck();
    const add = db.prepare('SELECT scriptorium_pack_add(?, ?)').pluck();
    const seal = db.prepare('SELECT scriptorium_pack_seal(?)').pluck();
    const table = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().get() as string);
    const packTable = (handle: number): void => {
      const scan = db.prepare(`SELECT data, chunks FROM scriptorium_chunks('SELECT * FROM "${table}"', 1, 256, 512, 65536, 65536, 1, ?)`).raw();
      for (const [, chunks] of scan.iterate(handle) as Iterable<[null, Buffer]>) {
        if (chunks.length > 0) add.get(handle, Buffer.alloc(chunks.length / 8, 1));
      }
      seal.get(handle);
    };
    const prefix = join(dir, '.tmp-seal-');
    const sealing = db.prepare('SELECT scriptorium_packer(2, 1)').pluck().get() as number;
    const plain = db.prepare('SELECT scriptorium_packer(2, 1)').pluck().get() as number;
    try {
      expect(db.prepare('SELECT scriptorium_packer_seal(?, ?, ?)').pluck().get(sealing, repoId, secret)).toBe(1);
      db.prepare('SELECT scriptorium_packer_files(?, ?)').get(sealing, prefix);
      packTable(sealing);
      packTable(plain);
      const written = take.get(sealing) as Buffer;
      const held = (take.get(plain) as Buffer).subarray(32);
      const hash = written.toString('hex', 0, 32);
      expect(hash).toBe(createHash('sha256').update(held).digest('hex')); // named by the plaintext, as a plain pack
      expect(Number(written.readBigUInt64LE(32))).toBe(held.length); // and its size is the plaintext's
      const onDisk = readFileSync(written.toString('utf8', 40));
      expect(onDisk.subarray(0, 8).toString('latin1')).toBe('SCRSEAL2');
      expect(onDisk.includes(held.subarray(0, 64))).toBe(false);
      const key = { kind: 'secret' as const, secret };
      expect(openObjectBytes(onDisk, repoId, `packs/${hash}`, key).equals(held)).toBe(true);
      authFails(() => openObjectBytes(onDisk, repoId, `packs/${'0'.repeat(64)}`, key));
      const bad = Buffer.from(onDisk);
      bad[bad.length >> 1]! ^= 0x10;
      authFails(() => openObjectBytes(bad, repoId, `packs/${hash}`, key));
      // Set once, before the first seal, with a 32-byte secret.
      expect(() => db.prepare('SELECT scriptorium_packer_seal(?, ?, ?)').get(sealing, repoId, secret)).toThrow(/set once/);
      expect(() => db.prepare('SELECT scriptorium_packer_seal(?, ?, ?)').get(plain, repoId, randomBytes(16))).toThrow(/32-byte secret/);
    } finally {
      close.get(sealing);
      close.get(plain);
      db.close();
    }
  });

  it('an encrypted backup seals on the packer\'s thread; its repository and a JavaScript-sealed one are the same to every reader', async () => {
    const dir = tempDir('native-seal-backup');
    const db = demoDb(dir, 600);
    const passphrase = 'native seal';
    const keys = { keys: { passphrase: async () => Buffer.from(passphrase), scryptLogN: 10 } };
    const sealFiles = vi.spyOn(NativePacker.prototype, 'sealFiles'); // observed, not replaced
    const native = join(dir, 'native');
    await init(native, { encryption: { passphrase: Buffer.from(passphrase), scryptLogN: 10 }, packBytes: 16 << 10 });
    const first = await backup(db, native, keys);
    expect(sealFiles.mock.results.map((r) => r.value)).toContain(true);
    expect(first.packs.length).toBeGreaterThan(1);
    for (const f of files(join(native, 'packs'))) expect(readFileSync(f).subarray(0, 8).toString('latin1')).toBe('SCRSEAL2');
    // The same rows sealed in JavaScript: the same ids (nothing new), and both snapshots restore and verify.
    process.env.SCRIPTORIUM_JS_PACKS = '1';
    const again = await backup(db, native, keys);
    expect(again.stats.newChunks).toBe(0);
    const js = join(dir, 'js');
    await init(js, { encryption: { passphrase: Buffer.from(passphrase), scryptLogN: 10 }, packBytes: 16 << 10 });
    await backup(db, js, keys);
    delete process.env.SCRIPTORIUM_JS_PACKS;
    const want = await engineDigests(db);
    for (const repo of [native, js]) {
      expect((await verify(repo, { readData: true, ...keys })).problems).toEqual([]);
      const into = join(dir, `restored-${repo.split('/').pop()}.db`);
      await restore('latest', repo, { into, ...keys });
      expect(await engineDigests(into)).toEqual(want);
    }
    // A flipped bit in a pack the packer sealed: verify --read-data reports it as an authentication failure.
    const pack = files(join(native, 'packs'))[0]!;
    const data = readFileSync(pack);
    data[data.length >> 1]! ^= 0x01;
    writeFileSync(pack, data);
    const failed = (await verify(native, { readData: true, ...keys }).then(() => undefined, (e: unknown) => e)) as { problems?: Array<{ code: string }> } | undefined;
    expect(failed?.problems?.map((p) => p.code)).toContain('E_AUTH');
  }, 120_000);
});
