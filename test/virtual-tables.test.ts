/**
 * Virtual tables: FTS5 (own content and external content) and R*Tree (rtree, rtree_i32, with auxiliary
 * columns) travel through every format and through backup and restore exactly, rowids included, and
 * still answer MATCH and range queries; any other virtual table is refused by name unless it is left
 * out, and shadow tables are never carried.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareDatabases } from '../src/engines/sqlite/compare.js';
import { exportTo } from '../src/export.js';
import { importFrom } from '../src/import.js';
import { backup } from '../src/repository/backup.js';
import { Repository } from '../src/repository/repository.js';
import { restore } from '../src/repository/restore.js';
import { verify } from '../src/repository/verify.js';
import { cli, FORMATS, makeDb, removeDir, roundTrip, SQLITE3, sqlite3Shell, tempDir } from './export-import/helpers.js';

const dir = tempDir('vtab');
afterAll(() => removeDir(dir));

/** Every kind of virtual table scriptorium carries, with awkward values, sparse rowids and options. */
function vtabDb(file: string): string {
  return makeDb(file, (db) => {
    db.exec(`
      PRAGMA user_version = 7;
      CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT, body TEXT);
      CREATE VIRTUAL TABLE notes USING fts5(title, body, tokenize = 'porter unicode61');
      INSERT INTO notes(notes, rank) VALUES ('rank', 'bm25(10.0, 5.0)');
      INSERT INTO notes(notes, rank) VALUES ('pgsz', 2000);
      INSERT INTO notes(notes, rank) VALUES ('automerge', 2);
      CREATE VIRTUAL TABLE docs_fts USING fts5(title, body, content = 'docs', content_rowid = 'id');
      CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN
        INSERT INTO docs_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
      END;
      CREATE VIRTUAL TABLE boxes USING rtree(id, minX, maxX, minY, maxY, +label, +payload);
      CREATE VIRTUAL TABLE grid USING rtree_i32(id, x0, x1);
      CREATE TABLE plain (a, b);
    `);
    const note = db.prepare('INSERT INTO notes(rowid, title, body) VALUES (?, ?, ?)');
    const words = ['running', 'alpha', 'beta', 'gamma', 'séance', '日本語', 'runs', 'ran'];
    for (let i = 0; i < 3000; i++) {
      const rowid = BigInt(i * 37 + (i % 5 === 0 ? 1_000_000_000_000 : 1));
      const body = i % 97 === 0 ? Buffer.from([0, 1, 2, i % 256]) : i % 89 === 0 ? BigInt(i) : i % 83 === 0 ? i / 8 : i % 79 === 0 ? null : `${words[i % 8]} ${words[(i * 3) % 8]} note ${i}`;
      note.run(rowid, `title ${words[(i * 5) % 8]} ${i}`, body);
    }
    const doc = db.prepare('INSERT INTO docs(id, title, body) VALUES (?, ?, ?)');
    for (let i = 1; i <= 500; i++) doc.run(BigInt(i * 3), `doc ${i}`, `${words[i % 8]} text ${i % 10 === 0 ? 'alpha' : 'omega'}`);
    const box = db.prepare('INSERT INTO boxes VALUES (?, ?, ?, ?, ?, ?, ?)');
    for (let i = 1; i <= 2500; i++) {
      box.run(BigInt(i * 11), (i % 50) + 0.1, (i % 50) + 1.7, i / 3, i / 3 + 2.25, i % 7 === 0 ? null : `box ${i}`, i % 3 === 0 ? Buffer.from([i % 256, 0]) : BigInt(i) * 1_000_000_007n);
    }
    const cell = db.prepare('INSERT INTO grid VALUES (?, ?, ?)');
    for (let i = 1; i <= 300; i++) cell.run(BigInt(i), BigInt(-i * 1000), BigInt(i * 1000 + 7));
    db.prepare('INSERT INTO plain VALUES (?, ?)').run('x', 1n);
  });
}

