/**
 * Every error the issue names, through the real CLI (dist/cli/main.js): a non-zero exit, the stable
 * code and a hint on stderr, no stack trace, the target untouched and no temporary file left behind.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { compress as zstdCompress } from 'zstd-napi';
import { exportTo } from '../src/export.js';
import { CLI, cli, cliAsync, type CliResult, makeDb, removeDir, tempDir, VARIANTS, variantName, withDb, type Variant } from './export-import/helpers.js';
import { trickyDb } from './export-import/tricky.js';

let dir: string;
let source: string;
/** A database that exists before each failing import, to prove that a failure leaves it alone. */
let existing: string;

beforeAll(() => {
  expect(fs.existsSync(CLI), 'run `npm run build` first').toBe(true);
  dir = tempDir('errors');
  source = trickyDb(path.join(dir, 'source.db'));
  existing = makeDb(path.join(dir, 'existing.db'), (db) => {
    db.exec("CREATE TABLE keep(x); INSERT INTO keep VALUES ('precious')");
  });
});
afterAll(() => removeDir(dir));

const sha = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** The CLI failed the documented way: exit ≠ 0, `error CODE: message`, a hint, no stack trace. */
function expectFailure(r: CliResult, code: string): void {
  expect(r.code, r.stderr).not.toBe(0);
  expect(r.code).not.toBeNull();
  expect(r.stderr).toMatch(new RegExp(`^scriptorium: error ${code}: \\S.*$`, 'm'));
  expect(r.stderr).toMatch(/^ {2}hint: \S.*$/m);
  expect(r.stderr).not.toMatch(/^\s+at .+[:(]\d+:\d+\)?$/m); // no stack frames
  expect(r.stderr).not.toMatch(/looks like a bug|E_INTERNAL/);
}

/** Temporary files the export/import machinery writes beside its output (`.name.tmp-*`, `.name.import-*`). */
function tempFiles(d: string): string[] {
  return fs.readdirSync(d).filter((n) => /^\..+\.(tmp|import)-/.test(n));
}

/**
 * Imports `file` twice and expects `code` both times: into a fresh path (which must not appear) and
 * with --force over an existing database (which must keep every byte).
 */
function expectImportFailure(file: string, code: string, message?: RegExp): CliResult {
  const work = fs.mkdtempSync(path.join(dir, 'imp-'));
  const fresh = path.join(work, 'fresh.db');
  const r = cli(['import', file, '--into', fresh]);
  expectFailure(r, code);
  if (message) expect(r.stderr).toMatch(message);
  expect(fs.existsSync(fresh)).toBe(false);

  const target = path.join(work, 'target.db');
  fs.copyFileSync(existing, target);
  const before = sha(target);
  const forced = cli(['import', file, '--into', target, '--force']);
  expectFailure(forced, code);
  expect(sha(target)).toBe(before);
  withDb(target, (db) => expect(db.prepare('SELECT x FROM keep').pluck().get()).toBe('precious'));
  expect(tempFiles(work)).toEqual([]);
  expect(fs.readdirSync(work).sort()).toEqual(['target.db']);
  return r;
}

async function exportFile(variant: Variant, name = `export-${variantName(variant)}`): Promise<string> {
  const file = path.join(dir, name);
  if (!fs.existsSync(file)) await exportTo(source, { format: variant.format, compress: variant.compress, output: file });
  return file;
}

/** Rewrites one line of a text file (1-based), or drops it when `edit` returns null. */
function editLine(file: string, out: string, pick: (line: string, i: number) => boolean, edit: (line: string) => string | null): string {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const i = lines.findIndex(pick);
  expect(i, 'line to edit').toBeGreaterThanOrEqual(0);
  const replaced = edit(lines[i]!);
  if (replaced === null) lines.splice(i, 1);
  else {
    expect(replaced).not.toBe(lines[i]);
    lines[i] = replaced;
  }
  fs.writeFileSync(out, lines.join('\n'));
  return out;
}

