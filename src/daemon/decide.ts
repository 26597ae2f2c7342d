/**
 * The scheduling decision for one task at one instant, from the journal's last handled slot only (no
 * timers, no memory of earlier ticks): so a restart, a wake from sleep, or two ticks in a row all reach
 * the same decision, and a slot is never run twice.
 */
import type { CatchUp } from './job-config.js';
import type { Schedule } from './schedule.js';

/** How late a slot may start and still count as on time (the rest are missed, or caught up). */
export const ON_TIME_MS = 60_000;

export type Decision =
  | { action: 'wait'; next?: number }
  | { action: 'run'; slot: number; missed: number; trigger: 'schedule' | 'catch-up' }
  | { action: 'skip'; slot: number; count: number };

/**
 * What to do now: `run` the latest slot that passed since `lastSlot` (once, however many passed: the
 * others are reported in `missed`), `skip` it when it is late and `catchUp` is none, else `wait` until
 * `next`.
 */
export function decide(schedule: Schedule, catchUp: CatchUp, lastSlot: number, now: number): Decision {
  const passed = schedule.passed(lastSlot, now, lastSlot);
  if (!passed) return { action: 'wait', next: schedule.next(Math.max(lastSlot, now), lastSlot) };
  const tolerance = schedule.spec.kind === 'every' ? Math.min(ON_TIME_MS, Math.max(1000, schedule.spec.everyMs / 2)) : ON_TIME_MS;
  const late = now - passed.latest > tolerance;
  if (late && catchUp === 'none') return { action: 'skip', slot: passed.latest, count: passed.count };
  const caughtUp = late || passed.count > 1;
  return { action: 'run', slot: passed.latest, missed: passed.count - 1, trigger: caughtUp ? 'catch-up' : 'schedule' };
}
