import { describe, expect, it } from 'vitest';
import { applyPolicy, isoWeek, type PolicySnapshot } from '../../src/repository/policy.js';

/** One snapshot a day at 02:00 UTC from 2026-01-01, plus a second one on some days at 14:00. */
function series(days: number, extraEvery = 0): PolicySnapshot[] {
  const out: PolicySnapshot[] = [];
  for (let d = 0; d < days; d++) {
    const day = new Date(Date.UTC(2026, 0, 1 + d, 2));
    out.push({ id: `s${String(d).padStart(3, '0')}a`, time: day.toISOString(), host: 'h', source: '/db', tags: [] });
    if (extraEvery && d % extraEvery === 0) {
      out.push({ id: `s${String(d).padStart(3, '0')}b`, time: new Date(day.getTime() + 12 * 3600e3).toISOString(), host: 'h', source: '/db', tags: [] });
    }
  }
  return out;
}

const ids = (xs: PolicySnapshot[]) => xs.map((x) => x.id).sort();

describe('retention policy (restic semantics)', () => {
  it('keep-last keeps the n newest', () => {
    const { keep, remove } = applyPolicy(series(10), { keepLast: 3 });
    expect(ids(keep)).toEqual(['s007a', 's008a', 's009a']);
    expect(remove.length).toBe(7);
  });

  it('keep-daily keeps the newest snapshot of each of the n latest days', () => {
    const { keep } = applyPolicy(series(10, 2), { keepDaily: 3 });
    // Day 8 has two snapshots: the 14:00 one is kept. Day 9 and 7 have one each.
    expect(ids(keep)).toEqual(['s007a', 's008b', 's009a']);
  });

  it('keep-weekly and keep-monthly count calendar buckets that have snapshots', () => {
    const all = series(70); // 2026-01-01 .. 2026-03-11
    const weekly = applyPolicy(all, { keepWeekly: 2 });
    // The last snapshot of ISO week 2026-W11 (Mar 11) and of 2026-W10 (Sunday Mar 8).
    expect(ids(weekly.keep)).toEqual(['s066a', 's069a']);
    const monthly = applyPolicy(all, { keepMonthly: 5 });
    expect(ids(monthly.keep)).toEqual(['s030a', 's058a', 's069a']); // Jan 31, Feb 28, Mar 11: only 3 months exist
  });

  it('rules combine: a snapshot is kept when any rule keeps it, with its reasons', () => {
    const { keep, reasons } = applyPolicy(series(40), { keepLast: 2, keepWeekly: 2, keepMonthly: 2 });
    expect(ids(keep)).toEqual(['s030a', 's038a', 's039a']); // Feb 9 is a Monday: week 7 has s039, week 6 ends with s038
    expect(reasons.get('s039a')).toEqual(['last', 'weekly', 'monthly']);
    expect(reasons.get('s030a')).toEqual(['monthly']);
  });

  it('keeps tagged snapshots and groups by host and source', () => {
    const snaps = series(5).map((s, i) => ({ ...s, tags: i === 0 ? ['keep'] : [], source: i % 2 ? '/a' : '/b' }));
    const { keep } = applyPolicy(snaps, { keepLast: 1, keepTags: ['keep'] });
    expect(ids(keep)).toEqual(['s000a', 's003a', 's004a']);
  });

  it('refuses an empty policy and negative counts', () => {
    expect(() => applyPolicy(series(3), {})).toThrow(/no policy/);
    expect(() => applyPolicy(series(3), { keepLast: -1 })).toThrow(/keepLast/);
  });

  it('computes ISO weeks across year ends', () => {
    expect(isoWeek(new Date('2026-01-01T00:00:00Z'))).toBe('2026-W01');
    expect(isoWeek(new Date('2027-01-01T00:00:00Z'))).toBe('2026-W53');
    expect(isoWeek(new Date('2024-12-30T00:00:00Z'))).toBe('2025-W01');
  });
});
