/**
 * Nothing from a repository or an input runs as given: schema SQL from manifests, ndjson and json
 * headers and sql scripts runs only if it is exactly the plain CREATE of the object it names
 * (src/engines/sqlite/schema-guard.ts), and the connections that run it are guarded by the
 * extension's authorizer (native/scriptorium_guard.inc). Against real files, the real CLI
 * (dist/cli/main.js) and real SQLite connections.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schemaProblem, type ClaimedObject } from '../src/engines/sqlite/schema-guard.js';
import { isGuarded } from '../src/engines/sqlite/extension.js';
import { SqliteTarget } from '../src/engines/sqlite/sqlite-target.js';
import { exportTo } from '../src/export.js';
import { importFrom } from '../src/import.js';
import { backup } from '../src/repository/backup.js';
import { decodeManifest, encodeManifest, snapshotKey, type SnapshotManifest } from '../src/repository/manifest.js';
import { init } from '../src/repository/operations.js';
import { CLI, cli, makeDb, removeDir, tempDir, withDb, type CliResult } from './export-import/helpers.js';

const EXTENSION = process.env.SCRIPTORIUM_NO_EXTENSION !== '1' && fs.existsSync(fileURLToPath(new URL('../build/Release/scriptorium_sqlite.node', import.meta.url)));

let dir: string;
beforeAll(() => {
  expect(fs.existsSync(CLI), 'run `npm run build` first').toBe(true);
  dir = tempDir('schema-guard');
});
afterAll(() => removeDir(dir));

/** The CLI failed the documented way with `code`: exit ≠ 0, the code on stderr, never an internal error. */
function expectFailure(r: CliResult, code: string, message?: RegExp): void {
  expect(r.code, r.stderr).not.toBe(0);
  expect(r.code).not.toBeNull();
  expect(r.stderr).toMatch(new RegExp(`^scriptorium: error ${code}: \\S.*$`, 'm'));
  expect(r.stderr).not.toMatch(/looks like a bug|E_INTERNAL/);
  if (message) expect(r.stderr).toMatch(message);
}

/** A database with one table of each kind of object: the index, view and trigger are on `audit`. */
function sourceDb(file: string): string {
  return makeDb(file, (db) => {
    db.exec(`
      CREATE TABLE audit(id INTEGER PRIMARY KEY, msg TEXT);
      CREATE TABLE pairs(a TEXT, b INTEGER, PRIMARY KEY (a, b)) WITHOUT ROWID;
      CREATE INDEX audit_msg ON audit(msg);
      CREATE VIEW recent AS SELECT * FROM audit WHERE id > 1;
      CREATE TRIGGER audit_log AFTER INSERT ON audit BEGIN INSERT INTO pairs VALUES (new.msg, new.id); END;
    `);
    const ins = db.prepare('INSERT INTO audit(msg) VALUES (?)');
    for (let i = 0; i < 30; i++) ins.run(`message ${i}; ATTACH 'x' AS y`);
  });
}

/** An unrelated database with a table the attacks aim at: it must be there, unchanged, after each. */
function bystander(name: string): string {
  return makeDb(path.join(dir, name), (db) => db.exec("CREATE TABLE important(x); INSERT INTO important VALUES ('keep me')"));
}

function expectBystanderIntact(file: string): void {
  withDb(file, (db) => expect(db.prepare('SELECT x FROM important').pluck().all()).toEqual(['keep me']));
  expect(fs.readdirSync(path.dirname(file)).filter((n) => n.startsWith(path.basename(file)) && n !== path.basename(file))).toEqual([]);
}

