/** One database holding most of the hard cases at once, for tests that need "a tricky database". */
import { makeDb } from './helpers.js';

export const TRICKY_VALUES: unknown[] = [
  null, 0n, -(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n, 1.0, -0, 0.1, 1 / 3, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
  Infinity, -Infinity, 123456789.12345678, '', 'NULL', "it's \"quoted\"", 'back\\slash', 'l1\nl2\r\nl3\r', 'a\0b', '\0', '👩‍👩‍👧‍👦 e\u0301 שלום',
  '\u2028\u2029', "'); DROP TABLE t; --", Buffer.alloc(0), Buffer.from([0]), Buffer.from([0x13, 0x31]), Buffer.from('blob\0bytes'),
];

/** Builds the tricky database at `file`. */
export function trickyDb(file: string): string {
  return makeDb(file, (db) => {
    db.exec(`
      CREATE TABLE "we""ird 'table'; --" (id INTEGER PRIMARY KEY AUTOINCREMENT, "select" , "order" INTEGER, "spa ce" TEXT, "ünï 😀" REAL, b BLOB, n NUMERIC);
      CREATE TABLE nokey(v, w TEXT);
      CREATE TABLE pairs(a TEXT, b INTEGER, c, PRIMARY KEY (a, b)) WITHOUT ROWID;
      CREATE TABLE audit(id INTEGER PRIMARY KEY, msg TEXT);
      CREATE INDEX "idx; --" ON "we""ird 'table'; --"("order") WHERE "order" IS NOT NULL;
      CREATE INDEX expr_idx ON pairs(lower(a), b * 2);
      CREATE VIEW "v ""view""" AS SELECT id, "select" FROM "we""ird 'table'; --" -- trailing comment
      ;
      CREATE TRIGGER "trg; END;" AFTER INSERT ON nokey BEGIN INSERT INTO audit(msg) VALUES ('END; ' || new.w); END;
    `);
    const put = db.prepare(`INSERT INTO "we""ird 'table'; --" ("select", "order", "spa ce", "ünï 😀", b, n) VALUES (?, ?, ?, ?, ?, ?)`);
    for (const v of TRICKY_VALUES) put.run(v, v, v, v, v, v);
    db.exec(`DELETE FROM "we""ird 'table'; --" WHERE id > ${TRICKY_VALUES.length - 2}`); // AUTOINCREMENT counter now above max(id)
    const nk = db.prepare('INSERT INTO nokey(rowid, v, w) VALUES (?, ?, ?)');
    for (const [i, v] of TRICKY_VALUES.entries()) nk.run(BigInt(i * 7 - 20), v, `w${i}`);
    const pr = db.prepare('INSERT INTO pairs VALUES (?, ?, ?)');
    for (let i = 0; i < 1200; i++) pr.run(i % 2 ? 'odd' : 'Even', BigInt(1200 - i), TRICKY_VALUES[i % TRICKY_VALUES.length]);
    db.pragma('user_version = 42');
    db.pragma('application_id = 1396920656');
  });
}
