/**
 * The export fuzz suite: the control lines of an ndjson export (header, table lines, trailers, end line)
 * and the `export_info` of a json export are mutated as JSON (schema SQL text excepted: the schema guard's
 * business) and imported. Each import must succeed exactly (the database equals the source) or fail with
 * a specific ScriptoriumError code, leaving nothing beside the target.
 *
 * FUZZ_SEED and FUZZ_RUNS as in repository-fuzz.test.ts (FUZZ_RUNS=40 ran 1,600 ndjson and 1,000 json
 * cases clean for several seeds, about 20 s each).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptoriumError } from '../../src/core/errors.js';
import { compareDatabases } from '../../src/engines/sqlite/compare.js';
import { exportTo } from '../../src/export.js';
import { importFrom } from '../../src/import.js';
import { fidelityDb } from '../repository/helpers.js';
import { jsonMutation, mutateJson } from './mutations.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261203);
const SCALE = Number(process.env.FUZZ_RUNS ?? 1);

let root: string;
let source: string;
let ndjson: string[];
let json: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'scriptorium-export-fuzz-'));
  source = fidelityDb(root);
  await exportTo(source, { format: 'ndjson', output: join(root, 'e.ndjson') });
  await exportTo(source, { format: 'json', output: join(root, 'e.json') });
  ndjson = readFileSync(join(root, 'e.ndjson'), 'utf8').split('\n');
  json = readFileSync(join(root, 'e.json'), 'utf8');
}, 60_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

async function importCase(text: string, ext: string, what: string, changesMeta: boolean): Promise<void> {
  const dir = mkdtempSync(join(root, 'case-'));
  try {
    const file = join(dir, `in.${ext}`);
    writeFileSync(file, text);
    const out = join(dir, 'out');
    mkdirSync(out);
    const into = join(out, 'db.sqlite');
    try {
      await importFrom(file, { into });
      const diffs = compareDatabases(source, into);
      const describedOnly = (line: string) => line.startsWith('metadata differs') || /^schema: only in .*: (index|view|trigger) /.test(line);
      if (diffs.length > 0 && !(changesMeta && diffs.every(describedOnly))) {
        throw new Error(`import after [${what}] succeeded but differs from the source: ${diffs.join('; ')}`);
      }
    } catch (err) {
      if (err instanceof Error && err.message.includes('succeeded but differs')) throw err;
      if (!(err instanceof ScriptoriumError) || err.code === 'E_INTERNAL') {
        const e = err as Error;
        throw new Error(`import after [${what}] failed with ${e?.name} ${(e as { code?: string })?.code ?? ''}: ${e?.message}`);
      }
    }
    expect(readdirSync(out).filter((f) => f !== 'db.sqlite'), `import after [${what}] left files beside the target`).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(['in.' + ext, 'out']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Control lines of the ndjson export: every line that is not a row. */
function controlLines(): number[] {
  return ndjson.map((l, i) => (l.startsWith('{') ? i : -1)).filter((i) => i >= 0);
}

describe('export fuzz: mutated headers inside valid files', () => {
  it('ndjson control lines', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(1000), fc.nat(1_000_000), jsonMutation, async (which, pick, m) => {
        const lines = [...ndjson];
        const controls = controlLines();
        const at = controls[which % controls.length];
        const { value, what, path, other } = mutateJson(JSON.parse(lines[at]), pick, m);
        lines[at] = JSON.stringify(value) ?? 'null';
        await importCase(lines.join('\n'), 'ndjson', `line ${at + 1}: ${what}`, at === 0 && [path, other].some((p) => p !== undefined && /^(meta|objects)/.test(p)));
      }),
      { seed: SEED, numRuns: Math.max(1, Math.round(40 * SCALE)), endOnFailure: true },
    );
  }, 120_000);

  it('json export_info', async () => {
    const start = json.indexOf('{"export_info":') + '{"export_info":'.length;
    const end = json.indexOf(',\n"tables":{');
    const info = JSON.parse(json.slice(start, end));
    await fc.assert(
      fc.asyncProperty(fc.nat(1_000_000), jsonMutation, async (pick, m) => {
        const { value, what, path, other } = mutateJson(info, pick, m);
        const text = json.slice(0, start) + (JSON.stringify(value) ?? 'null') + json.slice(end);
        await importCase(text, 'json', `export_info: ${what}`, [path, other].some((p) => p !== undefined && /^(schema\.meta|schema\.objects|database_version)/.test(p)));
      }),
      { seed: SEED, numRuns: Math.max(1, Math.round(25 * SCALE)), endOnFailure: true },
    );
  }, 120_000);
});

