/**
 * Reading an input holds one unit at a time (a line, a value, a statement, a VALUES tuple), never a
 * whole multi-row INSERT, a run of whitespace or a comment, and refuses a unit longer than any legal
 * row at once (src/formats/limits.ts). Through the real CLI, with its peak RSS measured by
 * /usr/bin/time -v. The bound is lowered with SCRIPTORIUM_MAX_LINE_BYTES so that reaching it means
 * decompressing megabytes, not gigabytes; the inputs are built cheaply from repeated compressed frames
 * (zstd frames and gzip members concatenate to the concatenation of their contents).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compress as zstdCompress } from 'zstd-napi';
import { ByteReader } from '../src/formats/byte-reader.js';
import { MAX_LINE_ENV } from '../src/formats/limits.js';
import { SqlSplitter } from '../src/formats/sql-splitter.js';
import { CLI, removeDir, tempDir } from './export-import/helpers.js';

let dir: string;
beforeAll(() => {
  expect(fs.existsSync(CLI), 'run `npm run build` first').toBe(true);
  dir = tempDir('input-bounds');
});
afterAll(() => removeDir(dir));

const MiB = 1 << 20;
/** The bound the CLI runs with here: 8 MiB. */
const BOUND = 8 * MiB;

type Codec = 'zstd' | 'gzip';

/** A file whose content is `head`, then `body` `times` over, then `tail`: one compressed frame each. */
function framed(name: string, codec: Codec, head: string, body: Buffer, times: number, tail = ''): string {
  const pack = (b: Buffer): Buffer => (codec === 'zstd' ? zstdCompress(b) : zlib.gzipSync(b, { level: 9 }));
  const frame = pack(body);
  const file = path.join(dir, `${name}.${codec === 'zstd' ? 'zst' : 'gz'}`);
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, pack(Buffer.from(head)));
  for (let i = 0; i < times; i++) fs.writeSync(fd, frame);
  if (tail) fs.writeSync(fd, pack(Buffer.from(tail)));
  fs.closeSync(fd);
  return file;
}

interface Run {
  code: number | null;
  stderr: string;
  /** Peak resident set size of the CLI, in MB. */
  peakMB: number;
}

/** `scriptorium import file --into db` under /usr/bin/time -v, with the bound lowered to BOUND. */
function importMeasured(file: string, into: string, env: NodeJS.ProcessEnv = { [MAX_LINE_ENV]: String(BOUND) }): Run {
  const r = spawnSync('/usr/bin/time', ['-v', process.execPath, CLI, 'import', file, '--into', into], {
    env: { ...process.env, NO_COLOR: '1', ...env },
    maxBuffer: 64 << 20,
  });
  const stderr = r.stderr.toString('utf8');
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
  expect(rss, stderr).not.toBeNull();
  return { code: r.status, stderr, peakMB: Number(rss![1]) / 1024 };
}

const NDJSON_HEADER =
  '{"format":"scriptorium-ndjson","version":1,"engine":"sqlite","engineVersion":"3.53.2","objects":[],"meta":{},"table_count":1,"total_rows":1}';
const TABLE = { name: 't', sql: 'CREATE TABLE t(a PRIMARY KEY)', columns: [{ name: 'a', type: '', notNull: false, pk: 1 }], primaryKey: ['a'], withoutRowid: false };
const SCHEMA = { engine: 'sqlite', engineVersion: '3.53.2', tables: [TABLE], objects: [], meta: {} };

/** 16 MiB of one byte: 320 of them make a 5 GiB line. */
const PAD = Buffer.alloc(16 * MiB, 'a');
const FIVE_GIB = (5 * 1024) / 16;

