/**
 * SqliteSource.rowEstimate, backup's cheap progress total: exact for dense rowids, an upper bound with
 * gaps, the count itself where the rowid b-tree's ends say nothing; and backup corrects it table by table.
 */
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OperationEvent } from '../src/core/events.js';
import { SqliteSource } from '../src/engines/sqlite/sqlite-source.js';
import { backup, init } from '../src/repository/index.js';
import { makeDb, removeDir, tempDir } from './export-import/helpers.js';

let dir: string;
let db: string;
beforeAll(() => {
  dir = tempDir('estimate');
  db = makeDb(path.join(dir, 'e.db'), (d) => {
    d.exec(`
      CREATE TABLE dense (id INTEGER PRIMARY KEY, v);
      CREATE TABLE gaps (v);
      CREATE TABLE sparse (id INTEGER PRIMARY KEY, v);
      CREATE TABLE empty (v);
      CREATE TABLE wr (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
    `);
    for (let i = 1; i <= 500; i++) d.prepare('INSERT INTO dense VALUES (?, ?)').run(i + 1000, i);
    for (let i = 1; i <= 300; i++) d.prepare('INSERT INTO gaps (rowid, v) VALUES (?, ?)').run(i * 3, i);
    d.prepare('INSERT INTO sparse VALUES (?, 1), (?, 2), (?, 3)').run(-(2n ** 62n), 0, 2n ** 62n);
    for (let i = 0; i < 40; i++) d.prepare('INSERT INTO wr VALUES (?, ?)').run(`k${i}`, i);
  });
});
afterAll(() => removeDir(dir));

describe('row estimates', () => {
  it('are exact for dense rowids, an upper bound with gaps, and the count where the ends say nothing', () => {
    const src = SqliteSource.open(db);
    try {
      const estimate = (name: string): number => src.rowEstimate(src.schema.tables.find((t) => t.name === name)!);
      expect(estimate('dense')).toBe(500);
      expect(estimate('gaps')).toBe(898); // rowids 3..900
      expect(estimate('sparse')).toBe(3); // a span of 2^63: counted
      expect(estimate('empty')).toBe(0);
      expect(estimate('wr')).toBe(40);
    } finally {
      src.close();
    }
  });

  it('backup starts from the estimate and ends with the exact total', async () => {
    const repo = path.join(dir, 'repo');
    await init(repo);
    const totals: number[] = [];
    const snap = await backup(db, repo, {
      onEvent: (e: OperationEvent) => {
        if (e.type === 'started' && e.totalRows !== undefined) totals.push(e.totalRows);
        if (e.type === 'progress' && e.rowsTotal !== undefined) totals.push(e.rowsTotal);
      },
    });
    expect(snap.stats.rows).toBe(500 + 300 + 3 + 40);
    expect(totals[0]).toBe(500 + 898 + 3 + 0 + 40);
    expect(totals.at(-1)).toBe(snap.stats.rows);
  });
});
