/**
 * The real `sqlite3` shell (3.40, from Debian) as the reference: it must load our `sql` export into the
 * same database, and our import must load what its `.dump` writes exactly as it loads it itself.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { compareDatabases } from '../src/engines/sqlite/compare.js';
import { exportTo } from '../src/export.js';
import { importFrom } from '../src/import.js';
import { makeDb, removeDir, sqlite3Shell, SQLITE3, tempDir, withDb } from './export-import/helpers.js';
import { integrity, snapshot } from './export-import/snapshot.js';
import { trickyDb } from './export-import/tricky.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('shell');
});
afterAll(() => removeDir(dir));

describe('sqlite3 shell', () => {
  it('is installed (CI installs it from Debian)', () => {
    expect(fs.existsSync(SQLITE3)).toBe(true);
    expect(sqlite3Shell(['-version']).toString()).toMatch(/^3\.\d+\.\d+/);
  });

  it('loads the sql export into the same database (sqlite3 new.db < dump.sql)', async () => {
    const source = trickyDb(path.join(dir, 'tricky.db'));
    const dump = path.join(dir, 'tricky.sql');
    await exportTo(source, { format: 'sql', output: dump });
    const loaded = path.join(dir, 'loaded-by-shell.db');
    sqlite3Shell(['-bail', loaded], fs.readFileSync(dump));
    expect(compareDatabases(source, loaded)).toEqual([]);
    expect(snapshot(loaded)).toEqual(snapshot(source));
    expect(integrity(loaded)).toBe('ok');
    withDb(loaded, (db) => {
      // The values the shell is most likely to get wrong, checked by hand.
      const row = (id: number): [string, unknown] => db.prepare(`SELECT typeof("select"), "select" FROM "we""ird 'table'; --" WHERE id = ?`).raw().get(id) as [string, unknown];
      expect(row(3)).toEqual(['integer', -(2n ** 63n)]);
      expect(row(4)).toEqual(['integer', 2n ** 63n - 1n]);
      expect(row(6)).toEqual(['real', 1]);
      expect(Object.is(row(7)[1], -0)).toBe(true);
      expect(row(13)).toEqual(['real', Infinity]);
      expect(row(14)).toEqual(['real', -Infinity]);
      expect(db.prepare(`SELECT hex("select") FROM "we""ird 'table'; --" WHERE id = 21`).pluck().get()).toBe('610062'); // 'a\0b'
      expect(db.prepare(`SELECT typeof("select"), length("select") FROM "we""ird 'table'; --" WHERE id = 26`).raw().get()).toEqual(['blob', 0n]);
      expect(db.prepare(`SELECT seq FROM sqlite_sequence`).pluck().get()).toBe(29n);
      expect(db.pragma('user_version', { simple: true })).toBe(42n);
      expect(db.pragma('application_id', { simple: true })).toBe(1396920656n);
      expect(db.prepare('SELECT count(*) FROM audit').pluck().get()).toBe(29n); // the trigger did not fire again
    });
  });

  it('also loads a gzip sql export piped through gunzip', async () => {
    const source = trickyDb(path.join(dir, 'tricky-gz.db'));
    const dump = path.join(dir, 'tricky.sql.gz');
    await exportTo(source, { format: 'sql', output: dump, compress: 'gzip' });
    const loaded = path.join(dir, 'loaded-gz.db');
    sqlite3Shell(['-bail', loaded], zlib.gunzipSync(fs.readFileSync(dump)));
    expect(compareDatabases(source, loaded)).toEqual([]);
  });

  it('loads large values (a 2 MB BLOB, 1 MB of text with CR/LF and NUL) from the sql export', async () => {
    const source = makeDb(path.join(dir, 'big.db'), (db) => {
      db.exec('CREATE TABLE big(b, t TEXT, u TEXT)');
      const blob = Buffer.alloc(2 << 20);
      for (let i = 0; i < blob.length; i++) blob[i] = (i * 7) & 0xff;
      db.prepare('INSERT INTO big VALUES (?, ?, ?)').run(blob, 'ab\r\ncd\0'.repeat(150_000), 'plain\nnewlines only\r'.repeat(50_000));
    });
    const dump = path.join(dir, 'big.sql');
    await exportTo(source, { format: 'sql', output: dump });
    const loaded = path.join(dir, 'big-loaded.db');
    sqlite3Shell(['-bail', loaded], fs.readFileSync(dump));
    expect(compareDatabases(source, loaded)).toEqual([]);
    expect(snapshot(loaded)).toEqual(snapshot(source));
  });

  describe('import of a file written by sqlite3 .dump', () => {
    let source: string;
    let dump: Buffer;
    let reference: string;

    beforeAll(() => {
      source = trickyDb(path.join(dir, 'for-dump.db'));
      dump = sqlite3Shell([source, '.dump']);
      fs.writeFileSync(path.join(dir, 'shell.dump.sql'), dump);
      reference = path.join(dir, 'reference.db');
      sqlite3Shell(['-bail', reference], dump);
    });

    it('gives back every value .dump can express, identical to the original', async () => {
      const into = path.join(dir, 'imported-from-dump.db');
      const result = await importFrom(path.join(dir, 'shell.dump.sql'), { into });
      expect(result.format).toBe('sql');
      expect(integrity(into)).toBe('ok');
      const expected = snapshot(source);
      const got = snapshot(into);
      // .dump itself writes an index whose SQL holds "--" with its ";" on a new line (SQLite keeps that "\n").
      const trimmed = (schema: string[]): string[] => schema.map((s) => s.replace(/\\n"\}$/, '"}'));
      expect(trimmed(got.schema)).toEqual(expected.schema);
      expect(got.sequence).toEqual(expected.sequence);
      expect(got.tables['pairs']!.length).toBe(1200);
      // sqlite3 3.40's .dump drops the sign of -0.0 and cuts text at a NUL; everything else is exact.
      const lossy = (cell: string): boolean => cell.includes('real:-0') || cell.includes('\\u0000');
      for (const name of ['we"ird \'table\'; --', 'pairs']) {
        const a = expected.tables[name]!;
        const b = got.tables[name]!;
        expect(b.length).toBe(a.length);
        for (let i = 0; i < a.length; i++) if (!lossy(a[i]!)) expect(b[i], `${name} row ${i}`).toBe(a[i]);
      }
      // .dump keeps no rowids for a table without a primary key: rows come back renumbered, in order.
      const values = (rows: string[]): string[] => rows.map((r) => r.split(' | ').slice(1).join(' | '));
      const nokey = values(got.tables['nokey']!);
      values(expected.tables['nokey']!).forEach((r, i) => {
        if (!lossy(r)) expect(nokey[i]).toBe(r);
      });
      withDb(into, (db) => {
        expect(db.prepare('SELECT count(*) FROM audit').pluck().get()).toBe(29n); // the trigger did not fire again
        expect(db.prepare('SELECT seq FROM sqlite_sequence').pluck().get()).toBe(29n);
        // .dump writes 5e-324 with 20 digits; the 3.40 shell itself reads that as 0, import reads it exactly.
        expect(db.prepare(`SELECT "select" FROM "we""ird 'table'; --" WHERE id = 10`).pluck().get()).toBe(5e-324);
      });
    });

    it('loads the dump like the shell does, where the shell reads its own dump right', async () => {
      const into = path.join(dir, 'imported-from-dump-2.db');
      await importFrom(path.join(dir, 'shell.dump.sql'), { into });
      const ref = snapshot(reference);
      const got = snapshot(into);
      expect(got.schema).toEqual(ref.schema);
      expect(got.sequence).toEqual(ref.sequence);
      for (const [name, rows] of Object.entries(ref.tables)) {
        expect(got.tables[name]!.length).toBe(rows.length);
        rows.forEach((r, i) => {
          if (!r.includes('real:0')) expect(got.tables[name]![i], `${name} row ${i}`).toBe(r);
        });
      }
    });

    it('reads a gzip- or zstd-compressed dump, recognised from the content', async () => {
      const gz = path.join(dir, 'dump.bin');
      fs.writeFileSync(gz, zlib.gzipSync(dump));
      const plain = path.join(dir, 'from-plain.db');
      await importFrom(path.join(dir, 'shell.dump.sql'), { into: plain });
      const a = path.join(dir, 'from-gz.db');
      expect((await importFrom(gz, { into: a })).compression).toBe('gzip');
      expect(compareDatabases(plain, a)).toEqual([]);
      const zst = path.join(dir, 'dump2.bin');
      fs.writeFileSync(zst, compress(dump));
      const b = path.join(dir, 'from-zst.db');
      expect((await importFrom(zst, { into: b })).compression).toBe('zstd');
      expect(compareDatabases(plain, b)).toEqual([]);
    });

    it('handles what .dump writes for a database made by the shell itself (hostile names, keywords, sequences)', async () => {
      const shellDb = path.join(dir, 'made-by-shell.db');
      sqlite3Shell([shellDb], `
        CREATE TABLE "select"("from" TEXT, "order" INTEGER PRIMARY KEY AUTOINCREMENT, [weird name] BLOB);
        CREATE TABLE [x y]("a""b", c);
        INSERT INTO "select"("from", [weird name]) VALUES ('multi
line', x'00ff'), ('tab	and ''quote''', NULL), (char(13)||char(10), zeroblob(3));
        INSERT INTO [x y] VALUES (1e999, -1e999), (9223372036854775807, -9223372036854775808), (0.1, 'unicode: ₿ 🍣');
        CREATE UNIQUE INDEX "x y idx" ON [x y]("a""b") WHERE c IS NOT NULL;
        CREATE VIEW "select view" AS SELECT * FROM "select";
        PRAGMA user_version = 7;
        ANALYZE;
      `);
      const d = sqlite3Shell([shellDb, '.dump']);
      expect(d.toString()).toMatch(/ANALYZE sqlite_schema;\nINSERT INTO sqlite_stat1/); // statistics are skipped, not refused
      const ref = path.join(dir, 'made-by-shell-ref.db');
      sqlite3Shell(['-bail', ref], d);
      const file = path.join(dir, 'made-by-shell.sql');
      fs.writeFileSync(file, d);
      const into = path.join(dir, 'made-by-shell-imported.db');
      await importFrom(file, { into });
      expect(compareDatabases(ref, into)).toEqual([]);
      // Everything but user_version (which .dump does not write) matches the shell's original database.
      const diffs = compareDatabases(shellDb, into);
      expect(diffs.every((d) => d.startsWith('metadata differs'))).toBe(true);
      expect(snapshot(into).tables).toEqual(snapshot(shellDb).tables);
    });
  });
});