describe('a unit longer than any legal row fails at once, in bounded memory', () => {
  const cases: { name: string; codec: Codec; head: string; message: RegExp }[] = [
    { name: 'ndjson header line', codec: 'zstd', head: '{"format":"scriptorium-ndjson","version":1,"pad":"', message: /ndjson: line 1 is longer than any row SQLite can hold/ },
    { name: 'ndjson row line', codec: 'zstd', head: `${NDJSON_HEADER}\n${JSON.stringify({ table: TABLE, rows: 1 })}\n["`, message: /ndjson: line 3 is longer than any row SQLite can hold/ },
    { name: 'json row value', codec: 'zstd', head: `{"export_info":${JSON.stringify({ schema: SCHEMA })},\n"tables":{\n"t":[\n{"a":"`, message: /json: the value at byte \d+ is longer than any row SQLite can hold/ },
    { name: 'sql tuple', codec: 'zstd', head: "BEGIN TRANSACTION;\nCREATE TABLE t(a);\nINSERT INTO t VALUES('", message: /sql: the statement at line 3 is longer than any row SQLite can hold/ },
    { name: 'sql statement (gzip)', codec: 'gzip', head: "BEGIN TRANSACTION;\nCREATE TABLE t(a DEFAULT '", message: /sql: the statement at line 2 is longer than any row SQLite can hold/ },
    { name: 'sql scriptorium comment (gzip)', codec: 'gzip', head: 'BEGIN TRANSACTION;\n-- scriptorium:digest ', message: /sql: the statement at line 2 is longer than any row SQLite can hold/ },
  ];
  for (const c of cases) {
    it(`a ${c.codec} file that expands to one 5 GiB line (${c.name}) is E_CORRUPT after about the bound, not out of memory`, () => {
      const file = framed(c.name.replace(/\W+/g, '-'), c.codec, c.head, PAD, FIVE_GIB);
      expect(fs.statSync(file).size).toBeLessThan(8 * MiB); // the whole point: tiny file, huge line
      const into = path.join(dir, `${c.name.replace(/\W+/g, '-')}.db`);
      const r = importMeasured(file, into);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(/scriptorium: error E_CORRUPT: /);
      expect(r.stderr).toMatch(c.message);
      expect(r.stderr).toMatch(/hint: /);
      expect(r.stderr).not.toMatch(/looks like a bug|E_INTERNAL|ERR_OUT_OF_RANGE/);
      expect(fs.existsSync(into)).toBe(false);
      // The old reader took 6.4 GB here; holding the bound (8 MiB) and its doubling is well under 300 MB.
      expect(r.peakMB).toBeLessThan(300);
    });
  }

  it(`a ${MAX_LINE_ENV} that is not a number of bytes is a usage error`, () => {
    const file = framed('env', 'zstd', `${NDJSON_HEADER}\n`, Buffer.alloc(0), 0);
    const r = importMeasured(file, path.join(dir, 'env.db'), { [MAX_LINE_ENV]: 'lots' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/scriptorium: error E_USAGE: SCRIPTORIUM_MAX_LINE_BYTES=lots/);
  });
});

describe('memory does not grow with a statement, whitespace or a comment', () => {
  const tuple = (i: number): string => `(${i},'${'x'.repeat(1000)}')`;
  /** 4 MiB of 1 KB tuples, each followed by its comma: one frame of a long INSERT. */
  const TUPLES = Buffer.from(Array.from({ length: 4096 }, (_, i) => `${tuple(i)},\n`).join(''));

  for (const codec of ['zstd', 'gzip'] as Codec[]) {
    it(`a ${codec} multi-row INSERT of 128 MiB, 16 times the bound, imports exactly, tuple by tuple`, () => {
      const head = 'PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE t(i INTEGER, a TEXT);\nINSERT INTO t VALUES\n';
      const file = framed(`insert-${codec}`, codec, head, TUPLES, 32, `${tuple(-1)};\nCOMMIT;\n`);
      const into = path.join(dir, `insert-${codec}.db`);
      const r = importMeasured(file, into);
      expect(r.code, r.stderr).toBe(0);
      const db = new Database(into, { readonly: true });
      const got = db.prepare('SELECT count(*) AS n, sum(i) AS s, sum(length(a)) AS len, min(rowid) AS lo, max(rowid) AS hi FROM t').get();
      const last = db.prepare('SELECT i FROM t ORDER BY rowid DESC LIMIT 1').get() as { i: number };
      db.close();
      expect(got).toEqual({ n: 32 * 4096 + 1, s: 32 * ((4095 * 4096) / 2) - 1, len: (32 * 4096 + 1) * 1000, lo: 1, hi: 32 * 4096 + 1 });
      expect(last.i).toBe(-1); // in file order
      // The old reader held the whole statement (and copies of it): over 400 MB for 128 MiB.
      expect(r.peakMB).toBeLessThan(250);
    });
  }

  it('a gzip unterminated multi-row INSERT of 128 MiB is E_TRUNCATED after one pass, in bounded memory', () => {
    // The hang: each gzip chunk made the old reader rescan the whole statement (quadratic).
    const head = 'BEGIN TRANSACTION;\nCREATE TABLE t(i INTEGER, a TEXT);\nINSERT INTO t VALUES\n';
    const file = framed('insert-cut', 'gzip', head, TUPLES, 32);
    const into = path.join(dir, 'insert-cut.db');
    const r = importMeasured(file, into);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/scriptorium: error E_TRUNCATED: sql: the script ends inside a statement that starts at line 3/);
    expect(fs.existsSync(into)).toBe(false);
    expect(r.peakMB).toBeLessThan(250);
  });

  it('a long INSERT with something other than a tuple in its middle is still refused', () => {
    const head = 'BEGIN TRANSACTION;\nCREATE TABLE t(i INTEGER, a TEXT);\nINSERT INTO t VALUES\n';
    const file = framed('insert-garbage', 'zstd', head, TUPLES, 4, `(1,'a') (2,'b'), (3, 'c');\nCOMMIT;\n`);
    const r = importMeasured(file, path.join(dir, 'insert-garbage.db'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/scriptorium: error E_UNSUPPORTED_SQL: sql: line \d+: INSERT into "t" with something other than literal values/);
  });

  it('sql: 96 MiB of whitespace, a 96 MiB -- comment and a 96 MiB /* */ comment stream past', () => {
    const spaces = Buffer.alloc(32 * MiB, ' ');
    const parts: [string, Buffer, number][] = [
      ['BEGIN TRANSACTION;\nCREATE TABLE t(a);\nINSERT INTO t VALUES(1);\n', spaces, 3],
      ['\n-- a long comment ', Buffer.alloc(32 * MiB, 'c'), 3],
      ['\nINSERT INTO t VALUES(2);\n/* a long one ', Buffer.alloc(32 * MiB, '*'), 3],
    ];
    const file = path.join(dir, 'space.sql.zst');
    const fd = fs.openSync(file, 'w');
    for (const [head, body, times] of parts) {
      fs.writeSync(fd, zstdCompress(Buffer.from(head)));
      const frame = zstdCompress(body);
      for (let i = 0; i < times; i++) fs.writeSync(fd, frame);
    }
    fs.writeSync(fd, zstdCompress(Buffer.from('*/\nINSERT INTO t VALUES(3);\nCOMMIT;\n')));
    fs.closeSync(fd);
    const into = path.join(dir, 'space.db');
    const r = importMeasured(file, into);
    expect(r.code, r.stderr).toBe(0);
    const db = new Database(into, { readonly: true });
    expect(db.prepare('SELECT group_concat(a) AS a FROM t').get()).toEqual({ a: '1,2,3' });
    db.close();
    expect(r.peakMB).toBeLessThan(250);
  });

  it('json: 96 MiB of whitespace between rows and between members streams past', () => {
    const row = (i: number): string => `{"a":${i}}`;
    const info = { schema: SCHEMA, format: 'scriptorium-json', format_version: 1 };
    const ws = Buffer.alloc(32 * MiB, ' ');
    const file = path.join(dir, 'space.json.zst');
    const fd = fs.openSync(file, 'w');
    const frame = zstdCompress(ws);
    const pieces = [`{"export_info":${JSON.stringify(info)},`, `"tables":{"t":[${row(1)},`, `${row(2)}`, ']},\n"digests":{}}\n'];
    for (const [i, p] of pieces.entries()) {
      fs.writeSync(fd, zstdCompress(Buffer.from(p)));
      if (i < pieces.length - 1) for (let k = 0; k < 3; k++) fs.writeSync(fd, frame);
    }
    fs.closeSync(fd);
    const into = path.join(dir, 'space-json.db');
    const r = importMeasured(file, into);
    // No digests recorded: the table is loaded but not verified; the file itself is sound.
    expect(r.stderr).not.toMatch(/longer than any row/);
    if (r.code === 0) {
      const db = new Database(into, { readonly: true });
      expect(db.prepare('SELECT group_concat(a) AS a FROM t').get()).toEqual({ a: '1,2' });
      db.close();
    } else expect(r.stderr).toMatch(/E_TRUNCATED: import: table "t" has no digest/);
    expect(r.peakMB).toBeLessThan(250);
  });
});

describe('the bound counts escapes', () => {
  it('a unit past the base bound is legal while its backslashes (6-byte escapes) allow for it', async () => {
    const escaped = '\\u0001'.repeat(400); // 2,400 bytes, 400 backslashes: the bound is 1,024 + 4 × 400
    const over = async (line: string): Promise<unknown> => {
      const reader = new ByteReader(Readable.from([Buffer.from(`${line}\n`)]), 64, 1024);
      return reader.readLine().then((l) => l?.length);
    };
    await expect(over(escaped)).resolves.toBe(2400);
    await expect(over('a'.repeat(1025))).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringMatching(/^line 1 is longer than any row/) });
    await expect(over(`${escaped}${'a'.repeat(300)}`)).rejects.toMatchObject({ code: 'E_CORRUPT' });
  });
});

