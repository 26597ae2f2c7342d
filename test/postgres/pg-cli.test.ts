/**
 * PostgreSQL through the CLI (dist/cli/main.js, a real process): URLs on the command line and the PG*
 * variables with --engine postgres, the password never shown (errors, --json, progress, history,
 * process title), a failed import that leaves the target as it was, and the driver loaded only for
 * PostgreSQL locations.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, removeDir, tempDir } from '../export-import/helpers.js';
import { PG_SKIP, PG_URL, dbUrl, describeDatabase, freshDatabase, runSql, textRows } from './pg-helpers.js';

const dir = tempDir('pg-cli');
afterAll(() => removeDir(dir));

function cli(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(PG_SKIP)('PostgreSQL through the CLI', () => {
  let source: string;
  let password: string;
  beforeAll(async () => {
    source = await freshDatabase('cli');
    password = decodeURIComponent(new URL(PG_URL).password);
    await runSql(source, `CREATE TABLE items (id integer PRIMARY KEY, name text); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 500) g;
      CREATE TABLE base (id integer, at date); CREATE TABLE heir (extra text) INHERITS (base);
      CREATE FUNCTION hello() RETURNS text LANGUAGE sql AS 'SELECT 1::text';`);
  });

  it('export and import by URL never show the password: --json, progress, notices, history', () => {
    const file = path.join(dir, 'items.ndjson');
    const exp = cli(['export', source, '-f', 'ndjson', '-o', file, '--exclude-tables', 'heir', '--json']);
    expect(exp.stderr + exp.stdout).not.toContain(password);
    expect(exp.status).toBe(0);
    expect(JSON.parse(exp.stdout).rows).toBe(500);
    expect(fs.readFileSync(file, 'utf8')).not.toContain(password); // the header's source is the redacted URL
    expect(exp.stderr).toContain('not carried from postgresql://postgres:***@');
    expect(exp.stderr).toContain('1 functions or procedures');
    const imp = cli(['import', file, '--into', dbUrl('no_such_database'), '--json']);
    expect(imp.stderr + imp.stdout).not.toContain(password);
    expect(imp.stderr).toMatch(/E_NOT_FOUND: postgres: cannot connect to postgresql:\/\/postgres:\*\*\*@/); // no such database
    const history = fs.readFileSync(path.join(dir, 'backups', '.scriptorium-history.jsonl'), 'utf8');
    expect(history).toContain('postgresql://postgres:***@');
    expect(history).not.toContain(password);
  });

  it('a table that inherits from another (INHERITS, not a partition) is refused by name, not dropped', () => {
    const r = cli(['export', source, '-f', 'ndjson', '-o', path.join(dir, 'heir.ndjson')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('E_UNSUPPORTED: postgres: table "heir" inherits from another table (INHERITS, not a partition)');
    expect(fs.existsSync(path.join(dir, 'heir.ndjson'))).toBe(false);
  });

  it('two tables known by one name, and a table with no columns, are refused by name (backup and export), not dropped or written unreadable', async () => {
    const db = await freshDatabase('clirefuse');
    await runSql(db, `CREATE SCHEMA a; CREATE TABLE a.b (id integer PRIMARY KEY, v text); CREATE TABLE public."a.b" (id integer PRIMARY KEY, w integer);
      INSERT INTO a.b VALUES (1, 'x'); INSERT INTO public."a.b" VALUES (1, 2);
      CREATE TABLE nocols (); INSERT INTO nocols DEFAULT VALUES; CREATE TABLE kept (id integer PRIMARY KEY); INSERT INTO kept VALUES (7);`);
    const repo = path.join(dir, 'refuse-repo');
    expect(cli(['init', repo, '-q']).status).toBe(0);
    const backup = cli(['backup', db, '--repo', repo, '-q']);
    expect(backup.status).toBe(1);
    expect(backup.stderr).toContain('E_UNSUPPORTED: postgres: table "a.b" names 2 tables ("b" of schema "a" and "a.b" of schema "public"), which scriptorium cannot tell apart');
    const exp = cli(['export', db, '-f', 'ndjson', '-o', path.join(dir, 'refused.ndjson'), '--exclude-tables', 'a.b']);
    expect(exp.status).toBe(1);
    expect(exp.stderr).toContain('E_UNSUPPORTED: postgres: table "nocols" has no columns whose values are carried');
    expect(fs.existsSync(path.join(dir, 'refused.ndjson'))).toBe(false);
    // Left out by name, the rest backs up and restores.
    expect(cli(['backup', db, '--repo', repo, '-q', '--exclude-tables', 'a.b,nocols']).status).toBe(0);
    const into = await freshDatabase('clirefused');
    expect(cli(['restore', 'latest', '--repo', repo, '--into', into, '-q']).status).toBe(0);
    expect(await textRows(into, 'SELECT id FROM kept')).toEqual([['7']]);
  });

  it('physical settings that are not carried are said, by table', async () => {
    const db = await freshDatabase('cliphys');
    await runSql(db, `CREATE TABLE st (id integer PRIMARY KEY, big text, n integer) WITH (fillfactor = 80);
      ALTER TABLE st ALTER COLUMN big SET STORAGE EXTERNAL; ALTER TABLE st REPLICA IDENTITY FULL; CLUSTER st USING st_pkey;
      CREATE STATISTICS st_stats (ndistinct) ON id, n FROM st; CREATE UNLOGGED SEQUENCE unl;`);
    const r = cli(['export', db, '-f', 'sql', '-o', path.join(dir, 'phys.sql')]);
    expect(r.status).toBe(0);
    for (const said of ['storage parameters of tables (WITH (fillfactor, autovacuum_…, toast.…)): st', 'column STORAGE, COMPRESSION, STATISTICS or attribute options (n_distinct) of tables: st',
      'REPLICA IDENTITY settings of tables: st', 'CLUSTER ON markers, index storage parameters of keys, or index column statistics: st', '1 extended statistics objects (CREATE STATISTICS)',
      'UNLOGGED on sequences (they come back logged): unl']) {
      expect(r.stderr).toContain(said);
    }
  });

  it('the password leaves the process title once the CLI runs (ps shows the redacted URL)', async () => {
    // Until Node has started, the kernel shows argv as given (use PGPASSWORD to avoid even that window);
    // from the CLI's first line on, the title is the redacted command line.
    const file = path.join(dir, 'title.ndjson');
    const child = spawn(process.execPath, [CLI, 'export', source, '-f', 'ndjson', '-o', file, '--exclude-tables', 'heir'], { cwd: dir });
    let exited = false;
    child.once('exit', () => (exited = true));
    const seen: string[] = [];
    while (!exited) {
      try {
        seen.push(fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').replaceAll('\0', ' '));
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    const redacted = seen.findIndex((t) => t.includes('postgresql://postgres:***@'));
    expect(redacted).toBeGreaterThanOrEqual(0);
    expect(seen.slice(redacted).filter((t) => t.includes(password))).toEqual([]);
  });

  it('--engine postgres reads the PG* variables', async () => {
    const url = new URL(source);
    const env = { PGHOST: url.hostname, PGPORT: url.port, PGUSER: url.username, PGPASSWORD: password, PGDATABASE: url.pathname.slice(1) };
    const r = cli(['export', '-', '--engine', 'postgres', '-f', 'json', '-o', path.join(dir, 'env.json'), '--tables', 'items', '--json'], env);
    expect(r.stderr).toBe(r.stderr.replace(password, ''));
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).tables).toEqual([{ name: 'items', rows: 500, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
  });

  it('a failed import leaves the target exactly as it was (one transaction)', async () => {
    const file = path.join(dir, 'fail.ndjson');
    expect(cli(['export', source, '-f', 'ndjson', '-o', file, '--tables', 'items']).status).toBe(0);
    const target = await freshDatabase('clit');
    await runSql(target, "CREATE TABLE keep (a int); INSERT INTO keep VALUES (1); CREATE TABLE items (x int)");
    const before = await describeDatabase(target);
    const r = cli(['import', file, '--into', target]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('E_TARGET_EXISTS: import: table "items" already exists');
    expect(await describeDatabase(target)).toEqual(before);
    // A damaged row half-way: nothing of the load stays either.
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const at = lines.findIndex((l) => l.startsWith('[300,'));
    lines[at] = '[300,"item 300"';
    fs.writeFileSync(file, lines.join('\n'));
    const empty = await freshDatabase('clie');
    const r2 = cli(['import', file, '--into', empty]);
    expect(r2.stderr).toContain('E_CORRUPT');
    expect(await textRows(empty, "SELECT count(*) FROM pg_class WHERE relname = 'items'")).toEqual([['0']]);
  });

  it('an edited file whose schema holds another statement is refused before it runs', async () => {
    const file = path.join(dir, 'edited.ndjson');
    expect(cli(['export', source, '-f', 'ndjson', '-o', file, '--tables', 'items']).status).toBe(0);
    const text = fs.readFileSync(file, 'utf8').replace('"sql":"ALTER TABLE ONLY', '"sql":"DROP TABLE keep; ALTER TABLE ONLY');
    fs.writeFileSync(file, text);
    const target = await freshDatabase('cliq');
    const r = cli(['import', file, '--into', target]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('E_UNSUPPORTED_SQL');
  });

  it('loads the PostgreSQL driver only for PostgreSQL locations, and names it when it is missing', () => {
    // A loader hook that makes `pg` unresolvable: SQLite work must not notice, PostgreSQL work must say so.
    const hooks = path.join(dir, 'no-pg-hooks.mjs');
    fs.writeFileSync(hooks, `export async function resolve(s, c, next) { if (s === 'pg' || s === 'pg-copy-streams') throw new Error('Cannot find package ' + s); return next(s, c); }\n`);
    const register = path.join(dir, 'no-pg.mjs');
    fs.writeFileSync(register, `import { register } from 'node:module'; register(${JSON.stringify(`file://${hooks}`)});\n`);
    const db = path.join(dir, 'plain.db');
    spawnSync('sqlite3', [db, 'CREATE TABLE t (a INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);']);
    const run = (args: string[]) => spawnSync(process.execPath, ['--import', register, CLI, ...args], { cwd: dir, encoding: 'utf8' });
    const sqlite = run(['export', db, '-f', 'ndjson', '-o', path.join(dir, 'plain.ndjson')]);
    expect(sqlite.stderr).not.toContain('error');
    expect(sqlite.status).toBe(0);
    const pg = run(['export', source, '-f', 'ndjson', '-o', path.join(dir, 'nopg.ndjson')]);
    expect(pg.status).toBe(1);
    expect(pg.stderr).toContain('E_UNSUPPORTED: postgres: the driver package pg cannot be loaded');
    expect(pg.stderr).toContain('npm install pg pg-copy-streams');
  });
});
