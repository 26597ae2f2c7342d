/**
 * `import` of a PostgreSQL sql export into PostgreSQL: our own export round-trips through it (every
 * fidelity case, the whole schema), and anything that is not what the writer writes is refused with
 * its line and nothing written: every psql meta-command (`\!`, `\connect`, `\copy`, …) wherever it
 * stands, statements of other shapes, tuples that are not literals, values changed after export.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportTo } from '../../src/export.js';
import { importFrom } from '../../src/import.js';
import { removeDir, tempDir } from '../export-import/helpers.js';
import { buildSource } from './fidelity-source.js';
import { PG_SKIP, describeDatabase, freshDatabase, textRows } from './pg-helpers.js';

const dir = tempDir('pg-sql-import');
afterAll(() => removeDir(dir));

let source = '';
let file = '';
let text = '';

beforeAll(async () => {
  if (PG_SKIP) return;
  source = await freshDatabase('sqlsrc');
  await buildSource(source);
  file = path.join(dir, 'source.sql');
  await exportTo(source, { format: 'sql', output: file });
  text = fs.readFileSync(file, 'utf8');
});

/** Imports `sql` (written to a file) into a new database; returns the error and the tables the database then has. */
async function refused(name: string, sql: string): Promise<{ err: { code: string; message: string }; tables: unknown[][] }> {
  const edited = path.join(dir, `${name}.sql`);
  fs.writeFileSync(edited, sql);
  const target = await freshDatabase('sqlbad');
  const err = (await importFrom(edited, { into: target }).then(() => ({ code: 'none', message: 'imported' }), (e: unknown) => e)) as { code: string; message: string };
  const tables = await textRows(target, "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')");
  return { err, tables };
}

