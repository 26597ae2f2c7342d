// Targets: the original defaults per kind, overrides, the checks with measured values, and the one-line summary.
import { describe, expect, it } from 'vitest';
import { DEFAULT_TARGETS, formatTargetsLine, meetsTargets, targetsFor } from '../../src/monitor/index.js';
import { makeRecord } from './helpers.js';

const MIB = 1024 * 1024;

describe('targets', () => {
  it('has the original defaults: export 30 s / 100 MB / 300 rows/s, restore and import 60 s / 150 MB / 200 rows/s', () => {
    expect(DEFAULT_TARGETS.export).toEqual({ maxDurationMs: 30_000, maxMemoryMB: 100, minRowsPerSecond: 300 });
    expect(DEFAULT_TARGETS.restore).toEqual({ maxDurationMs: 60_000, maxMemoryMB: 150, minRowsPerSecond: 200 });
    expect(DEFAULT_TARGETS.import).toEqual(DEFAULT_TARGETS.restore);
    expect(DEFAULT_TARGETS.backup).toEqual(DEFAULT_TARGETS.export);
    expect(DEFAULT_TARGETS.verify).toEqual(DEFAULT_TARGETS.restore);
    expect(targetsFor('prune')).toEqual({});
  });

  it('passes an export within every target and reports what was measured', () => {
    const record = makeRecord({ kind: 'export', durationMs: 1200, rows: 492_000, peakMB: 45 });
    const result = meetsTargets(record);
    expect(result).toEqual({
      ok: true,
      checks: [
        { target: 'maxDurationMs', limit: 30_000, measured: 1200, ok: true },
        { target: 'maxMemoryMB', limit: 100, measured: 45, ok: true },
        { target: 'minRowsPerSecond', limit: 300, measured: 410_000, ok: true },
      ],
    });
    expect(formatTargetsLine(result)).toBe(
      'targets: duration 1.2 s ≤ 30 s ✓, memory 45 MB ≤ 100 MB ✓, throughput 410,000 rows/s ≥ 300 ✓',
    );
  });

  it('fails a slow, large, low-throughput restore on each target', () => {
    const record = makeRecord({ kind: 'restore', durationMs: 90_000, rows: 9000, peakRssBytes: 200 * MIB });
    const result = meetsTargets(record);
    expect(result.ok).toBe(false);
    expect(result.checks).toEqual([
      { target: 'maxDurationMs', limit: 60_000, measured: 90_000, ok: false },
      { target: 'maxMemoryMB', limit: 150, measured: 200, ok: false },
      { target: 'minRowsPerSecond', limit: 200, measured: 100, ok: false },
    ]);
    expect(formatTargetsLine(result)).toBe(
      'targets: duration 1 min 30 s > 1 min ✗, memory 200 MB > 150 MB ✗, throughput 100 rows/s < 200 ✗',
    );
  });

  it('fails on one target only when only that one is missed', () => {
    const result = meetsTargets(makeRecord({ kind: 'export', durationMs: 31_000, rows: 1_000_000 }));
    expect(result.ok).toBe(false);
    expect(result.checks.filter((c) => !c.ok).map((c) => c.target)).toEqual(['maxDurationMs']);
  });

  it('uses targets given per call, with overrides and removals', () => {
    const record = makeRecord({ kind: 'export', durationMs: 1000, rows: 100, peakMB: 250 });
    expect(meetsTargets(record).ok).toBe(false);
    const relaxed = targetsFor('export', DEFAULT_TARGETS, { maxMemoryMB: 512, minRowsPerSecond: null });
    expect(relaxed).toEqual({ maxDurationMs: 30_000, maxMemoryMB: 512 });
    expect(meetsTargets(record, relaxed)).toEqual({
      ok: true,
      checks: [
        { target: 'maxDurationMs', limit: 30_000, measured: 1000, ok: true },
        { target: 'maxMemoryMB', limit: 512, measured: 250, ok: true },
      ],
    });
    expect(meetsTargets(record, { minMBPerSecond: 50 }).checks[0]).toMatchObject({ target: 'minMBPerSecond', ok: false });
  });

  it('skips throughput for an operation that moved no rows, and a kind without targets passes with no checks', () => {
    const empty = meetsTargets(makeRecord({ kind: 'verify', rows: 0, durationMs: 10 }));
    expect(empty.checks.map((c) => c.target)).toEqual(['maxDurationMs', 'maxMemoryMB']);
    const none = meetsTargets(makeRecord({ kind: 'prune' }));
    expect(none).toEqual({ ok: true, checks: [] });
    expect(formatTargetsLine(none)).toBe('targets: none apply');
  });
});
