/**
 * SQLite → export → import into PostgreSQL (the real server) for the common types: values compared
 * with what PostgreSQL then holds, digests verified; values that do not fit their PostgreSQL column
 * are refused with the table and column named, and the target is left as it was.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportTo } from '../../src/export.js';
import { importFrom } from '../../src/import.js';
import type { FormatName } from '../../src/formats/format.js';
import Database from 'better-sqlite3';
import { makeDb, removeDir, tempDir } from '../export-import/helpers.js';
import { PG_SKIP, freshDatabase, runSql, textRows } from './pg-helpers.js';

const dir = tempDir('pg-cross');
afterAll(() => removeDir(dir));

function commonDb(file: string): string {
  return makeDb(file, (db) => {
    db.exec(`CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, height REAL, photo BLOB, active BOOLEAN, balance DECIMAL(12,2), born DATE, note VARCHAR(40));
      CREATE TABLE plain (a INTEGER, b TEXT);
      CREATE INDEX people_name ON people (name);`);
    const ins = db.prepare('INSERT INTO people VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    ins.run(-9223372036854775808n, 'สมชาย 😀', 1.75, Buffer.from([0, 1, 2, 255]), 1, 12.5, '1990-05-17', 'line\nbreak\ttab "q" \\ back');
    ins.run(9223372036854775807n, '', -0.0, Buffer.alloc(0), 0, 3, '2000-02-29', null);
    ins.run(1n, 'x', 0.1, null, null, null, null, 'ünï');
    ins.run(2n, 'y', 1e300, null, 1, -0.25, null, '');
    db.exec("INSERT INTO plain VALUES (1, 'one'), (NULL, NULL), (1, 'one')");
  });
}

describe.skipIf(PG_SKIP)('SQLite → PostgreSQL', () => {
  for (const format of ['ndjson', 'json'] as FormatName[]) {
    it(`carries the common types exactly through ${format} (INTEGER, TEXT, REAL, BLOB, BOOLEAN, DECIMAL, dates as text, no key)`, async () => {
      const db = commonDb(path.join(dir, `common-${format}.db`));
      const file = path.join(dir, `common.${format}`);
      const out = await exportTo(db, { format, output: file });
      const target = await freshDatabase('x');
      const notices: string[] = [];
      const result = await importFrom(file, { into: target, onEvent: (e) => e.type === 'notice' && notices.push(e.message) });
      expect(result.tables.map((t) => [t.name, t.rows, t.verified])).toEqual([['people', 4, true], ['plain', 3, true]]);
      expect(result.tables.map((t) => t.sha256)).toEqual(out.tables.map((t) => t.sha256));
      expect(notices.join('\n')).toContain('1 SQLite indexes, views and triggers');
      expect(notices.join('\n')).toContain('table plain has no primary key: its SQLite rowid is carried as column rowid');
      expect(await textRows(target, `SELECT id, name, height, encode(photo, 'hex'), active, balance, born, note FROM people ORDER BY id`)).toEqual([
        ['-9223372036854775808', 'สมชาย 😀', '1.75', '000102ff', 't', '12.5', '1990-05-17', 'line\nbreak\ttab "q" \\ back'],
        ['1', 'x', '0.1', null, null, null, null, 'ünï'],
        ['2', 'y', '1e+300', null, 't', '-0.25', null, ''],
        ['9223372036854775807', '', '0', '', 'f', '3', '2000-02-29', null], // SQLite keeps -0.0 as 0
      ]);
      expect(await textRows(target, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.people'::regclass AND attnum > 0 ORDER BY attnum`)).toEqual(
        [['bigint'], ['text'], ['double precision'], ['bytea'], ['boolean'], ['numeric'], ['text'], ['text']],
      );
      expect(await textRows(target, 'SELECT rowid, a, b FROM plain ORDER BY rowid')).toEqual([['1', '1', 'one'], ['2', null, null], ['3', '1', 'one']]);
      expect(await textRows(target, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'public.people'::regclass")).toEqual([['PRIMARY KEY (id)']]);
    });
  }

  it('AUTOINCREMENT counters and optimizer statistics, which PostgreSQL does not take, are said as not carried', async () => {
    const db = makeDb(path.join(dir, 'counted.db'), (d) => {
      d.exec("CREATE TABLE counted (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT); CREATE INDEX counted_v ON counted (v); INSERT INTO counted (v) VALUES ('a'), ('b'), ('c'); DELETE FROM counted WHERE id = 3; ANALYZE;");
    });
    const file = path.join(dir, 'counted.ndjson');
    await exportTo(db, { format: 'ndjson', output: file });
    const notices: string[] = [];
    await importFrom(file, { into: await freshDatabase('counted'), onEvent: (e) => e.type === 'notice' && notices.push(e.message) });
    expect(notices).toContain('not carried into PostgreSQL: the AUTOINCREMENT counters of counted (their key columns are plain integers there: no ids are generated, and a deleted id is not kept from coming back)');
    expect(notices).toContain("not carried into PostgreSQL: SQLite's optimizer statistics (run ANALYZE there)");
  });

  it('text in an INTEGER column is reported before the commit (table, column, count, example), and the target is left as it was', async () => {
    const db = makeDb(path.join(dir, 'dynamic.db'), (d) => {
      d.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO t VALUES (1, 5), (2, 'five');");
    });
    const file = path.join(dir, 'dynamic.ndjson');
    await exportTo(db, { format: 'ndjson', output: file });
    const target = await freshDatabase('xd');
    await expect(importFrom(file, { into: target })).rejects.toMatchObject({ code: 'E_LOSSY', message: expect.stringContaining('table "t" column "n": 1 × text in an integer column (loaded as NULL); first in row 2: "five"') });
    expect(await textRows(target, "SELECT count(*) FROM pg_class WHERE relname = 't'")).toEqual([['0']]);
  });

  it('text with NUL, which PostgreSQL cannot hold, is refused naming the column (reported as lossy)', async () => {
    const db = makeDb(path.join(dir, 'nul.db'), (d) => {
      d.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT); INSERT INTO t VALUES (1, 'a' || char(0) || 'b');");
    });
    const file = path.join(dir, 'nul.ndjson');
    await exportTo(db, { format: 'ndjson', output: file });
    const target = await freshDatabase('xn');
    await expect(importFrom(file, { into: target })).rejects.toMatchObject({ code: 'E_LOSSY', message: expect.stringContaining('table "t" column "s": 1 × text with NUL (U+0000), which PostgreSQL text cannot hold') });
    expect(await textRows(target, "SELECT count(*) FROM pg_class WHERE relname = 't'")).toEqual([['0']]);
  });

  it('a DECIMAL value that PostgreSQL stores differently (1e300: a numeric of 301 digits) is reported before the commit', async () => {
    // 1e400 overflows to Infinity in SQLite (REAL), which PostgreSQL keeps: exact. A DECIMAL column's
    // 1e300 becomes a numeric of 301 digits, which does not read back as it was sent: reported as lossy.
    const db = makeDb(path.join(dir, 'decimal.db'), (d) => {
      d.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, r REAL, d DECIMAL); INSERT INTO t VALUES (1, 1e400, 1e300);');
    });
    const file = path.join(dir, 'decimal.ndjson');
    await exportTo(db, { format: 'ndjson', output: file });
    const target = await freshDatabase('xr');
    await expect(importFrom(file, { into: target })).rejects.toMatchObject({ code: 'E_LOSSY', message: expect.stringContaining('table "t" column "d": 1 × a REAL written with an exponent in a numeric column') });
    expect(await textRows(target, "SELECT count(*) FROM pg_class WHERE relname = 't'")).toEqual([['0']]);
    // With --allow-lossy it loads as the numeric PostgreSQL makes of it, and the read-back digest agrees.
    await importFrom(file, { into: target, allowLossy: true });
    expect(await textRows(target, 'SELECT r, d FROM t')).toEqual([['Infinity', `1${'0'.repeat(300)}`]]);
  });

  for (const format of ['ndjson', 'json'] as FormatName[]) {
    it(`and back: PostgreSQL → ${format} → SQLite for the common types, verified value by value`, async () => {
      const src = await freshDatabase('back');
      await runSql(src, `CREATE SCHEMA sales;
        CREATE TABLE people (id bigint PRIMARY KEY, name text NOT NULL, height double precision, photo bytea, active boolean, balance numeric(12,2), born timestamptz, tags jsonb);
        INSERT INTO people VALUES (-9223372036854775808, 'สมชาย 😀', 0.1, '\\x0001ff', true, 12.50, '2024-03-31 02:30:00 Europe/Berlin', '{"b": [1, 2]}'),
          (9223372036854775807, E'tab\\there\\nnewline', 'Infinity', '\\x', false, NULL, 'infinity', NULL),
          (1, '', 'NaN', NULL, NULL, -0.25, NULL, '[]'), (2, 'x', 1e300, NULL, NULL, NULL, NULL, NULL), (3, 'third', 0.3333333333333333, NULL, NULL, NULL, NULL, NULL);
        CREATE TABLE sales.lines (n integer PRIMARY KEY, what text); INSERT INTO sales.lines VALUES (1, 'a'), (2, 'a'), (3, NULL);
        CREATE TABLE keyless (a integer);
        CREATE INDEX people_name ON people (name);`);
      const file = path.join(dir, `back.${format}`);
      await exportTo(src, { format, output: file, excludeTables: ['keyless'] });
      const db = path.join(dir, `back-${format}.db`);
      const notices: string[] = [];
      const result = await importFrom(file, { into: db, onEvent: (e) => e.type === 'notice' && notices.push(e.message) });
      expect(result.tables.map((t) => [t.name, t.rows, t.verified])).toEqual([['people', 5, true], ['sales.lines', 3, true]]);
      expect(notices.join('\n')).toContain('not carried into SQLite: 2 PostgreSQL schema statements') // the schema sales and the index;
      const sqlite = new Database(db, { readonly: true });
      sqlite.defaultSafeIntegers(true);
      try {
        expect(sqlite.prepare('SELECT id, name, height, quote(photo) AS photo, active, balance, born, tags FROM people ORDER BY id').all()).toEqual([
          { id: -9223372036854775808n, name: 'สมชาย 😀', height: 0.1, photo: "X'0001FF'", active: 1n, balance: '12.50', born: '2024-03-31 01:30:00+00', tags: '{"b": [1, 2]}' },
          { id: 1n, name: '', height: 'NaN', photo: 'NULL', active: null, balance: '-0.25', born: null, tags: '[]' },
          { id: 2n, name: 'x', height: 1e300, photo: 'NULL', active: null, balance: null, born: null, tags: null },
          { id: 3n, name: 'third', height: 0.3333333333333333, photo: 'NULL', active: null, balance: null, born: null, tags: null },
          { id: 9223372036854775807n, name: 'tab\there\nnewline', height: Infinity, photo: "X''", active: 0n, balance: null, born: 'infinity', tags: null },
        ]);
        expect(sqlite.prepare('SELECT n, what FROM "sales.lines" ORDER BY n').all()).toEqual([{ n: 1n, what: 'a' }, { n: 2n, what: 'a' }, { n: 3n, what: null }]);
        expect((sqlite.prepare("SELECT sql FROM sqlite_schema WHERE name = 'people'").get() as { sql: string }).sql).toBe(
          'CREATE TABLE "people" ("id" INTEGER NOT NULL, "name" TEXT NOT NULL, "height" REAL, "photo" BLOB, "active" INTEGER, "balance" TEXT, "born" TEXT, "tags" TEXT, PRIMARY KEY ("id"))',
        );
      } finally {
        sqlite.close();
      }
      // The check can fail: one value changed in the file is a digest mismatch, and nothing is written.
      const edited = path.join(dir, `back-edited.${format}`);
      fs.writeFileSync(edited, fs.readFileSync(file, 'utf8').replace('"x"', '"z"'));
      const notWritten = path.join(dir, `back-edited-${format}.db`);
      await expect(importFrom(edited, { into: notWritten })).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
      expect(fs.existsSync(notWritten)).toBe(false);
      // A table without a key has no rowid to carry into SQLite: refused by name, nothing written.
      const keyless = path.join(dir, `keyless.${format}`);
      await exportTo(src, { format, output: keyless, tables: ['keyless'] });
      const none = path.join(dir, `keyless-${format}.db`);
      await expect(importFrom(keyless, { into: none })).rejects.toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringContaining('table "keyless" of the PostgreSQL export has no primary key') });
      expect(fs.existsSync(none)).toBe(false);
    });
  }
});
