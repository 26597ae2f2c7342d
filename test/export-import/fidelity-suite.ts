/**
 * Fidelity, case by case: each database below goes through every format (json, ndjson, sql), plain,
 * gzip and zstd, and must come back identical — by `compareDatabases`, by an independent cell-by-cell
 * snapshot read with better-sqlite3, and by the specific values each case is about. The suite runs twice:
 * with scriptorium's SQLite extension (test/fidelity.test.ts) and without it (test/no-extension.test.ts).
 */
import * as path from 'node:path';
import type Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDb, removeDir, roundTrip, tempDir, VARIANTS, variantName, withDb, type Variant } from './helpers.js';
import { integrity, snapshot } from './snapshot.js';

type Db = Database.Database;

interface Case {
  name: string;
  build(db: Db): void;
  /** Checks on the restored database (and, run first on the source, that the case means something). */
  check(db: Db): void;
}

const rows = (db: Db, sql: string, ...params: unknown[]): unknown[][] => db.prepare(sql).raw().all(...params) as unknown[][];
const one = (db: Db, sql: string, ...params: unknown[]): unknown => db.prepare(sql).pluck().get(...params);

/** typeof() and value of one column, in rowid order. */
const column = (db: Db, table: string, col: string): [string, unknown][] =>
  rows(db, `SELECT typeof(${col}), ${col} FROM ${table} ORDER BY rowid`) as [string, unknown][];

const INT64 = [
  -(2n ** 63n), -(2n ** 63n) + 1n, -(2n ** 53n) - 1n, -(2n ** 53n), -(2n ** 31n) - 1n, -1n, 0n, 1n, 2n ** 31n, 2n ** 32n,
  2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 62n, 2n ** 63n - 2n, 2n ** 63n - 1n,
];

const REALS = [1.0, -1.0, 0.1, 0.30000000000000004, 1 / 3, 1e300, -1e-300, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 9007199254740992.0, 9223372036854775808.0, 123456789.12345678];

const TEXTS = [
  '', 'NULL', 'null', "it's", 'say "hi"', '`tick`', 'back\\slash', '\\n is not a newline', 'two\\\\', 'line1\nline2', 'crlf\r\nend', 'lone\rcr', 'tab\there',
  '\u0001\u001f\u007f controls', '👩‍👩‍👧‍👦 family', 'e\u0301 (combining)', '\u00e9 (precomposed)', 'שלום עולם', 'مرحبا بالعالم', 'สวัสดีครับ', '日本語テキスト',
  '\u2028line sep\u2029para sep', '\ufeffBOM first', "'); DROP TABLE t; --", '{"$blob":"41"}', '[1,2,3]', '0x10', ' 42 ', '1e5x', 'ends with backslash\\',
];

const STORAGE = [null, 42n, 2n ** 62n, 1.5, 2.0, -0.0, 'text', '', '123', Buffer.from([0, 1, 255]), Buffer.alloc(0)];

const BIG_UNIT = 'línea\r\n\u0000 ☃ "q" \'s\' \\ ';