describe('schemaProblem: exactly the plain CREATE of the object it names', () => {
  const accepted: [ClaimedObject, string][] = [
    [{ type: 'table', name: 'x' }, 'CREATE TABLE x(a)'],
    [{ type: 'table', name: 'x' }, "CREATE TABLE \"x\"(a TEXT PRIMARY KEY DEFAULT 'a;b', b INT CHECK (b > 0), c TEXT AS (a || ';')) WITHOUT ROWID, STRICT"],
    [{ type: 'table', name: 'x' }, 'CREATE TABLE main.x(a);'],
    [{ type: 'table', name: 'x' }, 'CREATE TABLE IF NOT EXISTS x(a) -- a note; ATTACH'],
    [{ type: 'table', name: 'we"ird' }, 'CREATE TABLE "we""ird"([a b], `c``d`)'],
    [{ type: 'table', name: 'f_data' }, "CREATE TABLE 'f_data'(id INTEGER PRIMARY KEY, block BLOB)"],
    [{ type: 'table', name: 'ft' }, "CREATE VIRTUAL TABLE ft USING fts5(a, b, content='', tokenize='porter')"],
    [{ type: 'table', name: 'ft' }, 'CREATE VIRTUAL TABLE ft USING FTS5(a)'],
    [{ type: 'table', name: 'r' }, 'CREATE VIRTUAL TABLE r USING rtree(id, x0, x1)'],
    [{ type: 'table', name: 'r' }, 'CREATE VIRTUAL TABLE r USING rtree_i32(id, x0, x1)'],
    [{ type: 'index', name: 'i', table: 't' }, 'CREATE UNIQUE INDEX i ON t(lower(a), b * 2) WHERE a IS NOT NULL'],
    [{ type: 'index', name: 'i', table: 't' }, 'CREATE INDEX i ON T(a)'],
    [{ type: 'view', name: 'v' }, "CREATE VIEW v(a) AS SELECT ';' FROM t -- trailing note"],
    [{ type: 'view', name: 'v' }, 'CREATE VIEW v AS WITH c AS (SELECT 1) SELECT * FROM c'],
    [{ type: 'trigger', name: 'tr', table: 't' }, "CREATE TRIGGER tr AFTER INSERT ON main.t FOR EACH ROW WHEN new.a > 0 BEGIN UPDATE t SET a = CASE WHEN 1 THEN 2 END; INSERT INTO u VALUES(';'); END"],
    [{ type: 'trigger', name: 'tr', table: 't' }, 'CREATE TRIGGER tr INSTEAD OF UPDATE OF a, b ON t BEGIN DELETE FROM u; END;'],
  ];
  it.each(accepted)('accepts %j: %s', (claimed, sql) => {
    expect(schemaProblem(claimed, sql)).toBeUndefined();
  });

  const refused: [ClaimedObject, string, RegExp][] = [
    [{ type: 'table', name: 'x' }, "CREATE TABLE x(a); ATTACH DATABASE '/tmp/elsewhere.db' AS v", /more than one statement/],
    [{ type: 'table', name: 'x' }, 'CREATE TABLE x(a);; DROP TABLE y', /more than one statement/],
    [{ type: 'table', name: 'x' }, "ATTACH DATABASE '/tmp/elsewhere.db' AS x", /does not begin with CREATE/],
    [{ type: 'table', name: 'x' }, 'PRAGMA writable_schema = ON', /does not begin with CREATE/],
    [{ type: 'table', name: 'x' }, 'CREATE TABLE x AS SELECT 1 AS a', /AS SELECT/],
    [{ type: 'table', name: 'x' }, 'CREATE TABLE y(a)', /creates "y"/],
    [{ type: 'table', name: 'x' }, 'CREATE TEMP TABLE x(a)', /TEMP/],
    [{ type: 'table', name: 'x' }, 'CREATE TABLE v.x(a)', /schema "v"/],
    [{ type: 'table', name: 'x' }, 'CREATE INDEX x ON t(a)', /something else/],
    [{ type: 'table', name: 'x' }, 'CREATE VIRTUAL TABLE x USING fts4(a)', /fts4/],
    [{ type: 'table', name: 'x' }, "CREATE VIRTUAL TABLE x USING fts5(a); ATTACH 'f' AS g", /more than one statement/],
    [{ type: 'table', name: 'x' }, 'CREATE TABLE x(a DEFAULT ?)', /parameter/],
    [{ type: 'table', name: 'x' }, "CREATE TABLE x(a 'unclosed)", /not closed/],
    [{ type: 'table', name: 'x' }, 'CREATE TABLE x(a)\0; DROP TABLE y', /NUL/],
    [{ type: 'index', name: 'i', table: 't' }, 'CREATE INDEX i ON u(a)', /on table "u"/],
    [{ type: 'index', name: 'i', table: 't' }, 'CREATE INDEX i ON t(a); DROP TABLE t', /more than one statement/],
    [{ type: 'view', name: 'v' }, "CREATE VIEW v AS SELECT 1; ATTACH 'f' AS g", /more than one statement/],
    [{ type: 'view', name: 'v' }, 'CREATE TABLE v(a)', /something else/],
    [{ type: 'trigger', name: 'tr', table: 't' }, "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END; ATTACH 'x' AS y", /more than one statement/],
    [{ type: 'trigger', name: 'tr', table: 't' }, 'CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END; SELECT 2; END', /more than one statement/],
    [{ type: 'trigger', name: 'tr', table: 't' }, "CREATE TRIGGER tr AFTER INSERT ON t BEGIN ATTACH 'x' AS y; END", /a trigger cannot/],
    [{ type: 'trigger', name: 'tr', table: 't' }, 'CREATE TRIGGER tr AFTER INSERT ON u BEGIN SELECT 1; END', /on "u"/],
    [{ type: 'trigger', name: 'tr', table: 't' }, 'CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END', /TEMP/],
  ];
  it.each(refused)('refuses %j: %s', (claimed, sql, reason) => {
    const problem = schemaProblem(claimed, sql);
    expect(problem).toMatch(new RegExp(`^not a plain CREATE ${claimed.type.toUpperCase()} statement \\(`));
    expect(problem).toMatch(reason);
  });

  it('refuses what is not text, and a claimed type that is not a schema object', () => {
    expect(schemaProblem({ type: 'table', name: 'x' }, 42)).toMatch(/not text/);
    expect(schemaProblem({ type: 'table', name: 7 as unknown as string }, 'CREATE TABLE x(a)')).toMatch(/name is not text/);
    expect(schemaProblem({ type: 'module' as 'table', name: 'x' }, 'CREATE TABLE x(a)')).toMatch(/not table, index, view or trigger/);
    // Bounded: a statement of millions of tokens is refused before it costs memory.
    expect(schemaProblem({ type: 'table', name: 'x' }, `CREATE TABLE x(a CHECK (${'('.repeat(2_000_000)}1${')'.repeat(2_000_000)}))`)).toMatch(/more than 1000000 tokens/);
    expect(schemaProblem({ type: 'table', name: 'x' }, `CREATE TABLE x(a) -- ${'x'.repeat(17 << 20)}`)).toMatch(/longer than 16 MiB/);
  });

  it('agrees with SQLite on where each accepted statement ends: it prepares as one statement', () => {
    const db = new Database(':memory:');
    try {
      db.exec('CREATE TABLE t(a, b); CREATE TABLE u(a, b)');
      for (const [claimed, sql] of accepted) {
        if (claimed.type !== 'table' || sql.includes('VIRTUAL')) continue;
        expect(() => db.prepare(sql), sql).not.toThrow(); // better-sqlite3 refuses a second statement after the first
      }
    } finally {
      db.close();
    }
  });
});

