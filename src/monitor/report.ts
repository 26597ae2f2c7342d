/**
 * A Markdown performance report over operation records: per kind, the success rate, median and p95
 * duration and throughput, the trend over the last runs, target misses and recent failures.
 */
import { formatBytes, formatDuration, formatInteger, formatTargetsLine } from './format.js';
import type { OperationRecord } from './operation-record.js';
import { groupByKind, median, summarizeKind, type KindSummary } from './stats.js';
import { DEFAULT_TARGETS, meetsTargets, targetsFor, type TargetTable, type Targets } from './targets.js';

export interface ReportOptions {
  /** The whole targets table, kinds missing from it have none (default {@link DEFAULT_TARGETS}; spread it to change one kind). */
  targets?: TargetTable;
  /** Runs in each half of the trend comparison (default 10). */
  trendWindow?: number;
  /** Most target misses and failures listed per kind (default 10, newest first). */
  maxListed?: number;
  title?: string;
}

/** Median of the last `n` values against the median of the `n` before them. */
export interface Trend {
  /** Values in each half: `min(window, floor(count / 2))`. */
  n: number;
  recent: number;
  previous: number;
  /** `(recent - previous) / previous`, in percent; undefined when `previous` is 0. */
  changePct?: number;
}

/** The trend of a series (oldest first); `undefined` with fewer than two values. */
export function computeTrend(values: readonly number[], window: number): Trend | undefined {
  const n = Math.min(window, Math.floor(values.length / 2));
  if (n < 1) return undefined;
  const recent = median(values.slice(values.length - n)) as number;
  const previous = median(values.slice(values.length - 2 * n, values.length - n)) as number;
  return { n, recent, previous, ...(previous === 0 ? {} : { changePct: ((recent - previous) / previous) * 100 }) };
}

/** `↑ 12.5% (worse)` style text; `lowerIsBetter` decides which direction is good. */
function describeTrend(trend: Trend, lowerIsBetter: boolean): string {
  if (trend.changePct === undefined) return 'n/a';
  const pct = Math.round(trend.changePct * 10) / 10;
  if (Math.abs(pct) < 1) return `→ ${Math.abs(pct).toFixed(1)}% (steady)`;
  const better = pct < 0 === lowerIsBetter;
  return `${pct > 0 ? '↑' : '↓'} ${Math.abs(pct).toFixed(1)}% (${better ? 'better' : 'worse'})`;
}

const optional = (value: number | undefined, format: (v: number) => string) => (value === undefined ? '–' : format(value));
const when = (iso: string) => `${iso.slice(0, 19).replace('T', ' ')}`;

function describeTargets(targets: Targets): string {
  const parts: string[] = [];
  if (targets.maxDurationMs !== undefined) parts.push(`duration ≤ ${formatDuration(targets.maxDurationMs)}`);
  if (targets.maxMemoryMB !== undefined) parts.push(`memory ≤ ${formatInteger(targets.maxMemoryMB)} MB`);
  if (targets.minRowsPerSecond !== undefined) parts.push(`throughput ≥ ${formatInteger(targets.minRowsPerSecond)} rows/s`);
  if (targets.minMBPerSecond !== undefined) parts.push(`I/O ≥ ${targets.minMBPerSecond} MB/s`);
  return parts.join(', ');
}

function summaryTable(s: KindSummary): string[] {
  const rate = s.count === 0 ? 0 : (s.succeeded / s.count) * 100;
  return [
    '| runs | succeeded | median duration | p95 duration | median rows/s | p95 rows/s | max peak RSS |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    `| ${s.count} | ${s.succeeded} (${rate.toFixed(1)}%) | ${optional(s.medianDurationMs, formatDuration)} | ` +
      `${optional(s.p95DurationMs, formatDuration)} | ${optional(s.medianRowsPerSecond, formatInteger)} | ` +
      `${optional(s.p95RowsPerSecond, formatInteger)} | ${optional(s.maxPeakRssBytes, formatBytes)} |`,
  ];
}

