/**
 * Exports through the built CLI, where tables are read by background readers (connections of the
 * extension's own, each on a thread, sharing a table's segments: native/scriptorium_encode.inc,
 * src/engines/sqlite/segments.ts): the file is byte for byte what one reader writes, and it is still one
 * snapshot while another process commits, in WAL and in rollback-journal mode.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareDatabases } from '../src/engines/sqlite/compare.js';
import { importFrom } from '../src/import.js';
import { CLI, cli, cliAsync, FORMATS, ledgerDb, makeDb, removeDir, tempDir, whileLedgerCommits, withDb } from './export-import/helpers.js';

/** Two background readers, whatever the machine. */
const TWO = { ...process.env, SCRIPTORIUM_READERS: '2' };
const FOUR = { ...process.env, SCRIPTORIUM_READERS: '4' };

let dir: string;
beforeAll(() => {
  expect(fs.existsSync(CLI), 'run `npm run build` first').toBe(true);
  dir = tempDir('parallel');
});
afterAll(() => removeDir(dir));

/** Tables large enough to be split, with every kind of value, gaps and negative rowids. */
function splitDb(file: string): string {
  return makeDb(file, (db) => {
    db.exec(`
      CREATE TABLE "big table" (id INTEGER PRIMARY KEY, n INTEGER, r REAL, t TEXT, b BLOB, v);
      CREATE TABLE keyless (a TEXT, b INTEGER);
      CREATE TABLE wr (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
    `);
    const big = db.prepare('INSERT INTO "big table" (id, n, r, t, b, v) VALUES (?, ?, ?, ?, ?, ?)');
    const keyless = db.prepare('INSERT INTO keyless (rowid, a, b) VALUES (?, ?, ?)');
    const wr = db.prepare('INSERT INTO wr VALUES (?, ?)');
    const texts = ['plain', 'quote " and \\ back', 'line\nbreak\r\n', 'ไทย 🙂 עברית', 'nul\0inside', '', "it's"];
    db.transaction(() => {
      for (let i = 0; i < 70_000; i++) {
        const id = i < 100 ? -1000 + i * 7 : i * 3 + (i % 5); // negative keys, then gaps
        big.run(
          BigInt(id),
          i % 11 === 0 ? 9223372036854775807n - BigInt(i) : BigInt(i * i),
          i % 13 === 0 ? -0 : i / 7,
          texts[i % texts.length]! + i,
          i % 17 === 0 ? Buffer.alloc(0) : Buffer.from([i & 255, 0, 255]),
          i % 3 === 0 ? null : i % 3 === 1 ? `v${i}` : 1.5,
        );
        keyless.run(BigInt(i % 2 === 0 ? -i : i * 1000), `k${i}`, BigInt(i));
        if (i < 2000) wr.run(`key ${i}`, i);
      }
    })();
  });
}

/** The export without its one moment-dependent value, the time it was written. */
const normalised = (file: string): string => fs.readFileSync(file, 'latin1').replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, 'TIME');

describe('background readers', () => {
  it('write the same bytes as one reader, in every format, and the import is identical to the source', async () => {
    const db = splitDb(path.join(dir, 'split.db'));
    for (const format of FORMATS) {
      const two = path.join(dir, `two.${format}`);
      const four = path.join(dir, `four.${format}`);
      const one = path.join(dir, `one.${format}`);
      const r2 = cli(['export', db, '--format', format, '-o', two, '--json'], { env: TWO });
      expect(r2.code, r2.stderr).toBe(0);
      expect((JSON.parse(r2.stdout) as { readers: number }).readers, `${format}: read by two background readers`).toBe(2);
      const r4 = cli(['export', db, '--format', format, '-o', four, '--json'], { env: FOUR });
      expect(r4.code, r4.stderr).toBe(0);
      expect((JSON.parse(r4.stdout) as { readers: number }).readers).toBe(4);
      const r1 = cli(['export', db, '--format', format, '-o', one, '--json'], { env: { ...process.env, SCRIPTORIUM_READERS: '1' } });
      expect(r1.code, r1.stderr).toBe(0);
      expect((JSON.parse(r1.stdout) as { readers: number }).readers).toBe(1);
      expect(normalised(two) === normalised(one), `${format}: two readers wrote different bytes`).toBe(true);
      expect(normalised(four) === normalised(one), `${format}: four readers wrote different bytes`).toBe(true);
      const into = path.join(dir, `split-${format}.db`);
      await importFrom(two, { into });
      expect(compareDatabases(db, into)).toEqual([]);
    }
  });
});

describe.each(['wal', 'delete'] as const)('one snapshot while a process commits (%s journal)', (journal) => {
  it('both tables come from one point in time, with both readers at work', async () => {
    const db = ledgerDb(path.join(dir, `ledger-${journal}.db`), 80_000, journal);
    const total = (file: string): bigint =>
      withDb(file, (x) => x.prepare('SELECT (SELECT total(amount) FROM debit) - (SELECT total(amount) FROM credit)').pluck().get() as bigint);
    await whileLedgerCommits(db, 80_000, async () => {
      for (const format of FORMATS) {
        const out = path.join(dir, `ledger-${journal}.${format}`);
        const r = await cliAsync(['export', db, '--format', format, '-o', out, '--json'], { env: TWO });
        expect(r.code, r.stderr).toBe(0);
        const result = JSON.parse(r.stdout) as { readers: number; tables: { rows: number }[] };
        expect(result.readers, format).toBe(2);
        expect(result.tables[0]!.rows, format).toBe(result.tables[1]!.rows);
        const into = path.join(dir, `ledger-${journal}-${format}.db`);
        await importFrom(out, { into });
        const counts = withDb(into, (x) => [x.prepare('SELECT count(*) FROM debit').pluck().get(), x.prepare('SELECT count(*) FROM credit').pluck().get()]);
        expect(counts[0], format).toBe(counts[1]);
        expect(Number(total(into)), `${format}: every move is whole (one snapshot)`).toBe(0);
      }
      const grown = withDb(db, (x) => x.prepare('SELECT count(*) FROM debit').pluck().get() as bigint);
      expect(grown, 'the writer really wrote during the exports').toBeGreaterThan(80_000n + 200n);
    });
  });
});
