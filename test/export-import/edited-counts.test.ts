/**
 * An export with a whole table taken out (its rows and its digest with it) still has its own counts:
 * the ndjson end line, the json header's record_counts and total_records, the sql export's
 * scriptorium:end line. Import compares them with what it loaded and refuses the file (E_TRUNCATED),
 * writing nothing; a scriptorium sql export must also have a digest for every table (a `sqlite3 .dump`
 * has none, and still imports).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportTo } from '../../src/export.js';
import { importFrom } from '../../src/import.js';
import { SQLITE3, makeDb, removeDir, tempDir } from './helpers.js';
import { execFileSync } from 'node:child_process';

const dir = tempDir('edited-counts');
afterAll(() => removeDir(dir));

let source = '';
const text: Record<'ndjson' | 'json' | 'sql', string> = { ndjson: '', json: '', sql: '' };

beforeAll(async () => {
  source = makeDb(path.join(dir, 'two.db'), (db) => {
    db.exec(`CREATE TABLE x (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO x VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma');
      CREATE TABLE y (a INTEGER PRIMARY KEY, b); INSERT INTO y VALUES (1, x'00ff'), (2, 2.5);`);
  });
  for (const format of ['ndjson', 'json', 'sql'] as const) {
    const file = path.join(dir, `two.${format}`);
    await exportTo(source, { format, output: file });
    text[format] = fs.readFileSync(file, 'utf8');
  }
});

/** Imports `content` (written to a file) into a new database; returns the error (or 'imported') and whether the target exists. */
async function load(name: string, content: string): Promise<{ err: { code?: string; message?: string } | 'imported'; written: boolean }> {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  const into = path.join(dir, `${name}.db`);
  const err = await importFrom(file, { into }).then(() => 'imported' as const, (e: unknown) => e as { code?: string; message?: string });
  return { err, written: fs.existsSync(into) };
}

/** `lines` without those from the first matching `from` to the first matching `to` after it (both included). */
function cut(lines: string[], from: (l: string) => boolean, to: (l: string) => boolean): string[] {
  const start = lines.findIndex(from);
  const end = lines.findIndex((l, i) => i >= start && to(l));
  expect(start).toBeGreaterThanOrEqual(0);
  expect(end).toBeGreaterThanOrEqual(start);
  return [...lines.slice(0, start), ...lines.slice(end + 1)];
}

describe('an export with a table taken out is refused, nothing written', () => {
  it('ndjson: the end line still counts it', async () => {
    const lines = text.ndjson.split('\n');
    const edited = cut(lines, (l) => l.startsWith('{"table":{"name":"y"'), (l) => l.startsWith('{"end":"y"'));
    const { err, written } = await load('no-y.ndjson', edited.join('\n'));
    expect(err).toMatchObject({ code: 'E_TRUNCATED', message: 'import: the file says it holds 2 tables; 1 is in it' });
    expect(written).toBe(false);
  });

  it("json: the header's record_counts and total_records still count it", async () => {
    const doc = JSON.parse(text.json) as { export_info: { schema: { tables: { name: string }[] }; record_counts: Record<string, number> }; tables: Record<string, unknown>; digests: Record<string, unknown> };
    doc.export_info.schema.tables = doc.export_info.schema.tables.filter((t) => t.name !== 'y');
    delete doc.tables.y;
    delete doc.digests.y;
    expect(doc.export_info.record_counts).toEqual({ x: 3, y: 2 });
    const { err, written } = await load('no-y.json', JSON.stringify(doc));
    expect(err).toMatchObject({ code: 'E_TRUNCATED', message: 'import: the file says it holds 2 tables; 1 is in it' });
    expect(written).toBe(false);
    // The counts alone changed: rows the file says it has and does not.
    const more = JSON.parse(text.json) as { export_info: { total_records: number } };
    more.export_info.total_records += 1;
    expect((await load('more-rows.json', JSON.stringify(more))).err).toMatchObject({ code: 'E_TRUNCATED', message: 'import: the file says it holds 6 rows; 5 are in it' });
  });

  it('sql: the scriptorium:end line still counts it, and a table without its digest is refused', async () => {
    const lines = text.sql.split('\n');
    const createY = (l: string): boolean => l.startsWith('CREATE TABLE y') || l.startsWith('CREATE TABLE "y"');
    expect(lines.some(createY)).toBe(true);
    // y's CREATE TABLE, and its rows with their digest.
    const noY = cut(cut(lines, createY, createY), (l) => /^INSERT INTO "?y"?\(/.test(l), (l) => l.startsWith('-- scriptorium:digest {"table":"y"'));
    const a = await load('no-y.sql', noY.join('\n'));
    expect(a.err).toMatchObject({ code: 'E_TRUNCATED', message: 'import: the file says it holds 2 tables; 1 is in it' });
    expect(a.written).toBe(false);
    // Only y's rows and digest: the table would come back empty.
    const noRows = cut(lines, (l) => /^INSERT INTO "?y"?\(/.test(l), (l) => l.startsWith('-- scriptorium:digest {"table":"y"'));
    const b = await load('no-y-rows.sql', noRows.join('\n'));
    expect(b.err).toMatchObject({ code: 'E_TRUNCATED', message: expect.stringContaining('table "y" has no digest') });
    expect(b.written).toBe(false);
    // The end line itself taken out.
    const c = await load('no-end.sql', lines.filter((l) => !l.startsWith('-- scriptorium:end ')).join('\n'));
    expect(c.err).toMatchObject({ code: 'E_TRUNCATED', message: 'sql: the script has no scriptorium:end line after its COMMIT' });
    expect(c.written).toBe(false);
  });

  it('the unedited exports and a sqlite3 .dump (no digests, no counts) still import', async () => {
    for (const format of ['ndjson', 'json', 'sql'] as const) expect((await load(`whole.${format}`, text[format])).err, format).toBe('imported');
    const dump = execFileSync(SQLITE3, [source, '.dump'], { encoding: 'utf8' });
    expect((await load('dump.sql', dump)).err).toBe('imported');
  });
});