describe.runIf(EXTENSION)('the guard on SqliteTarget connections (native/scriptorium_guard.inc)', () => {
  const open = (name: string): SqliteTarget => SqliteTarget.create(path.join(dir, name));

  it('refuses ATTACH, load_extension(), readfile(), writable_schema and pragmas outside the list; no file appears', () => {
    const target = open('guarded-1.db');
    const elsewhere = path.join(dir, 'attached-by-guard-test.db');
    try {
      expect(isGuarded(target.db)).toBe(true);
      for (const sql of [
        `ATTACH DATABASE '${elsewhere}' AS v`,
        "SELECT load_extension('/nonexistent/evil.so')",
        'PRAGMA writable_schema = 1',
        'PRAGMA trusted_schema = ON',
        'PRAGMA integrity_check',
        'PRAGMA schema_version = 7',
        'CREATE TEMP TABLE t(a)',
        'CREATE VIRTUAL TABLE g USING fts4(a)',
        'SELECT scriptorium_packer(0, 3)',
      ]) {
        expect(() => target.db.prepare(sql).run(), sql).toThrow(/not authorized|authorization denied/);
      }
      // readfile() is not even compiled into better-sqlite3's SQLite; it must stay unavailable.
      expect(() => target.db.prepare("SELECT readfile('/etc/passwd')").get()).toThrow(/not authorized|no such function/);
      expect(fs.existsSync(elsewhere)).toBe(false);
      expect(target.db.pragma('trusted_schema', { simple: true })).toBe(0n);
    } finally {
      target.close();
    }
  });

  it('lets our own work through: the pragmas SqliteTarget and the schema reader run, FTS5 and R*Tree tables', () => {
    const target = open('guarded-2.db');
    try {
      target.createTables([
        { name: 'ft', sql: 'CREATE VIRTUAL TABLE ft USING fts5(body)', virtual: { module: 'fts5' } },
        { name: 'box', sql: 'CREATE VIRTUAL TABLE box USING rtree(id, x0, x1)', virtual: { module: 'rtree' } },
        { name: 'plain', sql: 'CREATE TABLE plain(a INTEGER PRIMARY KEY, b TEXT CHECK (length(b) < 100))' },
      ]);
      target.db.prepare("INSERT INTO ft VALUES ('the quick brown fox')").run();
      target.db.prepare('INSERT INTO box VALUES (1, 0, 5)').run();
      target.exec("INSERT INTO plain VALUES (1, 'x')");
      expect(target.db.prepare("SELECT body FROM ft WHERE ft MATCH 'quick'").pluck().get()).toBe('the quick brown fox');
      expect(target.db.prepare('SELECT id FROM box WHERE x0 < 3').pluck().get()).toBe(1n);
      // The schema reader's pragmas (it refuses virtual tables itself, so they are run here directly).
      expect((target.db.pragma('main.table_xinfo(plain)') as { name: string }[]).map((c) => c.name)).toEqual(['a', 'b']);
      expect((target.db.pragma('main.table_list') as unknown[]).length).toBeGreaterThan(3);
      expect(target.db.pragma('index_list(plain)')).toEqual([]);
      target.endLoad();
      target.finish([
        { type: 'index', name: 'plain_b', table: 'plain', sql: 'CREATE INDEX plain_b ON plain(lower(b))' },
        { type: 'view', name: 'pv', table: 'pv', sql: 'CREATE VIEW pv AS SELECT * FROM plain' },
        { type: 'trigger', name: 'pt', table: 'plain', sql: "CREATE TRIGGER pt AFTER INSERT ON plain BEGIN INSERT INTO ft VALUES ('fired'); END" },
      ], { userVersion: 7, applicationId: 9 });
      target.close();
      withDb(path.join(dir, 'guarded-2.db'), (db) => {
        expect(db.pragma('user_version', { simple: true })).toBe(7n);
        expect(db.prepare("SELECT count(*) FROM sqlite_schema WHERE name IN ('plain_b', 'pv', 'pt')").pluck().get()).toBe(3n);
        expect(db.prepare('SELECT count(*) FROM pv').pluck().get()).toBe(1n); // the view works on an ordinary connection
      });
    } finally {
      target.close();
    }
  });

  it('triggers do not fire and views do not run on a guarded connection', () => {
    const target = open('guarded-3.db');
    try {
      target.createTables([{ name: 't', sql: 'CREATE TABLE t(a)' }, { name: 'log', sql: 'CREATE TABLE log(a)' }]);
      target.finish([
        { type: 'trigger', name: 'tr', table: 't', sql: 'CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.a); END' },
        { type: 'view', name: 'v', table: 'v', sql: 'CREATE VIEW v AS SELECT * FROM log' },
      ], {});
      target.db.prepare('INSERT INTO t VALUES (1)').run();
      expect(target.db.prepare('SELECT count(*) FROM log').pluck().get()).toBe(0n);
      expect(() => target.db.prepare('SELECT * FROM v').all()).toThrow(/prohibited/);
      // Out of the load transaction now, VACUUM INTO (an ATTACH inside SQLite) is refused too.
      const elsewhere = path.join(dir, 'vacuumed-by-guard-test.db');
      expect(() => target.db.prepare(`VACUUM INTO '${elsewhere}'`).run()).toThrow(/not authorized|authorization denied/);
      expect(fs.existsSync(elsewhere)).toBe(false);
    } finally {
      target.close();
    }
  });
});

