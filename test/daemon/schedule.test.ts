/**
 * The schedule at fixed dates, with the clock given: time zones, DST days, missed slots after a sleep,
 * catch-up and restarts. Nothing here waits for real time.
 */
import { describe, expect, it } from 'vitest';
import { decide } from '../../src/daemon/decide.js';
import { foldJournal, type JournalEntry } from '../../src/daemon/journal.js';
import { Schedule } from '../../src/daemon/schedule.js';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

/** Simulates a daemon ticking every `stepMs` (5 minutes here: croner takes ~1 ms a call with a zone) from `from` to `to`, as the real one does: only from its journal. */
function simulate(schedule: Schedule, from: string, to: string, stepMs: number, catchUp: 'none' | 'once' = 'once'): string[] {
  let lastSlot = at(from);
  const runs: string[] = [];
  for (let now = at(from); now <= at(to); now += stepMs) {
    const d = decide(schedule, catchUp, lastSlot, now);
    if (d.action === 'run') runs.push(iso(d.slot));
    if (d.action !== 'wait') lastSlot = d.slot;
  }
  return runs;
}

describe('schedule: cron in a time zone, at fixed dates', () => {
  it('runs a 02:30 Europe/Berlin job once on the spring-forward day, at 03:00 local (02:30 does not exist)', () => {
    const s = new Schedule({ kind: 'cron', cron: '30 2 * * *', timezone: 'Europe/Berlin' });
    // 2026-03-29: clocks go from 02:00 CET to 03:00 CEST.
    expect(simulate(s, '2026-03-28T00:00:00Z', '2026-03-30T12:00:00Z', 300_000)).toEqual([
      '2026-03-28T01:30:00.000Z', // 02:30 CET
      '2026-03-29T01:00:00.000Z', // 03:00 CEST, the first instant after the gap
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
    ]);
  });

  it('runs a 02:30 Europe/Berlin job once on the fall-back day (02:30 happens twice)', () => {
    const s = new Schedule({ kind: 'cron', cron: '30 2 * * *', timezone: 'Europe/Berlin' });
    // 2026-10-25: clocks go from 03:00 CEST back to 02:00 CET, so 02:30 comes at 00:30Z and 01:30Z.
    expect(simulate(s, '2026-10-24T00:00:00Z', '2026-10-26T12:00:00Z', 300_000)).toEqual([
      '2026-10-24T00:30:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
    ]);
  });

  it('reads the same cron in another zone differently (America/New_York spring forward on 2026-03-08)', () => {
    const s = new Schedule({ kind: 'cron', cron: '30 2 * * *', timezone: 'America/New_York' });
    expect(simulate(s, '2026-03-07T12:00:00Z', '2026-03-09T12:00:00Z', 300_000)).toEqual(['2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z']);
  });
});

describe('schedule: missed slots, catch-up, double wakes', () => {
  const hourly = new Schedule({ kind: 'cron', cron: '0 * * * *', timezone: 'UTC' });

  it('runs a slot missed during a 5-hour sleep once on wake, not once per slot (catchUp once)', () => {
    const d = decide(hourly, 'once', at('2026-12-03T01:00:00Z'), at('2026-12-03T06:20:00Z'));
    expect(d).toEqual({ action: 'run', slot: at('2026-12-03T06:00:00Z'), missed: 4, trigger: 'catch-up' });
    // The wake is journaled as slot 06:00: a second wake (or a restart) right after finds nothing due.
    expect(decide(hourly, 'once', at('2026-12-03T06:00:00Z'), at('2026-12-03T06:20:01Z'))).toEqual({ action: 'wait', next: at('2026-12-03T07:00:00Z') });
  });

  it('skips (and says so) a late slot with catchUp none, but runs an on-time one', () => {
    expect(decide(hourly, 'none', at('2026-12-03T01:00:00Z'), at('2026-12-03T06:20:00Z'))).toEqual({ action: 'skip', slot: at('2026-12-03T06:00:00Z'), count: 5 });
    expect(decide(hourly, 'none', at('2026-12-03T05:00:00Z'), at('2026-12-03T06:00:02Z'))).toMatchObject({ action: 'run', trigger: 'schedule', missed: 0 });
  });

  it('an interval counts from its last slot, so a restart neither repeats nor loses one', () => {
    const every = new Schedule({ kind: 'every', everyMs: 15 * 60_000 });
    expect(decide(every, 'once', at('2026-12-03T10:00:00Z'), at('2026-12-03T10:14:59Z'))).toEqual({ action: 'wait', next: at('2026-12-03T10:15:00Z') });
    expect(decide(every, 'once', at('2026-12-03T10:00:00Z'), at('2026-12-03T10:15:00.200Z'))).toMatchObject({ action: 'run', slot: at('2026-12-03T10:15:00Z'), missed: 0 });
    expect(decide(every, 'once', at('2026-12-03T10:00:00Z'), at('2026-12-03T11:40:00Z'))).toMatchObject({ action: 'run', slot: at('2026-12-03T11:30:00Z'), missed: 5, trigger: 'catch-up' });
  });

  it("takes the last handled slot from the journal: starts, skips and enrolments, but not manual runs", () => {
    const entries: JournalEntry[] = [
      { v: 1, t: 'enrol', task: 'a', job: 'a', at: '2026-12-03T00:00:00.000Z' },
      { v: 1, t: 'start', run: 'r1', task: 'a', job: 'a', kind: 'backup', trigger: 'schedule', slot: '2026-12-03T01:00:00.000Z', at: '2026-12-03T01:00:00.100Z', pid: 1, host: 'h' },
      { v: 1, t: 'skip', task: 'a', job: 'a', slot: '2026-12-03T02:00:00.000Z', reason: 'overlap', at: '2026-12-03T02:00:00.100Z' },
      { v: 1, t: 'start', run: 'r2', task: 'a', job: 'a', kind: 'backup', trigger: 'manual', at: '2026-12-03T02:30:00.000Z', pid: 1, host: 'h' },
    ];
    const state = foldJournal(entries).tasks.get('a')!;
    expect(iso(state.lastSlot!)).toBe('2026-12-03T02:00:00.000Z');
    expect([...state.open.keys()]).toEqual(['r1', 'r2']);
  });
});