/** The answers that show the indexes were rebuilt: MATCH queries and R*Tree range queries. */
function answers(file: string): Record<string, unknown> {
  const db = new Database(file, { readonly: true });
  db.defaultSafeIntegers(true);
  try {
    const all = (sql: string): unknown[] => db.prepare(sql).raw().all();
    return {
      stems: all("SELECT rowid FROM notes WHERE notes MATCH 'run' ORDER BY rowid"),
      ranked: all("SELECT rowid FROM notes WHERE notes MATCH 'alpha OR gamma' ORDER BY rank, rowid LIMIT 40"),
      phrase: all(`SELECT rowid, highlight(notes, 1, '[', ']') FROM notes WHERE notes MATCH '"séance note"' ORDER BY rowid`),
      column: all("SELECT rowid FROM notes WHERE notes MATCH 'title:beta' ORDER BY rowid"),
      external: all("SELECT rowid, title FROM docs_fts WHERE docs_fts MATCH 'alpha' ORDER BY rowid"),
      range: all('SELECT id, label FROM boxes WHERE minX >= 10 AND maxX <= 20 AND minY >= 100 AND maxY <= 300 ORDER BY id'),
      overlap: all('SELECT id FROM grid WHERE x0 <= -150000 AND x1 >= 200000 ORDER BY id'),
      config: all("SELECT k, v FROM notes_config WHERE k <> 'version' ORDER BY k"),
    };
  } finally {
    db.close();
  }
}

/** FTS5's own check of a table's index against its content; throws if they disagree. */
function ftsIntegrity(file: string): void {
  const db = new Database(file);
  try {
    db.exec("INSERT INTO notes(notes) VALUES ('integrity-check'); INSERT INTO docs_fts(docs_fts) VALUES ('integrity-check');");
  } finally {
    db.close();
  }
}