describe('SqlSplitter streams a long INSERT as whole tuples', () => {
  it('pieces joined by commas are the VALUES list, however the input is cut', () => {
    const tuples = ["(1,'a;b')", "(2,'it''s (not) ; a tuple)')", "(CAST(X'00' AS TEXT),replace('x\\ny','\\n',char(10)))", '( 3 , NULL )', "(X'ABCD',-1.5e10)"];
    const many = Array.from({ length: 40 }, (_, i) => tuples[i % tuples.length]!);
    const text = `CREATE TABLE t(a,b);\nINSERT INTO t VALUES\n${many.join(',\n')};\n-- scriptorium:digest {}\nCOMMIT;\n`;
    const bytes = Buffer.from(text);
    for (const cut of [1, 3, 7, 16, 61, 200]) {
      const splitter = new SqlSplitter(32);
      const values: string[] = [];
      const other: string[] = [];
      let held = Buffer.alloc(0);
      let maxHeld = 0;
      for (let at = 0; at < bytes.length; at += cut) {
        held = Buffer.concat([held, bytes.subarray(at, at + cut)]);
        for (const piece of splitter.drain(held)) {
          if (piece.values) values.push(piece.data.subarray(piece.values.at).toString());
          else other.push(piece.comment ?? piece.data.toString());
        }
        held = held.subarray(splitter.consumed);
        maxHeld = Math.max(maxHeld, held.length);
      }
      expect(splitter.finish(held)).toBeNull();
      expect(values.filter((v) => v !== '').join(',').replaceAll('\n', ''), `cut ${cut}`).toBe(many.join(','));
      expect(other).toEqual(['CREATE TABLE t(a,b)', '-- scriptorium:digest {}', 'COMMIT']);
      expect(values.length, `cut ${cut}`).toBeGreaterThan(1); // it did stream
      expect(maxHeld).toBeLessThan(200 + cut); // never the whole statement, only a tuple and a cut
    }
  });
});
