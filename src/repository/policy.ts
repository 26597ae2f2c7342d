/**
 * Retention policy with restic's semantics. Snapshots are grouped (by host and source); within a group,
 * newest first, `keepLast: n` keeps the n newest, and `keepDaily: n` keeps the newest snapshot of each of
 * the n most recent days that have snapshots (likewise hourly, weekly (ISO weeks), monthly, yearly).
 * `keepTags` keeps every snapshot carrying one of the tags; `keepWithinMs` keeps those younger than that.
 * A snapshot is kept when any rule keeps it. Calendar buckets use UTC.
 */
import { UsageError } from '../core/errors.js';

export interface RetentionPolicy {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  keepTags?: string[];
  keepWithinMs?: number;
}

/** What a policy needs to know of a snapshot. */
export interface PolicySnapshot {
  id: string;
  time: string;
  host: string;
  source: string;
  tags: string[];
}

export interface PolicyDecision<S extends PolicySnapshot> {
  keep: S[];
  remove: S[];
  /** Why each kept snapshot is kept (`last`, `daily`, `tag`, ...). */
  reasons: Map<string, string[]>;
}

const BUCKETS: Array<[keyof RetentionPolicy, string, (d: Date) => string]> = [
  ['keepLast', 'last', () => ''],
  ['keepHourly', 'hourly', (d) => d.toISOString().slice(0, 13)],
  ['keepDaily', 'daily', (d) => d.toISOString().slice(0, 10)],
  ['keepWeekly', 'weekly', isoWeek],
  ['keepMonthly', 'monthly', (d) => d.toISOString().slice(0, 7)],
  ['keepYearly', 'yearly', (d) => d.toISOString().slice(0, 4)],
];

/** Throws a UsageError unless the policy keeps something by at least one rule and every count is >= 0. */
export function checkPolicy(policy: RetentionPolicy): void {
  for (const [key] of BUCKETS) {
    const n = policy[key];
    if (n !== undefined && (!Number.isInteger(n) || (n as number) < 0)) {
      throw new UsageError(`forget: ${key} must be a whole number >= 0, got ${String(n)}`);
    }
  }
  const any = BUCKETS.some(([key]) => ((policy[key] as number | undefined) ?? 0) > 0) || (policy.keepTags?.length ?? 0) > 0 || (policy.keepWithinMs ?? 0) > 0;
  if (!any) {
    throw new UsageError('forget: no policy given, so nothing would be kept', {
      hint: 'Pass at least one of --keep-last, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --keep-tag (or name snapshot ids to forget).',
    });
  }
}

/** Applies `policy` to `snapshots` (any order); `now` is used by keepWithinMs. */
export function applyPolicy<S extends PolicySnapshot>(snapshots: S[], policy: RetentionPolicy, now = Date.now()): PolicyDecision<S> {
  checkPolicy(policy);
  const reasons = new Map<string, string[]>();
  const groups = new Map<string, S[]>();
  for (const s of snapshots) {
    const key = `${s.host}\0${s.source}`;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  for (const group of groups.values()) {
    group.sort((a, b) => b.time.localeCompare(a.time) || b.id.localeCompare(a.id));
    for (const [key, name, bucketOf] of BUCKETS) {
      let left = (policy[key] as number | undefined) ?? 0;
      let last: string | undefined;
      for (const s of group) {
        if (left <= 0) break;
        const bucket = key === 'keepLast' ? s.id : bucketOf(new Date(s.time));
        if (bucket === last) continue;
        last = bucket;
        left--;
        reasons.set(s.id, [...(reasons.get(s.id) ?? []), name]);
      }
    }
    for (const s of group) {
      if (policy.keepTags?.some((t) => s.tags.includes(t))) reasons.set(s.id, [...(reasons.get(s.id) ?? []), 'tag']);
      if (policy.keepWithinMs && now - Date.parse(s.time) <= policy.keepWithinMs) reasons.set(s.id, [...(reasons.get(s.id) ?? []), 'within']);
    }
  }
  const keep = snapshots.filter((s) => reasons.has(s.id));
  const remove = snapshots.filter((s) => !reasons.has(s.id));
  return { keep, remove, reasons };
}

/** ISO 8601 week of `d` in UTC, e.g. `2026-W05`. */
export function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${t.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}