describe('FTS5 and R*Tree tables', () => {
  let source: string;
  let expected: Record<string, unknown>;
  beforeAll(() => {
    source = vtabDb(path.join(dir, 'vtab.db'));
    expected = answers(source);
    // The queries answer something: an empty answer would prove nothing.
    for (const [name, rows] of Object.entries(expected)) expect((rows as unknown[]).length, name).toBeGreaterThan(0);
  });

  for (const format of FORMATS) {
    it(`${format}: exports and imports exactly (rowids, values, options) and still answers MATCH and range queries`, async () => {
      const into = await roundTrip(source, { format, compress: 'none' }, dir);
      expect(answers(into)).toEqual(expected);
      ftsIntegrity(into);
      const header = fs.readFileSync(path.join(dir, `export-${format}`), 'utf8');
      // Shadow tables are derived: never carried.
      expect(header).not.toMatch(/notes_data|notes_idx|boxes_node|boxes_rowid|boxes_parent/);
    });
  }

  it('the sql export loads in the sqlite3 shell, which gets the same tables, options and answers', async () => {
    const file = path.join(dir, 'shell.sql');
    await exportTo(source, { format: 'sql', output: file });
    const into = path.join(dir, 'shell.db');
    sqlite3Shell([into], fs.readFileSync(file));
    expect(compareDatabases(source, into)).toEqual([]);
    expect(answers(into)).toEqual(expected);
  });

  it('backs up, restores and drills exactly, and the restored tables answer the same queries', async () => {
    const repoDir = path.join(dir, 'repo');
    await (await Repository.init(repoDir, { chunkBytes: 4096 })).close();
    const snap = await backup(source, repoDir);
    expect(snap.tables.map((t) => t.name)).toEqual(['docs', 'notes', 'docs_fts', 'boxes', 'grid', 'plain']);
    expect(snap.schema.tables.find((t) => t.name === 'notes')?.virtual).toEqual({
      module: 'fts5',
      config: [['automerge', 2], ['pgsz', 2000], ['rank', 'bm25(10.0, 5.0)']],
    });
    expect(snap.schema.tables.find((t) => t.name === 'boxes')?.virtual).toEqual({ module: 'rtree' });
    const into = path.join(dir, 'restored-repo.db');
    await restore('latest', repoDir, { into });
    expect(compareDatabases(source, into)).toEqual([]);
    expect(answers(into)).toEqual(expected);
    ftsIntegrity(into);
    const report = await verify(repoDir, { readData: true, drill: true });
    expect(report.problems).toEqual([]);
    expect(report.drilled).toBeDefined();
  });

  it('without the extension (SCRIPTORIUM_NO_EXTENSION=1), the CLI carries them too, and reads files the extension wrote', async () => {
    const env = { ...process.env, NO_COLOR: '1', SCRIPTORIUM_NO_EXTENSION: '1' };
    for (const format of FORMATS) {
      const file = path.join(dir, `noext.${format}`);
      const into = path.join(dir, `noext-${format}.db`);
      const out = cli(['export', source, '--format', format, '-o', file], { env });
      expect(out.code, out.stderr).toBe(0);
      const withExt = path.join(dir, `withext.${format}`);
      await exportTo(source, { format, output: withExt });
      const untimed = (f: string): string => fs.readFileSync(f, 'utf8').replace(/"timestamp":"[^"]*"|"exported_at":"[^"]*"|at \d{4}-\d{2}-\d{2}T[\d:.]+Z/g, 'TIME');
      expect(untimed(file) === untimed(withExt), `${format}: both paths write the same bytes`).toBe(true);
      const back = cli(['import', file, '--into', into], { env });
      expect(back.code, back.stderr).toBe(0);
      expect(compareDatabases(source, into)).toEqual([]);
      expect(answers(into)).toEqual(expected);
    }
  });

  it('an edited FTS5 configuration in a file is refused (E_CORRUPT), and nothing is written', async () => {
    const file = path.join(dir, 'config.ndjson');
    await exportTo(source, { format: 'ndjson', output: file });
    const text = fs.readFileSync(file, 'utf8');
    const cases: Array<[string, string]> = [
      ['unknown key', '[["drop table docs",1]]'],
      ['not pairs', '"rank"'],
      ['a value of the wrong kind', '[["pgsz",{"x":1}]]'],
    ];
    for (const [name, config] of cases) {
      const edited = text.replace(/"config":\[\[.*?\]\]/, `"config":${config}`);
      expect(edited, name).not.toBe(text);
      const bad = path.join(dir, 'config-edited.ndjson');
      fs.writeFileSync(bad, edited);
      const into = path.join(dir, 'config-edited.db');
      await expect(importFrom(bad, { into }), name).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringContaining('"notes"') });
      expect(fs.existsSync(into), name).toBe(false);
    }
    // The mark must match the statement: a plain table called an R*Tree, or an R*Tree without its mark.
    for (const [name, edit] of [
      ['plain table marked rtree', (t: string) => t.replace('"withoutRowid":false}', '"withoutRowid":false,"virtual":{"module":"rtree"}}')],
      ['rtree unmarked', (t: string) => t.replace(',"virtual":{"module":"rtree"}', '')],
    ] as Array<[string, (t: string) => string]>) {
      const edited = edit(text);
      expect(edited, name).not.toBe(text);
      const bad = path.join(dir, 'mark-edited.ndjson');
      fs.writeFileSync(bad, edited);
      const into = path.join(dir, 'mark-edited.db');
      await expect(importFrom(bad, { into }), name).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringContaining('marked') });
      expect(fs.existsSync(into), name).toBe(false);
    }
  });

  it('refuses an FTS5 table with external content whose content table is left out', async () => {
    await expect(exportTo(source, { format: 'ndjson', output: path.join(dir, 'x.ndjson'), excludeTables: ['docs'] })).rejects.toMatchObject({
      code: 'E_USAGE',
      hint: expect.stringContaining('"docs"'),
    });
    const repoDir = path.join(dir, 'repo-ext');
    await (await Repository.init(repoDir)).close();
    await expect(backup(source, repoDir, { tables: ['docs_fts'] })).rejects.toMatchObject({ code: 'E_USAGE' });
    // Both together, or the index alone left out, are fine.
    const ok = await exportTo(source, { format: 'ndjson', output: path.join(dir, 'y.ndjson'), tables: ['docs', 'docs_fts'] });
    expect(ok.tables.map((t) => t.name)).toEqual(['docs', 'docs_fts']);
  });
});

