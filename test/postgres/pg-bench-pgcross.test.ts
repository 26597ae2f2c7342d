/**
 * The benchmark's pgcross section on the test server (`bench --only pgcross --quick`): pgloader and
 * scriptorium load the same SQLite demo database, and the fidelity table shows each edge value as each
 * leaves it. Without pgloader the section says so (under CI, .ci/run installs it: a failure).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '../export-import/helpers.js';
import { PG_SKIP, PG_URL } from './pg-helpers.js';

const dir = tempDir('pg-bench-pgcross');
afterAll(() => removeDir(dir));
const CLI = path.resolve('dist/cli/main.js');
const HAS_PGLOADER = spawnSync('pgloader', ['--version']).status === 0;

describe.skipIf(PG_SKIP)('bench --only pgcross', { timeout: 300_000 }, () => {
  it('times pgloader and scriptorium in the same run and tabulates what each carries exactly', () => {
    const out = path.join(dir, 'results');
    const r = spawnSync(process.execPath, [CLI, 'bench', '--only', 'pgcross', '--quick', '--pg-url', PG_URL, '--out', out, '--work-dir', path.join(dir, 'work'), '-q'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const [md] = fs.readdirSync(out).filter((f) => f.endsWith('-pgcross.md'));
    const text = fs.readFileSync(path.join(out, md!), 'utf8');
    expect(text).not.toContain(new URL(PG_URL).password);
    if (!HAS_PGLOADER && !process.env.CI) {
      expect(text).toContain('Not run: pgloader is not installed');
      return;
    }
    const report = JSON.parse(fs.readFileSync(path.join(out, md!.replace(/\.md$/, '.json')), 'utf8')) as { rows: number; runs: { id: string; runsMs: number[] }[]; fidelity: Record<string, string>[]; refusal: string };
    expect(report.rows).toBe(3980);
    expect(report.runs.map((x) => [x.id, x.runsMs.length])).toEqual([['pgloader', 1], ['scriptorium', 1]]);
    expect(report.refusal).toBe('E_LOSSY');
    const byCase = new Map(report.fidelity.map((f) => [f.case, f]));
    expect(byCase.size).toBe(15);
    // Exact cases: scriptorium (with --allow-lossy too) holds the exact value.
    for (const name of ['64-bit integer (max)', '64-bit integer (min)', 'REAL 1/3 (17 digits)', 'BLOB', 'Unicode text', 'BOOLEAN 1']) {
      expect(byCase.get(name)!.lossy, name).toBe(byCase.get(name)!.exact);
    }
    // Lossy cases: reported without --allow-lossy, never silently changed.
    for (const name of ['NUL in text', 'BLOB in a TEXT column', "text 'five' in an INTEGER column", 'REAL 1.5 in an INTEGER column']) {
      expect(byCase.get(name)!.scriptorium, name).toBe('reported (E_LOSSY)');
    }
    expect(text).toContain('### Fidelity: what each carries exactly');
  });
});
