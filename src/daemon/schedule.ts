/**
 * Slots of a schedule: the instants a task is meant to run. Everything is computed from a given time,
 * never from a timer, so the daemon can work out from its journal which slots passed while it was not
 * running (or while the machine slept).
 */
import { Cron } from 'croner';
import type { ScheduleSpec } from './job-config.js';

/** Most slots counted when reporting how many passed (croner takes about half a millisecond per slot). */
const MAX_WALK = 1000;

/** The slots of one {@link ScheduleSpec}. */
export class Schedule {
  readonly spec: ScheduleSpec;
  readonly #cron: Cron | undefined;

  constructor(spec: ScheduleSpec) {
    this.spec = spec;
    this.#cron = spec.kind === 'cron' ? new Cron(spec.cron, { paused: true, ...(spec.timezone ? { timezone: spec.timezone } : {}) }) : undefined;
  }

  /**
   * The first slot strictly after `after` (ms since the epoch). An interval's slots are `anchor + k·every`;
   * a cron's are the instants its fields match in its time zone (croner's rules on DST days: a time that
   * does not exist runs at the first instant after the jump, a time that happens twice runs once).
   */
  next(after: number, anchor = 0): number | undefined {
    if (this.spec.kind === 'every') {
      const every = this.spec.everyMs;
      return anchor + (Math.floor((after - anchor) / every) + 1) * every;
    }
    return this.#cron!.nextRun(new Date(after))?.getTime();
  }

  /**
   * The slots after `after` up to and including `now`: the latest of them and how many there were (the
   * count is capped at {@link MAX_WALK}).
   */
  passed(after: number, now: number, anchor = 0): { latest: number; count: number } | undefined {
    if (this.spec.kind === 'every') {
      const every = this.spec.everyMs;
      const first = this.next(after, anchor)!;
      if (first > now) return undefined;
      const count = Math.floor((now - first) / every) + 1;
      return { latest: first + (count - 1) * every, count };
    }
    const first = this.next(after);
    if (first === undefined || first > now) return undefined; // the common case, and cheap
    const latest = this.#cron!.previousRuns(1, new Date(now + 1))[0]?.getTime();
    if (latest === undefined || latest <= after) return undefined;
    let count = 1; // informational: walked forward from `after`, capped
    for (let slot = this.next(after); slot !== undefined && slot < latest && count < MAX_WALK; slot = this.next(slot)) count++;
    return { latest, count };
  }

  /** Stops croner's internals (nothing runs: the schedule is paused; this frees it). */
  dispose(): void {
    this.#cron?.stop();
  }
}
