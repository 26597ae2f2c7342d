/**
 * How export behaves, beyond the values: one consistent snapshot while others write, stdout and default
 * output, table selection, progress events, the json document and sql script layouts, and row order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OperationEvent } from '../src/core/events.js';
import { compareDatabases } from '../src/engines/sqlite/compare.js';
import { exportTo } from '../src/export.js';
import { importFrom } from '../src/import.js';
import { cli, cliAsync, ledgerDb, makeDb, removeDir, ROOT, tempDir, withDb } from './export-import/helpers.js';
import { trickyDb } from './export-import/tricky.js';

let dir: string;
beforeAll(() => {
  expect(fs.existsSync(path.join(ROOT, 'dist/cli/main.js')), 'run `npm run build` first').toBe(true);
  dir = tempDir('behaviour');
});
afterAll(() => removeDir(dir));

/** The rows of each table in an ndjson export, parsed (integers beyond 2^53 lose precision: fine here). */
function ndjsonTables(text: string): Record<string, unknown[][]> {
  const out: Record<string, unknown[][]> = {};
  let current: string | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('[')) out[current!]!.push(JSON.parse(line) as unknown[]);
    else {
      const control = JSON.parse(line) as { table?: { name: string }; end?: string };
      if (control.table) out[(current = control.table.name)] = [];
      if (control.end) current = undefined;
    }
  }
  return out;
}

const counts = (file: string): [bigint, bigint] =>
  withDb(file, (db) => [db.prepare('SELECT count(*) FROM debit').pluck().get() as bigint, db.prepare('SELECT count(*) FROM credit').pluck().get() as bigint]);

describe('consistent snapshot while another connection writes', () => {
  it('writes between awaits (WAL, same process) do not show up in the export', async () => {
    const db = ledgerDb(path.join(dir, 'ledger-inproc.db'), 5000);
    const writer = new Database(db);
    writer.pragma('busy_timeout = 5000');
    const insert = writer.transaction((n: number) => {
      for (let i = 0; i < n; i++) {
        writer.prepare("INSERT INTO debit(amount, note) VALUES (-1, 'late')").run();
        writer.prepare("INSERT INTO credit(amount, note) VALUES (-1, 'late')").run();
      }
    });
    // Committed but still only in the WAL (the writer stays open): the export must see these.
    insert(10);
    let wrote = 0;
    const out = path.join(dir, 'ledger-inproc.ndjson');
    try {
      const result = await exportTo(db, {
        format: 'ndjson',
        output: out,
        onEvent: (e) => {
          // In the middle of the first table: commit 3000 more rows to each table.
          if (e.type === 'progress' && e.table === 'debit' && wrote === 0) {
            insert(3000);
            wrote = 3000;
          }
        },
      });
      expect(wrote).toBe(3000);
      expect(result.tables.map((t) => [t.name, t.rows])).toEqual([['debit', 5010], ['credit', 5010]]);
    } finally {
      writer.close();
    }
    expect(counts(db)).toEqual([8010n, 8010n]);
    const tables = ndjsonTables(fs.readFileSync(out, 'utf8'));
    expect(tables['debit']!.length).toBe(5010);
    expect(tables['credit']!.length).toBe(5010);
    expect(tables['debit']!.filter((r) => r[2] === 'late').length).toBe(10);
  });

  it('a writer process committing in a loop: both tables come from one point in time', async () => {
    const db = ledgerDb(path.join(dir, 'ledger-child.db'), 20_000);
    const script = `
      const Database = require(${JSON.stringify(path.join(ROOT, 'node_modules/better-sqlite3'))});
      const db = new Database(${JSON.stringify(db)});
      db.pragma('busy_timeout = 5000');
      const d = db.prepare("INSERT INTO debit(amount, note) VALUES (1, 'concurrent')");
      const c = db.prepare("INSERT INTO credit(amount, note) VALUES (1, 'concurrent')");
      const tx = db.transaction(() => { for (let i = 0; i < 20; i++) { d.run(); c.run(); } });
      process.stdout.write('ready\\n');
      for (;;) tx();
    `;
    const child: ChildProcess = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`writer exited early (${code})`)));
      });
      const before = counts(db)[0];
      const results = [];
      for (const format of ['ndjson', 'json', 'sql'] as const) {
        const out = path.join(dir, `ledger-child.${format}`);
        results.push(await exportTo(db, { format, output: out }));
        const into = path.join(dir, `ledger-child-${format}.db`);
        await importFrom(out, { into });
        const [d, c] = counts(into);
        expect(d, format).toBe(c);
        expect(withDb(into, (x) => x.prepare('SELECT (SELECT total(amount) FROM debit) - (SELECT total(amount) FROM credit)').pluck().get())).toBe(0);
      }
      const after = counts(db)[0];
      expect(after, 'the writer really wrote during the exports').toBeGreaterThan(before + 200n);
      for (const r of results) expect(r.tables[0]!.rows).toBe(r.tables[1]!.rows);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
    }
  });
});

