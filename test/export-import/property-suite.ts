/**
 * Property: for any schema (1–3 tables, hostile names, any declared types, with or without a primary
 * key, WITHOUT ROWID) and any values of every storage class, export → import through every format
 * gives back the same database. Run with and without the extension (property / no-extension tests).
 */
import * as path from 'node:path';
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CodecName } from '../../src/codecs/codec.js';
import { FORMATS, makeDb, removeDir, roundTrip, tempDir } from './helpers.js';
import { snapshot } from './snapshot.js';

/** Rows per table at most; PROPERTY_MAX_ROWS=1500 makes batches (500 / 2000 rows) split tables. */
const MAX_ROWS = Number(process.env.PROPERTY_MAX_ROWS ?? 25);

const qi = (name: string): string => `"${name.replaceAll('"', '""')}"`;

const NAME_UNITS = ['a', 'b', 'Z', '_', '1', ' ', '"', "'", ';', '-', '`', '[', ']', '\\', '.', '$', '(', ')', ',', 'é', '表', '😀', 'ש', '\n', '*', '/'];
const KEYWORDS = ['select', 'order', 'from', 'where', 'rowid', 'oid', 'key', 'index', 'table', 'group', 'end', 'values', '__proto__', 'constructor', '$blob'];

/** A name: a keyword, or a run of awkward characters. */
const nameArb = fc.oneof(
  fc.constantFrom(...KEYWORDS),
  fc.array(fc.constantFrom(...NAME_UNITS), { minLength: 1, maxLength: 8 }).map((u) => u.join('')),
);

/** SQLite folds ASCII case in names; `sqlite_` names are reserved. */
const nameKey = (n: string): string => n.replace(/[A-Z]/g, (c) => c.toLowerCase());
const uniqueNames = (min: number, max: number) =>
  fc.uniqueArray(nameArb.filter((n) => !nameKey(n).startsWith('sqlite_')), { minLength: min, maxLength: max, selector: nameKey });

const TYPES = ['', 'INTEGER', 'REAL', 'TEXT', 'BLOB', 'NUMERIC', 'VARCHAR(5)', 'int', 'DOUBLE PRECISION', 'BOOLEAN'];

const INT64 = { min: -(2n ** 63n), max: 2n ** 63n - 1n };
const valueArb = fc.oneof(
  fc.constant(null),
  fc.bigInt(INT64),
  fc.constantFrom(INT64.min, INT64.max, 2n ** 53n + 1n, -(2n ** 53n) - 1n, 0n),
  fc.double({ noNaN: true }), // includes -0 and ±Infinity
  fc.constantFrom(-0, Infinity, -Infinity, 1.0, 0.1, 5e-324),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: fc.constantFrom('\0', '\n', '\r', '\\', "'", '"', '😀', 'e\u0301', 'א', ' ', 'x'), maxLength: 8 }),
  fc.uint8Array({ maxLength: 16 }).map((a) => Buffer.from(a)),
);

interface ColumnSpec {
  name: string;
  type: string;
}
interface TableSpec {
  name: string;
  columns: ColumnSpec[];
  /** Indexes into columns. */
  pk: number[];
  withoutRowid: boolean;
  index: boolean;
  rows: unknown[][];
}

const tableArb = (name: string) =>
  uniqueNames(1, 4).chain((colNames) =>
    fc
      .record({
        types: fc.array(fc.constantFrom(...TYPES), { minLength: colNames.length, maxLength: colNames.length }),
        pk: fc.subarray(colNames.map((_, i) => i), { minLength: 0, maxLength: Math.min(2, colNames.length) }),
        withoutRowid: fc.boolean(),
        index: fc.boolean(),
        rows: fc.array(fc.array(valueArb, { minLength: colNames.length, maxLength: colNames.length }), { maxLength: MAX_ROWS, ...(MAX_ROWS > 100 ? { size: 'max' as const } : {}) }),
      })
      .map(({ types, pk, withoutRowid, index, rows }): TableSpec => ({
        name,
        columns: colNames.map((n, i) => ({ name: n, type: types[i]! })),
        pk,
        withoutRowid: withoutRowid && pk.length > 0,
        index,
        rows,
      })),
  );

const schemaArb = uniqueNames(1, 3).chain((names) => fc.tuple(...names.map(tableArb)));

/** A table's CREATE statement; a single INTEGER key column becomes the rowid alias (INTEGER PRIMARY KEY). */
function createSql(t: TableSpec): string {
  const rowidAlias = !t.withoutRowid && t.pk.length === 1 && t.columns[t.pk[0]!]!.type === 'INTEGER';
  const cols = t.columns.map((c, i) => `${qi(c.name)}${c.type ? ` ${c.type}` : ''}${rowidAlias && t.pk[0] === i ? ' PRIMARY KEY' : ''}`);
  if (t.pk.length > 0 && !rowidAlias) cols.push(`PRIMARY KEY (${t.pk.map((i) => qi(t.columns[i]!.name)).join(', ')})`);
  return `CREATE TABLE ${qi(t.name)} (${cols.join(', ')})${t.withoutRowid ? ' WITHOUT ROWID' : ''}`;
}

function buildSource(file: string, tables: TableSpec[]): void {
  makeDb(file, (db) => {
    for (const t of tables) {
      db.exec(createSql(t));
      if (t.index) db.exec(`CREATE INDEX ${qi(`${t.name} idx`)} ON ${qi(t.name)} (${qi(t.columns[t.columns.length - 1]!.name)} DESC)`);
      const put = db.prepare(`INSERT OR IGNORE INTO ${qi(t.name)} VALUES (${t.columns.map(() => '?').join(', ')})`);
      for (const row of t.rows) {
        try {
          put.run(...row);
        } catch (err) {
          // An INTEGER PRIMARY KEY takes only integers: such a row simply is not part of the source.
          if (!/datatype mismatch/.test((err as Error).message)) throw err;
        }
      }
    }
  });
}

/** Registers the property test with `runs` random databases. */
export function propertySuite(runs: number): void {
  describe('property: random schemas and values round-trip through every format', () => {
    it('export → import gives an identical database (json, ndjson, sql; plain, gzip, zstd)', async () => {
      await fc.assert(
        fc.asyncProperty(schemaArb, fc.constantFrom<CodecName>('none', 'gzip', 'zstd'), async (tables, compress) => {
          const dir = tempDir('property');
          try {
            const source = path.join(dir, 'source.db');
            buildSource(source, tables);
            const expected = snapshot(source);
            for (const format of FORMATS) {
              const restored = await roundTrip(source, { format, compress }, dir); // asserts compareDatabases is empty
              expect(snapshot(restored), `${format}+${compress}`).toEqual(expected);
            }
          } finally {
            removeDir(dir);
          }
        }),
        { numRuns: runs },
      );
    }, 60_000 + runs * 2_000);
  });
}
