/** Durations in the config: a whole number and a unit, `500ms`, `2s`, `15m`, `26h`, `7d` (or `2w`). */

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
const PATTERN = /^(\d{1,9})(ms|s|m|h|d|w)$/;

/** Longest duration accepted (about 10 years): beyond that it is surely a typo. */
export const MAX_DURATION_MS = 3650 * 86_400_000;

/**
 * Parses a duration such as `26h` into milliseconds.
 *
 * @returns the milliseconds, or `undefined` when `text` is not a duration (the caller names the field).
 * @example parseDuration('15m') // 900000
 */
export function parseDuration(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const match = PATTERN.exec(text.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * UNITS[match[2]!]!;
  return ms > 0 && ms <= MAX_DURATION_MS ? ms : undefined;
}

/** Formats milliseconds as the largest whole unit, e.g. 93600000 → `26h`. */
export function formatDurationSetting(ms: number): string {
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const) {
    if (ms % UNITS[unit]! === 0) return `${ms / UNITS[unit]!}${unit}`;
  }
  return `${ms}ms`;
}