describe('SqliteTarget itself refuses schema SQL that is not the plain CREATE it claims', () => {
  it('createTables and finish throw E_CORRUPT naming the object, and run none of it', () => {
    const elsewhere = path.join(dir, 'attached-by-target.db');
    const target = SqliteTarget.create(path.join(dir, 'refusing.db'));
    try {
      expect(target.db.pragma('trusted_schema', { simple: true })).toBe(0n); // set with or without the extension
      expect(() => target.createTables([{ name: 'ok', sql: 'CREATE TABLE ok(a)' }, { name: 'x', sql: `CREATE TABLE x(a); ATTACH '${elsewhere}' AS v` }]))
        .toThrow(expect.objectContaining({ code: 'E_CORRUPT', message: expect.stringMatching(/table "x": its schema is not a plain CREATE TABLE statement/) }));
      expect(target.table('ok')).toBeUndefined(); // checked all before creating any
      target.createTables([{ name: 't', sql: 'CREATE TABLE t(a)' }]);
      expect(() => target.finish([{ type: 'index', name: 'i', table: 't', sql: `ATTACH '${elsewhere}' AS i` }], {}))
        .toThrow(expect.objectContaining({ code: 'E_CORRUPT', message: expect.stringMatching(/index "i"/) }));
      expect(() => target.finish([{ type: 'table' as 'index', name: 'extra', table: 'extra', sql: 'CREATE TABLE extra(a)' }], {}))
        .toThrow(expect.objectContaining({ code: 'E_CORRUPT' }));
      expect(() => target.exec(`ATTACH '${elsewhere}' AS v`)).toThrow(/only INSERT/);
      expect(fs.existsSync(elsewhere)).toBe(false);
    } finally {
      target.close();
    }
  });
});

