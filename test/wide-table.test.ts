/**
 * Tables up to SQLite's column limit (SQLITE_MAX_COLUMN, 2000) travel exactly in every format, through
 * backup and restore, with and without the extension, and into the sqlite3 shell. Past the limit of
 * values one query can return (a table of 2000 columns and no primary key also needs its rowid), the
 * table is refused by name with a hint, and nothing is written.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareDatabases } from '../src/engines/sqlite/compare.js';
import { SqliteTarget } from '../src/engines/sqlite/sqlite-target.js';
import { exportTo } from '../src/export.js';
import { backup } from '../src/repository/backup.js';
import { Repository } from '../src/repository/repository.js';
import { restore } from '../src/repository/restore.js';
import { cli, FORMATS, makeDb, removeDir, roundTrip, sqlite3Shell, tempDir } from './export-import/helpers.js';

const dir = tempDir('wide');
afterAll(() => removeDir(dir));

/** Values of every storage class, and the awkward ones, spread over the columns. */
const VALUES: unknown[] = [null, 9223372036854775807n, -0.0, 1.5, 'text', 'a\u0000b\r\nc', Buffer.from([0, 255, 10]), Buffer.alloc(0), 'é😀', -9223372036854775808n, 1e308];

/**
 * One database, four wide tables: 1000 columns without a primary key (1001 values a row: the rowid),
 * 1999 without one (2000 values: the most a query returns), 2000 with an INTEGER PRIMARY KEY (the most
 * a table has), and 1997 with a TEXT primary key (the widest rows the extension's parser reads).
 */
function wideDb(file: string, rows = 23): string {
  return makeDb(file, (db) => {
    const tables: Array<[string, number, string]> = [
      ['w1000', 1000, ''],
      ['w1999', 1999, ''],
      ['w2000', 2000, 'INTEGER PRIMARY KEY'],
      ['w1997', 1997, 'TEXT PRIMARY KEY'],
    ];
    for (const [name, n, pk] of tables) {
      const cols = Array.from({ length: n }, (_, i) => `c${i}${i === 0 && pk ? ` ${pk}` : i % 3 === 1 ? ' BLOB' : ''}`);
      db.exec(`CREATE TABLE ${name} (${cols.join(', ')})`);
      const insert = db.prepare(`INSERT INTO ${name} VALUES (${Array.from({ length: n }, () => '?').join(', ')})`);
      for (let r = 0; r < rows; r++) {
        const row = Array.from({ length: n }, (_, i) => (i === 0 && pk ? (pk.startsWith('TEXT') ? `k${r}` : BigInt(r * 7 + 1)) : VALUES[(i * 7 + r) % VALUES.length]));
        insert.run(...row);
      }
      if (!pk) db.exec(`DELETE FROM ${name} WHERE rowid IN (2, 4, 10)`); // rowids with gaps: they must come back the same
    }
  });
}

describe('tables of 1,000 to 2,000 columns', { timeout: 180_000 }, () => {
  let source: string;
  beforeAll(() => {
    source = wideDb(path.join(dir, 'wide.db'));
  });

  for (const format of FORMATS) {
    it(`${format}: export and import exactly`, async () => {
      await roundTrip(source, { format, compress: format === 'ndjson' ? 'zstd' : 'none' }, dir);
    });
  }

  it('the sql export loads in the sqlite3 shell', async () => {
    const file = path.join(dir, 'shell.sql');
    await exportTo(source, { format: 'sql', output: file });
    const into = path.join(dir, 'shell.db');
    sqlite3Shell([into], fs.readFileSync(file));
    expect(compareDatabases(source, into)).toEqual([]);
  });

  it('backup and restore exactly', async () => {
    const repoDir = path.join(dir, 'repo');
    await (await Repository.init(repoDir, { chunkBytes: 4096 })).close();
    const snap = await backup(source, repoDir);
    expect(snap.tables.map((t) => [t.name, t.rows])).toEqual([['w1000', 20], ['w1999', 20], ['w2000', 23], ['w1997', 23]]);
    const into = path.join(dir, 'restored.db');
    await restore('latest', repoDir, { into });
    expect(compareDatabases(source, into)).toEqual([]);
  });
});

