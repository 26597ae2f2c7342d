/**
 * The extension's chunk scanner (scriptorium_chunks) must cut exactly the chunks that RowChunker cuts
 * from the engine's ndjson batches, byte for byte, and name them by their SHA-256.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteSource } from '../../src/engines/sqlite/sqlite-source.js';
import { identityValues, RowChunker } from '../../src/repository/chunker.js';
import type { ChunkerSettings } from '../../src/repository/config.js';
import { nativeChunks } from '../../src/repository/native-chunks.js';
import { demoDb, fidelityDb, tempDir } from './helpers.js';

function reference(source: SqliteSource, settings: ChunkerSettings): Map<string, Array<{ data: string; rows: number }>> {
  const out = new Map<string, Array<{ data: string; rows: number }>>();
  for (const table of source.schema.tables) {
    const chunker = new RowChunker(settings, identityValues(table));
    const chunks = [];
    for (const batch of source.batches(table, 'ndjson', { batchRows: 97 })) chunks.push(...chunker.push(batch));
    const last = chunker.finish();
    if (last) chunks.push(last);
    out.set(table.name, chunks.map((c) => ({ data: c.data.toString('latin1'), rows: c.rows })));
  }
  return out;
}

async function native(source: SqliteSource, settings: ChunkerSettings, batchBytes: number) {
  const out = new Map<string, Array<{ data: string; rows: number }>>();
  const digests = new Map<string, string>();
  let hashed = 0;
  for (const table of source.schema.tables) {
    const scan = await nativeChunks(source, table, settings, identityValues(table), batchBytes);
    expect(scan, 'the extension is built').toBeDefined();
    const chunks = [];
    for (const batch of scan!) {
      let at = 0;
      let rows = 0;
      for (let i = 0; i < batch.chunks.length / 8; i++) {
        const length = batch.chunks.readUInt32LE(8 * i);
        const data = batch.data!.subarray(at, at + length);
        at += length;
        rows += batch.chunks.readUInt32LE(8 * i + 4);
        chunks.push({ data: data.toString('latin1'), rows: batch.chunks.readUInt32LE(8 * i + 4) });
        if (batch.ids.length > 0) {
          expect(batch.ids.subarray(32 * i, 32 * i + 32).toString('hex')).toBe(createHash('sha256').update(data).digest('hex'));
          hashed++;
        }
      }
      expect(at).toBe(batch.data!.length);
      expect(rows).toBe(batch.rows);
      if (batch.digest) digests.set(table.name, batch.digest.toString('hex'));
    }
    out.set(table.name, chunks);
  }
  return { out, hashed, digests };
}

describe('scriptorium_chunks (the extension cuts chunks in C)', () => {
  const cases: Array<[string, ChunkerSettings]> = [
    ['default', { algorithm: 'row-key-v1', targetBytes: 512, minBytes: 256, maxBytes: 65536 }],
    ['small max', { algorithm: 'row-key-v1', targetBytes: 300, minBytes: 40, maxBytes: 700 }],
    ['tiny', { algorithm: 'row-key-v1', targetBytes: 64, minBytes: 1, maxBytes: 64 }],
  ];

  it.each(cases)('cuts the chunks RowChunker cuts, with their SHA-256 (%s)', async (_, settings) => {
    const dir = tempDir('native');
    const files = [fidelityDb(dir), demoDb(dir, 200)];
    const extra = join(dir, 'extra.db');
    const db = new Database(extra);
    db.exec(`CREATE TABLE allkey (a TEXT, b INTEGER, PRIMARY KEY (a, b)) WITHOUT ROWID;
      CREATE TABLE late (v TEXT, k INTEGER, PRIMARY KEY (k));
      CREATE TABLE one (x);`);
    const ins = db.prepare('INSERT INTO allkey VALUES (?, ?)');
    const late = db.prepare('INSERT INTO late VALUES (?, ?)');
    for (let i = 0; i < 500; i++) {
      ins.run(`key ${i} \u0001\t"\\ ${'é'.repeat(i % 9)}`, i);
      late.run('v'.repeat(i % 300), i * 3);
    }
    db.prepare('INSERT INTO one VALUES (?)').run('x'.repeat(100_000)); // one row larger than maxBytes
    db.close();
    files.push(extra);
    // On the caller's thread, and on a background reader (whose hasher thread pairs chunk ids with the
    // table digest in the two-stream SHA-256): the same chunks and ids either way.
    for (const readers of [0, 1]) {
      for (const file of files) {
        const source = SqliteSource.open(file, { readers });
        try {
          const expected = reference(source, settings);
          for (const batchBytes of [1, 5000, 1 << 20]) {
            const { out, digests } = await native(source, settings, batchBytes);
            for (const [name, chunks] of expected) {
              expect(out.get(name), `${file} ${name} batch ${batchBytes} readers ${readers}`).toEqual(chunks);
              const whole = createHash('sha256');
              for (const c of chunks) whole.update(Buffer.from(c.data, 'latin1'));
              if (digests.has(name)) expect(digests.get(name), `${file} ${name} digest`).toBe(whole.digest('hex'));
            }
          }
        } finally {
          source.close();
        }
      }
    }
  });

  it('hashes chunks in C when the CPU has SHA instructions (else leaves ids empty)', async () => {
    const dir = tempDir('native');
    const source = SqliteSource.open(demoDb(dir, 100));
    try {
      const sha = source.db.prepare("SELECT scriptorium_sha256(x'616263')").pluck().get() as Buffer | null;
      const { hashed } = await native(source, cases[0][1], 4096);
      if (sha) {
        expect(sha.toString('hex')).toBe(createHash('sha256').update('abc').digest('hex'));
        expect(hashed).toBeGreaterThan(0);
      } else expect(hashed).toBe(0);
      for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000]) {
        const data = Buffer.alloc(n, n);
        const got = source.db.prepare('SELECT scriptorium_sha256(?)').pluck().get(data) as Buffer | null;
        if (got) expect(got.toString('hex')).toBe(createHash('sha256').update(data).digest('hex'));
      }
    } finally {
      source.close();
    }
  });
});