describe('a repository whose manifest was edited: restore and verify --drill refuse it (E_CORRUPT), nothing runs', () => {
  /** A fresh repository with one snapshot of the source database; returns its folder and snapshot id. */
  async function repository(name: string): Promise<{ repo: string; id: string }> {
    const repo = path.join(dir, name);
    const db = sourceDb(path.join(dir, `${name}.db`));
    await init(repo, { compression: 'zstd' });
    const snap = await backup(db, repo, {});
    return { repo, id: snap.id };
  }

  /** Decodes the manifest, edits its schema, re-seals it with the same framing under its new id. */
  async function tamper(repo: string, id: string, edit: (schema: SnapshotManifest['schema']) => void): Promise<string> {
    const file = path.join(repo, snapshotKey(id));
    const { id: _id, manifestBytes: _bytes, ...manifest } = await decodeManifest(id, fs.readFileSync(file));
    edit(manifest.schema);
    const sealed = await encodeManifest(manifest, 'zstd');
    fs.rmSync(file);
    fs.writeFileSync(path.join(repo, snapshotKey(sealed.hash)), sealed.file);
    return sealed.hash;
  }

  const attacks: [string, RegExp, (schema: SnapshotManifest['schema'], app: string, elsewhere: string) => void][] = [
    ['a table followed by ATTACH and DROP TABLE in another database', /table "audit": its schema is not a plain CREATE TABLE statement \(more than one statement\)/, (s, app) => {
      const t = s.tables.find((x) => x.name === 'audit')!;
      t.sql = `${t.sql}; ATTACH DATABASE '${app}' AS v; DROP TABLE v.important`;
    }],
    ['a table replaced by ATTACH', /table "audit": its schema is not a plain CREATE TABLE statement/, (s, _app, elsewhere) => {
      s.tables.find((x) => x.name === 'audit')!.sql = `ATTACH DATABASE '${elsewhere}' AS audit`;
    }],
    ['a table created under another name', /table "pairs": its schema .*creates "other"/, (s) => {
      s.tables.find((x) => x.name === 'pairs')!.sql = 'CREATE TABLE other(a TEXT, b INTEGER, PRIMARY KEY (a, b)) WITHOUT ROWID';
    }],
    ['an index replaced by ATTACH', /index "audit_msg": its schema is not a plain CREATE INDEX statement/, (s, _app, elsewhere) => {
      s.objects.find((o) => o.name === 'audit_msg')!.sql = `ATTACH DATABASE '${elsewhere}' AS audit_msg`;
    }],
    ['a view followed by ATTACH', /view "recent": its schema is not a plain CREATE VIEW statement \(more than one statement\)/, (s, _app, elsewhere) => {
      const v = s.objects.find((o) => o.name === 'recent')!;
      v.sql = `${v.sql}; ATTACH DATABASE '${elsewhere}' AS w`;
    }],
    ['a trigger followed by DROP TABLE in another database', /trigger "audit_log": its schema is not a plain CREATE TRIGGER statement/, (s, app) => {
      const t = s.objects.find((o) => o.name === 'audit_log')!;
      t.sql = `${t.sql}; ATTACH DATABASE '${app}' AS v; DROP TABLE v.important`;
    }],
  ];

  it.each(attacks.map(([name, message], i) => [name, message, i] as const))('%s', async (_name, message, i) => {
    const { repo, id } = await repository(`repo-${i}`);
    const app = bystander(`app-${i}.db`);
    const elsewhere = path.join(dir, `elsewhere-${i}.db`);
    const tampered = await tamper(repo, id, (s) => attacks[i]![2](s, app, elsewhere));
    const short = tampered.slice(0, 8);

    const out = path.join(dir, `restored-${i}`);
    fs.mkdirSync(out);
    const restored = cli(['restore', 'latest', '--repo', repo, '--into', path.join(out, 'app.db')]);
    expectFailure(restored, 'E_CORRUPT', new RegExp(`snapshot ${short}`));
    expect(restored.stderr).toMatch(message);
    expect(fs.readdirSync(out)).toEqual([]); // no target, no temporary file

    for (const args of [['verify', '--drill'], ['verify']]) {
      const verified = cli([...args, '--repo', repo]);
      expectFailure(verified, 'E_CORRUPT', new RegExp(`snapshot ${short}`));
      expect(verified.stderr).toMatch(message);
    }
    expect(fs.existsSync(elsewhere)).toBe(false);
    expectBystanderIntact(app);
  });

  it('an expression the check lets through (a CHECK calling load_extension) is stopped on the connection: E_CORRUPT, nothing loaded', async () => {
    const { repo, id } = await repository('repo-check');
    const marker = path.join(dir, 'evil-ext');
    const tampered = await tamper(repo, id, (s) => {
      s.tables.find((x) => x.name === 'audit')!.sql = `CREATE TABLE audit(id INTEGER PRIMARY KEY, msg TEXT CHECK (load_extension('${marker}') IS NULL))`;
    });
    expect(schemaProblem({ type: 'table', name: 'audit' }, `CREATE TABLE audit(id INTEGER PRIMARY KEY, msg TEXT CHECK (load_extension('${marker}') IS NULL))`)).toBeUndefined();
    // With the extension the authorizer refuses the CREATE; without it, trusted_schema = OFF refuses the CHECK.
    for (const [i, env] of [{ ...process.env, NO_COLOR: '1' }, { ...process.env, NO_COLOR: '1', SCRIPTORIUM_NO_EXTENSION: '1' }].entries()) {
      const out = path.join(dir, `restored-check-${i}`);
      fs.mkdirSync(out);
      const r = cli(['restore', tampered.slice(0, 8), '--repo', repo, '--into', path.join(out, 'app.db')], { env });
      expectFailure(r, 'E_CORRUPT', /load_extension/);
      expect(fs.readdirSync(out)).toEqual([]);
    }
  });

  it('an untouched repository still restores and verifies with --drill', async () => {
    const { repo } = await repository('repo-clean');
    const into = path.join(dir, 'clean-restored.db');
    const r = cli(['restore', 'latest', '--repo', repo, '--into', into]);
    expect(r.code, r.stderr).toBe(0);
    withDb(into, (db) => {
      expect(db.prepare('SELECT count(*) FROM audit').pluck().get()).toBe(30n);
      expect(db.prepare("SELECT count(*) FROM sqlite_schema WHERE name IN ('audit_msg', 'recent', 'audit_log')").pluck().get()).toBe(3n);
    });
    const v = cli(['verify', '--drill', '--repo', repo]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/drill restore of [0-9a-f]{8} verified/);
  });
});

