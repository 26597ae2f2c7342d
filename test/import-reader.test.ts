/**
 * The import reader reuses one buffer: rows that cross its end, lines longer than the buffer (it grows,
 * then shrinks back), zstd streams of several frames, and the same bytes from a stream instead of a file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compress as zstdCompress } from 'zstd-napi';
import { createDemoDatabase } from '../src/demo/demo-data.js';
import { compareDatabases } from '../src/engines/sqlite/compare.js';
import { exportTo } from '../src/export.js';
import { ByteReader } from '../src/formats/byte-reader.js';
import { importFrom } from '../src/import.js';
import { makeDb, removeDir, roundTrip, tempDir, VARIANTS, variantName } from './export-import/helpers.js';

let dir: string;
let demo: string;
let wide: string;
beforeAll(() => {
  dir = tempDir('reader');
  demo = path.join(dir, 'demo.db');
  createDemoDatabase(demo, { records: 3000 }); // a few MB of export: many buffer fills
  wide = makeDb(path.join(dir, 'long-lines.db'), (db) => {
    db.exec('CREATE TABLE big (id INTEGER PRIMARY KEY, t TEXT, b BLOB); CREATE TABLE after (id INTEGER PRIMARY KEY, t TEXT);');
    const ins = db.prepare('INSERT INTO big VALUES (?, ?, ?)');
    for (let i = 1; i <= 40; i++) {
      // Rows of 3 MB (text) and 2.5 MB (blob, hex-encoded twice its size) among small ones.
      const long = i % 10 === 3;
      ins.run(BigInt(i), long ? `${'ข'.repeat(1 << 20)}'';\n"` : `small ${i}`, long && i % 20 === 3 ? Buffer.alloc(1200 << 10, i) : null);
    }
    const after = db.prepare('INSERT INTO after VALUES (?, ?)');
    for (let i = 1; i <= 5000; i++) after.run(BigInt(i), `after the long rows ${i}`);
  });
});
afterAll(() => removeDir(dir));

describe('import reader', () => {
  it.each(VARIANTS.map((v) => [variantName(v), v] as const))('%s: a multi-megabyte export round-trips exactly', async (_name, variant) => {
    await roundTrip(demo, variant, fs.mkdtempSync(path.join(dir, 'demo-')));
  });

  it.each(VARIANTS.map((v) => [variantName(v), v] as const))('%s: rows longer than the read buffer round-trip exactly', async (_name, variant) => {
    await roundTrip(wide, variant, fs.mkdtempSync(path.join(dir, 'long-')));
  });

  it('reads a zstd stream of several frames, from a file and from a stream', async () => {
    const plain = path.join(dir, 'frames.ndjson');
    await exportTo(demo, { format: 'ndjson', output: plain });
    const text = fs.readFileSync(plain);
    const cuts = [0, 1000, 300_000, 700_000, text.length];
    const zst = path.join(dir, 'frames.ndjson.zst');
    fs.writeFileSync(zst, Buffer.concat(cuts.slice(1).map((end, i) => zstdCompress(text.subarray(cuts[i], end)))));
    const a = await importFrom(zst, { into: path.join(dir, 'frames-file.db') });
    expect(a.compression).toBe('zstd');
    expect(a.bytes).toBe(text.length);
    expect(compareDatabases(demo, path.join(dir, 'frames-file.db'))).toEqual([]);
    // A stream of odd-sized chunks.
    const data = fs.readFileSync(zst);
    const pieces: Buffer[] = [];
    for (let at = 0, n = 1; at < data.length; at += n, n = (n * 7) % 70_001 + 1) pieces.push(data.subarray(at, at + n));
    const b = await importFrom('-', { into: path.join(dir, 'frames-stream.db'), stream: Readable.from(pieces) });
    expect(b.rows).toBe(a.rows);
    expect(compareDatabases(demo, path.join(dir, 'frames-stream.db'))).toEqual([]);
  });
});

describe('json rows in any layout', () => {
  let plain: Buffer;
  let source: string;
  beforeAll(async () => {
    source = makeDb(path.join(dir, 'layout.db'), (db) => {
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, v REAL, b BLOB)');
      const ins = db.prepare('INSERT INTO t VALUES (?, ?, ?, ?)');
      for (let i = 1; i <= 20_000; i++) ins.run(BigInt(i), `n${i}`, i / 7, i % 3 === 0 ? Buffer.from([i & 255, 1]) : null);
    });
    const file = path.join(dir, 'layout.json');
    await exportTo(source, { format: 'json', output: file });
    plain = fs.readFileSync(file);
  });

  const load = (name: string, text: string) => {
    const file = path.join(dir, `layout-${name}.json`);
    fs.writeFileSync(file, text);
    return importFrom(file, { into: path.join(dir, `layout-${name}.db`) });
  };
  /** Replaces every `n`-th occurrence of `from` (counting from 1) by `to`. */
  const every = (text: string, from: string, to: string, n: number) => {
    let i = 0;
    return text.split(from).reduce((acc, part, k) => (k === 0 ? part : acc + (++i % n === 0 ? to : from) + part), '');
  };

  it.each([
    ['one line', (t: string) => t.replaceAll('},\n{', '},{')],
    ['two rows on some lines', (t: string) => every(t, '},\n{', '},{', 2)],
    ['one member per line', (t: string) => t.replaceAll(',"', ',\n  "').replaceAll('\n{', '\n{\n  ')],
    ['CRLF line ends and blank lines', (t: string) => t.replaceAll('\n', '\r\n\r\n')],
  ])('%s: imports exactly', async (name, edit) => {
    const result = await load(name.replaceAll(' ', '-'), edit(plain.toString('utf8')));
    expect(result.tables.every((t) => t.verified)).toBe(true);
    expect(result.rows).toBe(20_000);
    expect(compareDatabases(source, path.join(dir, `layout-${name.replaceAll(' ', '-')}.db`))).toEqual([]);
  });

  it.each([
    ['a doubled comma between rows', (t: string) => every(t, '},\n{', '},,\n{', 9000)],
    ['a missing comma between rows', (t: string) => every(t, '},\n{', '}\n{', 9000)],
    ['a missing comma on one line', (t: string) => every(t.replaceAll('},\n{', '},{'), '},{', '}{', 9000)],
  ])('%s: E_CORRUPT, nothing written', async (name, edit) => {
    await expect(load(name.replaceAll(' ', '-'), edit(plain.toString('utf8')))).rejects.toMatchObject({ code: 'E_CORRUPT' });
    expect(fs.existsSync(path.join(dir, `layout-${name.replaceAll(' ', '-')}.db`))).toBe(false);
  });
});

describe('ByteReader', () => {
  it('hands out lines across fills, grows for a long line and shrinks back', async () => {
    const lines = ['short', 'x'.repeat(5000), 'y'.repeat(100), 'z'.repeat(20), ''];
    const text = Buffer.from(lines.map((l) => `${l}\n`).join(''));
    const pieces = Array.from({ length: Math.ceil(text.length / 7) }, (_, i) => text.subarray(7 * i, 7 * i + 7));
    const reader = new ByteReader(Readable.from(pieces), 64);
    const got: string[] = [];
    for (let line = await reader.readLine(); line !== null; line = await reader.readLine()) got.push(line.toString());
    expect(got).toEqual(lines);
    expect(reader.bytesRead).toBe(text.length);
    expect(reader.line).toBe(lines.length);
  });

  it('a last line without its newline is truncation', async () => {
    const reader = new ByteReader(Readable.from([Buffer.from('a\nb')]));
    expect((await reader.readLine())?.toString()).toBe('a');
    await expect(reader.readLine()).rejects.toMatchObject({ code: 'E_TRUNCATED' });
  });
});
