/**
 * Plain-text formatting of measurements for the CLI: durations, sizes, rates, the one-line target
 * summary and the history table. Output does not depend on the locale.
 */
import type { OperationRecord } from './operation-record.js';
import type { TargetCheck, TargetsResult } from './targets.js';

const MIB = 1024 * 1024;

/** `1234567.8` → `'1,234,568'`. */
export function formatInteger(value: number): string {
  const sign = value < 0 ? '-' : '';
  return sign + String(Math.round(Math.abs(value))).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** One decimal, without a trailing `.0`. */
function oneDecimal(value: number): string {
  return String(Math.round(value * 10) / 10);
}

/** `850` → `'850 ms'`, `1234` → `'1.2 s'`, `30000` → `'30 s'`, `125000` → `'2 min 5 s'`. */
export function formatDuration(ms: number): string {
  if (ms < 10) return `${oneDecimal(ms)} ms`;
  if (ms < 999.5) return `${Math.round(ms)} ms`;
  if (ms < 59_950) return `${oneDecimal(ms / 1000)} s`;
  const totalSeconds = Math.round(ms / 1000);
  const minutes = Math.floor(totalSeconds / 60);
  const seconds = totalSeconds % 60;
  return seconds === 0 ? `${formatInteger(minutes)} min` : `${formatInteger(minutes)} min ${seconds} s`;
}

/** Mebibytes as `'0.6 MB'`, `'45 MB'`, `'1,024 MB'` (MB as the original system wrote it). */
export function formatMB(mb: number): string {
  return mb < 10 ? `${oneDecimal(mb)} MB` : `${formatInteger(mb)} MB`;
}

/** Bytes as MB, see {@link formatMB}. */
export function formatBytes(bytes: number): string {
  return formatMB(bytes / MIB);
}

/** `410000` → `'410,000 rows/s'`; below 10, one decimal. */
export function formatRowsPerSecond(rate: number): string {
  return `${rate < 10 ? oneDecimal(rate) : formatInteger(rate)} rows/s`;
}

function describeCheck(check: TargetCheck): string {
  const mark = check.ok ? '✓' : '✗';
  const isMax = check.target.startsWith('max');
  const sign = isMax ? (check.ok ? '≤' : '>') : check.ok ? '≥' : '<';
  switch (check.target) {
    case 'maxDurationMs':
      return `duration ${formatDuration(check.measured)} ${sign} ${formatDuration(check.limit)} ${mark}`;
    case 'maxMemoryMB':
      return `memory ${formatMB(check.measured)} ${sign} ${formatMB(check.limit)} ${mark}`;
    case 'minRowsPerSecond':
      return `throughput ${formatRowsPerSecond(check.measured)} ${sign} ${formatInteger(check.limit)} ${mark}`;
    case 'minMBPerSecond':
      return `I/O ${oneDecimal(check.measured)} MB/s ${sign} ${oneDecimal(check.limit)} MB/s ${mark}`;
  }
}

/**
 * One line summarising a target check.
 *
 * @example
 * formatTargetsLine(meetsTargets(record))
 * // 'targets: duration 1.2 s ≤ 30 s ✓, memory 45 MB ≤ 100 MB ✓, throughput 410,000 rows/s ≥ 300 ✓'
 */
export function formatTargetsLine(result: TargetsResult): string {
  if (result.checks.length === 0) return 'targets: none apply';
  return `targets: ${result.checks.map(describeCheck).join(', ')}`;
}

/** `2025-01-02T03:04:05.678Z` → `2025-01-02 03:04:05` (UTC). */
function shortTime(iso: string): string {
  return iso.slice(0, 19).replace('T', ' ');
}

function route(record: OperationRecord): string {
  const text = [record.source, record.target].filter((s) => s !== undefined).join(' → ');
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

const COLUMNS: { title: string; right: boolean; cell: (r: OperationRecord) => string }[] = [
  { title: 'started (UTC)', right: false, cell: (r) => shortTime(r.startedAt) },
  { title: 'kind', right: false, cell: (r) => r.kind },
  { title: 'status', right: false, cell: (r) => (r.ok ? 'ok' : (r.error?.code ?? 'failed')) },
  { title: 'duration', right: true, cell: (r) => formatDuration(r.durationMs) },
  { title: 'rows', right: true, cell: (r) => formatInteger(r.rows) },
  { title: 'rows/s', right: true, cell: (r) => formatInteger(r.rowsPerSecond) },
  { title: 'MB/s', right: true, cell: (r) => oneDecimal(r.mbPerSecond) },
  { title: 'peak RSS', right: true, cell: (r) => formatBytes(r.peakRssBytes) },
  { title: 'source → target', right: false, cell: route },
];

/**
 * The records as an aligned plain-text table, one row per record in the given order, numbers right-aligned.
 *
 * @example
 * console.log(formatHistoryTable(await history.list({ last: 20 })));
 */
export function formatHistoryTable(records: readonly OperationRecord[]): string {
  if (records.length === 0) return '(no operations recorded)';
  const rows = [COLUMNS.map((c) => c.title), ...records.map((r) => COLUMNS.map((c) => c.cell(r)))];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((row) => [...row[i]].length)));
  return rows
    .map((row) =>
      row
        .map((text, i) => {
          const pad = ' '.repeat(widths[i] - [...text].length);
          return COLUMNS[i].right ? pad + text : i === row.length - 1 ? text : text + pad;
        })
        .join('  '),
    )
    .join('\n');
}
