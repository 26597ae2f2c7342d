import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect, it } from 'vitest';
import { backup } from '../../src/repository/backup.js';
import { diff } from '../../src/repository/diff.js';
import { init } from '../../src/repository/operations.js';
import { demoDb, tempDir } from './helpers.js';

it('diff reports rows added, removed and changed, and chunk counts, per table', async () => {
  const dir = tempDir();
  const repoDir = join(dir, 'repo');
  await init(repoDir);
  const db = demoDb(dir, 1200);
  const a = await backup(db, repoDir);
  const conn = new Database(db);
  conn.exec(`
    UPDATE stays SET note = 'changed' WHERE id IN (10, 200, 400);
    DELETE FROM room_bookings WHERE id IN (5, 6);
    INSERT INTO app_settings (key, value) VALUES ('new_key', 'v');
    CREATE TABLE extra (id INTEGER PRIMARY KEY); INSERT INTO extra VALUES (1), (2);
  `);
  conn.close();
  const b = await backup(db, repoDir);
  const result = await diff(a.id.slice(0, 8), 'latest', repoDir);
  expect(result).toMatchObject({ a: a.id, b: b.id });
  const by = Object.fromEntries(result.tables.map((t) => [t.name, t]));
  expect(by.stays).toMatchObject({ status: 'changed', rowsChanged: 3, rowsAdded: 0, rowsRemoved: 0 });
  expect(by.stays.chunksAdded).toBeGreaterThanOrEqual(1);
  expect(by.stays.chunksAdded).toBeLessThanOrEqual(6);
  expect(by.stays.chunksShared).toBeGreaterThan(by.stays.chunksAdded * 5);
  expect(by.room_bookings).toMatchObject({ status: 'changed', rowsRemoved: 2, rowsAdded: 0, rowsChanged: 0 });
  expect(by.app_settings).toMatchObject({ rowsAdded: 1, rowsBefore: 4, rowsAfter: 5 });
  expect(by.extra).toMatchObject({ status: 'added', rowsAdded: 2, rowsAfter: 2 });
  expect(by.regs).toMatchObject({ status: 'unchanged', chunksAdded: 0, chunksRemoved: 0, rowsChanged: 0 });
});
