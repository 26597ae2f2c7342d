import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { exportTo } from '../../src/export.js';
import { importFrom } from '../../src/import.js';
import { removeDir, tempDir } from '../export-import/helpers.js';
import { PG_SKIP, freshDatabase, runSql, textRows } from './pg-helpers.js';

const dir = tempDir('pg-roundtrip');
afterAll(() => removeDir(dir));

/** A digest of every row of a table, computed by the server itself from the values' text forms. */
async function tableDigest(url: string, table: string, order: string): Promise<string> {
  const [[digest, count]] = (await textRows(url, `SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY ${order}), '')), count(*) FROM ${table} t`)) as string[][];
  return `${count}:${digest}`;
}

describe.skipIf(PG_SKIP)('PostgreSQL export and import', () => {
  it('carries a simple table PostgreSQL → ndjson → PostgreSQL', async () => {
    const src = await freshDatabase('src');
    await runSql(src, `CREATE TABLE t (id bigint PRIMARY KEY, name text NOT NULL, score double precision, data bytea);
      INSERT INTO t VALUES (1, 'one', 1.5, '\\x00ff'), (2, 'two', NULL, NULL), (3, 'ดี', '-0', '\\x');`);
    const file = path.join(dir, 'simple.ndjson');
    const out = await exportTo(src, { format: 'ndjson', output: file });
    expect(out.rows).toBe(3);
    const text = fs.readFileSync(file, 'utf8');
    expect(text).toContain('[1,"one",1.5,{"$blob":"00FF"}]');
    expect(text).toContain('[3,"ดี",-0.0,{"$blob":""}]');
    const dst = await freshDatabase('dst');
    const result = await importFrom(file, { into: dst });
    expect(result.tables).toEqual([{ name: 't', rows: 3, sha256: out.tables[0]!.sha256, verified: true }]);
    expect(await tableDigest(dst, 'public.t', 'id')).toBe(await tableDigest(src, 'public.t', 'id'));
  });
});

describe.skipIf(PG_SKIP)('PostgreSQL import of damaged files', () => {
  it('a table line without columns is E_CORRUPT naming it, and nothing is written', async () => {
    const src = await freshDatabase('dmg');
    await runSql(src, 'CREATE TABLE t (id integer PRIMARY KEY); INSERT INTO t VALUES (1);');
    const file = path.join(dir, 'damaged.ndjson');
    await exportTo(src, { format: 'ndjson', output: file });
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/"columns":\[[^\]]*\]/, '"columns":7'));
    const dst = await freshDatabase('dmgt');
    await expect(importFrom(file, { into: dst })).rejects.toMatchObject({ code: 'E_CORRUPT', message: expect.stringContaining('table "t" has no list of named, typed columns') });
    expect(await textRows(dst, "SELECT count(*) FROM pg_class WHERE relname = 't'")).toEqual([['0']]);
  });
});

describe.skipIf(PG_SKIP)('PostgreSQL export that fails half-way', () => {
  it('a destination that fails during the rows ends the export with its error (the COPY in flight does not hang it)', async () => {
    const src = await freshDatabase('half');
    await runSql(src, "CREATE TABLE big (id integer PRIMARY KEY, pad text); INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 60000) g;");
    let written = 0;
    const failing = new Writable({
      write(chunk: Buffer, _enc, done) {
        written += chunk.length;
        done(written > 200_000 ? new Error('disk on fire') : null);
      },
    });
    await expect(exportTo(src, { format: 'ndjson', stream: failing })).rejects.toThrow('disk on fire');
    // The source's connection is gone: nothing of ours stays on the server.
    const [[sessions]] = (await textRows(src, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'scriptorium' AND datname = current_database()")) as string[][];
    expect(sessions).toBe('0');
  });
});
