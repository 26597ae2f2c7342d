/**
 * Fidelity of every named case through every format and compression, with scriptorium's SQLite
 * extension (the C encoder and decoder) in use. See test/export-import/fidelity-suite.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { loadExtension } from '../src/engines/sqlite/extension.js';
import { fidelitySuite } from './export-import/fidelity-suite.js';
import { ROOT } from './export-import/helpers.js';

describe('the extension', () => {
  it('is built (npm install) and loads, so these tests exercise it', () => {
    expect(fs.existsSync(path.join(ROOT, 'build/Release/scriptorium_sqlite.node'))).toBe(true);
    const db = new Database(':memory:');
    try {
      expect(loadExtension(db)).toBe(true);
    } finally {
      db.close();
    }
  });
});

fidelitySuite();
