/**
 * restore across engines, against the real server of the test harness: a SQLite snapshot into
 * PostgreSQL and a PostgreSQL snapshot into SQLite, through the import targets (docs/cross-engine.md):
 * values as the type mapping says, lossy values refused before anything is committed (E_LOSSY, the
 * target as it was) and loaded with allowLossy / --allow-lossy, a damaged chunk refused, and
 * `verify --drill --into` of a SQLite snapshot into PostgreSQL rolled back.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { exportTo } from '../../src/export.js';
import { importFrom } from '../../src/import.js';
import { backup } from '../../src/repository/backup.js';
import { init } from '../../src/repository/index.js';
import type { Snapshot } from '../../src/repository/manifest.js';
import { restore } from '../../src/repository/restore.js';
import { verify } from '../../src/repository/verify.js';
import { CLI, makeDb, removeDir, tempDir } from '../export-import/helpers.js';
import { PG_SKIP, freshDatabase, runSql, textRows } from './pg-helpers.js';

const dir = tempDir('pg-restore-across');
afterAll(() => removeDir(dir));
let n = 0;

async function newRepo(): Promise<string> {
  const repo = path.join(dir, `repo-${++n}`);
  await init(repo);
  return repo;
}

/** Flips a byte in the middle of the pack that holds the first chunk of `table`. */
function damagePack(repo: string, snap: Snapshot, table: string): void {
  const entry = snap.tables.find((t) => t.name === table)!;
  const hash = snap.packs[entry.chunks[0]![0]]!;
  const file = path.join(repo, 'packs', hash.slice(0, 2), hash);
  const data = fs.readFileSync(file);
  data[Math.floor(data.length / 2)] ^= 0x01;
  fs.writeFileSync(file, data);
}

/** SQLite: the start of an INSERT … SELECT … FROM g over the integers 1 … n. */
function series(n: number): string {
  return `WITH RECURSIVE g(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM g WHERE value < ${n})`;
}