const CASES: Case[] = [
  {
    name: 'integers across the full 64-bit range',
    build(db) {
      db.exec('CREATE TABLE ints(id INTEGER PRIMARY KEY, untyped, i INTEGER, t TEXT, n NUMERIC, b BLOB)');
      const put = db.prepare('INSERT INTO ints(untyped, i, t, n, b) VALUES (?, ?, ?, ?, ?)');
      for (const v of INT64) put.run(v, v, v, v, v);
      // Integer primary keys at both ends of the range.
      db.exec('CREATE TABLE keys(id INTEGER PRIMARY KEY, v)');
      db.prepare('INSERT INTO keys VALUES (?, ?)').run(-(2n ** 63n), 'min');
      db.prepare('INSERT INTO keys VALUES (?, ?)').run(2n ** 63n - 1n, 'max');
      db.prepare('INSERT INTO keys VALUES (?, ?)').run(0n, 'zero');
    },
    check(db) {
      for (const col of ['untyped', 'i', 'n', 'b']) expect(column(db, 'ints', col), col).toEqual(INT64.map((v) => ['integer', v]));
      expect(column(db, 'ints', 't')).toEqual(INT64.map((v) => ['text', String(v)]));
      expect(rows(db, 'SELECT id, v FROM keys ORDER BY id')).toEqual([[-(2n ** 63n), 'min'], [0n, 'zero'], [2n ** 63n - 1n, 'max']]);
    },
  },
  {
    name: 'REAL and INTEGER stay apart (1.0 stays real in an untyped column)',
    build(db) {
      db.exec('CREATE TABLE nums(untyped, r REAL, i INTEGER, n NUMERIC)');
      const put = db.prepare('INSERT INTO nums VALUES (?, ?, ?, ?)');
      for (const v of REALS) put.run(v, v, v, v);
      db.exec('INSERT INTO nums VALUES (1, 1, 1, 1), (1.0, 1.0, 1.0, 1.0), (2.5, 2.5, 2.5, 2.5)');
    },
    check(db) {
      expect(column(db, 'nums', 'untyped')).toEqual([...REALS.map((v) => ['real', v]), ['integer', 1n], ['real', 1], ['real', 2.5]]);
      expect(column(db, 'nums', 'r').every(([t]) => t === 'real')).toBe(true);
      // INTEGER affinity turns 1.0 into 1 but keeps 1.5 a REAL.
      expect(column(db, 'nums', 'i').slice(-3)).toEqual([['integer', 1n], ['integer', 1n], ['real', 2.5]]);
      expect(one(db, 'SELECT typeof(i) FROM nums WHERE untyped = 0.1')).toBe('real');
      expect(one(db, "SELECT count(*) FROM nums WHERE typeof(untyped) = 'real' AND untyped = 1")).toBe(2n);
    },
  },
  {
    name: '-0.0 keeps its sign in an untyped column',
    build(db) {
      db.exec('CREATE TABLE z(id INTEGER PRIMARY KEY, untyped, r REAL)');
      db.prepare('INSERT INTO z(untyped, r) VALUES (?, ?)').run(-0, -0);
      db.prepare('INSERT INTO z(untyped, r) VALUES (?, ?)').run(0, 0);
      db.exec('INSERT INTO z(untyped, r) VALUES (0.0, -0.0)');
    },
    check(db) {
      const [neg, pos, lit] = rows(db, 'SELECT typeof(untyped), untyped, atan2(untyped, -1) < 0 FROM z ORDER BY id');
      expect(neg![0]).toBe('real');
      expect(Object.is(neg![1], -0)).toBe(true);
      expect(neg![2]).toBe(1n);
      expect(pos![0]).toBe('real');
      expect(Object.is(pos![1], 0)).toBe(true);
      expect(pos![2]).toBe(0n);
      expect(lit![2]).toBe(0n);
    },
  },
  {
    name: '±Infinity',
    build(db) {
      db.exec('CREATE TABLE inf(id INTEGER PRIMARY KEY, untyped, r REAL, i INTEGER, t TEXT)');
      const put = db.prepare('INSERT INTO inf(untyped, r, i) VALUES (?, ?, ?)');
      put.run(Infinity, Infinity, Infinity);
      put.run(-Infinity, -Infinity, -Infinity);
      db.exec('INSERT INTO inf(untyped, r, t) VALUES (1e999, -1e999, 1e999)');
    },
    check(db) {
      expect(column(db, 'inf', 'untyped')).toEqual([['real', Infinity], ['real', -Infinity], ['real', Infinity]]);
      expect(column(db, 'inf', 'r')).toEqual([['real', Infinity], ['real', -Infinity], ['real', -Infinity]]);
      expect(column(db, 'inf', 'i')).toEqual([['real', Infinity], ['real', -Infinity], ['null', null]]);
      expect(column(db, 'inf', 't')[2]).toEqual(['text', 'Inf']);
    },
  },
  {
    name: 'BLOBs, including the empty blob, in columns of every type',
    build(db) {
      db.exec('CREATE TABLE blobs(id INTEGER PRIMARY KEY, untyped, b BLOB, i INTEGER, t TEXT, r REAL)');
      const put = db.prepare('INSERT INTO blobs(untyped, b, i, t, r) VALUES (?, ?, ?, ?, ?)');
      const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      for (const b of [Buffer.alloc(0), Buffer.from([0]), all, Buffer.from('{"$blob":"00"}'), Buffer.from('plain text bytes'), Buffer.alloc(100_000, 0xab)]) {
        put.run(b, b, b, b, b);
      }
    },
    check(db) {
      for (const col of ['untyped', 'b', 'i', 't', 'r']) {
        const got = column(db, 'blobs', col);
        expect(got.map(([t]) => t), col).toEqual(Array(6).fill('blob'));
        expect((got[0]![1] as Buffer).length, `${col}: empty blob`).toBe(0);
        expect((got[1]![1] as Buffer).toString('hex')).toBe('00');
        expect((got[2]![1] as Buffer).equals(Buffer.from(Array.from({ length: 256 }, (_, i) => i)))).toBe(true);
        expect((got[3]![1] as Buffer).toString()).toBe('{"$blob":"00"}');
        expect((got[5]![1] as Buffer).length).toBe(100_000);
      }
    },
  },
  {
    // SQLite 3.45+ reads a BLOB given to a JSON function as JSONB: x'00' is JSON null, x'1331' the number 1.
    name: 'BLOBs that are valid JSONB, alone in typed columns, stay BLOBs',
    build(db) {
      db.exec('CREATE TABLE jsonb(i INTEGER, t TEXT, r REAL, n NUMERIC)');
      const put = db.prepare('INSERT INTO jsonb VALUES (?, ?, ?, ?)');
      put.run(Buffer.from([0]), Buffer.from([0x13, 0x31]), Buffer.from([0x01]), Buffer.from([0x23, 0, 0]));
      put.run(1n, 'one', 1.5, Buffer.from([0x02]));
    },
    check(db) {
      expect(rows(db, 'SELECT typeof(i), hex(i), typeof(t), hex(t), typeof(r), hex(r), typeof(n), hex(n) FROM jsonb ORDER BY rowid')).toEqual([
        ['blob', '00', 'blob', '1331', 'blob', '01', 'blob', '230000'],
        ['integer', '31', 'text', '6F6E65', 'real', '312E35', 'blob', '02'],
      ]);
    },
  },
  {
    name: 'empty string, NULL and look-alikes stay distinct',
    build(db) {
      db.exec('CREATE TABLE e(id INTEGER PRIMARY KEY, untyped, t TEXT, nn TEXT NOT NULL DEFAULT \'\')');
      const put = db.prepare('INSERT INTO e(untyped, t, nn) VALUES (?, ?, ?)');
      put.run('', '', '');
      put.run(null, null, 'NULL');
      put.run('null', 'NULL', 'null');
      put.run(Buffer.alloc(0), ' ', '""');
    },
    check(db) {
      expect(column(db, 'e', 'untyped')).toEqual([['text', ''], ['null', null], ['text', 'null'], ['blob', Buffer.alloc(0)]]);
      expect(column(db, 'e', 't')).toEqual([['text', ''], ['null', null], ['text', 'NULL'], ['text', ' ']]);
      expect(column(db, 'e', 'nn')).toEqual([['text', ''], ['text', 'NULL'], ['text', 'null'], ['text', '""']]);
    },
  },
  {
    name: 'text: Unicode, NUL, quotes, backslashes, CR/LF and control characters',
    build(db) {
      db.exec('CREATE TABLE txt(id INTEGER PRIMARY KEY, untyped, t TEXT, b BLOB)');
      const put = db.prepare('INSERT INTO txt(untyped, t, b) VALUES (?, ?, ?)');
      for (const s of TEXTS) put.run(s, s, s);
      db.exec("INSERT INTO txt(untyped, t, b) VALUES ('a'||char(0)||'b', char(0), 'x'||char(0))");
      db.exec("INSERT INTO txt(untyped, t, b) VALUES (char(0)||char(0)||'€'||char(0), 'quote '''||char(0)||'''', char(13,10,0,92))");
    },
    check(db) {
      const n = TEXTS.length;
      for (const col of ['untyped', 't', 'b']) {
        const got = column(db, 'txt', col);
        expect(got.slice(0, n), col).toEqual(TEXTS.map((s) => ['text', s]));
      }
      expect(rows(db, `SELECT hex(untyped), hex(t), hex(b), typeof(untyped), typeof(t), typeof(b) FROM txt WHERE id > ${n} ORDER BY id`)).toEqual([
        ['610062', '00', '7800', 'text', 'text', 'text'],
        ['0000E282AC00', '71756F746520270027', '0D0A005C', 'text', 'text', 'text'],
      ]);
      // Combining and precomposed forms were not normalised into each other.
      const combining = TEXTS.indexOf('e\u0301 (combining)') + 1;
      expect(one(db, 'SELECT hex(t) FROM txt WHERE id = ?', combining)).toBe(Buffer.from('e\u0301 (combining)').toString('hex').toUpperCase());
    },
  },
  {
    name: 'values of every storage class in columns of every declared type',
    build(db) {
      db.exec(`CREATE TABLE anytype(id INTEGER PRIMARY KEY, untyped, i INTEGER, r REAL, t TEXT, b BLOB, n NUMERIC, v "VARCHAR(10)", bo BOOLEAN, d DATETIME, fl FLOAT, ch CHARACTER(3), weird "x y z")`);
      const put = db.prepare('INSERT INTO anytype(untyped, i, r, t, b, n, v, bo, d, fl, ch, weird) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)');
      for (const v of STORAGE) put.run(...Array(12).fill(v));
      db.exec("CREATE TABLE strict_t(id INTEGER PRIMARY KEY, a ANY, i INTEGER, t TEXT, r REAL, b BLOB) STRICT");
      const sput = db.prepare('INSERT INTO strict_t(a) VALUES (?)');
      for (const v of STORAGE) sput.run(v);
      db.exec("INSERT INTO strict_t(a, i, t, r, b) VALUES ('1.0', 7, 'seven', 7.5, x'07'), (1.0, NULL, NULL, 1, NULL)");
    },
    check(db) {
      const classes = ['null', 'integer', 'integer', 'real', 'real', 'real', 'text', 'text', 'text', 'blob', 'blob'];
      expect(column(db, 'anytype', 'untyped').map(([t]) => t)).toEqual(classes);
      expect(column(db, 'anytype', 'b').map(([t]) => t)).toEqual(classes);
      expect(column(db, 'anytype', 'i').map(([t]) => t)).toEqual(['null', 'integer', 'integer', 'real', 'integer', 'integer', 'text', 'text', 'integer', 'blob', 'blob']);
      expect(column(db, 'anytype', 't').map(([t]) => t)).toEqual(['null', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'blob', 'blob']);
      expect(column(db, 'anytype', 'r').map(([t]) => t)).toEqual(['null', 'real', 'real', 'real', 'real', 'real', 'text', 'text', 'real', 'blob', 'blob']);
      expect(column(db, 'strict_t', 'a').map(([t]) => t)).toEqual([...classes, 'text', 'real']);
      expect(column(db, 'strict_t', 'r').slice(-2)).toEqual([['real', 7.5], ['real', 1]]);
    },
  },
  {
    name: 'hostile table, column, index, view and trigger names',
    build(db) {
      db.exec(`
        CREATE TABLE "we""ird 'table'" ("select" INTEGER PRIMARY KEY, "order" TEXT, "col with space" , "quo""te", "it's", "ünï 表 😀", "a;b--c", "back\\slash", "$.x[0]", "rowid" TEXT);
        CREATE TABLE "select" ("from" TEXT, "where" INTEGER, "group" BLOB);
        CREATE TABLE "x; DROP TABLE y; --" ("--" TEXT, ";" TEXT, "/*" TEXT, "*/" TEXT);
        CREATE TABLE "שלום 🌍" ("עמודה" TEXT, "كلمة" INTEGER);
        CREATE TABLE [bracket name] (\`tick col\` TEXT, [br col] INTEGER);
        CREATE INDEX "idx ""quoted"" ;--" ON "we""ird 'table'"("order", "quo""te");
        CREATE UNIQUE INDEX "select index" ON "select"("where");
        CREATE INDEX "ünï idx 😀" ON "x; DROP TABLE y; --"(";");
        CREATE VIEW "view ""v"" ; --" AS SELECT "select", "order", "ünï 表 😀" FROM "we""ird 'table'" WHERE "order" <> ';';
        CREATE VIEW "order" AS SELECT * FROM "select";
        CREATE TRIGGER "trig; END; --" AFTER INSERT ON "select" BEGIN UPDATE "select" SET "from" = 'END; --' || new."from" WHERE rowid = new.rowid AND 0; END;
      `);
      const put = db.prepare(`INSERT INTO "we""ird 'table'" VALUES (?,?,?,?,?,?,?,?,?,?)`);
      put.run(1n, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'rowid-text');
      put.run(2n, ';', '--', '"', "'", '😀', 'x;y', '\\', '$', 'r2');
      db.prepare('INSERT INTO "select" VALUES (?, ?, ?)').run('from-value', 7n, Buffer.from('grp'));
      db.prepare('INSERT INTO "x; DROP TABLE y; --" VALUES (?, ?, ?, ?)').run('--', ';', '/*', '*/');
      db.prepare('INSERT INTO "שלום 🌍" VALUES (?, ?)').run('ערך', 5n);
      db.prepare('INSERT INTO [bracket name] VALUES (?, ?)').run('t', 1n);
    },
    check(db) {
      const names = rows(db, "SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_autoindex%' ORDER BY type, name").map((r) => r.join(':'));
      expect(names).toEqual([
        'index:idx "quoted" ;--', 'index:select index', 'index:ünï idx 😀',
        'table:bracket name', 'table:select', "table:we\"ird 'table'", 'table:x; DROP TABLE y; --', 'table:שלום 🌍',
        'trigger:trig; END; --',
        'view:order', 'view:view "v" ; --',
      ]);
      expect(rows(db, `SELECT * FROM "view ""v"" ; --" ORDER BY 1`)).toEqual([[1n, 'a', 'e']]); // row 2 has "order" = ';'
      expect(rows(db, `SELECT "rowid", "a;b--c", "$.x[0]" FROM "we""ird 'table'" ORDER BY "select"`)).toEqual([['rowid-text', 'f', 'h'], ['r2', 'x;y', '$']]);
      expect(rows(db, 'SELECT * FROM "order"')).toEqual([['from-value', 7n, Buffer.from('grp')]]);
      expect(rows(db, 'SELECT * FROM "x; DROP TABLE y; --"')).toEqual([['--', ';', '/*', '*/']]);
    },
  },
  {
    name: 'names that are special in JavaScript objects (__proto__, constructor, hasOwnProperty)',
    build(db) {
      db.exec(`
        CREATE TABLE "__proto__" ("__proto__" INTEGER PRIMARY KEY AUTOINCREMENT, "constructor" TEXT, "toString", "hasOwnProperty" BLOB);
        CREATE TABLE "constructor" ("valueOf", "__defineGetter__");
        CREATE INDEX "__proto__ idx" ON "__proto__"("constructor");
      `);
      db.exec(`INSERT INTO "__proto__" VALUES (7, 'c', 't', x'01'); INSERT INTO "constructor" VALUES (1, 2), (3, 4)`);
    },
    check(db) {
      expect(rows(db, 'SELECT * FROM "__proto__"')).toEqual([[7n, 'c', 't', Buffer.from([1])]]);
      expect(rows(db, 'SELECT * FROM "constructor" ORDER BY rowid')).toEqual([[1n, 2n], [3n, 4n]]);
      expect(rows(db, 'SELECT name, seq FROM sqlite_sequence')).toEqual([['__proto__', 7n]]);
    },
  },
  {
    name: 'empty and blank names',
    build(db) {
      db.exec('CREATE TABLE "" ("" INTEGER, " " TEXT, "  " BLOB); CREATE INDEX " " ON ""(" "); CREATE VIEW "	" AS SELECT "" FROM ""');
      db.prepare('INSERT INTO "" VALUES (?, ?, ?)').run(1n, 'one', Buffer.from('1'));
      db.prepare('INSERT INTO "" VALUES (?, ?, ?)').run(2n, null, null);
    },
    check(db) {
      expect(rows(db, 'SELECT "", " ", "  " FROM "" ORDER BY rowid')).toEqual([[1n, 'one', Buffer.from('1')], [2n, null, null]]);
      expect(rows(db, 'SELECT * FROM "	"').flat()).toEqual([1n, 2n]);
      expect(one(db, "SELECT count(*) FROM sqlite_schema WHERE name = ' ' AND type = 'index'")).toBe(1n);
    },
  },
  {
    name: 'original CREATE statements are preserved byte for byte',
    build(db) {
      db.exec(`create   table  Mixed_Case (
          id integer primary key, -- a comment; with a semicolon
          name text   DEFAULT 'it''s; --not a comment' /* block ; comment */ ,
          price real check (price >= 0),
          "when" datetime default (datetime('now')),
          UNIQUE (name)
        )`);
      db.exec(`CREATE TABLE fk_child(id INTEGER PRIMARY KEY, parent INTEGER REFERENCES fk_parent(id) ON DELETE CASCADE)`);
      db.exec(`CREATE TABLE fk_parent(id INTEGER PRIMARY KEY)`);
      db.exec(`CREATE INDEX ix_trailing ON Mixed_Case(price) -- trailing comment on an index\n`);
      db.exec(`CREATE VIEW v_trailing AS SELECT id, name FROM Mixed_Case -- trailing comment on a view`);
      db.exec(`CREATE VIEW v_block AS SELECT id FROM Mixed_Case /* block */`);
      db.exec(`CREATE TRIGGER tr_trailing AFTER DELETE ON Mixed_Case BEGIN SELECT 1; END`);
      db.exec(`INSERT INTO Mixed_Case(id, name, price, "when") VALUES (1, 'x', 1.5, '2024-01-01'), (2, 'y', 0, NULL)`);
      db.pragma('foreign_keys = OFF');
      db.exec('INSERT INTO fk_child VALUES (1, 99)'); // a dangling reference, as a real database may hold
    },
    check(db) {
      const sql = Object.fromEntries(rows(db, 'SELECT name, sql FROM sqlite_schema') as [string, string][]);
      expect(sql['Mixed_Case']).toContain("-- a comment; with a semicolon\n");
      expect(sql['Mixed_Case']).toMatch(/^CREATE TABLE Mixed_Case \(\n {10}id integer primary key, /); // SQLite normalises only the first words
      expect(sql['v_trailing']).toBe('CREATE VIEW v_trailing AS SELECT id, name FROM Mixed_Case -- trailing comment on a view');
      expect(rows(db, 'SELECT * FROM v_trailing ORDER BY id')).toEqual([[1n, 'x'], [2n, 'y']]);
      expect(rows(db, 'SELECT * FROM fk_child')).toEqual([[1n, 99n]]);
    },
  },
  {
    name: 'WITHOUT ROWID table with a composite primary key, rows in key order across batches',
    build(db) {
      db.exec('CREATE TABLE pairs(a TEXT, b INTEGER, c, PRIMARY KEY (a, b DESC)) WITHOUT ROWID');
      const put = db.prepare('INSERT INTO pairs VALUES (?, ?, ?)');
      // Inserted out of order; 2 × 1300 rows so that batches (500 / 2000 rows) split inside a key prefix.
      for (let b = 1300n; b >= 1n; b--) for (const a of ['β', 'a']) put.run(a, b % 2n === 0n ? b : -b, b === 7n ? Buffer.from('blob mid-table') : `${a}${b}`);
    },
    check(db) {
      expect(one(db, 'SELECT count(*) FROM pairs')).toBe(2600n);
      const keys = rows(db, 'SELECT a, b FROM pairs');
      expect(keys[0]).toEqual(['a', 1300n]);
      expect(keys[2599]).toEqual(['β', -1299n]);
      expect(one(db, "SELECT typeof(c) FROM pairs WHERE a = 'β' AND b = -7")).toBe('blob');
      expect(one(db, "SELECT wr FROM pragma_table_list WHERE name = 'pairs'")).toBe(1n);
    },
  },
  {
    name: 'WITHOUT ROWID keys of every storage class and a NOCASE key, across batch boundaries',
    build(db) {
      db.exec('CREATE TABLE mixed(k, j, v, PRIMARY KEY (k, j)) WITHOUT ROWID');
      db.exec('CREATE TABLE nocase(k TEXT COLLATE NOCASE PRIMARY KEY, v) WITHOUT ROWID');
      const put = db.prepare('INSERT INTO mixed VALUES (?, ?, ?)');
      const keys: unknown[] = [];
      for (let i = 0; i < 700; i++) keys.push(BigInt(i * 37 - 9000), i + 0.5, `k${i}`, Buffer.from([i >> 8, i & 0xff]));
      keys.forEach((k, i) => {
        put.run(k, BigInt(i % 3), i);
        if (i % 11 === 0) put.run(k, 'second', i);
      });
      const nc = db.prepare('INSERT INTO nocase VALUES (?, ?)');
      for (let i = 0; i < 2300; i++) nc.run(i % 2 ? `Key${i}` : `key${i}`, BigInt(i));
    },
    check(db) {
      expect(one(db, 'SELECT count(*) FROM mixed')).toBe(3055n);
      expect(rows(db, 'SELECT typeof(k), count(*) FROM mixed GROUP BY 1 ORDER BY 1')).toEqual([['blob', 764n], ['integer', 764n], ['real', 763n], ['text', 764n]]);
      expect(one(db, 'SELECT count(*) FROM nocase')).toBe(2300n);
      expect(one(db, "SELECT v FROM nocase WHERE k = 'KEY1001'")).toBe(1001n);
    },
  },
  {
    name: 'table without a primary key keeps its rowids, gaps and negatives included',
    build(db) {
      db.exec('CREATE TABLE nokey(v TEXT, w)');
      const put = db.prepare('INSERT INTO nokey(rowid, v, w) VALUES (?, ?, ?)');
      for (const id of [1n, 5n, 1000n, -3n, 2n ** 62n, 2n ** 63n - 1n]) put.run(id, `row ${id}`, id);
      for (let i = 0; i < 2500; i++) db.prepare('INSERT INTO nokey(rowid, v) VALUES (?, ?)').run(10_000n + BigInt(i * 3), 'bulk');
      db.exec('CREATE TABLE shadow(rowid TEXT, _rowid_ TEXT, x)'); // the rowid goes by its last free name, oid
      db.prepare('INSERT INTO shadow(oid, rowid, _rowid_, x) VALUES (?, ?, ?, ?)').run(42n, 'r', 'u', 1n);
      db.prepare('INSERT INTO shadow(oid, rowid, _rowid_, x) VALUES (?, ?, ?, ?)').run(7n, 'r2', 'u2', 2n);
      db.exec('CREATE TABLE emptytable(a, b)');
    },
    check(db) {
      expect(rows(db, "SELECT rowid, v FROM nokey WHERE v <> 'bulk' ORDER BY rowid")).toEqual(
        [-3n, 1n, 5n, 1000n, 2n ** 62n, 2n ** 63n - 1n].map((id) => [id, `row ${id}`]),
      );
      expect(rows(db, "SELECT min(rowid), max(rowid), count(*) FROM nokey WHERE v = 'bulk'")).toEqual([[10_000n, 10_000n + 2499n * 3n, 2500n]]);
      expect(rows(db, 'SELECT oid, rowid, _rowid_, x FROM shadow ORDER BY oid')).toEqual([[7n, 'r2', 'u2', 2n], [42n, 'r', 'u', 1n]]);
      expect(one(db, 'SELECT count(*) FROM emptytable')).toBe(0n);
    },
  },
  {
    name: 'AUTOINCREMENT counters (sqlite_sequence) survive, above the largest id',
    build(db) {
      db.exec('CREATE TABLE auto(id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)');
      db.exec('CREATE TABLE "auto ""two""" (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)');
      for (let i = 0; i < 10; i++) db.prepare('INSERT INTO auto(v) VALUES (?)').run(`v${i}`);
      db.exec('DELETE FROM auto WHERE id > 5');
      db.prepare('INSERT INTO "auto ""two""" (id, v) VALUES (?, ?)').run(2n ** 62n, 'big');
      db.exec('DELETE FROM "auto ""two"""');
    },
    check(db) {
      expect(rows(db, 'SELECT name, seq FROM sqlite_sequence ORDER BY name')).toEqual([['auto', 10n], ['auto "two"', 2n ** 62n]]);
      expect(one(db, 'SELECT max(id) FROM auto')).toBe(5n);
      expect(one(db, 'SELECT count(*) FROM "auto ""two"""')).toBe(0n);
    },
  },
  {
    name: 'indexes: partial, expression, unique, collated',
    build(db) {
      db.exec(`
        CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT COLLATE NOCASE, email TEXT, deleted INTEGER DEFAULT 0, data TEXT);
        CREATE INDEX people_active ON people(name) WHERE deleted = 0 AND email IS NOT NULL;
        CREATE INDEX people_lower_email ON people(lower(email), length(name) DESC);
        CREATE UNIQUE INDEX people_email ON people(email COLLATE NOCASE) WHERE email <> '';
        CREATE INDEX people_json ON people(json_extract(data, '$.k'));
      `);
      const put = db.prepare('INSERT INTO people(name, email, deleted, data) VALUES (?, ?, ?, ?)');
      for (let i = 0; i < 50; i++) put.run(`Name ${i}`, i % 7 === 0 ? null : `P${i}@Example.com`, i % 3 === 0 ? 1n : 0n, JSON.stringify({ k: i }));
    },
    check(db) {
      expect(rows(db, "SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY name").flat()).toEqual(['people_active', 'people_email', 'people_json', 'people_lower_email']);
      expect(one(db, 'SELECT partial FROM pragma_index_list(\'people\') WHERE name = \'people_active\'')).toBe(1n);
      expect(one(db, "SELECT count(*) FROM people INDEXED BY people_lower_email WHERE lower(email) = 'p8@example.com'")).toBe(1n);
      expect(one(db, 'PRAGMA integrity_check')).toBe('ok');
    },
  },
  {
    name: 'views and triggers (triggers do not fire during the load)',
    build(db) {
      db.exec(`
        CREATE TABLE orders(id INTEGER PRIMARY KEY, total REAL);
        CREATE TABLE audit(id INTEGER PRIMARY KEY AUTOINCREMENT, msg TEXT);
        CREATE TRIGGER orders_ai AFTER INSERT ON orders BEGIN
          INSERT INTO audit(msg) VALUES ('insert; END; ' || new.id);
        END;
        CREATE TRIGGER orders_bu BEFORE UPDATE OF total ON orders WHEN new.total < 0 BEGIN SELECT RAISE(ABORT, 'negative; total'); END;
        CREATE VIEW big_orders AS SELECT id, total FROM orders WHERE total > 10;
        CREATE VIEW audit_count(n) AS SELECT count(*) FROM audit;
        CREATE VIEW "huge orders" AS SELECT * FROM big_orders WHERE total > 100;
        CREATE TRIGGER "huge orders insert" INSTEAD OF INSERT ON "huge orders" BEGIN INSERT INTO orders(total) VALUES (new.total * 1000); END;
      `);
      db.exec('INSERT INTO orders(total) VALUES (5), (50), (500)');
    },
    check(db) {
      expect(rows(db, 'SELECT msg FROM audit ORDER BY id').flat()).toEqual(['insert; END; 1', 'insert; END; 2', 'insert; END; 3']);
      expect(rows(db, 'SELECT * FROM big_orders')).toEqual([[2n, 50], [3n, 500]]);
      expect(one(db, 'SELECT n FROM audit_count')).toBe(3n);
      expect(rows(db, "SELECT name FROM sqlite_schema WHERE type = 'trigger' ORDER BY name").flat()).toEqual(['huge orders insert', 'orders_ai', 'orders_bu']);
      expect(rows(db, 'SELECT * FROM "huge orders"')).toEqual([[3n, 500]]);
    },
  },
  {
    name: 'user_version and application_id',
    build(db) {
      db.exec('CREATE TABLE t(x)');
      db.pragma('user_version = 2147483647');
      db.pragma('application_id = -1234567');
    },
    check(db) {
      expect(db.pragma('user_version', { simple: true })).toBe(2147483647n);
      expect(db.pragma('application_id', { simple: true })).toBe(-1234567n);
    },
  },
  {
    name: 'large values: a 3 MB BLOB and 2 MB of text with NUL and CR/LF',
    build(db) {
      db.exec('CREATE TABLE big(id INTEGER PRIMARY KEY, b, t TEXT)');
      const blob = Buffer.alloc(3 << 20);
      for (let i = 0; i < blob.length; i++) blob[i] = (i * 131 + (i >> 9)) & 0xff;
      const text = BIG_UNIT.repeat(80_000);
      db.prepare('INSERT INTO big(b, t) VALUES (?, ?)').run(blob, text);
      db.prepare('INSERT INTO big(b, t) VALUES (?, ?)').run(Buffer.alloc(0), '');
    },
    check(db) {
      const [b, t] = db.prepare('SELECT b, t FROM big WHERE id = 1').raw().get() as [Buffer, string];
      expect(b.length).toBe(3 << 20);
      expect(b[12345]).toBe((12345 * 131 + (12345 >> 9)) & 0xff);
      expect(t.length).toBe(80_000 * BIG_UNIT.length);
      expect(t.slice(0, BIG_UNIT.length * 2)).toBe(BIG_UNIT + BIG_UNIT);
    },
  },
  {
    name: 'names that differ only in non-ASCII case are different tables',
    build(db) {
      db.exec('CREATE TABLE "café"(v); CREATE TABLE "CAFÉ"(v); CREATE INDEX "ı" ON "café"(v); CREATE INDEX "I" ON "CAFÉ"(v)');
      db.exec("INSERT INTO \"café\" VALUES ('lower'); INSERT INTO \"CAFÉ\" VALUES ('upper')");
    },
    check(db) {
      expect(one(db, 'SELECT v FROM "café"')).toBe('lower');
      expect(one(db, 'SELECT v FROM "CAFÉ"')).toBe('upper');
      expect(rows(db, "SELECT name FROM sqlite_schema WHERE type = 'index' ORDER BY name").flat()).toEqual(['I', 'ı']);
    },
  },
  {
    name: 'an empty database (no tables) keeps its pragmas',
    build(db) {
      db.pragma('user_version = 9');
      db.pragma('application_id = 123');
    },
    check(db) {
      expect(one(db, 'SELECT count(*) FROM sqlite_schema')).toBe(0n);
      expect(db.pragma('user_version', { simple: true })).toBe(9n);
      expect(db.pragma('application_id', { simple: true })).toBe(123n);
    },
  },
  {
    name: 'a wide table (200 columns: past the extension\'s 120-column limit) beside a narrow one',
    build(db) {
      const cols = Array.from({ length: 200 }, (_, i) => `"c${i}" ${['', 'INTEGER', 'TEXT', 'REAL', 'BLOB'][i % 5]}`);
      db.exec(`CREATE TABLE wide(${cols.join(', ')}); CREATE TABLE narrow(a, b)`);
      const put = db.prepare(`INSERT INTO wide VALUES (${cols.map(() => '?').join(', ')})`);
      for (let r = 0; r < 30; r++) put.run(...Array.from({ length: 200 }, (_, i) => STORAGE[(i + r) % STORAGE.length]));
      db.prepare('INSERT INTO narrow VALUES (?, ?)').run(-0, Buffer.from([0]));
    },
    check(db) {
      expect(one(db, 'SELECT count(*) FROM pragma_table_info(\'wide\')')).toBe(200n);
      expect(one(db, 'SELECT count(*) FROM wide')).toBe(30n);
      expect(rows(db, 'SELECT typeof(c199), typeof(c0) FROM wide WHERE rowid = 1')).toEqual([['integer', 'null']]); // STORAGE[199 % 11], STORAGE[0]
      expect(Object.is(one(db, 'SELECT a FROM narrow'), -0)).toBe(true);
    },
  },
  {
    name: 'generated columns are rebuilt, not exported',
    build(db) {
      db.exec(`CREATE TABLE g(a INTEGER, b INTEGER, s INTEGER GENERATED ALWAYS AS (a + b) STORED, v TEXT AS (a || '-' || b) VIRTUAL, c)`);
      db.exec("INSERT INTO g(a, b, c) VALUES (1, 2, 'x'), (10, 20, x'00')");
    },
    check(db) {
      expect(rows(db, 'SELECT a, b, s, v, c FROM g ORDER BY rowid')).toEqual([[1n, 2n, 3n, '1-2', 'x'], [10n, 20n, 30n, '10-20', Buffer.from([0])]]);
    },
  },
];

/** Registers one describe block per case, one test per format and compression. */
export function fidelitySuite(): void {
  describe.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    let dir: string;
    let source: string;
    let expected: ReturnType<typeof snapshot>;

    beforeAll(() => {
      dir = tempDir('fidelity');
      source = makeDb(path.join(dir, 'source.db'), c.build);
      expected = snapshot(source);
      withDb(source, c.check); // the case really holds the values it is about
    });
    afterAll(() => removeDir(dir));

    it.each(VARIANTS.map((v) => [variantName(v), v] as [string, Variant]))('round trip through %s', async (_n, variant) => {
      const restored = await roundTrip(source, variant, dir);
      expect(snapshot(restored)).toEqual(expected);
      expect(integrity(restored)).toBe('ok');
      withDb(restored, c.check);
    });
  });
}