describe('export headers that import used as given', () => {
  /** Imports `text` and returns the error, which must be a ScriptoriumError; the target must not appear. */
  async function failure(text: string, ext: string): Promise<ScriptoriumError> {
    const dir = mkdtempSync(join(root, 'named-'));
    try {
      writeFileSync(join(dir, `in.${ext}`), text);
      const err = await importFrom(join(dir, `in.${ext}`), { into: join(dir, 'db.sqlite') }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ScriptoriumError);
      expect(readdirSync(dir)).toEqual([`in.${ext}`]);
      return err as ScriptoriumError;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  /** The ndjson export with control line `at` (0 = header, else the first table line) changed by `edit`. */
  const ndjsonWith = (at: 'header' | 'table', edit: (v: Record<string, any>) => void): string => {
    const lines = [...ndjson];
    const i = at === 'header' ? 0 : lines.findIndex((l) => l.startsWith('{"table":'));
    const v = JSON.parse(lines[i]);
    edit(v);
    lines[i] = JSON.stringify(v);
    return lines.join('\n');
  };
  const jsonWith = (edit: (info: Record<string, any>) => unknown): string => {
    const start = json.indexOf('{"export_info":') + '{"export_info":'.length;
    const end = json.indexOf(',\n"tables":{');
    const info = JSON.parse(json.slice(start, end));
    const changed = edit(info);
    return json.slice(0, start) + JSON.stringify(changed === undefined ? info : changed) + json.slice(end);
  };

  it.each<[string, () => [string, string], RegExp]>([
    // Each of these was a TypeError or an SqliteError (E_INTERNAL) before.
    ['a column name that is not a string (ndjson)', () => [ndjsonWith('table', (v) => { v.table.columns[0].name = 5; }), 'ndjson'], /schema of table .*: columns\[0\]: not a column/],
    ['withoutRowid that is not a boolean (ndjson)', () => [ndjsonWith('table', (v) => { v.table.withoutRowid = []; }), 'ndjson'], /withoutRowid: not a boolean/],
    ['columns named differently from the CREATE statement (ndjson)', () => [ndjsonWith('table', (v) => { [v.table.columns[0].name, v.table.columns[1].name] = [v.table.columns[1].name, v.table.columns[0].name]; if (v.table.primaryKey.length) v.table.primaryKey = v.table.primaryKey.map((k: string) => k === v.table.columns[0].name ? v.table.columns[1].name : k === v.table.columns[1].name ? v.table.columns[0].name : k); }), 'ndjson'], /table "we\\"ird table": the file describes its columns or key differently from its CREATE statement/],
    ['a header meta that is not an object (ndjson)', () => [ndjsonWith('header', (v) => { v.meta = 7; }), 'ndjson'], /the file's schema: meta: not an object/],
    ['export_info without schema.meta (json)', () => [jsonWith((info) => { delete info.schema.meta; }), 'json'], /the file's schema: meta: not an object/],
    ['a column name that is not a string (json)', () => [jsonWith((info) => { info.schema.tables[0].columns[1].name = ['x']; }), 'json'], /tables\[0\] .*columns\[1\]: not a column/],
    ['a user_version that is no integer (json)', () => [jsonWith((info) => { info.schema.meta.userVersion = '1; ATTACH'; }), 'json'], /meta.userVersion/],
    ['export_info that is null (json)', () => [jsonWith(() => null), 'json'], /export_info is not an object/],
  ])('%s: E_CORRUPT naming the field', async (_name, make, message) => {
    const [text, ext] = make();
    const err = await failure(text, ext);
    expect(err.code).toBe('E_CORRUPT');
    expect(err.message).toMatch(message);
  });

  it('a json digest that is not a row count and SHA-256: E_CORRUPT (its message read .slice of undefined)', async () => {
    const text = json.replace(/"digests":\{"([^"\\]|\\.)*":\{"rows":\d+,"sha256":"[0-9a-f]{64}"\}/, (m) => m.replace(/"sha256":"[0-9a-f]{64}"/, '"sha256":12'));
    expect(text).not.toBe(json);
    const err = await failure(text, 'json');
    expect(err.code).toBe('E_CORRUPT');
    expect(err.message).toMatch(/digest of table .* is not a row count and a SHA-256/);
  });
});