async function tableCount(url: string): Promise<string> {
  const rows = await textRows(url, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'");
  return rows[0]![0] as string;
}

describe.skipIf(PG_SKIP)('restore of a SQLite snapshot into PostgreSQL', () => {
  it('carries the common types as docs/cross-engine.md says (INTEGER limits, TEXT, REAL, BLOB, BOOLEAN, DECIMAL, dates as text, a keyless table), read back by digest', async () => {
    const db = makeDb(path.join(dir, 'common.db'), (d) => {
      d.exec(`CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, height REAL, photo BLOB, active BOOLEAN, balance DECIMAL(12,2), born DATE, note VARCHAR(40));
        CREATE TABLE plain (a INTEGER, b TEXT);
        CREATE INDEX people_name ON people (name);`);
      const ins = d.prepare('INSERT INTO people VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
      ins.run(-9223372036854775808n, 'สมชาย 😀', 1.75, Buffer.from([0, 1, 2, 255]), 1, 12.5, '1990-05-17', 'line\nbreak\ttab "q" \\ back');
      ins.run(9223372036854775807n, '', 0.1, Buffer.alloc(0), 0, 3, '2000-02-29', null);
      ins.run(1n, 'x', 1e300, null, null, -0.25, null, 'ünï');
      d.exec("INSERT INTO plain VALUES (1, 'one'), (NULL, NULL), (1, 'one')");
      d.exec(`${series(3000)} INSERT INTO people (id, name, height) SELECT 100 + value, 'p' || value, value / 7.0 FROM g`);
    });
    const repo = await newRepo();
    const snap = await backup(db, repo);
    expect(snap.encoding).toBe('ndjson');
    const target = await freshDatabase('sq2pg');
    const notices: string[] = [];
    const result = await restore('latest', repo, { into: target, onEvent: (e) => e.type === 'notice' && notices.push(e.message) });
    expect(result.snapshot).toBe(snap.id);
    expect(result.rows).toBe(3006);
    expect(result.tables.map((t) => [t.name, t.rows]).sort()).toEqual([['people', 3003], ['plain', 3]]);
    expect(notices.join('\n')).toContain('1 SQLite indexes, views and triggers');
    expect(notices.join('\n')).toContain('table plain has no primary key: its SQLite rowid is carried as column rowid');
    expect(await textRows(target, `SELECT id, name, height, encode(photo, 'hex'), active, balance, born, note FROM people WHERE id NOT BETWEEN 100 AND 3100 ORDER BY id`)).toEqual([
      ['-9223372036854775808', 'สมชาย 😀', '1.75', '000102ff', 't', '12.5', '1990-05-17', 'line\nbreak\ttab "q" \\ back'],
      ['1', 'x', '1e+300', null, null, '-0.25', null, 'ünï'],
      ['9223372036854775807', '', '0.1', '', 'f', '3', '2000-02-29', null],
    ]);
    expect(await textRows(target, 'SELECT count(*), sum(id) FROM people WHERE id BETWEEN 100 AND 3100')).toEqual([['3000', String(3000 * 100 + (3000 * 3001) / 2)]]);
    expect(await textRows(target, "SELECT height FROM people WHERE id = 107")).toEqual([['1']]);
    expect(await textRows(target, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.people'::regclass AND attnum > 0 ORDER BY attnum`)).toEqual(
      [['bigint'], ['text'], ['double precision'], ['bytea'], ['boolean'], ['numeric'], ['text'], ['text']],
    );
    expect(await textRows(target, 'SELECT rowid, a, b FROM plain ORDER BY rowid')).toEqual([['1', '1', 'one'], ['2', null, null], ['3', '1', 'one']]);
    expect(await textRows(target, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'public.people'::regclass")).toEqual([['PRIMARY KEY (id)']]);
    // --tables restores only those.
    const only = await freshDatabase('sq2pgt');
    await restore('latest', repo, { into: only, tables: ['plain'] });
    expect(await textRows(only, "SELECT relname FROM pg_class WHERE relname IN ('people', 'plain')")).toEqual([['plain']]);
    // A table that exists already: refused, and the rest of the target left as it was.
    await expect(restore('latest', repo, { into: only })).rejects.toMatchObject({ code: 'E_TARGET_EXISTS' });
    expect(await textRows(only, "SELECT relname FROM pg_class WHERE relname IN ('people', 'plain')")).toEqual([['plain']]);
  });

  it('lossy values are reported before the commit (table, column, count, first example), nothing is written; allowLossy loads them converted', async () => {
    const db = makeDb(path.join(dir, 'dynamic.db'), (d) => {
      d.exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, s TEXT);
        INSERT INTO t VALUES (1, 5, 'ok'), (2, 'five', 'a' || char(0) || 'b'), (3, 'six', 'c');
        CREATE TABLE fine (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO fine VALUES (1, 'v');`);
    });
    const repo = await newRepo();
    await backup(db, repo);
    const target = await freshDatabase('sq2pgl');
    const err = await restore('latest', repo, { into: target }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_LOSSY' });
    const message = (err as Error).message;
    expect(message).toMatch(/^restore: 3 values cannot be carried exactly into /);
    expect(message).toContain('table "t" column "n": 2 × text in an integer column (loaded as NULL); first in row 2: "five"');
    expect(message).toContain('table "t" column "s": 1 × text with NUL (U+0000), which PostgreSQL text cannot hold');
    expect((err as { hint?: string }).hint).toContain('--allow-lossy');
    expect(await tableCount(target)).toBe('0');
    const notices: string[] = [];
    const result = await restore('latest', repo, { into: target, allowLossy: true, onEvent: (e) => e.type === 'notice' && notices.push(e.message) });
    expect(result.rows).toBe(4);
    expect(notices.join('\n')).toContain('lossy (--allow-lossy): table t column n: 2 × text in an integer column (loaded as NULL); first in row 2: "five"');
    expect(await textRows(target, 'SELECT id, n, s FROM t ORDER BY id')).toEqual([['1', '5', 'ok'], ['2', null, 'ab'], ['3', null, 'c']]);
  });

  it('through the CLI: E_LOSSY with a non-zero exit and nothing written, --allow-lossy loads', async () => {
    const db = makeDb(path.join(dir, 'cli.db'), (d) => d.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO t VALUES (1, 5), (2, 'x');"));
    const repo = await newRepo();
    await backup(db, repo);
    const target = await freshDatabase('sq2pgc');
    const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: dir });
    const refused = run(['restore', 'latest', '--repo', repo, '--into', target]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('E_LOSSY');
    expect(refused.stderr).toContain('table "t" column "n": 1 × text in an integer column');
    expect(await tableCount(target)).toBe('0');
    const loaded = run(['restore', 'latest', '--repo', repo, '--into', target, '--allow-lossy', '--json']);
    expect(loaded.status, loaded.stderr).toBe(0);
    expect(JSON.parse(loaded.stdout)).toMatchObject({ rows: 2 });
    expect(await textRows(target, 'SELECT id, n FROM t ORDER BY id')).toEqual([['1', '5'], ['2', null]]);
  });

  it('a damaged chunk is refused before the commit and the target is left as it was', async () => {
    const db = makeDb(path.join(dir, 'damaged.db'), (d) => d.exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); ${series(500)} INSERT INTO t SELECT value, 'v' || value FROM g;`));
    const repo = await newRepo();
    const snap = await backup(db, repo);
    damagePack(repo, snap, 't');
    const target = await freshDatabase('sq2pgd');
    await runSql(target, 'CREATE TABLE keep (x int); INSERT INTO keep VALUES (7);');
    const err = await restore('latest', repo, { into: target }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_CORRUPT' });
    expect(await textRows(target, "SELECT relname FROM pg_class WHERE relname IN ('t', 'keep')")).toEqual([['keep']]);
    expect(await textRows(target, 'SELECT x FROM keep')).toEqual([['7']]);
  });

  it('verify --drill --into restores the SQLite snapshot into PostgreSQL, compares every table, and rolls back', async () => {
    const db = makeDb(path.join(dir, 'drill.db'), (d) => d.exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, r REAL); ${series(200)} INSERT INTO t SELECT value, 'v' || value, value / 3.0 FROM g;`));
    const repo = await newRepo();
    const snap = await backup(db, repo);
    const scratch = await freshDatabase('sq2pgv');
    const report = await verify(repo, { drill: true, drillInto: scratch });
    expect(report.drilled).toBe(snap.id);
    expect(await tableCount(scratch)).toBe('0');
  });
});

describe.skipIf(PG_SKIP)('restore of a PostgreSQL snapshot into SQLite', () => {
  const SOURCE = `CREATE SCHEMA sales;
    CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
    CREATE TABLE people (id bigint PRIMARY KEY, name text NOT NULL, height double precision, small real, photo bytea, active boolean, balance numeric(12,2), born timestamptz, tags jsonb, n positive, arr integer[]);
    INSERT INTO people VALUES (-9223372036854775808, 'สมชาย 😀', 0.1, 0.5, '\\x0001ff', true, 12.50, '2024-03-31 02:30:00 Europe/Berlin', '{"b": [1, 2]}', 5, '{1,NULL,3}'),
      (9223372036854775807, E'tab\\there\\nnewline \\\\ back', 'Infinity', '-Infinity', '\\x', false, NULL, 'infinity', NULL, NULL, NULL),
      (1, '', 'NaN', NULL, NULL, NULL, -0.25, NULL, '[]', 1, '{}'), (2, 'x', 1e300, 1.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    CREATE TABLE sales.lines (code text PRIMARY KEY, what text);
    INSERT INTO sales.lines VALUES ('b', 'one'), ('B', 'two'), ('a', 'three'), ('_x', 'four'), ('ä', 'five');
    CREATE TABLE amounts (v numeric PRIMARY KEY); INSERT INTO amounts VALUES (10), (2), (-1), (1.5);
    CREATE INDEX people_name ON people (name);`;

  it('carries the types as docs/cross-engine.md says, verified value by value; --force rules as for a SQLite snapshot', async () => {
    const src = await freshDatabase('pg2sq');
    await runSql(src, SOURCE);
    const repo = await newRepo();
    const snap = await backup(src, repo);
    expect(snap.encoding).toBe('pg-copy-text');
    const file = path.join(dir, 'from-pg.db');
    const notices: string[] = [];
    const result = await restore('latest', repo, { into: file, onEvent: (e) => e.type === 'notice' && notices.push(e.message) });
    expect(result.rows).toBe(13);
    expect(result.tables.map((t) => [t.name, t.rows]).sort()).toEqual([['amounts', 4], ['people', 4], ['sales.lines', 5]]);
    expect(notices.join('\n')).toContain('not carried into SQLite:');
    const sqlite = new Database(file, { readonly: true });
    sqlite.defaultSafeIntegers(true);
    try {
      expect(sqlite.prepare('SELECT id, name, height, small, quote(photo) AS photo, active, balance, born, tags, n, arr FROM people ORDER BY id').all()).toEqual([
        { id: -9223372036854775808n, name: 'สมชาย 😀', height: 0.1, small: 0.5, photo: "X'0001FF'", active: 1n, balance: '12.50', born: '2024-03-31 01:30:00+00', tags: '{"b": [1, 2]}', n: 5n, arr: '{1,NULL,3}' },
        { id: 1n, name: '', height: 'NaN', small: null, photo: 'NULL', active: null, balance: '-0.25', born: null, tags: '[]', n: 1n, arr: '{}' },
        { id: 2n, name: 'x', height: 1e300, small: 1.5, photo: 'NULL', active: null, balance: null, born: null, tags: null, n: null, arr: null },
        { id: 9223372036854775807n, name: 'tab\there\nnewline \\ back', height: Infinity, small: -Infinity, photo: "X''", active: 0n, balance: null, born: 'infinity', tags: null, n: null, arr: null },
      ]);
      // A numeric key is TEXT in SQLite, where it sorts otherwise: compared in load (PostgreSQL's key) order.
      expect(sqlite.prepare('SELECT v FROM amounts ORDER BY rowid').raw().all()).toEqual([['-1'], ['1.5'], ['2'], ['10']]);
      expect(sqlite.prepare('SELECT code, what FROM "sales.lines" ORDER BY what').all()).toEqual([
        { code: 'ä', what: 'five' }, { code: '_x', what: 'four' }, { code: 'b', what: 'one' }, { code: 'a', what: 'three' }, { code: 'B', what: 'two' },
      ]);
      expect((sqlite.prepare("SELECT sql FROM sqlite_schema WHERE name = 'people'").get() as { sql: string }).sql).toBe(
        'CREATE TABLE "people" ("id" INTEGER NOT NULL, "name" TEXT NOT NULL, "height" REAL, "small" REAL, "photo" BLOB, "active" INTEGER, "balance" TEXT, "born" TEXT, "tags" TEXT, "n" INTEGER, "arr" TEXT, PRIMARY KEY ("id"))',
      );
    } finally {
      sqlite.close();
    }
    // An existing file: refused without --force (left as it was), replaced with it.
    fs.writeFileSync(path.join(dir, 'keep.txt'), 'x');
    const before = fs.readFileSync(file);
    await expect(restore('latest', repo, { into: file, tables: ['sales.lines'] })).rejects.toMatchObject({ code: 'E_TARGET_EXISTS' });
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    await restore('latest', repo, { into: file, tables: ['sales.lines'], force: true });
    const replaced = new Database(file, { readonly: true });
    try {
      expect(replaced.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all()).toEqual([{ name: 'sales.lines' }]);
    } finally {
      replaced.close();
    }
    expect(fs.readdirSync(dir).filter((f) => f.includes('.restore'))).toEqual([]);
  });

  it('-0.0 in a float column, which SQLite stores as 0.0, is E_LOSSY with nothing written; allowLossy loads 0.0', async () => {
    const src = await freshDatabase('pg2sqz');
    await runSql(src, `CREATE TABLE f (id integer PRIMARY KEY, d double precision, r real, t text);
      INSERT INTO f VALUES (1, '-0', 1, '-0.0'), (2, 2.5, '-0', 'x'), (3, '-0', '-0', NULL), (4, 0, 0, NULL);`);
    const repo = await newRepo();
    await backup(src, repo);
    const file = path.join(dir, 'negzero.db');
    const err = await restore('latest', repo, { into: file }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_LOSSY' });
    expect((err as Error).message).toContain('restore: 4 values cannot be carried exactly into');
    expect((err as Error).message).toContain('table "f" column "d": 2 × -0.0 in a REAL column, which SQLite stores as 0.0 (loaded as 0.0); first in row 1: -0.0');
    expect((err as Error).message).toContain('table "f" column "r": 2 × -0.0 in a REAL column, which SQLite stores as 0.0 (loaded as 0.0); first in row 2: -0.0');
    expect(fs.existsSync(file)).toBe(false);
    const notices: string[] = [];
    await restore('latest', repo, { into: file, allowLossy: true, onEvent: (e) => e.type === 'notice' && notices.push(e.message) });
    expect(notices.join('\n')).toContain('lossy (--allow-lossy): table f column d: 2 × -0.0');
    const sqlite = new Database(file, { readonly: true });
    try {
      const rows = sqlite.prepare('SELECT id, d, r, t FROM f ORDER BY id').raw().all() as unknown[][];
      expect(rows).toEqual([[1, 0, 1, '-0.0'], [2, 2.5, 0, 'x'], [3, 0, 0, null], [4, 0, 0, null]]);
      expect(Object.is(rows[0]![1], -0)).toBe(false);
    } finally {
      sqlite.close();
    }
  });

  it('narrow tables, whose COPY rows are shorter than an ndjson row (`\\n`, `1\\n`), restore into PostgreSQL and into SQLite', async () => {
    const src = await freshDatabase('pg2sqn');
    await runSql(src, `CREATE TABLE digits (d integer PRIMARY KEY); INSERT INTO digits SELECT g FROM generate_series(0, 9) g;
      CREATE TABLE empty_text (s text PRIMARY KEY); INSERT INTO empty_text VALUES ('');`);
    const repo = await newRepo();
    await backup(src, repo);
    const dst = await freshDatabase('pg2sqnd');
    await expect(restore('latest', repo, { into: dst })).resolves.toMatchObject({ rows: 11 });
    expect(await textRows(dst, "SELECT count(*), sum(d) FROM digits")).toEqual([['10', '45']]);
    const file = path.join(dir, 'narrow.db');
    await expect(restore('latest', repo, { into: file })).resolves.toMatchObject({ rows: 11 });
    const sqlite = new Database(file, { readonly: true });
    try {
      expect(sqlite.prepare('SELECT s FROM empty_text').raw().all()).toEqual([['']]);
      expect(sqlite.prepare('SELECT sum(d) FROM digits').raw().get()).toEqual([45]);
    } finally {
      sqlite.close();
    }
  });

  it('a damaged chunk is refused and no file is written; a keyless table is refused by name', async () => {
    const src = await freshDatabase('pg2sqd');
    await runSql(src, "CREATE TABLE t (id integer PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 500) g; CREATE TABLE loose (a integer);");
    const repo = await newRepo();
    const snap = await backup(src, repo);
    const keyless = path.join(dir, 'keyless.db');
    await expect(restore('latest', repo, { into: keyless })).rejects.toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringContaining('table "loose" of the PostgreSQL snapshot has no primary key') });
    expect(fs.existsSync(keyless)).toBe(false);
    damagePack(repo, snap, 't');
    const file = path.join(dir, 'pg-damaged.db');
    const err = await restore('latest', repo, { into: file, tables: ['t'] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_CORRUPT' });
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('pg-damaged'))).toEqual([]);
  });
});

describe.skipIf(PG_SKIP)('import of a PostgreSQL export into SQLite: the same edge cases', () => {
  for (const format of ['ndjson', 'json'] as const) {
    it(`${format}: -0.0 in a float column is E_LOSSY (not a digest mismatch) with nothing written; allowLossy loads 0.0; a domain over integer is an INTEGER column`, async () => {
      const src = await freshDatabase('imz');
      await runSql(src, `CREATE DOMAIN positive AS integer CHECK (VALUE > 0); CREATE DOMAIN ratio AS double precision;
        CREATE TABLE f (id integer PRIMARY KEY, d double precision, q ratio, n positive, t text, j json);
        INSERT INTO f VALUES (1, '-0', 1.5, 5, '-0.0', '[-0.0]'), (2, 2.5, '-0', NULL, 'x', NULL), (3, '-0', 0, 7, NULL, '{"a": "-0.0"}');
        CREATE TABLE k (code numeric PRIMARY KEY); INSERT INTO k VALUES (10), (2), (-1), (1.5), (100.25);`);
      const file = path.join(dir, `negzero.${format}`);
      await exportTo(src, { format, output: file });
      const into = path.join(dir, `negzero-${format}.db`);
      const err = await importFrom(file, { into }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'E_LOSSY' });
      expect((err as Error).message).toContain('import: 3 values cannot be carried exactly into');
      expect((err as Error).message).toContain('table "f" column "d": 2 × -0.0 in a REAL column, which SQLite stores as 0.0 (loaded as 0.0); first in row 1: -0.0');
      expect((err as Error).message).toContain('table "f" column "q": 1 × -0.0 in a REAL column');
      expect(fs.existsSync(into)).toBe(false);
      const notices: string[] = [];
      const result = await importFrom(file, { into, allowLossy: true, onEvent: (e) => e.type === 'notice' && notices.push(e.message) });
      expect(result.tables.map((t) => [t.name, t.rows, t.verified])).toEqual([['f', 3, true], ['k', 5, true]]);
      expect(notices.join('\n')).toContain('lossy (--allow-lossy): table f column d: 2 × -0.0');
      const sqlite = new Database(into, { readonly: true });
      try {
        expect(sqlite.prepare('SELECT id, d, q, n, typeof(n) AS nt, t, j FROM f ORDER BY id').all()).toEqual([
          { id: 1, d: 0, q: 1.5, n: 5, nt: 'integer', t: '-0.0', j: '[-0.0]' },
          { id: 2, d: 2.5, q: 0, n: null, nt: 'null', t: 'x', j: null },
          { id: 3, d: 0, q: 0, n: 7, nt: 'integer', t: null, j: '{"a": "-0.0"}' },
        ]);
        // A numeric key is TEXT in SQLite, where it sorts otherwise: the table is compared in load (PostgreSQL's key) order.
        expect(sqlite.prepare('SELECT code FROM k ORDER BY rowid').raw().all()).toEqual([['-1'], ['1.5'], ['2'], ['10'], ['100.25']]);
      } finally {
        sqlite.close();
      }
      // The file's own digest is still checked when values were converted: an edited value is a mismatch.
      const edited = path.join(dir, `negzero-edited.${format}`);
      fs.writeFileSync(edited, fs.readFileSync(file, 'utf8').replace('"x"', '"y"'));
      const none = path.join(dir, `negzero-edited-${format}.db`);
      await expect(importFrom(edited, { into: none, allowLossy: true })).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
      expect(fs.existsSync(none)).toBe(false);
    });
  }
});