function trendLines(good: OperationRecord[], window: number): string[] {
  const durations = computeTrend(good.map((r) => r.durationMs), window);
  const rates = computeTrend(good.map((r) => r.rowsPerSecond), window);
  if (!durations || !rates) return ['Trend: not enough successful runs (at least 2 are needed).'];
  return [
    `Trend (median of the last ${durations.n} successful runs vs the ${durations.n} before): ` +
      `duration ${formatDuration(durations.previous)} → ${formatDuration(durations.recent)} ${describeTrend(durations, true)}, ` +
      `throughput ${formatInteger(rates.previous)} → ${formatInteger(rates.recent)} rows/s ${describeTrend(rates, false)}.`,
  ];
}

function listNewest<T>(items: T[], max: number, line: (item: T) => string): string[] {
  const shown = items.slice(-max).reverse().map(line);
  return items.length > max ? [...shown, `- … and ${items.length - max} more`] : shown;
}

function targetLines(good: OperationRecord[], targets: Targets, max: number): string[] {
  const described = describeTargets(targets);
  if (described === '') return ['Targets: none set for this kind.'];
  const misses = good
    .map((record) => ({ record, result: meetsTargets(record, targets) }))
    .filter((m) => !m.result.ok);
  const head = `Targets (${described}): ${misses.length} of ${good.length} successful runs missed.`;
  return [
    head,
    ...listNewest(misses, max, ({ record, result }) => {
      const missed = { ok: false, checks: result.checks.filter((c) => !c.ok) };
      return `- ${when(record.startedAt)} \`${record.id}\`: ${formatTargetsLine(missed).replace(/^targets: /, '')}`;
    }),
  ];
}

function failureLines(failed: OperationRecord[], max: number): string[] {
  if (failed.length === 0) return [];
  return [
    `Failures (${failed.length}):`,
    ...listNewest(failed, max, (r) => `- ${when(r.startedAt)} \`${r.id}\`: ${r.error?.code ?? 'failed'}: ${(r.error?.message ?? '').replace(/\s+/g, ' ')}`),
  ];
}

/**
 * Renders a Markdown report with one section per operation kind (sorted by name). Durations and
 * throughput come from successful runs only; targets are checked on successful runs.
 *
 * @example
 * const records = await history.list({ last: 1000 });
 * await writeFile('report.md', renderReport(records, { targets: config.targets }));
 */
export function renderReport(records: readonly OperationRecord[], options: ReportOptions = {}): string {
  const table = options.targets ?? DEFAULT_TARGETS;
  const window = options.trendWindow ?? 10;
  const max = options.maxListed ?? 10;
  if (!(Number.isSafeInteger(window) && window >= 1)) throw new TypeError(`renderReport: trendWindow must be a whole number ≥ 1, got ${window}`);
  const lines = [`# ${options.title ?? 'Scriptorium performance report'}`, ''];
  if (records.length === 0) return [...lines, 'No operations recorded.', ''].join('\n');
  const starts = records.map((r) => r.startedAt).sort();
  lines.push(
    `${records.length} operations from ${when(starts[0])} to ${when(starts[starts.length - 1])} UTC. ` +
      'Memory is the peak resident set size of the process while the operation ran.',
    '',
  );
  for (const [kind, group] of groupByKind(records)) {
    const ordered = [...group].sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : 0));
    const good = ordered.filter((r) => r.ok);
    lines.push(`## ${kind}`, '', ...summaryTable(summarizeKind(ordered)), '');
    lines.push(...trendLines(good, window), '');
    lines.push(...targetLines(good, targetsFor(kind, table), max), '');
    const failures = failureLines(ordered.filter((r) => !r.ok), max);
    if (failures.length > 0) lines.push(...failures, '');
  }
  return lines.join('\n');
}
