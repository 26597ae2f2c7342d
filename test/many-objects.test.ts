/**
 * Issue 13: a schema of tens of thousands of objects. The checks a header or a manifest passes
 * (schema-check, manifest-check, the schema guard on every statement) accept 50,000 objects, and still
 * find the one duplicate or bad statement among them; a database of thousands of tables, indexes and
 * views goes through every format and a repository exactly. (Time is measured by
 * bench/many-objects.mjs, never here: creating 50,000 objects is quadratic inside SQLite itself.)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseSchema, TableSchema } from '../src/core/schema.js';
import { schemaProblemOf } from '../src/core/schema-check.js';
import { exportTo } from '../src/export.js';
import { importFrom } from '../src/import.js';
import { backup, init, restore, verify } from '../src/repository/index.js';
import { manifestProblem } from '../src/repository/manifest-check.js';
import { manifestSchemaProblems } from '../src/repository/schema-check.js';
import { makeDb, removeDir, tempDir, withDb } from './export-import/helpers.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('many-objects');
});
afterAll(() => removeDir(dir));

const quiet = { onEvent: () => undefined };
const DIGEST = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** A schema of `tables` tables, and as many indexes and views, as a header or manifest carries it. */
function bigSchema(tables: number): DatabaseSchema {
  const list: TableSchema[] = [];
  const objects: DatabaseSchema['objects'] = [];
  for (let i = 0; i < tables; i++) {
    list.push({ name: `t${i}`, sql: `CREATE TABLE t${i} (id INTEGER PRIMARY KEY, v TEXT)`, columns: [{ name: 'id', type: 'INTEGER', notNull: false, pk: 1 }, { name: 'v', type: 'TEXT', notNull: false, pk: 0 }], primaryKey: ['id'], withoutRowid: false });
    objects.push({ type: 'index', name: `i${i}`, table: `t${i}`, sql: `CREATE INDEX i${i} ON t${i} (v)` });
    objects.push({ type: 'view', name: `v${i}`, table: `v${i}`, sql: `CREATE VIEW v${i} AS SELECT v FROM t${i}` });
  }
  return { engine: 'sqlite', engineVersion: '3.50.0', tables: list, objects, meta: { userVersion: 0, applicationId: 0 } };
}

function manifestOf(schema: DatabaseSchema): Record<string, unknown> {
  return {
    version: 1, repository: 'ab'.repeat(16), time: new Date().toISOString(), host: 'h', source: 'many.db', tags: [], encoding: 'ndjson', packs: [],
    schema, tables: schema.tables.map((t) => ({ name: t.name, rows: 0, bytes: 0, chunkCount: 0, sha256: DIGEST, chunks: [] })),
    stats: { rows: 0, bytes: 0, chunks: 0, newChunks: 0, newChunkBytes: 0, storedBytes: 0, durationMs: 0 },
  };
}

describe('a schema of 50,000 objects', () => {
  it('passes the header and manifest checks, which still find one duplicate name or one bad statement among them', () => {
    const schema = bigSchema(16_667); // 16,667 tables, indexes and views each: 50,001 objects
    expect(schema.tables.length + schema.objects.length).toBeGreaterThanOrEqual(50_000);
    expect(schemaProblemOf(schema)).toBeUndefined();
    expect(schemaProblemOf({ ...schema, tables: [] }, { tablesFollow: true })).toBeUndefined(); // an ndjson header
    const manifest = manifestOf(schema);
    expect(manifestProblem(manifest)).toBeUndefined();
    expect(manifestSchemaProblems({ id: 'x', schema } as never)).toEqual([]);

    // The last object's name is the first table's (as SQLite compares names): found.
    const dup = { ...schema, objects: [...schema.objects, { type: 'index' as const, name: 'T0', table: 't1', sql: 'CREATE INDEX T0 ON t1 (v)' }] };
    expect(schemaProblemOf(dup)).toBe(`objects[${schema.objects.length}] ("T0"): the name is used twice`);
    // One statement among 50,000 (the last index) that does more than its CREATE: named.
    const bad = { ...schema, objects: schema.objects.map((o, i) => (i === schema.objects.length - 2 ? { ...o, sql: `${o.sql}; ATTACH 'x' AS y` } : o)) };
    const problems = manifestSchemaProblems({ id: 'x', schema: bad } as never);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toMatch(/second statement|more than one statement/);
    // A manifest whose tables list misses the last table of the schema.
    expect(manifestProblem({ ...manifest, tables: (manifest.tables as unknown[]).slice(0, -1) })).toMatch(/t16666.* has no entry in tables/);
  });
});

describe('a database of thousands of tables, indexes and views', () => {
  const TABLES = 1500;
  it('goes through json, ndjson and sql and a repository exactly', async () => {
    const source = makeDb(path.join(dir, 'many.db'), (db) => {
      db.exec('BEGIN');
      for (let i = 0; i < TABLES; i++) {
        db.exec(`CREATE TABLE "t ${i}" (id INTEGER PRIMARY KEY, v TEXT${i % 3 === 0 ? ', w BLOB) WITHOUT ROWID' : ')'}`);
        db.prepare(`INSERT INTO "t ${i}" (id, v) VALUES (?, ?)`).run(i, `row of ${i}`);
        db.exec(`CREATE INDEX "i ${i}" ON "t ${i}" (v); CREATE VIEW "v ${i}" AS SELECT v FROM "t ${i}"`);
      }
      db.exec('COMMIT');
    });
    /** Every schema row and every row of every table. */
    const content = (file: string): string[] =>
      withDb(file, (db) => {
        const schema = db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").raw().all() as string[][];
        const rows = schema.filter(([type]) => type === 'table').map(([, name]) => JSON.stringify(db.prepare(`SELECT * FROM "${name}" ORDER BY 1`).raw().all(), (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)));
        return [...schema.map((r) => r.join('|')), ...rows];
      });
    const want = content(source);
    expect(want.length).toBe(4 * TABLES);
    for (const format of ['json', 'ndjson', 'sql'] as const) {
      const file = path.join(dir, `many.${format}`);
      await exportTo(source, { format, output: file, ...quiet });
      const into = path.join(dir, `from-${format}.db`);
      const result = await importFrom(file, { into, ...quiet });
      expect(result.tables).toHaveLength(TABLES);
      expect(content(into), format).toEqual(want);
      fs.rmSync(into);
    }
    const repo = path.join(dir, 'repo');
    await init(repo);
    await backup(source, repo);
    const into = path.join(dir, 'restored.db');
    await restore('latest', repo, { into });
    expect(content(into)).toEqual(want);
    expect((await verify(repo, { drill: true })).problems).toEqual([]);
  }, 600_000);
});