describe('export errors', () => {
  it('a database another process holds a write lock on (rollback journal) is E_LOCKED, not called damaged; nothing written', async () => {
    const work = fs.mkdtempSync(path.join(dir, 'exp-'));
    const db = makeDb(path.join(work, 'held.db'), (d) => d.exec('PRAGMA journal_mode = DELETE; CREATE TABLE t (x); INSERT INTO t VALUES (1);'));
    const holder = new Database(db);
    holder.exec('BEGIN EXCLUSIVE');
    try {
      const out = path.join(work, 'out.ndjson');
      const r = await cliAsync(['export', db, '--format', 'ndjson', '-o', out]);
      expectFailure(r, 'E_LOCKED');
      expect(r.stderr).toContain('database is locked (another process held a write lock on it for longer than this waits)');
      expect(r.stderr).not.toContain('damaged');
      expect(fs.existsSync(out)).toBe(false);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
  }, 60_000);

  it('missing source: E_NOT_FOUND, no output file', () => {
    const work = fs.mkdtempSync(path.join(dir, 'exp-'));
    const out = path.join(work, 'out.json');
    const r = cli(['export', path.join(work, 'no-such.db'), '--format', 'json', '-o', out]);
    expectFailure(r, 'E_NOT_FOUND');
    expect(r.stderr).toContain('no-such.db');
    expect(fs.readdirSync(work)).toEqual([]);
  });

  it('a source that is not SQLite: E_NOT_SQLITE, no output file', () => {
    const work = fs.mkdtempSync(path.join(dir, 'exp-'));
    const notDb = path.join(work, 'notes.db');
    fs.writeFileSync(notDb, 'these are my notes, not a database\n'.repeat(20));
    const out = path.join(work, 'out.sql');
    for (const format of ['json', 'ndjson', 'sql']) {
      const r = cli(['export', notDb, '--format', format, '-o', out]);
      expectFailure(r, 'E_NOT_SQLITE');
      expect(r.stderr).toContain('notes.db');
    }
    expect(fs.readdirSync(work)).toEqual(['notes.db']);
  });

  it('a SQLite header over garbage: E_NOT_SQLITE, no output file', () => {
    const work = fs.mkdtempSync(path.join(dir, 'exp-'));
    const bad = path.join(work, 'bad.db');
    fs.writeFileSync(bad, Buffer.concat([Buffer.from('SQLite format 3\0', 'latin1'), Buffer.alloc(4096, 0x5a)]));
    const r = cli(['export', bad, '--format', 'ndjson', '-o', path.join(work, 'out.ndjson')]);
    expectFailure(r, 'E_NOT_SQLITE');
    expect(fs.readdirSync(work)).toEqual(['bad.db']);
  });

  it('a damaged page deep in a table: E_CORRUPT with a hint, no output, on one reader and on background readers', () => {
    const work = fs.mkdtempSync(path.join(dir, 'exp-'));
    const db = makeDb(path.join(work, 'damaged.db'), (d) => {
      d.exec('CREATE TABLE small (id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT)');
      const small = d.prepare('INSERT INTO small (v) VALUES (?)');
      const big = d.prepare('INSERT INTO big (v) VALUES (?)');
      d.transaction(() => {
        for (let i = 0; i < 20_000; i++) small.run(`row ${i} ${'x'.repeat(200)}`);
        for (let i = 0; i < 300; i++) big.run(`${i}`.padEnd(20_000, 'y')); // overflow pages
      })();
    });
    // Break the chain pointer of one overflow page in the middle of `big`. count(*) reads no overflow
    // page, so only the readers of the rows meet the damage.
    const [page, size] = withDb(db, (d) => [
      Number(d.prepare("SELECT pageno FROM dbstat WHERE name = 'big' AND pagetype = 'overflow' LIMIT 1 OFFSET 800").pluck().get()),
      Number(d.pragma('page_size', { simple: true })),
    ]);
    const fd = fs.openSync(db, 'r+');
    fs.writeSync(fd, Buffer.from([0xff, 0xff, 0xff, 0xf0]), 0, 4, (page - 1) * size);
    fs.closeSync(fd);
    for (const readers of ['1', '2']) {
      const env = { ...process.env, NO_COLOR: '1', SCRIPTORIUM_READERS: readers };
      for (const format of ['ndjson', 'sql']) {
        const r = cli(['export', db, '--format', format, '-o', path.join(work, `out.${format}`)], { env });
        expectFailure(r, 'E_CORRUPT');
        expect(r.stderr, `${readers} reader(s)`).toContain('integrity_check');
      }
      const repo = path.join(work, `repo-${readers}`);
      expect(cli(['init', repo], { env }).code).toBe(0);
      const b = cli(['backup', db, '--repo', repo], { env });
      expectFailure(b, 'E_CORRUPT');
      expect(fs.existsSync(path.join(repo, 'snapshots')) ? fs.readdirSync(path.join(repo, 'snapshots')) : []).toEqual([]);
    }
    expect(fs.readdirSync(work).filter((f) => !f.startsWith('repo-'))).toEqual(['damaged.db']);
  });

  it('unknown format: E_UNKNOWN_FORMAT naming it, exit 2, no output file', () => {
    const work = fs.mkdtempSync(path.join(dir, 'exp-'));
    const r = cli(['export', source, '--format', 'xml', '-o', path.join(work, 'out.xml')]);
    expectFailure(r, 'E_UNKNOWN_FORMAT');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('"xml"');
    expect(fs.readdirSync(work)).toEqual([]);
  });

  it('a format or compression named like an Object property (toString, __proto__): E_UNKNOWN_*, exit 2, nothing written', () => {
    const work = fs.mkdtempSync(path.join(dir, 'exp-'));
    for (const name of ['toString', '__proto__', 'constructor']) {
      const r = cli(['export', source, '--format', name, '-o', path.join(work, 'out')]);
      expectFailure(r, 'E_UNKNOWN_FORMAT');
      expect(r.code).toBe(2);
      const init = cli(['init', '--repo', path.join(work, 'repo'), '--compression', name]);
      expectFailure(init, 'E_UNKNOWN_COMPRESSION');
      expect(init.code).toBe(2);
    }
    expect(fs.readdirSync(work)).toEqual([]);
  });

  it('a virtual table of a module that is not carried (FTS4; FTS5 and R*Tree are): E_UNSUPPORTED with a hint to exclude it', () => {
    const work = fs.mkdtempSync(path.join(dir, 'exp-'));
    const db = makeDb(path.join(work, 'fts.db'), (x) => x.exec("CREATE TABLE plain(a); CREATE VIRTUAL TABLE docs USING fts4(body); INSERT INTO docs VALUES ('hello')"));
    const r = cli(['export', db, '--format', 'ndjson', '-o', path.join(work, 'out.ndjson')]);
    expectFailure(r, 'E_UNSUPPORTED');
    expect(r.stderr).toMatch(/docs/);
    expect(r.stderr).toMatch(/hint: .*--exclude-tables/);
    expect(fs.readdirSync(work)).toEqual(['fts.db']);
  });

  it('unknown compression: E_UNKNOWN_COMPRESSION, exit 2, no output file', () => {
    const work = fs.mkdtempSync(path.join(dir, 'exp-'));
    const r = cli(['export', source, '--format', 'sql', '--compress', 'xz', '-o', path.join(work, 'out.sql.xz')]);
    expectFailure(r, 'E_UNKNOWN_COMPRESSION');
    expect(r.code).toBe(2);
    expect(fs.readdirSync(work)).toEqual([]);
  });

  it('unknown table in --tables: E_NOT_FOUND listing the real tables', () => {
    const work = fs.mkdtempSync(path.join(dir, 'exp-'));
    const r = cli(['export', source, '--format', 'json', '--tables', 'pairs,nope', '-o', path.join(work, 'out.json')]);
    expectFailure(r, 'E_NOT_FOUND');
    expect(r.stderr).toMatch(/"nope"/);
    expect(r.stderr).toMatch(/hint: .*"pairs"/);
    expect(fs.readdirSync(work)).toEqual([]);
  });
});

describe('import errors', () => {
  it('missing export file: E_NOT_FOUND', () => {
    expectImportFailure(path.join(dir, 'no-such-export.ndjson'), 'E_NOT_FOUND', /no-such-export/);
  });

  it('a file that is no export: E_UNKNOWN_FORMAT (plain, gzip, zstd, empty)', () => {
    const text = Buffer.from('hello, this is not an export\n');
    const plain = path.join(dir, 'not-export.txt');
    fs.writeFileSync(plain, text);
    expectImportFailure(plain, 'E_UNKNOWN_FORMAT');
    const gz = path.join(dir, 'not-export.gz');
    fs.writeFileSync(gz, zlib.gzipSync(text));
    expectImportFailure(gz, 'E_UNKNOWN_FORMAT');
    const zst = path.join(dir, 'not-export.zst');
    fs.writeFileSync(zst, zstdCompress(text));
    expectImportFailure(zst, 'E_UNKNOWN_FORMAT');
    const empty = path.join(dir, 'empty.sql');
    fs.writeFileSync(empty, '');
    expect(expectImportFailure(empty, 'E_UNKNOWN_FORMAT').stderr).toMatch(/hint: .*empty/i);
    // A SQLite database is not an export either.
    expectImportFailure(source, 'E_UNKNOWN_FORMAT');
  });

  describe('truncated file: E_TRUNCATED wherever it is cut', () => {
    it.each(VARIANTS.map((v) => [variantName(v), v] as [string, Variant]))('%s', async (name, variant) => {
      const full = fs.readFileSync(await exportFile(variant));
      for (const fraction of [0.1, 0.5, 0.9]) {
        const cut = path.join(dir, `cut-${name}-${fraction}`);
        fs.writeFileSync(cut, full.subarray(0, Math.floor(full.length * fraction)));
        expectImportFailure(cut, 'E_TRUNCATED');
      }
      if (variant.compress === 'none') {
        // Cut at a line boundary: whole lines, but the end is missing.
        const lines = full.toString('utf8').split('\n');
        const cut = path.join(dir, `cut-${name}-lines`);
        fs.writeFileSync(cut, `${lines.slice(0, Math.floor(lines.length / 2)).join('\n')}\n`);
        expectImportFailure(cut, 'E_TRUNCATED');
      }
    });
  });

  describe('corrupted rows', () => {
    it('ndjson: a value changed inside a row (still valid JSON) → E_DIGEST_MISMATCH', async () => {
      const file = await exportFile({ format: 'ndjson', compress: 'none' });
      const out = editLine(file, path.join(dir, 'flip.ndjson'), (l) => l.startsWith('[3,-9223372036854775808,'), (l) => l.replace('[3,-9223372036854775808,', '[3,-9223372036854775807,'));
      expectImportFailure(out, 'E_DIGEST_MISMATCH', /we\\?"ird 'table'; --/);
    });

    it('ndjson: a row deleted or a value added → E_DIGEST_MISMATCH', async () => {
      const file = await exportFile({ format: 'ndjson', compress: 'none' });
      expectImportFailure(editLine(file, path.join(dir, 'drop-row.ndjson'), (l) => l.startsWith('[3,'), () => null), 'E_DIGEST_MISMATCH');
      expectImportFailure(editLine(file, path.join(dir, 'text-row.ndjson'), (l) => l.startsWith('["Even",2,'), (l) => l.replace('["Even",2,', '["Even ",2,')), 'E_DIGEST_MISMATCH');
    });

    it('ndjson: a row that no longer parses → E_CORRUPT', async () => {
      const file = await exportFile({ format: 'ndjson', compress: 'none' });
      expectImportFailure(editLine(file, path.join(dir, 'bad-row.ndjson'), (l) => l.startsWith('[3,'), (l) => l.replace('[3,', '[3,,')), 'E_CORRUPT');
      expectImportFailure(editLine(file, path.join(dir, 'bad-row2.ndjson'), (l) => l.startsWith('[5,'), (l) => l.slice(0, -1)), 'E_CORRUPT');
      expectImportFailure(editLine(file, path.join(dir, 'bad-ctl.ndjson'), (l) => l.startsWith('{"end":"nokey"'), (l) => l.slice(1)), 'E_CORRUPT');
    });

    it('json: a value changed inside a row → E_DIGEST_MISMATCH; a broken row → E_CORRUPT', async () => {
      const file = await exportFile({ format: 'json', compress: 'none' });
      expectImportFailure(editLine(file, path.join(dir, 'flip.json'), (l) => l.includes('"w5"'), (l) => l.replace('"w5"', '"w6"')), 'E_DIGEST_MISMATCH');
      expectImportFailure(editLine(file, path.join(dir, 'bad.json'), (l) => l.includes('"w5"'), (l) => l.replace('"w5"', '"w5')), 'E_CORRUPT');
    });

    it('sql: a value changed inside an INSERT → E_DIGEST_MISMATCH', async () => {
      const file = await exportFile({ format: 'sql', compress: 'none' });
      expectImportFailure(editLine(file, path.join(dir, 'flip.sql'), (l) => l.includes("'w5'"), (l) => l.replace("'w5'", "'w6'")), 'E_DIGEST_MISMATCH');
    });

    it('a changed value inside a gzip or zstd export is caught too', async () => {
      for (const compress of ['gzip', 'zstd'] as const) {
        const text = fs.readFileSync(await exportFile({ format: 'ndjson', compress: 'none' }), 'utf8').replace('"w5"', '"w6"');
        const out = path.join(dir, `flip-${compress}.bin`);
        fs.writeFileSync(out, compress === 'gzip' ? zlib.gzipSync(text) : zstdCompress(Buffer.from(text)));
        expectImportFailure(out, 'E_DIGEST_MISMATCH');
      }
    });

    it('damaged compressed bytes → E_CORRUPT or E_TRUNCATED, never an internal error', async () => {
      for (const compress of ['gzip', 'zstd'] as const) {
        const bytes = Buffer.from(fs.readFileSync(await exportFile({ format: 'ndjson', compress })));
        for (let i = Math.floor(bytes.length / 3); i < Math.floor(bytes.length / 3) + 64; i++) bytes[i] = bytes[i]! ^ 0xa5;
        const out = path.join(dir, `damaged-${compress}.bin`);
        fs.writeFileSync(out, bytes);
        const r = cli(['import', out, '--into', path.join(dir, `damaged-${compress}.db`)]);
        expect(r.stderr).toMatch(/^scriptorium: error (E_CORRUPT|E_TRUNCATED|E_DIGEST_MISMATCH): /m);
        expectFailure(r, '(E_CORRUPT|E_TRUNCATED|E_DIGEST_MISMATCH)');
        expect(fs.existsSync(path.join(dir, `damaged-${compress}.db`))).toBe(false);
      }
    });
  });

  describe('digest mismatch', () => {
    it('ndjson: the recorded digest or row count edited → E_DIGEST_MISMATCH', async () => {
      const file = await exportFile({ format: 'ndjson', compress: 'none' });
      const sha256 = editLine(file, path.join(dir, 'digest.ndjson'), (l) => l.startsWith('{"end":"pairs"'), (l) => l.replace(/"sha256":"(.)/, (_m, c: string) => `"sha256":"${c === '0' ? '1' : '0'}`));
      expectImportFailure(sha256, 'E_DIGEST_MISMATCH', /"pairs"/);
      const rows = editLine(file, path.join(dir, 'rows.ndjson'), (l) => l.startsWith('{"end":"pairs"'), (l) => l.replace('"rows":1200', '"rows":1199'));
      expectImportFailure(rows, 'E_DIGEST_MISMATCH', /expected 1199 rows/);
    });

    it('json and sql: the recorded digest edited → E_DIGEST_MISMATCH', async () => {
      const json = await exportFile({ format: 'json', compress: 'none' });
      expectImportFailure(editLine(json, path.join(dir, 'digest.json'), (l) => l.startsWith('"digests":'), (l) => l.replace(/"sha256":"(.)/, (_m, c: string) => `"sha256":"${c === '0' ? '1' : '0'}`)), 'E_DIGEST_MISMATCH');
      const sql = await exportFile({ format: 'sql', compress: 'none' });
      expectImportFailure(editLine(sql, path.join(dir, 'digest.sql'), (l) => l.startsWith('-- scriptorium:digest {"table":"pairs"'), (l) => l.replace(/"sha256":"(.)/, (_m, c: string) => `"sha256":"${c === '0' ? '1' : '0'}`)), 'E_DIGEST_MISMATCH');
      // A digest comment that no longer parses is damage, not an internal error.
      expectImportFailure(editLine(sql, path.join(dir, 'digest-broken.sql'), (l) => l.startsWith('-- scriptorium:digest {"table":"pairs"'), (l) => l.replace('{"table":"pairs"', '{"table":"pairs",}')), 'E_CORRUPT', /line \d+: .*digest/);
    });
  });

  describe('unsupported statement in a SQL file: E_UNSUPPORTED_SQL naming the line, nothing executed', () => {
    const evil = (d: string): string[] => [
      'DROP TABLE audit;',
      "INSERT INTO audit VALUES(randomblob(5), 'x');",
      `ATTACH DATABASE '${d}/attached.db' AS x;`,
      `VACUUM INTO '${d}/vacuumed.db';`,
      "SELECT load_extension('/nonexistent/ext');",
      'INSERT INTO audit SELECT * FROM audit;',
      'CREATE TABLE evil AS SELECT 1;',
      'UPDATE audit SET msg = 1;',
      'PRAGMA writable_schema=ON;',
      "INSERT INTO audit VALUES(1, 'a' || (SELECT 2));",
      "INSERT INTO audit VALUES(1, 'x') -- ';\nATTACH 'x' AS y; --';",
      "INSERT INTO nowhere VALUES(1);",
    ];

    it.each(evil('DIR').map((s) => [s.split('\n')[0]!]))('%s', async (shown) => {
      const statement = evil(dir).find((s) => s.split('\n')[0] === shown.replace('DIR', dir))!;
      const file = await exportFile({ format: 'sql', compress: 'none' });
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      const at = lines.findIndex((l) => l.startsWith('INSERT INTO "nokey"')) + 1; // just before the nokey rows
      expect(at).toBeGreaterThan(1);
      lines.splice(at - 1, 0, statement);
      const out = path.join(dir, `evil-${evil('DIR').findIndex((s) => s.split('\n')[0] === shown)}.sql`);
      fs.writeFileSync(out, lines.join('\n'));
      expectImportFailure(out, 'E_UNSUPPORTED_SQL', new RegExp(`^scriptorium: error E_UNSUPPORTED_SQL: sql: line ${at}: `, 'm'));
      expect(fs.existsSync(path.join(dir, 'attached.db'))).toBe(false);
      expect(fs.existsSync(path.join(dir, 'vacuumed.db'))).toBe(false);
    });

    it('also in a sqlite3-style script piped through gzip', () => {
      const script = "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE t(a);\nINSERT INTO t VALUES(1);\n\nDELETE FROM t;\nCOMMIT;\n";
      const out = path.join(dir, 'delete.sql.gz');
      fs.writeFileSync(out, zlib.gzipSync(script));
      expectImportFailure(out, 'E_UNSUPPORTED_SQL', /line 6: .*DELETE FROM t/);
    });
  });

  describe('schema SQL in a json or ndjson file runs only if it is one plain CREATE statement', () => {
    /** The ndjson export with its first table's CREATE statement or the header's objects replaced. */
    const editNdjson = async (name: string, edit: (control: Record<string, any>) => void, pick: (line: string) => boolean): Promise<string> => {
      const file = await exportFile({ format: 'ndjson', compress: 'none' });
      return editLine(file, path.join(dir, name), pick, (l) => {
        const control = JSON.parse(l) as Record<string, any>;
        edit(control);
        return JSON.stringify(control);
      });
    };

    it('a second statement after a CREATE TABLE (COMMIT; ATTACH ...) → E_UNSUPPORTED_SQL, nothing attached', async () => {
      const pwned = path.join(dir, 'pwned.db');
      const file = await editNdjson('smuggle-table.ndjson', (c) => {
        c['table'].sql = `${c['table'].sql}; COMMIT; ATTACH '${pwned}' AS p; CREATE TABLE p.x(y); BEGIN`;
      }, (l) => l.startsWith('{"table":{"name":"audit"'));
      expectImportFailure(file, 'E_UNSUPPORTED_SQL', /more than one statement/);
      expect(fs.existsSync(pwned)).toBe(false);
    });

    it('a table whose "CREATE" is something else (PRAGMA, DROP, CREATE TABLE AS SELECT, another name) → E_UNSUPPORTED_SQL', async () => {
      for (const [i, sql] of ['PRAGMA writable_schema = ON', 'DROP TABLE IF EXISTS audit', 'CREATE TABLE audit AS SELECT 1 AS id, 2 AS msg', 'CREATE TABLE other(id INTEGER PRIMARY KEY, msg TEXT)'].entries()) {
        const file = await editNdjson(`bad-create-${i}.ndjson`, (c) => {
          c['table'].sql = sql;
        }, (l) => l.startsWith('{"table":{"name":"audit"'));
        expectImportFailure(file, 'E_UNSUPPORTED_SQL', /"audit"|more than one/);
      }
    });

    it('an index, view or trigger that is not one CREATE statement → E_UNSUPPORTED_SQL', async () => {
      const vacuumed = path.join(dir, 'vacuumed-by-object.db');
      for (const [i, sql] of [`CREATE INDEX expr_idx ON pairs(a); COMMIT; VACUUM INTO '${vacuumed}'; BEGIN`, 'DELETE FROM pairs', 'CREATE TABLE expr_idx(x)'].entries()) {
        const file = await editNdjson(`bad-object-${i}.ndjson`, (c) => {
          const o = (c['objects'] as { name: string; sql: string }[]).find((x) => x.name === 'expr_idx')!;
          o.sql = sql;
        }, (l) => l.startsWith('{"format":"scriptorium-ndjson"'));
        expectImportFailure(file, 'E_UNSUPPORTED_SQL');
      }
      expect(fs.existsSync(vacuumed)).toBe(false);
      // The same in the json document's export_info.
      const json = await exportFile({ format: 'json', compress: 'none' });
      const doc = fs.readFileSync(json, 'utf8').replace('"sql":"CREATE INDEX expr_idx ON pairs(lower(a), b * 2)"', '"sql":"CREATE INDEX expr_idx ON pairs(a); DELETE FROM pairs"');
      expect(doc).toContain('DELETE FROM pairs');
      fs.writeFileSync(path.join(dir, 'bad-object.json'), doc);
      expectImportFailure(path.join(dir, 'bad-object.json'), 'E_UNSUPPORTED_SQL');
    });
  });

  describe('target exists', () => {
    it('refuses a non-empty target with E_TARGET_EXISTS and leaves it alone; --force replaces it', async () => {
      const file = await exportFile({ format: 'ndjson', compress: 'zstd' });
      const work = fs.mkdtempSync(path.join(dir, 'target-'));
      const target = path.join(work, 'app.db');
      fs.copyFileSync(existing, target);
      const before = sha(target);
      const r = cli(['import', file, '--into', target]);
      expectFailure(r, 'E_TARGET_EXISTS');
      expect(r.stderr).toMatch(/--force/);
      expect(sha(target)).toBe(before);
      expect(fs.readdirSync(work)).toEqual(['app.db']);

      const ok = cli(['import', file, '--into', target, '--force', '--quiet']);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stderr).toBe('');
      expect(fs.readdirSync(work)).toEqual(['app.db']);
      withDb(target, (db) => {
        expect(db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'keep'").pluck().get()).toBe(0n);
        expect(db.prepare('SELECT count(*) FROM pairs').pluck().get()).toBe(1200n);
      });
    });

    it('an empty target file is not "existing": import fills it without --force', async () => {
      const file = await exportFile({ format: 'sql', compress: 'gzip' });
      const work = fs.mkdtempSync(path.join(dir, 'target-'));
      const target = path.join(work, 'empty.db');
      fs.writeFileSync(target, '');
      const r = cli(['import', file, '--into', target, '--quiet']);
      expect(r.code, r.stderr).toBe(0);
      withDb(target, (db) => expect(db.prepare('SELECT count(*) FROM pairs').pluck().get()).toBe(1200n));
    });

    it('a directory as target: E_TARGET_EXISTS', async () => {
      const file = await exportFile({ format: 'json', compress: 'none' });
      const work = fs.mkdtempSync(path.join(dir, 'target-'));
      const r = cli(['import', file, '--into', work, '--force']);
      expectFailure(r, 'E_TARGET_EXISTS');
      expect(fs.readdirSync(work)).toEqual([]);
    });
  });
});