describe('export files whose schema SQL was edited: import refuses them (E_UNSUPPORTED_SQL), nothing runs', () => {
  let exports: Record<'ndjson' | 'json' | 'sql', string>;
  beforeAll(async () => {
    const db = sourceDb(path.join(dir, 'export-source.db'));
    exports = { ndjson: '', json: '', sql: '' };
    for (const format of ['ndjson', 'json', 'sql'] as const) {
      exports[format] = path.join(dir, `export.${format}`);
      await exportTo(db, { format, compress: 'none', output: exports[format] });
    }
  });

  const TABLE = 'CREATE TABLE audit(id INTEGER PRIMARY KEY, msg TEXT)';
  const INDEX = 'CREATE INDEX audit_msg ON audit(msg)';
  const VIEW = 'CREATE VIEW recent AS SELECT * FROM audit WHERE id > 1';
  const TRIGGER = 'CREATE TRIGGER audit_log AFTER INSERT ON audit BEGIN INSERT INTO pairs VALUES (new.msg, new.id); END';
  /** [what, the statement replaced, its replacement] */
  const edits = (app: string, elsewhere: string): [string, string, string][] => [
    ['ATTACH after the CREATE TABLE, then DROP TABLE in another database', TABLE, `${TABLE}; ATTACH DATABASE '${app}' AS v; DROP TABLE v.important`],
    ['ATTACH instead of the CREATE TABLE', TABLE, `ATTACH DATABASE '${elsewhere}' AS audit`],
    ['a PRAGMA instead of the CREATE TABLE', TABLE, 'PRAGMA writable_schema = ON'],
    ['a second CREATE after the CREATE TABLE', TABLE, `${TABLE}; CREATE TABLE extra(a)`],
    ['the CREATE of a different name', TABLE, 'CREATE TABLE other(id INTEGER PRIMARY KEY, msg TEXT)'],
    ['CREATE TABLE ... AS SELECT', TABLE, 'CREATE TABLE audit AS SELECT 1 AS id, 2 AS msg'],
    ['an index replaced by ATTACH', INDEX, `ATTACH DATABASE '${elsewhere}' AS audit_msg`],
    ['a view followed by ATTACH', VIEW, `${VIEW}; ATTACH DATABASE '${elsewhere}' AS w`],
    ['a trigger followed by ATTACH and DROP TABLE', TRIGGER, `${TRIGGER}; ATTACH DATABASE '${app}' AS v; DROP TABLE v.important`],
  ];

  // A sql script may hold two CREATE TABLEs on a line: that one is an attack only in a json or ndjson header.
  const cases = (['ndjson', 'json', 'sql'] as const).flatMap((format) =>
    edits('APP', 'ELSEWHERE').map(([what], i) => [format, what, i] as const).filter(([, what]) => format !== 'sql' || !what.startsWith('a second CREATE')));
  it.each(cases)('%s: %s', async (format, _what, i) => {
    const app = bystander(`import-app-${format}-${i}.db`);
    const elsewhere = path.join(dir, `import-elsewhere-${format}-${i}.db`);
    const [, from, to] = edits(app, elsewhere)[i]!;
    const text = fs.readFileSync(exports[format], 'utf8');
    // In json and ndjson the statement is a JSON string; in sql it is a line of its own.
    const edited = format === 'sql' ? text.replace(`${from};\n`, `${to};\n`) : text.replaceAll(JSON.stringify(from), JSON.stringify(to));
    expect(edited, 'the statement to replace').not.toBe(text);
    const file = path.join(dir, `edited-${format}-${i}.${format}`);
    fs.writeFileSync(file, edited);
    const out = path.join(dir, `imported-${format}-${i}`);
    fs.mkdirSync(out);
    await expect(importFrom(file, { into: path.join(out, 'app.db') })).rejects.toMatchObject({ code: 'E_UNSUPPORTED_SQL' });
    expect(fs.readdirSync(out)).toEqual([]);
    expect(fs.existsSync(elsewhere)).toBe(false);
    expectBystanderIntact(app);
  });

  it('through the CLI: exit non-zero, the code and the object named, for every format', () => {
    const app = bystander('import-app-cli.db');
    for (const format of ['ndjson', 'json', 'sql'] as const) {
      const text = fs.readFileSync(exports[format], 'utf8');
      const to = `${TABLE}; ATTACH DATABASE '${app}' AS v; DROP TABLE v.important`;
      const file = path.join(dir, `edited-cli.${format}`);
      fs.writeFileSync(file, format === 'sql' ? text.replace(`${TABLE};\n`, `${to};\n`) : text.replaceAll(JSON.stringify(TABLE), JSON.stringify(to)));
      const into = path.join(dir, `imported-cli-${format}.db`);
      const r = cli(['import', file, '--into', into]);
      expectFailure(r, 'E_UNSUPPORTED_SQL', format === 'sql' ? /line \d+/ : /table "audit" is not a plain CREATE TABLE statement \(more than one statement\)/);
      expect(fs.existsSync(into)).toBe(false);
    }
    expectBystanderIntact(app);
  });

  it('a trigger on main.audit (SQLite keeps the schema name as written) exports and imports in every format', async () => {
    const db = makeDb(path.join(dir, 'qualified.db'), (d) => d.exec(`
      CREATE TABLE audit(id INTEGER PRIMARY KEY, msg TEXT);
      CREATE TABLE log(m);
      CREATE TRIGGER audit_log AFTER INSERT ON main.audit BEGIN INSERT INTO log VALUES (new.msg); END;
      INSERT INTO audit(msg) VALUES ('a');
    `));
    for (const format of ['ndjson', 'json', 'sql'] as const) {
      const file = path.join(dir, `qualified.${format}`);
      await exportTo(db, { format, compress: 'none', output: file });
      const into = path.join(dir, `qualified-${format}.db`);
      await importFrom(file, { into });
      withDb(into, (d) => expect(d.prepare("SELECT sql FROM sqlite_schema WHERE name = 'audit_log'").pluck().get()).toMatch(/ON main\.audit/));
    }
  });

  it('the untouched exports still import, objects included', async () => {
    for (const format of ['ndjson', 'json', 'sql'] as const) {
      const into = path.join(dir, `import-clean-${format}.db`);
      await importFrom(exports[format], { into });
      withDb(into, (db) => {
        expect(db.prepare('SELECT count(*) FROM audit').pluck().get()).toBe(30n);
        expect(db.prepare("SELECT count(*) FROM sqlite_schema WHERE name IN ('audit_msg', 'recent', 'audit_log')").pluck().get()).toBe(3n);
      });
    }
  });
});