describe('output', () => {
  it('-o - writes the export, and only the export, to stdout', async () => {
    const db = trickyDb(path.join(dir, 'stdout.db'));
    for (const format of ['ndjson', 'json', 'sql']) {
      const r = await cliAsync(['export', db, '--format', format, '-o', '-']);
      expect(r.code, r.stderr).toBe(0);
      const file = path.join(dir, `stdout.${format}`);
      fs.writeFileSync(file, r.stdoutBytes);
      const into = path.join(dir, `stdout-${format}.db`);
      await importFrom(file, { into }); // any extra text on stdout makes this fail
      expect(compareDatabases(db, into)).toEqual([]);
    }
    const gz = await cliAsync(['export', db, '--format', 'ndjson', '--compress', 'gzip', '-o', '-', '--quiet']);
    expect(gz.code, gz.stderr).toBe(0);
    expect([...gz.stdoutBytes.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
    expect(zlib.gunzipSync(gz.stdoutBytes).toString('utf8')).toMatch(/^\{"format":"scriptorium-ndjson"/);
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('without -o: a timestamped file in ./backups/, its path printed', () => {
    const work = tempDir('cwd');
    try {
      fs.mkdirSync(path.join(work, 'data'));
      const db = makeDb(path.join(work, 'data', 'app.db'), (x) => x.exec("CREATE TABLE t(a); INSERT INTO t VALUES (1), ('two')"));
      const t0 = Date.now();
      const r = cli(['export', 'data/app.db', '--format', 'ndjson', '--compress', 'zstd'], { cwd: work });
      expect(r.code, r.stderr).toBe(0);
      const files = fs.readdirSync(path.join(work, 'backups')).filter((f) => !f.startsWith('.')); // (the monitor's history file)
      expect(files).toHaveLength(1);
      const m = /^app-(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})Z\.ndjson\.zst$/.exec(files[0]!);
      expect(m, files[0]).not.toBeNull();
      const stamp = Date.UTC(+m![1]!, +m![2]! - 1, +m![3]!, +m![4]!, +m![5]!, +m![6]!);
      expect(Math.abs(stamp - t0)).toBeLessThan(60_000);
      expect(r.stdout.split('\n')[0]).toBe(path.join('backups', files[0]!));
      const r2 = cli(['export', 'data/app.db', '--format', 'sql'], { cwd: work });
      expect(r2.code, r2.stderr).toBe(0);
      expect(fs.readdirSync(path.join(work, 'backups')).filter((f) => f.endsWith('.sql'))).toHaveLength(1);
      expect(fs.readdirSync(path.join(work, 'data'))).toEqual(['app.db']); // nothing written beside the source
      void db;
    } finally {
      removeDir(work);
    }
  });
});

describe('import from stdin', () => {
  it('import - reads the export from standard input', async () => {
    const db = trickyDb(path.join(dir, 'stdin.db'));
    const file = path.join(dir, 'stdin.sql.zst');
    await exportTo(db, { format: 'sql', compress: 'zstd', output: file });
    const into = path.join(dir, 'stdin-in.db');
    const r = cli(['import', '-', '--into', into, '--quiet'], { input: fs.readFileSync(file) });
    expect(r.code, r.stderr).toBe(0);
    expect(compareDatabases(db, into)).toEqual([]);
  });
});

describe('--tables and --exclude-tables', () => {
  it('export only the chosen tables, with their indexes, triggers and counters', async () => {
    const db = trickyDb(path.join(dir, 'select.db'));
    const weird = `we"ird 'table'; --`;
    const onlyOut = path.join(dir, 'only.ndjson');
    const r = cli(['export', db, '--format', 'ndjson', '--tables', `pairs,${weird}`, '-o', onlyOut, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const only = path.join(dir, 'only.db');
    const result = await importFrom(onlyOut, { into: only });
    expect(result.tables.map((t) => t.name).sort()).toEqual(['pairs', weird].sort());
    withDb(only, (x) => {
      const objects = x.prepare("SELECT type || ':' || name FROM sqlite_schema WHERE sql IS NOT NULL AND type <> 'table' ORDER BY 1").pluck().all();
      expect(objects).toEqual(['index:expr_idx', 'index:idx; --']); // the view needs every table; the trigger's table is gone
      expect(x.prepare('SELECT name FROM sqlite_sequence').pluck().all()).toEqual([weird]);
    });

    const exclOut = path.join(dir, 'excl.sql');
    const e = cli(['export', db, '--format', 'sql', '--exclude-tables', 'pairs', '-o', exclOut, '--quiet']);
    expect(e.code, e.stderr).toBe(0);
    const excl = path.join(dir, 'excl.db');
    const er = await importFrom(exclOut, { into: excl });
    expect(er.tables.map((t) => t.name).sort()).toEqual(['audit', 'nokey', weird].sort());
    expect(fs.readFileSync(exclOut, 'utf8')).not.toMatch(/INSERT INTO "pairs"|expr_idx/);

    const both = cli(['export', db, '--format', 'json', '--tables', 'pairs,audit', '--exclude-tables', 'audit', '-o', '-', '--quiet']);
    expect(both.code, both.stderr).toBe(0);
    expect(Object.keys((JSON.parse(both.stdout) as { tables: object }).tables)).toEqual(['pairs']);
  });
});

describe('progress events', () => {
  it('export: started, progress with rowsDone/rowsTotal, completed', async () => {
    const db = ledgerDb(path.join(dir, 'events.db'), 12_345);
    const events: OperationEvent[] = [];
    const result = await exportTo(db, { format: 'json', output: path.join(dir, 'events.json'), compress: 'gzip', onEvent: (e) => events.push(e) });
    const started = events[0]!;
    expect(started).toMatchObject({ type: 'started', kind: 'export', format: 'json', totalRows: 24_690, tables: 2 });
    const progress = events.filter((e) => e.type === 'progress');
    expect(progress.length).toBeGreaterThanOrEqual(2);
    let last = -1;
    for (const p of progress) {
      expect(p.rowsTotal).toBe(24_690);
      expect(p.rowsDone).toBeGreaterThanOrEqual(last);
      expect(p.rowsDone).toBeLessThanOrEqual(24_690);
      expect(p.rowsPerSecond).toBeGreaterThanOrEqual(0);
      expect(p.bytesOut).toBeGreaterThanOrEqual(0);
      last = p.rowsDone;
    }
    expect(progress.at(-1)!.rowsDone).toBe(24_690);
    expect(progress.some((p) => p.table === 'debit')).toBe(true);
    const done = events.at(-1)!;
    expect(done).toMatchObject({ type: 'completed', kind: 'export', rows: 24_690 });
    expect(done.type === 'completed' && done.bytesOut).toBe(result.bytes);
    expect(new Set(events.map((e) => e.id)).size).toBe(1);
  });

  it('import: started, progress, completed; a failure ends with a failed event carrying the code', async () => {
    const db = ledgerDb(path.join(dir, 'events2.db'), 3000);
    const file = path.join(dir, 'events2.ndjson');
    await exportTo(db, { format: 'ndjson', output: file });
    const events: OperationEvent[] = [];
    await importFrom(file, { into: path.join(dir, 'events2-in.db'), onEvent: (e) => events.push(e) });
    expect(events[0]).toMatchObject({ type: 'started', kind: 'import', format: 'ndjson' });
    expect(events.some((e) => e.type === 'progress')).toBe(true);
    expect(events.at(-1)).toMatchObject({ type: 'completed', kind: 'import', rows: 6000 });

    const failed: OperationEvent[] = [];
    fs.writeFileSync(path.join(dir, 'half.ndjson'), fs.readFileSync(file).subarray(0, 1000));
    await expect(importFrom(path.join(dir, 'half.ndjson'), { into: path.join(dir, 'half.db'), onEvent: (e) => failed.push(e) })).rejects.toMatchObject({ code: 'E_TRUNCATED' });
    expect(failed.at(-1)).toMatchObject({ type: 'failed', code: 'E_TRUNCATED' });
  });

  it('the CLI prints plain progress lines on a pipe, nothing with --quiet, a JSON summary with --json', () => {
    const db = ledgerDb(path.join(dir, 'cli-events.db'), 200);
    const quiet = cli(['export', db, '--format', 'sql', '-o', path.join(dir, 'q.sql'), '--quiet']);
    expect(quiet.code).toBe(0);
    expect(quiet.stdout + quiet.stderr).toBe('');
    const json = cli(['export', db, '--format', 'ndjson', '-o', path.join(dir, 'j.ndjson'), '--json']);
    expect(json.code).toBe(0);
    const summary = JSON.parse(json.stdout) as { rows: number; path: string; tables: { name: string; rows: number; sha256: string }[] };
    expect(summary.rows).toBe(400);
    expect(summary.path).toBe(path.join(dir, 'j.ndjson'));
    expect(summary.tables.map((t) => [t.name, t.rows])).toEqual([['debit', 200], ['credit', 200]]);
    expect(summary.tables[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    const plain = cli(['export', db, '--format', 'ndjson', '-o', path.join(dir, 'p.ndjson')]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/exported 400 rows from 2 tables as ndjson/);
    expect(plain.stderr).not.toMatch(/\u001b\[/); // no terminal escapes when not a terminal
  });
});

describe('file layouts', () => {
  it('json: the original document (export_info, tables of row objects) that JSON.parse reads', async () => {
    const db = makeDb(path.join(dir, 'doc.db'), (x) => {
      x.exec("CREATE TABLE guests(id INTEGER PRIMARY KEY, name TEXT, phone TEXT, balance REAL, photo BLOB); CREATE TABLE rooms(no TEXT PRIMARY KEY, floor INTEGER) WITHOUT ROWID; CREATE TABLE empty(x)");
      x.exec("INSERT INTO guests VALUES (2, 'สมชาย ใจดี', '+66 81 234 5678', 10.5, NULL), (1, 'Ann \"Annie\" O''Neil', NULL, 0.0, x'ff00')");
      x.exec("INSERT INTO rooms VALUES ('B2', 2), ('A1', 1)");
      x.pragma('user_version = 17');
    });
    const out = path.join(dir, 'doc.json');
    await exportTo(db, { format: 'json', output: out });
    const doc = JSON.parse(fs.readFileSync(out, 'utf8')) as { export_info: Record<string, unknown>; tables: Record<string, Record<string, unknown>[]> };
    expect(Object.keys(doc).slice(0, 2)).toEqual(['export_info', 'tables']);
    const info = doc.export_info;
    expect(Number.isNaN(Date.parse(info['timestamp'] as string))).toBe(false);
    expect(info['timestamp']).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/);
    expect(typeof info['version']).toBe('string');
    expect(info['database_version']).toBe(17);
    expect(info['total_records']).toBe(4);
    expect(typeof info['export_method']).toBe('string');
    expect(Object.keys(doc.tables)).toEqual(['guests', 'rooms', 'empty']);
    expect(doc.tables['guests']).toEqual([
      { id: 1, name: 'Ann "Annie" O\'Neil', phone: null, balance: 0, photo: { $blob: 'FF00' } },
      { id: 2, name: 'สมชาย ใจดี', phone: '+66 81 234 5678', balance: 10.5, photo: null },
    ]);
    expect(doc.tables['rooms']).toEqual([{ no: 'A1', floor: 1 }, { no: 'B2', floor: 2 }]);
    expect(doc.tables['empty']).toEqual([]);
  });

  it('sql: foreign keys off, one transaction, tables, 500-row INSERTs, then indexes, triggers and views, then pragmas', async () => {
    const db = makeDb(path.join(dir, 'script.db'), (x) => {
      x.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE u(a, b); CREATE INDEX t_v ON t(v); CREATE VIEW tv AS SELECT * FROM t; CREATE TRIGGER u_ai AFTER INSERT ON u BEGIN SELECT 1; END;');
      const put = x.prepare('INSERT INTO t(v) VALUES (?)');
      x.transaction(() => {
        for (let i = 0; i < 1234; i++) put.run(`v${i}`);
      })();
      x.exec("INSERT INTO u VALUES (1, 'one')");
      x.pragma('user_version = 5');
      x.pragma('application_id = 77');
    });
    const out = path.join(dir, 'script.sql');
    await exportTo(db, { format: 'sql', output: out });
    const text = fs.readFileSync(out, 'utf8');
    const statements = text.split('\n').filter((l) => l !== '' && !l.startsWith('--') && !l.startsWith('('));
    const firstIndex = (re: RegExp): number => statements.findIndex((s) => re.test(s));
    expect(statements[0]).toBe('PRAGMA foreign_keys=OFF;');
    expect(statements[1]).toBe('BEGIN TRANSACTION;');
    expect(statements.at(-1)).toBe('COMMIT;');
    const inserts = text.match(/^INSERT INTO "t"\("id","v"\) VALUES\n[\s\S]*?;$/gm)!;
    expect(inserts.map((s) => s.split('\n').length - 1)).toEqual([500, 500, 234]);
    expect(firstIndex(/^CREATE TABLE t\b/)).toBeLessThan(firstIndex(/^INSERT INTO "t"/));
    expect(firstIndex(/^CREATE TABLE u\b/)).toBeLessThan(firstIndex(/^INSERT INTO "t"/));
    const lastInsert = statements.map((s, i) => (s.startsWith('INSERT INTO "') ? i : -1)).reduce((a, b) => Math.max(a, b));
    for (const re of [/^CREATE INDEX t_v/, /^CREATE VIEW tv/, /^CREATE TRIGGER u_ai/]) expect(firstIndex(re)).toBeGreaterThan(lastInsert);
    expect(firstIndex(/^PRAGMA user_version=5;$/)).toBeGreaterThan(firstIndex(/^CREATE TRIGGER u_ai/));
    expect(firstIndex(/^PRAGMA application_id=77;$/)).toBeGreaterThan(lastInsert);
    expect(text).not.toMatch(/LIMIT|OFFSET/i);
  });

  it('rows go out in primary-key order (rowid order without one), whatever the insertion order', async () => {
    const db = makeDb(path.join(dir, 'order.db'), (x) => {
      x.exec('CREATE TABLE ip(id INTEGER PRIMARY KEY, v); CREATE TABLE wr(a TEXT, b INTEGER, PRIMARY KEY (a, b)) WITHOUT ROWID; CREATE TABLE np(v)');
      const ids = Array.from({ length: 3000 }, (_, i) => BigInt((i * 7919) % 3001) - 1500n);
      const ip = x.prepare('INSERT INTO ip VALUES (?, ?)');
      const wr = x.prepare('INSERT INTO wr VALUES (?, ?)');
      const np = x.prepare('INSERT INTO np(rowid, v) VALUES (?, ?)');
      x.transaction(() => {
        for (const id of ids) {
          ip.run(id, String(id));
          wr.run(`k${id % 7n}`, id);
          np.run(id * 3n, String(id));
        }
      })();
    });
    for (const format of ['ndjson', 'json', 'sql'] as const) {
      const out = path.join(dir, `order.${format}`);
      await exportTo(db, { format, output: out });
      const text = fs.readFileSync(out, 'utf8');
      let ipIds: number[];
      let wrKeys: [string, number][];
      let npIds: number[];
      if (format === 'ndjson') {
        const t = ndjsonTables(text);
        ipIds = t['ip']!.map((r) => r[0] as number);
        wrKeys = t['wr']!.map((r) => [r[0] as string, r[1] as number]);
        npIds = t['np']!.map((r) => r[0] as number);
      } else if (format === 'json') {
        const t = (JSON.parse(text) as { tables: Record<string, Record<string, unknown>[]> }).tables;
        ipIds = t['ip']!.map((r) => r['id'] as number);
        wrKeys = t['wr']!.map((r) => [r['a'] as string, r['b'] as number]);
        npIds = t['np']!.map((r) => r['rowid'] as number);
      } else {
        const tuples = (table: string): string[][] =>
          [...text.matchAll(new RegExp(`^INSERT INTO "${table}"\\(.*?\\) VALUES\\n([\\s\\S]*?);$`, 'gm'))].flatMap((m) => m[1]!.split(',\n').map((t) => t.slice(1, -1).split(',')));
        ipIds = tuples('ip').map((r) => Number(r[0]));
        wrKeys = tuples('wr').map((r) => [r[0]!.slice(1, -1), Number(r[1])]);
        npIds = tuples('np').map((r) => Number(r[0]));
      }
      const sortedNum = (a: number[]): number[] => [...a].sort((x, y) => x - y);
      expect(ipIds, format).toEqual(sortedNum(ipIds));
      expect(ipIds.length).toBe(3000);
      expect(npIds, format).toEqual(sortedNum(npIds));
      const sortedKeys = [...wrKeys].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] - y[1]));
      expect(wrKeys, format).toEqual(sortedKeys);
    }
  });
});
