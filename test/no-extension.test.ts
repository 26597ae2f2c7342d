/**
 * The same fidelity cases and property without scriptorium's SQLite extension (SQLite's own JSON and
 * quote() functions do the work), and the two paths against each other: they must write the same bytes
 * and read each other's files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decompress } from 'zstd-napi';
import { compareDatabases } from '../src/engines/sqlite/compare.js';
import { loadExtension } from '../src/engines/sqlite/extension.js';
import { exportTo } from '../src/export.js';
import { importFrom } from '../src/import.js';
import { fidelitySuite } from './export-import/fidelity-suite.js';
import { cli, makeDb, removeDir, tempDir, VARIANTS, variantName, type Variant } from './export-import/helpers.js';
import { propertySuite } from './export-import/property-suite.js';
import { trickyDb } from './export-import/tricky.js';

// Read once, on first use: everything in this file (this process) runs without the extension.
process.env.SCRIPTORIUM_NO_EXTENSION = '1';
const WITH_EXTENSION = { ...process.env, NO_COLOR: '1', SCRIPTORIUM_NO_EXTENSION: '' };

describe('without the extension', () => {
  it('is really not loaded in this process', () => {
    const db = new Database(':memory:');
    try {
      expect(loadExtension(db)).toBe(false);
    } finally {
      db.close();
    }
  });

  describe('the two paths agree', () => {
    let dir: string;
    let source: string;
    beforeAll(() => {
      dir = tempDir('parity');
      source = trickyDb(path.join(dir, 'tricky.db'));
      makeDb(source, (db) => {
        db.exec('CREATE TABLE extra(a, b TEXT, c INTEGER)');
        const put = db.prepare('INSERT INTO extra VALUES (?, ?, ?)');
        for (let i = 0; i < 4500; i++) put.run(i % 3 ? `t${i}\r\n` : Buffer.from([i & 0xff, 0]), i % 5 ? null : `x${i}`, i % 7 ? BigInt(i) * 1_000_000_007n : -0);
      });
    });
    afterAll(() => removeDir(dir));

    /** The file minus the lines that carry the export time. */
    const body = (file: string, variant: Variant): string => {
      let text: Buffer = fs.readFileSync(file);
      if (variant.compress === 'gzip') text = zlib.gunzipSync(text);
      if (variant.compress === 'zstd') text = decompress(text);
      return text.toString('utf8').replace(/"timestamp":"[^"]*"|"exported_at":"[^"]*"|at \d{4}-\d{2}-\d{2}T[\d:.]+Z/g, 'TIME');
    };

    it.each(VARIANTS.map((v) => [variantName(v), v] as [string, Variant]))('%s: same bytes, and each imports the other', async (name, variant) => {
      const without = path.join(dir, `without-${name}`);
      await exportTo(source, { format: variant.format, compress: variant.compress, output: without });
      const withExt = path.join(dir, `with-${name}`);
      const args = ['export', source, '--format', variant.format, '-o', withExt, '--quiet', ...(variant.compress === 'none' ? [] : ['--compress', variant.compress])];
      const r = cli(args, { env: WITH_EXTENSION });
      expect(r.code, r.stderr).toBe(0);
      expect(body(withExt, variant)).toBe(body(without, variant));

      const a = path.join(dir, `a-${name}.db`);
      await importFrom(withExt, { into: a }); // written in C, read by SQLite's functions
      expect(compareDatabases(source, a)).toEqual([]);
      const b = path.join(dir, `b-${name}.db`);
      const ri = cli(['import', without, '--into', b, '--quiet'], { env: WITH_EXTENSION }); // and the other way round
      expect(ri.code, ri.stderr).toBe(0);
      expect(compareDatabases(source, b)).toEqual([]);
    });
  });
});

fidelitySuite();
propertySuite(Number(process.env.PROPERTY_RUNS ?? 15));
