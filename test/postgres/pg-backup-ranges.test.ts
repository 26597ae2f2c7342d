/**
 * A PostgreSQL backup with several connections reads a large table in primary-key ranges
 * (src/engines/postgres/postgres-copy-source.ts): the ranges together must give the whole table's
 * stream (same digest, same chunks as one connection), restore exactly, leave a table without a
 * key whole, and see one snapshot on every connection.
 */
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyOutStream } from '../../src/engines/postgres/copy-out-stream.js';
import { loadDriver } from '../../src/engines/postgres/driver.js';
import { resolveLocation } from '../../src/engines/registry.js';
import { backup } from '../../src/repository/backup.js';
import { init } from '../../src/repository/index.js';
import { openPostgresSource } from '../../src/repository/postgres-backup-source.js';
import { restore } from '../../src/repository/restore.js';
import { removeDir, tempDir } from '../export-import/helpers.js';
import { PG_SKIP, describeDatabase, freshDatabase, runSql, textRows } from './pg-helpers.js';

const dir = tempDir('pg-ranges');
afterAll(() => removeDir(dir));
let repos = 0;

async function newRepo(): Promise<string> {
  const repo = path.join(dir, `repo-${++repos}`);
  await init(repo);
  return repo;
}

/**
 * Tables a split must carry exactly: an integer key; a text key whose "C" order differs from a
 * natural-language one (case, accents, Thai, quotes and backslashes in the bounds' literals); a table
 * never analyzed (its bounds come from a sample); a table without a key.
 */
const SCHEMA = `
  CREATE TABLE numbers (id bigint PRIMARY KEY, label text, amount numeric);
  INSERT INTO numbers SELECT g, 'n' || g, g * 1.5 FROM generate_series(1, 5000) g ORDER BY md5(g::text);
  CREATE TABLE words (key text PRIMARY KEY, body text);
  INSERT INTO words SELECT (ARRAY['a', 'B', 'é', 'Z', 'ก', 'x''y', E'back\\\\slash', 'comma,', ' space', '{brace}'])[1 + g % 10] || g, repeat('w', g % 40)
    FROM generate_series(1, 4000) g;
  CREATE TABLE unanalyzed (id integer PRIMARY KEY, v text) WITH (autovacuum_enabled = false);
  INSERT INTO unanalyzed SELECT g, md5(g::text) FROM generate_series(1, 3000) g;
  CREATE TABLE keyless (a integer, b text);
  INSERT INTO keyless SELECT g % 17, 'k' || g FROM generate_series(1, 2500) g;
  ANALYZE numbers;
  ANALYZE words;
  ANALYZE keyless;
`;

/** Loads {@link SCHEMA} into `url`; VACUUM (the row estimate without statistics) runs on its own. */
async function load(url: string): Promise<void> {
  await runSql(url, SCHEMA);
  await runSql(url, 'VACUUM unanalyzed');
}

describe.skipIf(PG_SKIP)('PostgreSQL backup in primary-key ranges (--jobs)', () => {
  it('tables split into several ranges back up as one connection does (same digests and chunks) and restore exactly; a table without a key stays whole', async () => {
    const src = await freshDatabase('ranges');
    await load(src);
    // The sample path is meant: the table has a row estimate but no statistics.
    expect(await textRows(src, `SELECT count(*) FROM pg_stats WHERE tablename = 'unanalyzed'`)).toEqual([['0']]);
    const repo = await newRepo();
    const one = await backup(src, repo, { jobs: 1 });
    const source = await openPostgresSource(resolveLocation(src), { jobs: 3, splitRows: 1000 });
    const byName = new Map(source.schema.tables.map((t) => [t.name, t]));
    for (const name of ['numbers', 'words', 'unanalyzed']) expect(source.rangeCount(byName.get(name)!), name).toBeGreaterThan(1);
    expect(source.rangeCount(byName.get('keyless')!)).toBe(1);
    const split = await backup(source, repo);
    await source.close();
    const digests = (s: typeof one) => Object.fromEntries(s.tables.map((t) => [t.name, [t.rows, t.sha256, t.chunkCount]]));
    expect(digests(split)).toEqual(digests(one));
    expect(split.stats.newChunks).toBe(0);
    const dst = await freshDatabase('ranges_dst');
    await restore(split.id, repo, { into: dst, jobs: 2 });
    expect(await describeDatabase(dst)).toEqual(await describeDatabase(src));
  });

  it('every connection reads the one snapshot: rows inserted, changed and deleted by another connection during the backup are not in it', async () => {
    const src = await freshDatabase('ranges_snap');
    await load(src);
    const before = (await describeDatabase(src)).data;
    const source = await openPostgresSource(resolveLocation(src), { jobs: 3, splitRows: 1000 });
    expect(source.rangeCount(source.schema.tables.find((t) => t.name === 'numbers')!)).toBeGreaterThan(1);
    // After the snapshot was taken and shared, before any table is read: in every range of the split tables.
    await runSql(src, `INSERT INTO numbers SELECT g, 'late', 0 FROM generate_series(5001, 6000) g;
      UPDATE numbers SET label = 'changed' WHERE id % 97 = 0;
      DELETE FROM numbers WHERE id % 101 = 0;
      INSERT INTO words SELECT 'late' || g, 'x' FROM generate_series(1, 500) g;
      DELETE FROM unanalyzed WHERE id > 2900;
      INSERT INTO keyless VALUES (1, 'late');`);
    const repo = await newRepo();
    const snap = await backup(source, repo);
    await source.close();
    expect(snap.stats.rows).toBe(5000 + 4000 + 3000 + 2500);
    const dst = await freshDatabase('ranges_snap_dst');
    await restore(snap.id, repo, { into: dst, jobs: 2 });
    expect((await describeDatabase(dst)).data).toEqual(before);
    expect(await textRows(dst, `SELECT count(*) FROM numbers WHERE label IN ('late', 'changed')`)).toEqual([['0']]);
  });
});

describe.skipIf(PG_SKIP)('COPY TO STDOUT de-framed by copyOutStream', () => {
  it('gives byte for byte what pg-copy-streams gives, for rows cut anywhere by socket reads (empty, small and 300 KB values), and a failing COPY still fails', async () => {
    const url = await freshDatabase('copyout');
    await runSql(url, `CREATE TABLE t (id integer PRIMARY KEY, v text);
      INSERT INTO t SELECT g, CASE WHEN g % 500 = 0 THEN repeat(md5(g::text), 10000) WHEN g % 7 = 0 THEN '' ELSE repeat('v', g % 300) END FROM generate_series(1, 20000) g;`);
    const driver = await loadDriver();
    const read = async (stream: NodeJS.ReadableStream): Promise<Buffer> => {
      const client = new driver.Client({ connectionString: url });
      await client.connect();
      try {
        const parts: Buffer[] = [];
        for await (const piece of client.query(stream) as AsyncIterable<Buffer>) parts.push(piece);
        // The connection is pg's again: a query after the COPY works.
        expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
        return Buffer.concat(parts);
      } finally {
        await client.end();
      }
    };
    const sql = 'COPY (SELECT * FROM t ORDER BY id) TO STDOUT';
    const ours = await read(copyOutStream(driver, sql));
    expect(ours.length).toBeGreaterThan(6_000_000);
    expect(ours.equals(await read(driver.copyTo(sql)))).toBe(true);
    await expect(read(copyOutStream(driver, 'COPY (SELECT 1 / (id - 19000) FROM t ORDER BY id) TO STDOUT'))).rejects.toThrow(/division by zero/);
  });
});
