/**
 * Issue 13, "bounded by design": schema expressions that make a small input large. A column
 * `DEFAULT (randomblob(1e8))`, an index on `zeroblob(3e8)` or a generated column of `printf('%.*c', …)`
 * would let a few bytes of a manifest or an export header cost a restore or an import a gigabyte per
 * row (1.5 GB in review). The schema check refuses them in a table's or an index's expressions
 * (E_CORRUPT from a repository, E_UNSUPPORTED_SQL from an input, naming the object), within bounded
 * memory, and lets the small ones real schemas use through.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BUILT_BYTES, schemaProblem, type ClaimedObject } from '../src/engines/sqlite/schema-guard.js';
import { backup } from '../src/repository/backup.js';
import { decodeManifest, encodeManifest, snapshotKey } from '../src/repository/manifest.js';
import { init } from '../src/repository/operations.js';
import { CLI, cli, makeDb, removeDir, tempDir, withDb } from './export-import/helpers.js';

const MB = 1e6;
let dir: string;
beforeAll(() => {
  expect(fs.existsSync(CLI), 'run `npm run build` first').toBe(true);
  dir = tempDir('schema-expressions');
});
afterAll(() => removeDir(dir));

/** Runs the CLI under GNU time; returns its exit code, stderr and peak RSS in bytes. */
function timedCli(args: string[]): { code: number | null; stderr: string; rss: number } {
  const rssFile = path.join(dir, 'rss.txt');
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', rssFile, process.execPath, CLI, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stderr: r.stderr, rss: Number(fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop()) * 1024 };
}

const TABLE = 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)';
const INDEX = 'CREATE INDEX t_v ON t(v)';
/** [what, claimed object, the statement in its place] */
const hostile: [string, ClaimedObject, string][] = [
  ['a DEFAULT of randomblob(1e8)', { type: 'table', name: 't' }, 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, pad BLOB DEFAULT (randomblob(1e8)))'],
  ['a generated column of zeroblob(3e8)', { type: 'table', name: 't' }, 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, g BLOB AS (zeroblob(300000000)) STORED)'],
  ['a CHECK calling "zeroblob" (a quoted name) with a hex size', { type: 'table', name: 't' }, 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT CHECK (length("zeroblob"(0x20000000)) > 0))'],
  ['an index on zeroblob(3e8)', { type: 'index', name: 't_v', table: 't' }, 'CREATE INDEX t_v ON t(zeroblob(3e8))'],
  ['a partial index whose WHERE calls randomblob of a computed size', { type: 'index', name: 't_v', table: 't' }, 'CREATE INDEX t_v ON t(v) WHERE length(randomblob(id * 100000000)) > 0'],
  ['a generated column of printf with a width from an argument', { type: 'table', name: 't' }, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, g TEXT AS (printf('%.*c', 1000000000, 'x')))"],
  ['a DEFAULT of format with a width of 5e8', { type: 'table', name: 't' }, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT DEFAULT (format('%500000000d', 1)))"],
  ['a DEFAULT of printf with a format that is not a literal', { type: 'table', name: 't' }, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, g TEXT AS (printf(v, 1)))"],
];

