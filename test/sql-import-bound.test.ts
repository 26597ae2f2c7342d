/**
 * Issue 13, "bounded by design": `import` of a sql script holding a 200 MB BLOB (a 400 MB hex literal)
 * stays within 1.5x the value + 100 MB, with no allowance. It sat on the bound (394-400 MB) while a
 * tuple streamed only from 16 MiB on; from 4 MiB on (STREAMED_TUPLE_BYTES) it takes 316 MB. The real CLI
 * under GNU time, a real SQLite file.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cli, makeDb, removeDir, tempDir, withDb } from './export-import/helpers.js';

const MB = 1e6;
let dir: string;
beforeAll(() => {
  expect(fs.existsSync(CLI), 'run `npm run build` first').toBe(true);
  dir = tempDir('sql-import-bound');
});
afterAll(() => removeDir(dir));

function timedCli(args: string[]): { code: number | null; stderr: string; rss: number } {
  const rssFile = path.join(dir, 'rss.txt');
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', rssFile, process.execPath, CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stderr: r.stderr, rss: Number(fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop()) * 1024 };
}

describe('import sql of a 200 MB BLOB', () => {
  const VALUE = 200 * MB;
  const BOUND = 1.5 * VALUE + 100 * MB;

  it('loads it exactly within 1.5x + 100 MB (no allowance), with rows before and after it', () => {
    const source = makeDb(path.join(dir, 'big.db'), (db) => {
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB, note TEXT)');
      db.prepare("INSERT INTO t VALUES (1, x'0102', 'before')").run();
      db.prepare('INSERT INTO t VALUES (2, randomblob(?), ?)').run(VALUE, "after the value, with a 'quote'");
      db.prepare('INSERT INTO t VALUES (3, randomblob(3000000), NULL)').run(); // under the streaming size: whole
    });
    const rows = (file: string): string[] =>
      withDb(file, (db) =>
        (db.prepare('SELECT id, typeof(v), v, note FROM t ORDER BY id').raw().all() as unknown[][]).map(
          ([id, type, v, note]) => `${String(id)} ${String(type)} ${(v as Buffer).length} ${createHash('sha256').update(v as Buffer).digest('hex')} ${String(note)}`,
        ),
      );
    const out = path.join(dir, 'big.sql');
    expect(cli(['export', source, '--format', 'sql', '-o', out, '-q']).code).toBe(0);
    const into = path.join(dir, 'imported.db');
    const imp = timedCli(['import', out, '--into', into, '-q']);
    expect(imp.stderr).toBe('');
    expect(imp.code).toBe(0);
    expect(rows(into)).toEqual(rows(source));
    expect(imp.rss).toBeLessThan(BOUND); // before: 394-400 MB
  }, 240_000);
});