describe.skipIf(PG_SKIP)('import of a PostgreSQL sql export', () => {
  it('our sql export holds no psql meta-command, and round-trips through import exactly (every fidelity case and the schema)', async () => {
    expect(text).not.toMatch(/^\\/m);
    const target = await freshDatabase('sqlrt');
    const result = await importFrom(file, { into: target });
    expect(result.format).toBe('sql');
    expect(result.tables.every((t) => t.verified)).toBe(true);
    expect(result.rows).toBeGreaterThan(80);
    expect(await describeDatabase(target)).toEqual(await describeDatabase(source));
    // The identity sequence was advanced: the next insert does not collide.
    expect(await textRows(target, "INSERT INTO typed (m) VALUES ('ok') RETURNING id")).toEqual([['40']]);
  });

  it("puts a foreign key's comment after the key, and imports an older export that has it before", async () => {
    const lines = text.split('\n');
    const comment = lines.findIndex((l) => l.startsWith('COMMENT ON CONSTRAINT "orders_typed_id_fkey" ON "sales"."orders" IS '));
    const key = lines.findIndex((l) => /^ALTER TABLE ONLY "sales"\."orders" ADD CONSTRAINT "orders_typed_id_fkey" FOREIGN KEY/.test(l));
    expect(key).toBeGreaterThan(0);
    expect(comment).toBeGreaterThan(key); // psql -f loads it in this order
    // As exports before 2026-12-08 wrote it: every foreign key moved last, its comment left before it.
    const older = [...lines];
    const [moved] = older.splice(comment, 1);
    older.splice(key, 0, moved!);
    const edited = path.join(dir, 'older-order.sql');
    fs.writeFileSync(edited, older.join('\n'));
    const target = await freshDatabase('sqlold');
    await importFrom(edited, { into: target });
    expect(await textRows(target, "SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint WHERE conname = 'orders_typed_id_fkey'")).toEqual([['the typed row it belongs to']]);
    expect(await describeDatabase(target)).toEqual(await describeDatabase(source));
  });

  for (const [label, command] of [
    ['\\! (runs a shell command)', '\\! touch /tmp/scriptorium-pwned'],
    ['\\connect (switches database)', '\\connect postgres'],
    ['\\copy (reads or writes a client file)', "\\copy typed FROM '/etc/passwd'"],
    ['\\i (runs another file)', '\\i /tmp/other.sql'],
    ['\\gexec (runs query results as statements)', "SELECT 'DROP TABLE typed' \\gexec"],
    ['\\set (psql variables)', '\\set ON_ERROR_STOP off'],
  ] as const) {
    it(`refuses the psql meta-command ${label} with a clear error, and writes nothing`, async () => {
      // Before BEGIN, between the tables and the rows, and after the rows: each place is refused.
      for (const [where, sql] of [
        ['head', text.replace('BEGIN;\n', `${command}\nBEGIN;\n`)],
        ['rows', text.replace(/\n-- scriptorium:table /, `\n${command}\n-- scriptorium:table `)],
        ['after', text.replace('\nCOMMIT;\n', `\n${command}\nCOMMIT;\n`)],
      ] as const) {
        const { err, tables } = await refused(`meta-${where}`, sql);
        expect(err, where).toMatchObject({ code: 'E_UNSUPPORTED_SQL', message: expect.stringMatching(/^sql: line \d+: a psql meta-command \(\\[a-z!]+\) is refused: a dump is data, not a script that runs programs$/) });
        expect(err.message).toContain(command.match(/\\[a-z!]+/)![0]);
        expect(tables, where).toEqual([]);
      }
    });
  }

  it('refuses a meta-command after a tuple of an INSERT (outside its strings), and takes backslashes inside strings as data', async () => {
    const at = text.indexOf("backslash\\\\ quote''");
    expect(at).toBeGreaterThan(0); // a string with backslashes and escapes, loaded in the round trip above
    const lines = text.split('\n');
    const insert = lines.findIndex((l) => l.startsWith('INSERT INTO "public"."int2_limits"'));
    lines[insert + 1] = `${lines[insert + 1]} \\! id`;
    const { err, tables } = await refused('meta-tuple', lines.join('\n'));
    expect(err).toMatchObject({ code: 'E_UNSUPPORTED_SQL', message: expect.stringContaining('a psql meta-command (\\!)') });
    expect(tables).toEqual([]);
  });

  it('is as strict as the ndjson path: statements of other shapes, non-literal tuples and changed values are refused, nothing written', async () => {
    const cases: [string, string, string, RegExp][] = [
      ['drop', text.replace('BEGIN;\n', 'BEGIN;\nDROP TABLE IF EXISTS x;\n'), 'E_UNSUPPORTED_SQL', /a statement scriptorium does not write: DROP TABLE/],
      ['function', text.replace('\nCOMMIT;\n', "\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';\nCOMMIT;\n"), 'E_UNSUPPORTED_SQL', /a statement scriptorium does not write: CREATE FUNCTION/],
      ['smuggled', text.replace(/CREATE SCHEMA IF NOT EXISTS "sales"/, 'CREATE SCHEMA IF NOT EXISTS "sales" AUTHORIZATION postgres'), 'E_UNSUPPORTED_SQL', /schema statement .* is not a schema statement as scriptorium writes it/],
      // ALTER TABLE takes several actions: a constraint statement may carry only its own.
      ['two-actions', text.replace(/(ADD CONSTRAINT "int2_limits_pkey" PRIMARY KEY \(id\));/, '$1, ALTER COLUMN v SET DEFAULT 7;'), 'E_UNSUPPORTED_SQL', /constraint statement .* is not a constraint statement as scriptorium writes it \(more than one action/],
      // An ALTER DOMAIN is only a check added NOT VALID; a view's options are name=value pairs.
      ['alter-domain', text.replace(/ALTER DOMAIN "public"\."laterpos" ADD CONSTRAINT "laterpos_check" CHECK \(VALUE > 0\) NOT VALID/, 'ALTER DOMAIN "public"."laterpos" DROP CONSTRAINT "laterpos_check"'), 'E_UNSUPPORTED_SQL', /type statement .* is not a type statement as scriptorium writes it/],
      ['view-options', text.replace(/CREATE VIEW "public"\."barrier" WITH \(security_barrier=true\) AS /, 'CREATE VIEW "public"."barrier" WITH (security_barrier=true) AS SELECT 1; CREATE VIEW x AS '), 'E_UNSUPPORTED_SQL', /view statement .* is not a view statement|more than one statement|cannot insert multiple commands/],
      ['call', text.replace(/\(1,-32768\)/, '(1,pg_sleep(0))'), 'E_UNSUPPORTED_SQL', /the rows of table "int2_limits" hold something that is not a literal/],
      ['subquery', text.replace(/\(1,-32768\)/, '(1,(SELECT 1))'), 'E_UNSUPPORTED_SQL', /hold something that is not a literal/],
      ['other-columns', text.replace('INSERT INTO "public"."int2_limits" ("id", "v")', 'INSERT INTO "public"."int2_limits" ("v", "id")'), 'E_UNSUPPORTED_SQL', /names the columns v, id; its CREATE TABLE made id, v/],
      ['changed', text.replace(/\(1,-32768\)/, '(1,-32767)'), 'E_DIGEST_MISMATCH', /int2_limits/],
      ['after-commit', `${text}SELECT 1;\n`, 'E_UNSUPPORTED_SQL', /a statement after COMMIT/],
      ['truncated', text.slice(0, text.indexOf('\nCOMMIT;')), 'E_TRUNCATED', /has no COMMIT/],
      // Its end line says how many tables and rows it holds; without it the script is incomplete.
      ['no-end', text.replace(/\n-- scriptorium:end \{[^\n]*\}\n?$/, '\n'), 'E_TRUNCATED', /no scriptorium:end line after its COMMIT/],
      ['end-counts', text.replace(/(\n-- scriptorium:end \{"tables":)(\d+)/, (_m, head: string, n: string) => `${head}${Number(n) + 1}`), 'E_TRUNCATED', /the file says it holds \d+ tables; \d+ are in it/],
    ];
    for (const [name, sql, code, message] of cases) {
      expect(sql, name).not.toBe(text);
      const { err, tables } = await refused(name, sql);
      expect(err, name).toMatchObject({ code, message: expect.stringMatching(message) });
      expect(tables, name).toEqual([]);
    }
  });

  it('a SQLite sql export is refused by name when the target is PostgreSQL', async () => {
    const { err, tables } = await refused('sqlite', "-- scriptorium-sql 1: export of app.db\nPRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE t (a INTEGER);\nCOMMIT;\n");
    expect(err).toMatchObject({ code: 'E_UNSUPPORTED_SQL', message: expect.stringContaining('line 2: a statement that is not one of the session settings before BEGIN: PRAGMA foreign_keys=OFF') });
    expect(tables).toEqual([]);
  });
});
