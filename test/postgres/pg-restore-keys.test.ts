/**
 * The PostgreSQL restore's post-load steps and read-back, against the real servers of the test
 * harness: keys taken over from unique indexes built first (`ADD CONSTRAINT … USING INDEX`, seen in
 * the statements the server ran, through an event trigger), index builds with the server's parallel
 * workers (--jobs), and a failure in the second table leaving the target as it was.
 */
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backup } from '../../src/repository/backup.js';
import { init } from '../../src/repository/index.js';
import { restore } from '../../src/repository/restore.js';
import { withRepository } from '../../src/repository/repository.js';
import { removeDir, tempDir } from '../export-import/helpers.js';
import { PG_SKIP, describeDatabase, freshDatabase, runSql, textRows } from './pg-helpers.js';

const dir = tempDir('pg-restore-keys');
afterAll(() => removeDir(dir));
let repos = 0;

async function newRepo(): Promise<string> {
  const repo = path.join(dir, `repo-${++repos}`);
  await init(repo);
  return repo;
}

const SCHEMA = `
  CREATE TABLE parents (id bigint PRIMARY KEY, code text NOT NULL, "Wert" text, UNIQUE (code), UNIQUE NULLS NOT DISTINCT ("Wert"));
  CREATE TABLE children (parent bigint NOT NULL REFERENCES parents (id), n integer NOT NULL, body text, PRIMARY KEY (parent, n));
  CREATE INDEX children_body ON children (body);
  INSERT INTO parents SELECT g, 'c' || g, CASE WHEN g <> 7 THEN 'w' || g END FROM generate_series(1, 20000) g;
  INSERT INTO children SELECT 1 + g % 20000, g, repeat(md5(g::text), 1 + g % 3) FROM generate_series(1, 30000) g;
`;

/** Every key and unique constraint: name, definition, and the index it uses. */
const KEYS = `SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid), c.conindid::regclass::text
  FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public' AND c.contype IN ('p', 'u', 'f') ORDER BY 1, 2`;

describe.skipIf(PG_SKIP)('PostgreSQL restore: keys from indexes, parallel index builds, failures', () => {
  it('a primary key and a plain unique constraint are taken over from unique indexes built first (ADD CONSTRAINT … USING INDEX); the restored database equals the source', async () => {
    const src = await freshDatabase('keys');
    await runSql(src, SCHEMA);
    const repo = await newRepo();
    await backup(src, repo);
    const dst = await freshDatabase('keysd');
    // What the restore runs, as the server saw it: an event trigger logs each DDL statement's text.
    await runSql(dst, `
      CREATE TABLE ddl_log (n serial, tag text, query text);
      CREATE FUNCTION log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.ddl_log (tag, query) VALUES (tg_tag, current_query()); END $$;
      CREATE EVENT TRIGGER log_ddl ON ddl_command_end EXECUTE FUNCTION log_ddl();`);
    await restore('latest', repo, { into: dst, jobs: 2 });
    const ran = (await textRows(dst, 'SELECT query FROM ddl_log ORDER BY n')).map((r) => String(r[0]));
    const at = (re: RegExp): number => ran.findIndex((q) => re.test(q));
    for (const [table, key, columns] of [['parents', 'parents_pkey', 'id'], ['children', 'children_pkey', 'parent, n'], ['parents', 'parents_code_key', 'code']] as const) {
      const index = at(new RegExp(`^CREATE UNIQUE INDEX "${key}" ON "public"\\."${table}" USING btree \\(${columns}\\)$`));
      const constraint = at(new RegExp(`^ALTER TABLE ONLY "public"\\."${table}" ADD CONSTRAINT "${key}" (PRIMARY KEY|UNIQUE) USING INDEX "${key}"$`));
      expect(index, key).toBeGreaterThanOrEqual(0);
      expect(constraint, key).toBeGreaterThan(index);
    }
    // NULLS NOT DISTINCT cannot come from an index: it runs as the snapshot has it.
    expect(ran.some((q) => /ADD CONSTRAINT "parents_Wert_key" UNIQUE NULLS NOT DISTINCT \("Wert"\)$/.test(q))).toBe(true);
    expect(ran.some((q) => /PRIMARY KEY \(/.test(q))).toBe(false);
    await runSql(dst, 'DROP EVENT TRIGGER log_ddl; DROP TABLE ddl_log; DROP FUNCTION log_ddl();');
    expect(await textRows(dst, KEYS)).toEqual(await textRows(src, KEYS));
    expect(await describeDatabase(dst)).toEqual(await describeDatabase(src));
    // The keys hold: a duplicate is refused.
    await expect(runSql(dst, "INSERT INTO parents VALUES (1, 'new', NULL)")).rejects.toMatchObject({ code: '23505' });
  });

  it('--jobs 3 builds the indexes with the server\'s parallel workers and restores the same database', async () => {
    const src = await freshDatabase('par');
    await runSql(src, SCHEMA);
    const repo = await newRepo();
    await backup(src, repo);
    const dst = await freshDatabase('pard');
    // Workers for small tables too (the default plans them from 8 MB), so this restore uses them.
    const name = new URL(dst).pathname.slice(1);
    await runSql(dst, `ALTER DATABASE "${name}" SET min_parallel_table_scan_size = 0`);
    const result = await restore('latest', repo, { into: dst, jobs: 3 });
    expect(result.rows).toBe(50000);
    expect(await describeDatabase(dst)).toEqual(await describeDatabase(src));
    expect(await textRows(dst, KEYS)).toEqual(await textRows(src, KEYS));
  });

  it('a failure in the second table (its rows do not read back as the manifest says) leaves the target as it was, after the first table was loaded and checked', async () => {
    const src = await freshDatabase('mid');
    await runSql(src, SCHEMA);
    const repo = await newRepo();
    const snap = await backup(src, repo);
    const dst = await freshDatabase('midd');
    await runSql(dst, 'CREATE TABLE keep_me (x integer PRIMARY KEY); INSERT INTO keep_me VALUES (42);');
    const before = await describeDatabase(dst);
    const events: Array<{ type: string; phase?: string; table?: string }> = [];
    await withRepository(repo, {}, async (r) => {
      const order = snap.schema.tables.map((t) => t.name);
      const second = order[1]!;
      const forged = { ...snap, tables: snap.tables.map((t) => (t.name === second ? { ...t, sha256: '0'.repeat(64) } : t)) };
      const { restoreIntoPostgres } = await import('../../src/repository/restore-postgres.js');
      const { resolveLocation } = await import('../../src/engines/registry.js');
      const { OperationReporter } = await import('../../src/repository/progress.js');
      await expect(restoreIntoPostgres(r, forged, resolveLocation(dst), { jobs: 2 }, new OperationReporter('restore', (e) => events.push(e as never)))).rejects.toMatchObject({
        code: 'E_DIGEST_MISMATCH', message: expect.stringContaining(second),
      });
      // The first table was loaded and read back before the second failed.
      expect(events.some((e) => e.phase === 'verify' && e.table === order[0])).toBe(true);
    });
    expect(await describeDatabase(dst)).toEqual(before);
    expect(await textRows(dst, 'SELECT x FROM keep_me')).toEqual([['42']]);
  });
});
