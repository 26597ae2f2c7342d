// `scriptorium bench --quick`: the benchmark runs end to end and writes a well-formed report (Markdown,
// JSON, SVG). The figures themselves are not checked here: they belong to the benchmark run, not to tests.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAIN_TABLE_HEADER } from '../src/bench/markdown.js';
import { median } from '../src/bench/stats.js';
import type { BenchReport } from '../src/bench/stats.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const CASES = [
  'export-ndjson', 'export-json', 'export-sql', 'export-ndjson-zstd', 'import-ndjson', 'import-json', 'import-sql',
  'sqlite3-json', 'sqlite3-dump', 'sqlite3-restore', 'sqlite3-dump-zstd',
];

/** Minimal XML well-formedness check: every element closes, in order, and the root is <svg>. */
function checkXml(text: string): void {
  const body = text.replace(/^<\?xml[^>]*\?>\s*/, '');
  expect(body.startsWith('<svg')).toBe(true);
  const stack: string[] = [];
  for (const m of body.matchAll(/<(\/?)([A-Za-z][\w:-]*)((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?)>/g)) {
    const [, close, name, , selfClose] = m;
    if (selfClose) continue;
    if (close) expect(stack.pop()).toBe(name);
    else stack.push(name!);
  }
  expect(stack).toEqual([]);
  expect(body.replace(/<[^>]*>/g, '')).not.toMatch(/[<>]/);
}

describe('scriptorium bench --quick', () => {
  let out = '';
  let stdout = '';
  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'scriptorium-bench-test-'));
    ({ stdout } = await run(process.execPath, [CLI, 'bench', '--quick', '--out', out], { maxBuffer: 16 << 20 }));
  }, 120_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('writes <date>.md, .json and .svg and prints the Markdown table', () => {
    const files = readdirSync(out).sort();
    expect(files).toHaveLength(3);
    expect(files.map((f) => f.replace(/^\d{4}-\d{2}-\d{2}/, 'DATE'))).toEqual(['DATE.json', 'DATE.md', 'DATE.svg']);
    expect(stdout).toContain(MAIN_TABLE_HEADER);
  });

  it('writes Markdown with the comparison, targets, scaling and memory tables', () => {
    const md = readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.md'))!), 'utf8');
    expect(md).toMatch(/^# scriptorium benchmark — \d{4}-\d{2}-\d{2}/);
    expect(md).toContain(MAIN_TABLE_HEADER);
    for (const h of ['## Targets', '## Scaling', '## Memory', '## All measurements']) expect(md).toContain(h);
    // Every table row has as many cells as its header (a stray `|` would break this).
    for (const block of md.split('\n\n').filter((b) => b.startsWith('| '))) {
      const counts = block.split('\n').filter(Boolean).map((l) => l.replace(/\\\|/g, '').split('|').length);
      expect(new Set(counts).size).toBe(1);
    }
  });

  it('writes a JSON report with every case at every size', () => {
    const report = JSON.parse(readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.json'))!), 'utf8')) as BenchReport;
    expect(report.quick).toBe(true);
    expect(report.repeat).toBeGreaterThanOrEqual(1);
    expect(report.sizes.map((s) => s.records)).toEqual([1000, 5000]);
    for (const size of report.sizes) {
      expect(size.rows).toBeGreaterThan(size.records);
      expect(size.cases.map((c) => c.id)).toEqual(CASES);
      for (const c of size.cases) {
        expect(c.runsMs).toHaveLength(report.repeat);
        for (const k of ['seconds', 'rowsPerSec', 'mbPerSec', 'usPerRow', 'bytes'] as const) expect(c[k]).toBeGreaterThan(0);
        expect(c.peakRssBytes === null || c.peakRssBytes > 0).toBe(true);
        if (c.side === 'ours') expect(c.ratio).toBeGreaterThan(0);
      }
    }
    expect(report.trends.map((t) => t.id)).toEqual(CASES);
    for (const t of report.trends) expect(t.usPerRow).toHaveLength(2);
    expect(report.targets.length).toBeGreaterThan(0);
  });

  it('writes an SVG chart that is well-formed XML with a line per case', () => {
    const svg = readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.svg'))!), 'utf8');
    checkXml(svg);
    expect(svg.match(/<polyline /g)?.length).toBeGreaterThanOrEqual(CASES.length);
  });
});

describe('median', () => {
  it('takes the middle value, or the mean of the two middle values', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});