describe('virtual tables that are not carried', () => {
  let source: string;
  beforeAll(() => {
    source = makeDb(path.join(dir, 'others.db'), (db) => {
      db.exec(`
        CREATE TABLE keep (id INTEGER PRIMARY KEY, v TEXT);
        INSERT INTO keep VALUES (1, 'one'), (2, 'two');
        CREATE VIRTUAL TABLE old_fts USING fts4(body);
        INSERT INTO old_fts VALUES ('hello');
        CREATE VIRTUAL TABLE blind USING fts5(body, content = '');
        INSERT INTO blind(rowid, body) VALUES (1, 'gone');
      `);
    });
    // A module this SQLite does not have (the csv extension), as an application that loads it would leave it.
    const r = spawnSync(SQLITE3, [source, "PRAGMA writable_schema = ON; INSERT INTO sqlite_schema(type, name, tbl_name, rootpage, sql) VALUES ('table', 'feed', 'feed', 0, 'CREATE VIRTUAL TABLE feed USING csv(filename = ''feed.csv'')');"]);
    expect(r.status, r.stderr.toString()).toBe(0);
  });

  it('export names the first refused table, its module and how to leave it out; nothing is written', async () => {
    const out = path.join(dir, 'refused.ndjson');
    const err = await exportTo(source, { format: 'ndjson', output: out }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringContaining('"old_fts"'), hint: expect.stringContaining('--exclude-tables') });
    expect((err as Error).message).toContain('fts4');
    expect(fs.existsSync(out)).toBe(false);
  });

  it('a contentless FTS5 table is refused with its own reason', async () => {
    const err = await exportTo(source, { format: 'ndjson', output: path.join(dir, 'blind.ndjson'), tables: ['blind'] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringContaining('contentless') });
  });

  it('a table of an unknown module is refused by name', async () => {
    const err = await exportTo(source, { format: 'ndjson', output: path.join(dir, 'feed.ndjson'), tables: ['feed'] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringMatching(/"feed".*module csv/) });
  });

  it('--exclude-tables and --tables leave them out, and the rest travels exactly (CLI)', async () => {
    for (const args of [['--exclude-tables', 'old_fts,blind,feed'], ['--tables', 'keep']]) {
      const file = path.join(dir, `rest-${args[0]}.sql`);
      const into = path.join(dir, `rest-${args[0]}.db`);
      const r = cli(['export', source, '--format', 'sql', '-o', file, ...args]);
      expect(r.code, r.stderr).toBe(0);
      const back = cli(['import', file, '--into', into]);
      expect(back.code, back.stderr).toBe(0);
      const db = new Database(into, { readonly: true });
      try {
        expect(db.prepare('SELECT name FROM sqlite_schema ORDER BY name').pluck().all()).toEqual(['keep']);
        expect(db.prepare('SELECT v FROM keep ORDER BY id').pluck().all()).toEqual(['one', 'two']);
      } finally {
        db.close();
      }
    }
  });

  it('backup refuses them unless --tables leaves them out; the CLI says why and exits non-zero', async () => {
    const repoDir = path.join(dir, 'repo-others');
    await (await Repository.init(repoDir)).close();
    await expect(backup(source, repoDir)).rejects.toMatchObject({ code: 'E_UNSUPPORTED', hint: expect.stringContaining('--tables') });
    const r = cli(['backup', source, '--repo', repoDir]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('old_fts');
    const snap = await backup(source, repoDir, { tables: ['keep'] });
    expect(snap.tables.map((t) => t.name)).toEqual(['keep']);
    // --exclude-tables names what to leave out instead; a name that is not there is an error.
    const excluded = cli(['backup', source, '--repo', repoDir, '--exclude-tables', 'old_fts,blind,feed', '--json']);
    expect(excluded.code, excluded.stderr).toBe(0);
    expect(JSON.parse(excluded.stdout).tables.map((t: { name: string }) => t.name)).toEqual(['keep']);
    const unknown = cli(['backup', source, '--repo', repoDir, '--exclude-tables', 'nope']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('E_NOT_FOUND');
    const into = path.join(dir, 'others-restored.db');
    await restore('latest', repoDir, { into });
    const db = new Database(into, { readonly: true });
    try {
      expect(db.prepare('SELECT name FROM sqlite_schema ORDER BY name').pluck().all()).toEqual(['keep']);
      expect(db.prepare('SELECT v FROM keep ORDER BY id').pluck().all()).toEqual(['one', 'two']);
    } finally {
      db.close();
    }
  });

  it('import refuses a CREATE VIRTUAL TABLE of another module, and writes nothing', async () => {
    const file = path.join(dir, 'fts4.sql');
    fs.writeFileSync(file, 'BEGIN TRANSACTION;\nCREATE VIRTUAL TABLE t USING fts4(body);\nINSERT INTO t VALUES(\'x\');\nCOMMIT;\n');
    const into = path.join(dir, 'fts4.db');
    await expect(importFrom(file, { into })).rejects.toMatchObject({ code: 'E_UNSUPPORTED_SQL', message: expect.stringContaining('line 2') });
    expect(fs.existsSync(into)).toBe(false);
  });
});
