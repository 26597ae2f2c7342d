/**
 * Small statistics over operation records: median, nearest-rank percentiles and the per-kind
 * summary used by the report and by the history archive.
 */
import type { OperationRecord } from './operation-record.js';

/** Median of `values` (mean of the two middle values for an even count); `undefined` when empty. */
export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * The `p`-th percentile (0 < p ≤ 100) by the nearest-rank method: the smallest value with at least
 * `p`% of the values at or below it. `undefined` when empty.
 *
 * @example
 * percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95) // 10
 */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (!(p > 0 && p <= 100)) throw new TypeError(`percentile: p must be in (0, 100], got ${p}`);
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil((p / 100) * sorted.length) - 1];
}

/** Figures for the records of one kind. Timing figures come from successful runs only. */
export interface KindSummary {
  kind: string;
  count: number;
  succeeded: number;
  failed: number;
  /** ISO times of the first and last run summarised. */
  from: string;
  to: string;
  rows: number;
  bytesIn: number;
  bytesOut: number;
  medianDurationMs?: number;
  p95DurationMs?: number;
  maxDurationMs?: number;
  medianRowsPerSecond?: number;
  p95RowsPerSecond?: number;
  maxPeakRssBytes?: number;
}

/** Summarises records that all have the same kind (the kind of the first one is reported). */
export function summarizeKind(records: readonly OperationRecord[]): KindSummary {
  if (records.length === 0) throw new TypeError('summarizeKind: records must not be empty');
  const good = records.filter((r) => r.ok);
  const durations = good.map((r) => r.durationMs);
  const rates = good.map((r) => r.rowsPerSecond);
  const sum = (pick: (r: OperationRecord) => number) => records.reduce((total, r) => total + pick(r), 0);
  const starts = records.map((r) => r.startedAt).sort();
  return {
    kind: records[0].kind,
    count: records.length,
    succeeded: good.length,
    failed: records.length - good.length,
    from: starts[0],
    to: starts[starts.length - 1],
    rows: sum((r) => r.rows),
    bytesIn: sum((r) => r.bytesIn),
    bytesOut: sum((r) => r.bytesOut),
    medianDurationMs: median(durations),
    p95DurationMs: percentile(durations, 95),
    maxDurationMs: durations.length ? Math.max(...durations) : undefined,
    medianRowsPerSecond: median(rates),
    p95RowsPerSecond: percentile(rates, 95),
    maxPeakRssBytes: good.length ? Math.max(...good.map((r) => r.peakRssBytes)) : undefined,
  };
}

/** Groups records by kind, keeping each group in input order; kinds sorted by name. */
export function groupByKind(records: readonly OperationRecord[]): Map<string, OperationRecord[]> {
  const groups = new Map<string, OperationRecord[]>();
  for (const record of records) {
    const group = groups.get(record.kind);
    if (group) group.push(record);
    else groups.set(record.kind, [record]);
  }
  return new Map([...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
