/**
 * The export fuzz suite: the control lines of an ndjson export (header, table lines, trailers, end line)
 * and the `export_info` of a json export are mutated as JSON (schema SQL text excepted: the schema guard's
 * business) and imported. Each import must succeed exactly (the database equals the source) or fail with
 * a specific ScriptoriumError code, leaving nothing beside the target.
 *
 * FUZZ_SEED and FUZZ_RUNS as in repository-fuzz.test.ts.
 *
 * Runs only with FUZZ_EXPORTS=1 for now: on this branch import still takes the header's schema as given
 * (a column name that is not a string is a TypeError, a missing `meta` too); the import side is another
 * part of issue 13, which can check header schemas with `schemaProblemOf` / `tableSchemaProblem` of
 * src/repository/manifest-check.ts and then turn this suite on for good.
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

describe.skipIf(!process.env.FUZZ_EXPORTS)('export fuzz: mutated headers inside valid files', () => {
  it('ndjson control lines', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(1000), fc.nat(1_000_000), jsonMutation, async (which, pick, m) => {
        const lines = [...ndjson];
        const controls = controlLines();
        const at = controls[which % controls.length];
        const { value, what, path } = mutateJson(JSON.parse(lines[at]), pick, m);
        lines[at] = JSON.stringify(value) ?? 'null';
        await importCase(lines.join('\n'), 'ndjson', `line ${at + 1}: ${what}`, at === 0 && /^(meta|objects)/.test(path));
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
        const { value, what, path } = mutateJson(info, pick, m);
        const text = json.slice(0, start) + (JSON.stringify(value) ?? 'null') + json.slice(end);
        await importCase(text, 'json', `export_info: ${what}`, /^(schema\.meta|schema\.objects|database_version)/.test(path));
      }),
      { seed: SEED, numRuns: Math.max(1, Math.round(25 * SCALE)), endOnFailure: true },
    );
  }, 120_000);
});
