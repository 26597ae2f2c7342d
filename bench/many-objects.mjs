#!/usr/bin/env node
/**
 * Time of every path that reads a schema header, against the number of schema objects (issue 13: a header
 * with tens of thousands of objects must not take quadratic time). For each N it builds a database of
 * N/2 tables, N/4 indexes and N/4 views (one row per table), then times export (json, ndjson, sql),
 * import of each, the sqlite3 shell reading the sql export (the peer: SQLite's own cost of creating
 * the objects, which is quadratic, as is `create`), backup, restore and verify --drill, through the
 * library (dist/: `npm run build` first). Our part is linear when a column grows no faster than
 * `create` and `shell-sql` do.
 *
 *   node bench/many-objects.mjs [N ...]        (default 10000 20000 40000 80000)
 *   node bench/many-objects.mjs --only import-json,restore 20000 40000
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { exportTo } from '../dist/export.js';
import { importFrom } from '../dist/import.js';
import { backup, init, restore, verify } from '../dist/repository/index.js';

const args = process.argv.slice(2);
let only;
const at = args.indexOf('--only');
if (at >= 0) only = new Set(args.splice(at, 2)[1].split(','));
const sizes = args.length > 0 ? args.map(Number) : [10_000, 20_000, 40_000, 80_000];
const steps = ['create', 'export-json', 'export-ndjson', 'export-sql', 'import-json', 'import-ndjson', 'import-sql', 'shell-sql', 'backup', 'restore', 'verify-drill'];
/** The peer: the sqlite3 shell reading the same sql export (SQLite's own cost of creating the objects). */
const SHELL = ['/usr/bin/sqlite3', '/usr/local/bin/sqlite3'].find((f) => existsSync(f));
const wanted = (step) => step === 'create' || !only || only.has(step);
const quiet = { onEvent: () => {} };

console.log(['objects', ...steps.filter(wanted)].map((s) => s.padStart(14)).join(''));
for (const n of sizes) {
  const dir = mkdtempSync(join(tmpdir(), 'scriptorium-many-'));
  const times = {};
  const time = async (step, fn) => {
    if (!wanted(step)) return;
    const t0 = performance.now();
    await fn();
    times[step] = (performance.now() - t0) / 1000;
  };
  try {
    const db = join(dir, 'many.db');
    await time('create', () => {
      const conn = new Database(db);
      conn.exec('BEGIN');
      const tables = n / 2;
      for (let i = 0; i < tables; i++) {
        conn.exec(`CREATE TABLE t${i} (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t${i} VALUES (1, 'row of ${i}')`);
      }
      for (let i = 0; i < n / 4; i++) conn.exec(`CREATE INDEX i${i} ON t${i % tables} (v)`);
      for (let i = 0; i < n / 4; i++) conn.exec(`CREATE VIEW v${i} AS SELECT v FROM t${i % tables}`);
      conn.exec('COMMIT');
      conn.close();
    });
    for (const format of ['json', 'ndjson', 'sql']) {
      const file = join(dir, `many.${format}`);
      await time(`export-${format}`, () => exportTo(db, { format, output: file, ...quiet }));
      if (wanted(`import-${format}`)) {
        if (!wanted(`export-${format}`)) await exportTo(db, { format, output: file, ...quiet });
        await time(`import-${format}`, () => importFrom(file, { into: join(dir, `from-${format}.db`), ...quiet }));
      }
      if (format === 'sql' && SHELL && wanted('shell-sql')) {
        if (!wanted('export-sql') && !wanted('import-sql')) await exportTo(db, { format, output: file, ...quiet });
        await time('shell-sql', () => {
          const fd = openSync(file, 'r');
          try {
            const r = spawnSync(SHELL, [join(dir, 'shell.db')], { stdio: [fd, 'ignore', 'pipe'] });
            if (r.status !== 0) throw new Error(`sqlite3: ${r.stderr}`);
          } finally {
            closeSync(fd);
          }
        });
      }
    }
    const repo = join(dir, 'repo');
    if (wanted('backup') || wanted('restore') || wanted('verify-drill')) {
      await init(repo);
      await time('backup', () => backup(db, repo));
      if (!wanted('backup')) await backup(db, repo);
    }
    await time('restore', () => restore('latest', repo, { into: join(dir, 'restored.db') }));
    await time('verify-drill', () => verify(repo, { drill: true }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log([String(n), ...steps.filter(wanted).map((s) => (times[s] === undefined ? '-' : `${times[s].toFixed(2)} s`))].map((s) => s.padStart(14)).join(''));
}
