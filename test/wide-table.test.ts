/** Tables beyond what SQLite can encode in one expression get a clear error, and no file is written. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { exportTo } from '../src/export.js';
import { removeDir, tempDir } from './export-import/helpers.js';

const dir = tempDir('wide');
afterAll(() => removeDir(dir));

describe('a table of 1,200 columns', () => {
  const db = path.join(dir, 'wide.db');
  const w = new Database(db);
  w.exec(`CREATE TABLE w(${Array.from({ length: 1200 }, (_, i) => `c${i}`).join(', ')})`);
  w.exec('INSERT INTO w (c0, c1199) VALUES (1, 2)');
  w.close();

  for (const format of ['json', 'ndjson', 'sql'] as const) {
    it(`export as ${format}: E_UNSUPPORTED with a hint, nothing written`, async () => {
      const out = path.join(dir, `wide.${format}`);
      await expect(exportTo(db, { format, output: out })).rejects.toMatchObject({ code: 'E_UNSUPPORTED', hint: expect.stringContaining('--exclude-tables') });
      expect(fs.readdirSync(dir).filter((f) => f !== 'wide.db')).toEqual([]);
    });
  }
});
