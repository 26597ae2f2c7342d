/**
 * SQLite → PostgreSQL: every value that cannot be carried exactly is reported before the commit
 * (table, column, count, first example) as E_LOSSY and nothing is written; `--allow-lossy` loads them
 * converted as docs/cross-engine.md says, still naming each case, and the loaded table reads back as
 * the converted values (the read-back digest agrees). One case per column of one table, each by name.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportTo } from '../../src/export.js';
import { importFrom } from '../../src/import.js';
import { makeDb, removeDir, tempDir, withDb } from '../export-import/helpers.js';
import { PG_SKIP, freshDatabase, textRows } from './pg-helpers.js';

const dir = tempDir('pg-lossy');
afterAll(() => removeDir(dir));
const CLI = path.resolve('dist/cli/main.js');

let file = '';
let exactFile = '';

beforeAll(async () => {
  const db = makeDb(path.join(dir, 'dynamic.db'), (d) => {
    d.exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, r REAL, b BOOLEAN, s TEXT, x BLOB, u, d DECIMAL);
      INSERT INTO t VALUES (1, 'five', 'not a number', 2, X'00ff', 'text in a blob', 7, 'abc');
      INSERT INTO t VALUES (2, 1.5, 1.5, 1, X'616263', X'01', 'seven', 12.5);
      INSERT INTO t VALUES (3, 18446744073709551616, 2.5, 0, 'a' || char(0) || 'b', NULL, 2.5, 1e300);
      INSERT INTO t VALUES (4, 2.5, NULL, NULL, NULL, NULL, NULL, NULL);
      -- Text that is not UTF-8: plain, and with a quote (escaped in the export).
      INSERT INTO t VALUES (5, NULL, NULL, NULL, CAST(X'ff41' AS TEXT), NULL, NULL, NULL);
      INSERT INTO t VALUES (6, NULL, NULL, NULL, CAST(X'22ff' AS TEXT), NULL, NULL, NULL);`);
  });
  file = path.join(dir, 'dynamic.ndjson');
  await exportTo(db, { format: 'ndjson', output: file });
  const exact = makeDb(path.join(dir, 'exact.db'), (d) => {
    d.exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, r REAL, b BOOLEAN, s TEXT, x BLOB, u, d DECIMAL);
      INSERT INTO t VALUES (1, -9223372036854775808, 1e-300, 1, 'ok', X'00', 'text', 0.1), (2, 3.0, -2.5, 0, '', X'', NULL, -7);`);
  });
  exactFile = path.join(dir, 'exact.ndjson');
  await exportTo(exact, { format: 'ndjson', output: exactFile });
});

describe.skipIf(PG_SKIP)('lossy values into PostgreSQL', () => {
  it('every case is reported before anything is committed: table, column, count and first example of each', async () => {
    const target = await freshDatabase('lossy');
    const err = (await importFrom(file, { into: target }).catch((e: unknown) => e)) as { code: string; message: string; hint: string };
    expect(err).toMatchObject({ code: 'E_LOSSY' });
    const lines = err.message.split('\n');
    expect(lines[0]).toMatch(/^import: 16 values cannot be carried exactly into postgres(ql)?:\/\/postgres:\*\*\*@/);
    expect(lines.slice(1).sort()).toEqual([
      'table "t" column "b": 1 × a number other than 0 and 1 in a boolean column (non-zero loaded as true); first in row 1: 2',
      'table "t" column "d": 1 × a REAL written with an exponent in a numeric column (PostgreSQL writes it out in full, e.g. 1e300 as 301 digits); first in row 3: 1.0e+300',
      'table "t" column "d": 1 × text in a numeric column (loaded as NULL); first in row 1: "abc"',
      'table "t" column "i": 1 × an integer past the range of bigint (loaded as NULL); first in row 3: 1.8446744073709552e+19',
      'table "t" column "i": 1 × text in an integer column (loaded as NULL); first in row 1: "five"',
      'table "t" column "i": 2 × a REAL with a fraction in an integer column (rounded to the nearest integer); first in row 2: 1.5',
      'table "t" column "r": 1 × text in a double precision column (loaded as NULL); first in row 1: "not a number"',
      'table "t" column "s": 1 × text with NUL (U+0000), which PostgreSQL text cannot hold (loaded without the NUL characters); first in row 3: "a\\u0000b"',
      'table "t" column "s": 2 × a BLOB in a text column (loaded as its text when it is UTF-8 without NUL, otherwise as \\x and its hex); first in row 1: {"$blob":"00FF"}',
      'table "t" column "s": 2 × text that is not valid UTF-8 (SQLite stores any bytes as TEXT; loaded with U+FFFD for each invalid sequence); first in row 5: "\ufffdA"',
      'table "t" column "u": 2 × a number in a text column (loaded as its digits: the value becomes text); first in row 1: 7',
      'table "t" column "x": 1 × text in a bytea column (loaded as its UTF-8 bytes: the value becomes a BLOB); first in row 1: "text in a blob"',
    ]);
    expect(err.hint).toContain('Nothing was written to the target. Pass --allow-lossy');
    expect(await textRows(target, "SELECT count(*) FROM pg_class WHERE relname = 't'")).toEqual([['0']]);
  });

  it('with allowLossy each case loads converted as documented, is said as a notice, and reads back as loaded', async () => {
    const target = await freshDatabase('lossyok');
    const notices: string[] = [];
    const result = await importFrom(file, { into: target, allowLossy: true, onEvent: (e) => e.type === 'notice' && notices.push(e.message) });
    expect(result.tables.map((t) => [t.name, t.rows, t.verified])).toEqual([['t', 6, true]]);
    expect(notices.filter((n) => n.startsWith('lossy (--allow-lossy): '))).toHaveLength(12);
    expect(await textRows(target, "SELECT id, i, r, b, s, convert_from(x, 'UTF8'), u, d FROM t ORDER BY id")).toEqual([
      ['1', null, null, 't', '\\x00ff', 'text in a blob', '7', null],
      ['2', '2', '1.5', 't', 'abc', '\u0001', 'seven', '12.5'],
      ['3', null, '2.5', 'f', 'ab', null, '2.5', `1${'0'.repeat(300)}`],
      ['4', '2', null, null, null, null, null, null], // 2.5 rounds to even, as PostgreSQL's cast does
      ['5', null, null, null, '\ufffdA', null, null, null],
      ['6', null, null, null, '"\ufffd', null, null, null],
    ]);
  });

  it('values that fit exactly are not reported: limits of bigint, integral REALs, 0/1 booleans, BLOBs, DECIMAL digits', async () => {
    const target = await freshDatabase('exact');
    const notices: string[] = [];
    await importFrom(exactFile, { into: target, onEvent: (e) => e.type === 'notice' && notices.push(e.message) });
    expect(notices.filter((n) => n.includes('lossy'))).toEqual([]);
    expect(await textRows(target, "SELECT id, i, r, b, s, encode(x, 'hex'), u, d FROM t ORDER BY id")).toEqual([
      ['1', '-9223372036854775808', '1e-300', 't', 'ok', '00', 'text', '0.1'],
      ['2', '3', '-2.5', 'f', '', '', null, '-7'],
    ]);
  });

  it('the CLI exits non-zero with E_LOSSY without --allow-lossy, and loads with it', async () => {
    execFileSync('test', ['-f', CLI]);
    const target = await freshDatabase('lossycli');
    const refused = spawnSync(process.execPath, [CLI, 'import', file, '--into', target, '--json'], { encoding: 'utf8' });
    expect(refused.status).not.toBe(0);
    expect(refused.stdout + refused.stderr).toContain('E_LOSSY');
    expect(refused.stdout + refused.stderr).not.toContain(new URL(target).password);
    const loaded = spawnSync(process.execPath, [CLI, 'import', file, '--into', target, '--allow-lossy', '--json'], { encoding: 'utf8' });
    expect(loaded.status).toBe(0);
    expect(await textRows(target, 'SELECT count(*) FROM t')).toEqual([['6']]);
  });
});

describe.skipIf(PG_SKIP)('rows too long to hold, into PostgreSQL', () => {
  it('a row of more than 16 MB is refused by name before the commit, not skipped', async () => {
    const db = makeDb(path.join(dir, 'long.db'), (d) => {
      d.exec("CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO big VALUES (1, 'short'), (2, hex(randomblob(9000000)));");
    });
    const long = path.join(dir, 'long.ndjson');
    await exportTo(db, { format: 'ndjson', output: long });
    const target = await freshDatabase('long');
    await expect(importFrom(long, { into: target })).rejects.toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringContaining('table "big" has a row of more than 16 MB') });
    expect(await textRows(target, "SELECT count(*) FROM pg_class WHERE relname = 'big'")).toEqual([['0']]);
  });

  it('rows of 4 to 16 MB, which the readers hand out in pieces, load whole and exactly (ndjson and json)', async () => {
    const source = makeDb(path.join(dir, 'middle.db'), (d) => {
      d.exec("CREATE TABLE mid (id INTEGER PRIMARY KEY, v TEXT, b BLOB); INSERT INTO mid VALUES (1, 'short', X'00'), (2, hex(randomblob(3000000)), randomblob(1500000)), (3, 'after', NULL);");
    });
    const sha = (x: Buffer | string | null): string => (x === null ? 'null' : createHash('sha256').update(x).digest('hex'));
    const want = withDb(source, (d) => (d.prepare('SELECT id, v, b FROM mid ORDER BY id').raw().all() as [number, string, Buffer | null][]).map(([id, v, b]) => [String(id), sha(v), sha(b)]));
    for (const format of ['ndjson', 'json'] as const) {
      const out = path.join(dir, `middle.${format}`);
      await exportTo(source, { format, output: out });
      const target = await freshDatabase(`middle_${format}`);
      await importFrom(out, { into: target });
      const got = await textRows(target, "SELECT id, encode(sha256(convert_to(v, 'UTF8')), 'hex'), coalesce(encode(sha256(b), 'hex'), 'null') FROM mid ORDER BY id");
      expect(got).toEqual(want);
    }
  });
});
