// `scriptorium bench --scale` (the scaling case, outside the default run): at two sizes, backup and
// restore of a first and a second snapshot, each a process of its own, reported with time per row and
// peak RSS, and the targets (< 100 MB, ≤ 1.2× from the smaller size to the larger). The figures are the
// benchmark's, not the test's: here only that the case runs and reports every step at every size.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCALE_STEPS, type ScaleReport } from '../src/bench/scale.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');

describe('scriptorium bench --scale', () => {
  let out = '';
  let work = '';
  let stdout = '';
  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'scriptorium-scale-test-'));
    work = mkdtempSync(join(tmpdir(), 'scriptorium-scale-work-'));
    ({ stdout } = await run(process.execPath, [CLI, 'bench', '--scale', '--sizes', '1000,2000', '--out', out, '--work-dir', work], { maxBuffer: 16 << 20 }));
  }, 120_000);
  afterAll(() => {
    rmSync(out, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it('writes <date>-scale.md and .json with every step at every size, and the memory targets', () => {
    const files = readdirSync(out).sort();
    expect(files.map((f) => f.replace(/^\d{4}-\d{2}-\d{2}/, 'DATE'))).toEqual(['DATE-scale.json', 'DATE-scale.md']);
    const report = JSON.parse(readFileSync(join(out, files[0]!), 'utf8')) as ScaleReport;
    expect(report.sizes.map((s) => s.records)).toEqual([1000, 2000]);
    for (const s of report.sizes) {
      expect(s.rows).toBeGreaterThan(s.records);
      expect(s.steps.map((st) => st.id)).toEqual([...SCALE_STEPS]);
      for (const st of s.steps) {
        expect(st.seconds).toBeGreaterThan(0);
        expect(st.usPerRow).toBeCloseTo((st.seconds * 1e6) / s.rows, 6);
        expect(st.peakRssBytes === null || st.peakRssBytes > 0).toBe(true);
      }
      expect(s.repositoryBytes).toBeGreaterThan(0);
    }
    if (report.rssMeasured) {
      // Per step: the bound at each of the two sizes, and the ratio between them.
      expect(report.targets.filter((t) => t.issue === 14)).toHaveLength(SCALE_STEPS.length * 3);
      expect(report.targets.filter((t) => t.name.startsWith('peak RSS ratio'))).toHaveLength(SCALE_STEPS.length);
    }
    const md = readFileSync(join(out, files[1]!), 'utf8');
    expect(md).toContain('# scriptorium scaling benchmark');
    expect(md).toContain('## Targets (issue 14)');
    expect(stdout).toContain('# scriptorium scaling benchmark');
    for (const block of md.split('\n\n').filter((b) => b.startsWith('| '))) {
      const counts = block.split('\n').filter(Boolean).map((l) => l.replace(/\\\|/g, '').split('|').length);
      expect(new Set(counts).size).toBe(1);
    }
  });
});
