/**
 * A database's optimizer statistics (sqlite_stat1, written by ANALYZE) come back through every path:
 * restore, import of each format, and the sqlite3 shell loading a sql export. They are not copied row
 * by row (they are ANALYZE's to write) but computed again by ANALYZE from the same rows and indexes; a
 * database without them gets none.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportTo } from '../../src/export.js';
import { importFrom } from '../../src/import.js';
import { backup } from '../../src/repository/backup.js';
import { Repository } from '../../src/repository/repository.js';
import { restore } from '../../src/repository/restore.js';
import { SQLITE3, makeDb, removeDir, tempDir, withDb } from './helpers.js';

const dir = tempDir('analyze');
afterAll(() => removeDir(dir));

/** The rows of sqlite_stat1, or null when the database has no such table. */
function stats(file: string): unknown[] | null {
  return withDb(file, (db) => (db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat1'").get() ? db.prepare('SELECT tbl, idx, stat FROM sqlite_stat1 ORDER BY tbl, idx').all() : null));
}

/** Every path a database takes back: restore from a repository, import of each format, sqlite3 < sql export. */
async function roundTrips(source: string, tag: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const repo = path.join(dir, `${tag}-repo`);
  await (await Repository.init(repo)).close();
  await backup(source, repo);
  out.restore = path.join(dir, `${tag}-restored.db`);
  await restore('latest', repo, { into: out.restore });
  for (const format of ['ndjson', 'json', 'sql'] as const) {
    const file = path.join(dir, `${tag}.${format}`);
    await exportTo(source, { format, output: file });
    out[format] = path.join(dir, `${tag}-${format}.db`);
    await importFrom(file, { into: out[format] });
  }
  out.shell = path.join(dir, `${tag}-shell.db`);
  execFileSync(SQLITE3, [out.shell], { input: fs.readFileSync(path.join(dir, `${tag}.sql`)) });
  return out;
}

describe('optimizer statistics (ANALYZE)', () => {
  it('come back through restore, every import and the sqlite3 shell, as ANALYZE computes them from the same rows', async () => {
    const source = makeDb(path.join(dir, 'analyzed.db'), (db) => {
      db.exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, w INTEGER); CREATE INDEX t_v ON t (v); CREATE INDEX t_vw ON t (v, w);
        CREATE TABLE u (k TEXT PRIMARY KEY, n INTEGER) WITHOUT ROWID;`);
      const put = db.prepare('INSERT INTO t (v, w) VALUES (?, ?)');
      for (let i = 0; i < 500; i++) put.run(`v${i % 7}`, i % 3);
      db.prepare("INSERT INTO u VALUES ('a', 1), ('b', 2)").run();
      db.exec('ANALYZE');
    });
    const expected = stats(source);
    expect(expected).not.toBeNull();
    expect(expected!.length).toBeGreaterThanOrEqual(3);
    for (const [how, file] of Object.entries(await roundTrips(source, 'analyzed'))) expect(stats(file), how).toEqual(expected);
  });

  it('a database without them gets none', async () => {
    const source = makeDb(path.join(dir, 'plain.db'), (db) => {
      db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX t_v ON t (v); INSERT INTO t (v) VALUES ('a'), ('b');");
    });
    expect(stats(source)).toBeNull();
    for (const [how, file] of Object.entries(await roundTrips(source, 'plain'))) expect(stats(file), how).toBeNull();
  });
});