describe("the extension's parser and rows of 2000 values", () => {
  it('loads them itself (scriptorium_stage, then scriptorium_rows_staged), and a scan with nothing staged is an error', () => {
    const target = SqliteTarget.create(path.join(dir, 'staged.db'));
    try {
      const columns = Array.from({ length: 2000 }, (_, i) => ({ name: `c${i}`, type: '', notNull: false, pk: i === 0 ? 1 : 0 }));
      const table = { name: 't', sql: `CREATE TABLE t (${columns.map((c, i) => (i === 0 ? 'c0 INTEGER PRIMARY KEY' : c.name)).join(', ')})`, columns, primaryKey: ['c0'], withoutRowid: false };
      target.createTables([table]);
      expect(target.native(table)).toBe(true);
      const row = (r: number): string => JSON.stringify(Array.from({ length: 2000 }, (_, i) => (i === 0 ? r : i === 1999 ? `last ${r}` : i)));
      expect(target.load(table, 'ndjson', { data: Buffer.from(`${row(1)}\n${row(2)}`), rows: 2 })).toBe(2);
      expect(target.db.prepare('SELECT c1999 FROM t ORDER BY c0').pluck().all()).toEqual(['last 1', 'last 2']);
      expect(() => target.db.prepare('SELECT c0 FROM scriptorium_rows_staged').all()).toThrow(/no batch staged/);
    } finally {
      target.close();
    }
  });
});

/** Without the extension, SQLite's JSON functions and quote() do the work: slower for wide rows, so fewer rows. */
describe('tables of 1,000 to 2,000 columns without the extension (CLI, SCRIPTORIUM_NO_EXTENSION=1)', () => {
  const env = { ...process.env, NO_COLOR: '1', SCRIPTORIUM_NO_EXTENSION: '1' };
  const untimed = (f: string): string => fs.readFileSync(f, 'utf8').replace(/"timestamp":"[^"]*"|"exported_at":"[^"]*"|at \d{4}-\d{2}-\d{2}T[\d:.]+Z/g, 'TIME');
  let source: string;
  beforeAll(() => {
    source = wideDb(path.join(dir, 'wide-small.db'), 5);
  });

  for (const format of FORMATS) {
    it(`${format}: the same bytes as with the extension, and the extension's file imports exactly`, { timeout: 180_000 }, async () => {
      const file = path.join(dir, `noext.${format}`);
      const r = cli(['export', source, '--format', format, '-o', file], { env });
      expect(r.code, r.stderr).toBe(0);
      const withExt = path.join(dir, `ext.${format}`);
      await exportTo(source, { format, output: withExt });
      expect(untimed(file) === untimed(withExt), `${format}: same bytes both ways`).toBe(true);
      const into = path.join(dir, `noext-${format}.db`);
      const back = cli(['import', withExt, '--into', into], { env });
      expect(back.code, back.stderr).toBe(0);
      expect(compareDatabases(source, into)).toEqual([]);
    });
  }

  it('backup and restore exactly', { timeout: 180_000 }, () => {
    const repoDir = path.join(dir, 'repo-noext');
    const into = path.join(dir, 'noext-restored.db');
    for (const args of [['init', '--repo', repoDir], ['backup', source, '--repo', repoDir], ['restore', 'latest', '--repo', repoDir, '--into', into]]) {
      const r = cli(args, { env });
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(0);
    }
    expect(compareDatabases(source, into)).toEqual([]);
  });
});

describe('a table of 2,000 columns without a primary key', () => {
  const db = path.join(dir, 'nopk.db');
  beforeAll(() => {
    makeDb(db, (d) => {
      d.exec(`CREATE TABLE too_wide (${Array.from({ length: 2000 }, (_, i) => `c${i}`).join(', ')})`);
      d.exec('INSERT INTO too_wide (c0, c1999) VALUES (1, 2)');
      d.exec('CREATE TABLE fine (a); INSERT INTO fine VALUES (1)');
    });
  });

  for (const format of FORMATS) {
    it(`export as ${format}: E_UNSUPPORTED naming it, with a hint; nothing written; --exclude-tables skips it`, async () => {
      const out = path.join(dir, `nopk.${format}`);
      await expect(exportTo(db, { format, output: out })).rejects.toMatchObject({
        code: 'E_UNSUPPORTED',
        message: expect.stringContaining('"too_wide"'),
        hint: expect.stringContaining('--exclude-tables'),
      });
      expect(fs.existsSync(out)).toBe(false);
      const ok = await exportTo(db, { format, output: out, excludeTables: ['too_wide'] });
      expect(ok.tables.map((t) => t.name)).toEqual(['fine']);
    });
  }

  it('backup: E_UNSUPPORTED, and --tables skips it', async () => {
    const repoDir = path.join(dir, 'repo-nopk');
    await (await Repository.init(repoDir)).close();
    await expect(backup(db, repoDir)).rejects.toMatchObject({ code: 'E_UNSUPPORTED', hint: expect.stringContaining('primary key') });
    const snap = await backup(db, repoDir, { tables: ['fine'] });
    expect(snap.tables.map((t) => t.name)).toEqual(['fine']);
  });
});
