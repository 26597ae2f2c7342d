// The Markdown report and the text table, from records with known figures.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TARGETS,
  computeTrend,
  formatDuration,
  formatHistoryTable,
  median,
  percentile,
  renderReport,
  type OperationRecord,
} from '../../src/monitor/index.js';
import { makeRecord } from './helpers.js';

describe('statistics', () => {
  it('median and nearest-rank percentile', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeUndefined();
    const ten = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
    expect(percentile(ten, 95)).toBe(10);
    expect(percentile(ten, 50)).toBe(5);
    expect(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 95)).toBe(95);
    expect(percentile([7], 95)).toBe(7);
    expect(() => percentile(ten, 0)).toThrow(TypeError);
  });

  it('trend: median of the last N against the N before', () => {
    expect(computeTrend([100, 100, 100, 200, 200, 200], 3)).toEqual({ n: 3, recent: 200, previous: 100, changePct: 100 });
    // Fewer than 2N values: each half is half of them.
    expect(computeTrend([1, 2, 3, 4, 5], 10)).toMatchObject({ n: 2, recent: 4.5, previous: 2.5 });
    expect(computeTrend([1], 10)).toBeUndefined();
  });
});

describe('renderReport', () => {
  // Ten successful exports taking 100..1000 ms for 1000 rows each (rows/s 10000..1000), two failures,
  // and three restores.
  const exports = Array.from({ length: 10 }, (_, i) => makeRecord({ kind: 'export', id: `e${i}`, durationMs: 100 * (i + 1), rows: 1000 }));
  const failures = [
    makeRecord({ kind: 'export', id: 'f1', ok: false, error: { code: 'E_IO', message: 'disk\nfull' } }),
    makeRecord({ kind: 'export', id: 'f2', ok: false, error: { code: 'E_LOCKED', message: 'busy' } }),
  ];
  const restores = [2000, 4000, 3000].map((ms, i) => makeRecord({ kind: 'restore', id: `r${i}`, durationMs: ms, rows: 6000 }));
  const records: OperationRecord[] = [...exports, ...failures, ...restores];
  const report = renderReport(records, { targets: { ...DEFAULT_TARGETS, export: { maxDurationMs: 900 } }, trendWindow: 5 });
  const section = (kind: string) => report.slice(report.indexOf(`## ${kind}`)).split(/\n## /)[0];

  it('has one section per kind with count, success rate, median and p95 duration and rows/s', () => {
    expect(report.startsWith('# Scriptorium performance report\n')).toBe(true);
    expect(report).toContain('15 operations from 2025-01-01');
    // durations 100..1000: median 550, p95 (nearest rank) 1000; rows/s 10000/k for k = 1..10: median (2000 + 1666.7) / 2 → 1,833, p95 10,000.
    const expectedRates = exports.map((r) => r.rowsPerSecond);
    expect(median(expectedRates)).toBeCloseTo((1000 * 1000) / 600 / 2 + (1000 * 1000) / 500 / 2, 6);
    expect(section('export')).toContain('| 12 | 10 (83.3%) | 550 ms | 1 s | 1,833 | 10,000 | 50 MB |');
    // restores 2000, 4000, 3000 ms: median 3 s, p95 4 s; rows/s 3000, 1500, 2000: median 2,000, p95 3,000.
    expect(section('restore')).toContain('| 3 | 3 (100.0%) | 3 s | 4 s | 2,000 | 3,000 | 50 MB |');
  });

  it('shows the trend of the last runs as a percentage with an arrow', () => {
    // Last 5 durations 600..1000 (median 800) vs 100..500 (median 300): +166.7%, slower.
    expect(section('export')).toContain('duration 300 ms → 800 ms ↑ 166.7% (worse)');
    // Rows/s: last 5 median 1250 vs previous 3333.33: −62.5%, worse.
    expect(section('export')).toContain('throughput 3,333 → 1,250 rows/s ↓ 62.5% (worse)');
    // Restores: one run against one.
    expect(section('restore')).toContain('median of the last 1 successful runs vs the 1 before');
  });

  it('lists target misses of successful runs, newest first, and the failures', () => {
    const exportSection = section('export');
    expect(exportSection).toContain('Targets (duration ≤ 900 ms): 1 of 10 successful runs missed.');
    expect(exportSection).toMatch(/- 2025-01-01 \d\d:\d\d:\d\d `e9`: duration 1 s > 900 ms ✗/);
    expect(exportSection).toContain('Failures (2):');
    expect(exportSection.indexOf('`f2`: E_LOCKED: busy')).toBeLessThan(exportSection.indexOf('`f1`: E_IO: disk full'));
    // Restores use the default restore targets, which these runs meet.
    expect(section('restore')).toContain('Targets (duration ≤ 1 min, memory ≤ 150 MB, throughput ≥ 200 rows/s): 0 of 3 successful runs missed.');
  });

  it('says so when there is nothing to report', () => {
    expect(renderReport([])).toContain('No operations recorded.');
    expect(renderReport([makeRecord({ kind: 'bench' })])).toContain('Targets: none set for this kind.');
  });
});

describe('formatting helpers', () => {
  it('formats durations', () => {
    expect([0.25, 850, 1234, 30_000, 60_000, 125_000].map(formatDuration)).toEqual(['0.3 ms', '850 ms', '1.2 s', '30 s', '1 min', '2 min 5 s']);
  });

  it('formats history as an aligned table', () => {
    const rows = [
      makeRecord({ kind: 'export', durationMs: 1234, rows: 492_000, source: 'app.db', target: 'app.jsonl' }),
      makeRecord({ kind: 'restore', ok: false, error: { code: 'E_CORRUPT', message: 'bad' }, source: 'a.jsonl', target: 'restored.db' }),
    ];
    const table = formatHistoryTable(rows);
    const lines = table.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^started \(UTC\) +kind +status +duration +rows +rows\/s +MB\/s +peak RSS +source → target$/);
    expect(lines[1]).toContain('export');
    expect(lines[1]).toContain('492,000');
    expect(lines[1]).toContain('398,703');
    expect(lines[2]).toContain('E_CORRUPT');
    // Every column but the last has the same width on every line.
    const routes = ['source → target', 'app.db → app.jsonl', 'a.jsonl → restored.db'];
    const widths = lines.map((line, i) => line.length - routes[i].length);
    expect(new Set(widths).size).toBe(1);
    expect(formatHistoryTable([])).toBe('(no operations recorded)');
  });
});