describe('schemaProblem: functions that build a value from their arguments alone', () => {
  it.each(hostile)('refuses %s', (_what, claimed, sql) => {
    expect(schemaProblem(claimed, sql)).toMatch(/an expression calls (randomblob|zeroblob|"?zeroblob|printf|format)\(/i);
  });

  it('lets the sizes real schemas use through, and views and triggers (they never run on our connections)', () => {
    const accepted: [ClaimedObject, string][] = [
      [{ type: 'table', name: 't' }, 'CREATE TABLE t(id BLOB PRIMARY KEY DEFAULT (randomblob(16)), z BLOB DEFAULT (zeroblob(4096)), n TEXT AS (printf(\'%08d %s %%\', rowid, id)))'],
      [{ type: 'table', name: 't' }, `CREATE TABLE t(a BLOB DEFAULT (zeroblob(${MAX_BUILT_BYTES})), b BLOB DEFAULT (randomblob(-1)))`],
      [{ type: 'index', name: 'i', table: 't' }, "CREATE INDEX i ON t(printf('%.3f', a))"],
      [{ type: 'table', name: 't' }, "CREATE TABLE t(a TEXT DEFAULT 'randomblob(1e9)', \"zeroblob\" INT)"], // a string, a column name
      [{ type: 'view', name: 'v' }, 'CREATE VIEW v AS SELECT randomblob(1e9)'],
    ];
    for (const [claimed, sql] of accepted) expect(schemaProblem(claimed, sql), sql).toBeUndefined();
    expect(schemaProblem({ type: 'table', name: 't' }, `CREATE TABLE t(a BLOB DEFAULT (zeroblob(${MAX_BUILT_BYTES + 1})))`)).toBeDefined();
  });
});

describe('a repository or an export whose schema asks for a huge value: refused naming the object, in bounded memory', () => {
  /** A database with t and an index on it, a few rows: its manifest and exports are what gets edited. */
  function source(name: string): string {
    return makeDb(path.join(dir, name), (db) => {
      db.exec(`${TABLE}; ${INDEX};`);
      const put = db.prepare('INSERT INTO t(v) VALUES (?)');
      for (let i = 0; i < 20; i++) put.run(`row ${i}`);
    });
  }

  it.each(hostile.map(([what], i) => [what, i] as const))('restore and verify --drill: %s', async (_what, i) => {
    const [, claimed, sql] = hostile[i]!;
    const repo = path.join(dir, `repo-${i}`);
    await init(repo, { compression: 'zstd' });
    const snap = await backup(source(`src-${i}.db`), repo, {});
    // Re-seal the manifest with its schema edited, under its new id (what a writer of the repository can do).
    const file = path.join(repo, snapshotKey(snap.id));
    const { id: _id, manifestBytes: _bytes, ...manifest } = await decodeManifest(snap.id, fs.readFileSync(file));
    if (claimed.type === 'table') manifest.schema.tables.find((t) => t.name === 't')!.sql = sql;
    else manifest.schema.objects.find((o) => o.name === 't_v')!.sql = sql;
    const sealed = await encodeManifest(manifest, 'zstd');
    fs.rmSync(file);
    fs.writeFileSync(path.join(repo, snapshotKey(sealed.hash)), sealed.file);

    const out = path.join(dir, `restored-${i}`);
    fs.mkdirSync(out);
    const named = claimed.type === 'table' ? /table "t": its schema is .*an expression calls/ : /index "t_v": its schema is .*an expression calls/;
    for (const args of [['restore', 'latest', '--into', path.join(out, 'app.db')], ['verify', '--drill']]) {
      const r = timedCli([...args, '--repo', repo]);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(/^scriptorium: error E_CORRUPT: /m);
      expect(r.stderr).toMatch(named);
      expect(r.stderr).not.toMatch(/looks like a bug|E_INTERNAL/);
      expect(r.rss).toBeLessThan(250 * MB); // before: 1.5 GB and more (the value built per row)
    }
    expect(fs.readdirSync(out)).toEqual([]);
  }, 60_000);

  it.each((['ndjson', 'json', 'sql'] as const).flatMap((format) => [0, 3].map((i) => [format, hostile[i]![0], i] as const)))(
    'import %s: %s',
    (format, _what, i) => {
      const [, claimed, sql] = hostile[i]!;
      const db = source(`import-src-${format}-${i}.db`);
      const exported = path.join(dir, `export-${format}-${i}.${format}`);
      expect(cli(['export', db, '--format', format, '-o', exported, '-q']).code).toBe(0);
      const text = fs.readFileSync(exported, 'utf8');
      const from = claimed.type === 'table' ? TABLE : INDEX;
      const edited = format === 'sql' ? text.replace(`${from};\n`, `${sql};\n`) : text.replaceAll(JSON.stringify(from), JSON.stringify(sql));
      expect(edited, 'the statement to replace').not.toBe(text);
      const file = path.join(dir, `edited-${format}-${i}.${format}`);
      fs.writeFileSync(file, edited);
      const into = path.join(dir, `imported-${format}-${i}.db`);
      const r = timedCli(['import', file, '--into', into]);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(/^scriptorium: error E_UNSUPPORTED_SQL: .*an expression calls/m);
      expect(r.stderr).toMatch(claimed.type === 'table' ? /table "t"/ : /index "t_v"/);
      expect(r.rss).toBeLessThan(250 * MB);
      expect(fs.existsSync(into)).toBe(false);
    },
    60_000,
  );

  it('a database whose schema uses small ones backs up, restores and imports exactly', async () => {
    const db = makeDb(path.join(dir, 'small-defaults.db'), (d) => {
      d.exec(`CREATE TABLE s(id INTEGER PRIMARY KEY, token BLOB DEFAULT (randomblob(16)), label TEXT AS (printf('%05d', id)) STORED);
              CREATE INDEX s_label ON s(printf('%.3s', label));`);
      for (let i = 0; i < 10; i++) d.exec('INSERT INTO s(id) VALUES (NULL)');
    });
    const rows = (file: string): unknown[] => withDb(file, (d) => d.prepare('SELECT id, hex(token), label FROM s ORDER BY id').raw().all());
    const repo = path.join(dir, 'repo-small');
    await init(repo, { compression: 'zstd' });
    await backup(db, repo, {});
    const into = path.join(dir, 'small-restored.db');
    const r = cli(['restore', 'latest', '--repo', repo, '--into', into, '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(rows(into)).toEqual(rows(db));
    const exported = path.join(dir, 'small.ndjson');
    expect(cli(['export', db, '--format', 'ndjson', '-o', exported, '-q']).code).toBe(0);
    const imported = path.join(dir, 'small-imported.db');
    const i = cli(['import', exported, '--into', imported, '-q']);
    expect(i.code, i.stderr).toBe(0);
    expect(rows(imported)).toEqual(rows(db));
  }, 60_000);
});
