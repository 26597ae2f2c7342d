/**
 * Why -0.0 is a lossy value into SQLite (a REAL column keeps an integral REAL as an integer in its
 * record, so -0.0 reads back as 0.0), and NegativeZeroCheck finding it only where it is a float
 * column's value: not inside text, JSON text or a BLOB, in ndjson arrays and json objects.
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { NegativeZeroCheck } from '../../src/engines/sqlite/negative-zero.js';

describe('-0.0 into SQLite', () => {
  it('a REAL column reads -0.0 back as 0.0 (a column without a type keeps it)', () => {
    const db = new Database(':memory:');
    try {
      db.exec('CREATE TABLE t (r REAL, x)');
      db.prepare('INSERT INTO t VALUES (?, ?)').run(-0, -0);
      const [r, x] = db.prepare('SELECT r, x FROM t').raw().get() as number[];
      expect(Object.is(r, -0)).toBe(false);
      expect(Object.is(x, -0)).toBe(true);
    } finally {
      db.close();
    }
  });

  it('finds -0.0 in float columns of ndjson rows only, and gives the rows as they read back', () => {
    const check = new NegativeZeroCheck('t', ['id', 'd', 's', 'b'], [false, true, false, true], 'ndjson');
    const rows = ['[1,-0.0,"-0.0",null]', '[2,1.5,"a\\",-0.0,\\"",{"$blob":"00"}]', '[3,-0.0,null,-0.0]', '[-0.0,0.0,"x",2.0]'].join('\n');
    const out = check.check(Buffer.from(rows));
    expect(out.toString()).toBe(['[1,0.0,"-0.0",null]', '[2,1.5,"a\\",-0.0,\\"",{"$blob":"00"}]', '[3,0.0,null,0.0]', '[-0.0,0.0,"x",2.0]'].join('\n'));
    expect(check.lossy).toEqual([
      { table: 't', column: 'd', what: expect.stringContaining('-0.0 in a REAL column'), count: 2, example: '-0.0', row: 1 },
      { table: 't', column: 'b', what: expect.stringContaining('-0.0 in a REAL column'), count: 1, example: '-0.0', row: 3 },
    ]);
    // Rows are counted across batches for the example's row.
    const more = check.check(Buffer.from('[5,2.0,"y",null]\n[6,-0.0,"z",null]'));
    expect(more.toString()).toBe('[5,2.0,"y",null]\n[6,0.0,"z",null]');
    expect(check.lossy[0]!.count).toBe(3);
    const clean = Buffer.from('[7,1.0,"q",null]');
    expect(check.check(clean)).toBe(clean);
  });

  it('finds -0.0 in json objects by column', () => {
    const check = new NegativeZeroCheck('t', ['id', 'd'], [false, true], 'json');
    const out = check.check(Buffer.from('{"id":1,"d":-0.0},\n{"id":-0.0,"d":2.5},\n{"id":3,"d":-0.0}'));
    expect(out.toString()).toBe('{"id":1,"d":0.0},\n{"id":-0.0,"d":2.5},\n{"id":3,"d":0.0}');
    expect(check.lossy).toMatchObject([{ column: 'd', count: 2, row: 1 }]);
  });
});
