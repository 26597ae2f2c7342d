/**
 * The daemon in-process with an injected clock (its workers are real processes running dist/): a
 * machine that sleeps through five hourly slots runs the job once on wake, and waking twice (or
 * ticking again at once) never runs it a second time.
 */
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/daemon/daemon.js';
import { cli, ends, journal, makeDb, needDist, starts, until, workDir, writeConfig } from './helpers.js';

describe('daemon with an injected clock', () => {
  let cleanup: (() => void) | undefined;
  let daemon: Daemon | undefined;
  beforeAll(needDist);
  afterEach(async () => {
    await daemon?.stop(0);
    cleanup?.();
  });

  it('runs a slot missed during a sleep once on wake, and a double wake runs nothing more', async () => {
    const w = workDir();
    cleanup = w.cleanup;
    makeDb(join(w.dir, 'a.db'), 100);
    expect(cli(w.dir, 'init', 'repo', '-q').status).toBe(0);
    writeConfig(w.dir, { jobs: { a: { source: 'a.db', repository: './repo', schedule: '0 * * * *', timezone: 'Europe/Berlin' } } });
    const clock = { now: Date.parse('2026-03-29T00:10:00Z') }; // 01:10 CET, the night clocks go forward
    daemon = new Daemon({ configPath: join(w.dir, 'scriptorium.config.json'), now: () => clock.now, log: () => {} });
    daemon.start();
    await until('the first tick to enrol the job', () => journal(w.dir).some((e) => e.t === 'enrol'));
    expect(starts(journal(w.dir))).toEqual([]); // enrolled at 00:10Z: the first slot is 01:00Z

    clock.now = Date.parse('2026-03-29T01:00:05Z'); // 03:00 CEST (02:00 local does not exist)
    await daemon.tick();
    await until('the 01:00Z run to end', () => ends(journal(w.dir)).length === 1);
    expect(starts(journal(w.dir))[0]).toMatchObject({ slot: '2026-03-29T01:00:00.000Z', trigger: 'schedule' });

    // The machine sleeps until 06:20Z: five slots (02:00Z … 06:00Z) passed. One run, on wake.
    clock.now = Date.parse('2026-03-29T06:20:00Z');
    await daemon.tick();
    await daemon.tick(); // a second wake right after
    await until('the catch-up run to end', () => ends(journal(w.dir)).length === 2);
    await daemon.tick();
    const runs = starts(journal(w.dir));
    expect(runs.length).toBe(2);
    expect(runs[1]).toMatchObject({ slot: '2026-03-29T06:00:00.000Z', trigger: 'catch-up', missed: 4 });
    expect(ends(journal(w.dir)).map((e) => e.status)).toEqual(['ok', 'ok']);

    // A restart at the same moment reads the same journal: nothing is due.
    await daemon.stop(0);
    daemon = new Daemon({ configPath: join(w.dir, 'scriptorium.config.json'), now: () => clock.now, log: () => {} });
    daemon.start();
    await daemon.tick();
    await new Promise((r) => setTimeout(r, 300));
    expect(starts(journal(w.dir)).length).toBe(2);
  });
});
