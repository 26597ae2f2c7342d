/**
 * Performance targets per operation kind, with the original system's defaults, and the check of a
 * finished operation against them.
 */
import type { OperationRecord } from './operation-record.js';

/** Limits one operation should stay within. A missing limit is not checked. */
export interface Targets {
  /** Longest acceptable duration. */
  maxDurationMs?: number;
  /** Highest acceptable peak RSS of the process, in MiB (`peakRssBytes / 2**20`). */
  maxMemoryMB?: number;
  /** Lowest acceptable throughput. Not checked for operations that moved no rows. */
  minRowsPerSecond?: number;
  /** Lowest acceptable I/O rate of the busier side, in MiB/s. Not checked for operations that moved no bytes. */
  minMBPerSecond?: number;
}

/** The names of the limits, in the order checks are reported. */
export const TARGET_NAMES = ['maxDurationMs', 'maxMemoryMB', 'minRowsPerSecond', 'minMBPerSecond'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

/** Changes to targets: a number sets a limit, `null` removes it, a missing key keeps it. */
export type TargetOverrides = { [K in TargetName]?: number | null };

/** Targets for each operation kind. Kinds without an entry have no targets. */
export type TargetTable = Readonly<Record<string, Readonly<Targets>>>;

const EXPORT_TARGETS: Targets = Object.freeze({ maxDurationMs: 30_000, maxMemoryMB: 100, minRowsPerSecond: 300 });
const RESTORE_TARGETS: Targets = Object.freeze({ maxDurationMs: 60_000, maxMemoryMB: 150, minRowsPerSecond: 200 });

/**
 * The original system's targets: export 30 s, 100 MB, 300 rows/s; restore and import 60 s, 150 MB,
 * 200 rows/s. A backup reads the database like an export and is held to the same targets; a verify reads a
 * backup like a restore and is held to the restore targets. Other kinds (prune, bench, ...) have none.
 */
export const DEFAULT_TARGETS: TargetTable = Object.freeze({
  export: EXPORT_TARGETS,
  backup: EXPORT_TARGETS,
  import: RESTORE_TARGETS,
  restore: RESTORE_TARGETS,
  verify: RESTORE_TARGETS,
});

/** Applies overrides to targets and returns the result (the inputs are not changed). */
export function applyOverrides(base: Readonly<Targets>, overrides: TargetOverrides = {}): Targets {
  const out: Targets = { ...base };
  for (const name of TARGET_NAMES) {
    const value = overrides[name];
    if (value === null) delete out[name];
    else if (value !== undefined) out[name] = value;
  }
  return out;
}

/**
 * The targets for one kind: the table's entry (default {@link DEFAULT_TARGETS}) with `overrides`
 * applied. Unknown kinds start from no targets.
 *
 * @example
 * targetsFor('export', DEFAULT_TARGETS, { maxMemoryMB: 256 }) // { maxDurationMs: 30000, maxMemoryMB: 256, minRowsPerSecond: 300 }
 */
export function targetsFor(kind: string, table: TargetTable = DEFAULT_TARGETS, overrides?: TargetOverrides): Targets {
  const base = Object.hasOwn(table, kind) ? table[kind] : {};
  return applyOverrides(base, overrides);
}

/** One limit compared with what was measured. */
export interface TargetCheck {
  target: TargetName;
  limit: number;
  measured: number;
  ok: boolean;
}

/** The outcome of {@link meetsTargets}: `ok` when every check passed (also when there were none). */
export interface TargetsResult {
  ok: boolean;
  checks: TargetCheck[];
}

const MIB = 1024 * 1024;

/** The measured value for one limit, or `undefined` when the limit does not apply to this record. */
function measure(record: OperationRecord, target: TargetName): number | undefined {
  switch (target) {
    case 'maxDurationMs':
      return record.durationMs;
    case 'maxMemoryMB':
      return record.peakRssBytes / MIB;
    case 'minRowsPerSecond':
      return record.rows > 0 ? record.rowsPerSecond : undefined;
    case 'minMBPerSecond':
      return Math.max(record.bytesIn, record.bytesOut) > 0 ? record.mbPerSecond : undefined;
  }
}

/**
 * Checks a finished operation against targets: by default the {@link DEFAULT_TARGETS} for its kind;
 * pass `targets` (for instance from {@link targetsFor} with a config table and overrides) to use others.
 * Only performance is judged: whether the operation succeeded is `record.ok`.
 *
 * @example
 * const { ok, checks } = meetsTargets(record);
 * // checks: [{ target: 'maxDurationMs', limit: 30000, measured: 1234, ok: true }, ...]
 */
export function meetsTargets(record: OperationRecord, targets: Targets = targetsFor(record.kind)): TargetsResult {
  const checks: TargetCheck[] = [];
  for (const target of TARGET_NAMES) {
    const limit = targets[target];
    if (limit === undefined) continue;
    const measured = measure(record, target);
    if (measured === undefined) continue;
    const ok = target.startsWith('max') ? measured <= limit : measured >= limit;
    checks.push({ target, limit, measured, ok });
  }
  return { ok: checks.every((c) => c.ok), checks };
}
