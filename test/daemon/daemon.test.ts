/**
 * The daemon as a real process (dist/cli/main.js daemon) on real databases and repositories: runs
 * recorded with their job, no overlap (skips recorded), a run left by a killed daemon marked
 * interrupted, SIGTERM's grace and clean abort (no partial snapshot), SIGHUP's reload, one daemon per
 * journal, and `scriptorium run` / `scriptorium jobs`.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cli, ends, history, journal, makeDb, needDist, start, starts, until, workDir, writeConfig, type Running } from './helpers.js';

/** True when some operation's live progress file exists. */
const liveFiles = (dir: string) => {
  try {
    return readdirSync(join(dir, 'backups/.scriptorium-live')).some((f) => f.endsWith('.json'));
  } catch {
    return false;
  }
};

/** Snapshots in the repository, as `scriptorium snapshots` lists them. */
const snapshotCount = (repo: string) => (JSON.parse(cli(repo, 'snapshots', '-r', repo, '--json').stdout) as { snapshots: unknown[] }).snapshots.length;

// Real processes doing real backups on two shared cores: each `until` may wait up to 60 s by itself, so a
// test gets three minutes (it took 20-40 s alone, and once passed 60 s in CI).
describe('scriptorium daemon', { timeout: 180_000 }, () => {
  let cleanup: (() => void) | undefined;
  let daemon: Running | undefined;
  beforeAll(needDist);
  afterEach(async () => {
    if (daemon && daemon.proc.exitCode === null && daemon.proc.signalCode === null) {
      daemon.proc.kill('SIGKILL');
      await daemon.exited;
    }
    daemon = undefined;
    cleanup?.();
  });

  it('runs an interval job, records every run with its job name, never overlaps a run and records the skipped slots', async () => {
    const w = workDir();
    cleanup = w.cleanup;
    makeDb(join(w.dir, 'small.db'), 2000);
    makeDb(join(w.dir, 'big.db'), 300_000);
    expect(cli(w.dir, 'init', 'repo', '-q').status).toBe(0);
    writeConfig(w.dir, {
      jobs: {
        small: { source: 'small.db', repository: './repo', every: '1s', tags: ['nightly'] },
        // A run of big must outlast its 1 s interval on a fast, quiet machine too (a backup alone took
        // under a second there, so no slot was ever skipped): it also reads every pack back.
        big: { source: 'big.db', repository: './repo', every: '1s', verify: { afterBackup: true, readDataPercent: 100 } },
      },
    });
    daemon = start(w.dir, 'daemon');
    await until('three small runs and a skipped big slot', () => {
      const j = journal(w.dir);
      return ends(j).filter((e) => e.job === 'small' && e.status === 'ok').length >= 3 && j.some((e) => e.t === 'skip' && e.job === 'big' && e.reason === 'overlap') && ends(j).some((e) => e.job === 'big');
    });
    // `scriptorium run` of a job the daemon is running is refused and recorded, not run beside it.
    await until('big running', () => starts(journal(w.dir)).filter((s) => s.job === 'big').length > ends(journal(w.dir)).filter((e) => e.job === 'big').length);
    const manual = cli(w.dir, 'run', 'big');
    daemon.proc.kill('SIGTERM');
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
    const j = journal(w.dir);
    if (manual.status !== 0) expect(manual.stderr).toMatch(/E_LOCKED: job big is already running/);
    // Runs of one job never overlap: each starts after the previous one ended.
    for (const job of ['small', 'big']) {
      const runs = starts(j).filter((s) => s.job === job).map((s) => ({ start: Date.parse(s.at), end: Date.parse(ends(j).find((e) => e.run === s.run)!.at) }));
      for (let i = 1; i < runs.length; i++) expect(runs[i]!.start).toBeGreaterThanOrEqual(runs[i - 1]!.end);
      // And no slot ran twice.
      const slots = starts(j).filter((s) => s.job === job && s.slot).map((s) => s.slot);
      expect(new Set(slots).size).toBe(slots.length);
    }
    // Every run is in the history with its job name: a backup and a verify per small run.
    const h = history(w.dir);
    const smallRuns = ends(j).filter((e) => e.job === 'small' && e.status === 'ok');
    for (const run of smallRuns) {
      for (const step of run.steps) expect(h.find((r) => r.id === step.operation)).toMatchObject({ job: 'small', ok: true });
    }
    expect(h.filter((r) => r.job === 'small' && r.kind === 'backup').length).toBe(ends(j).filter((e) => e.job === 'small' && e.steps.some((s) => s.step === 'backup')).length);
    // `scriptorium jobs` shows them.
    const jobs = JSON.parse(cli(w.dir, 'jobs', '--json').stdout) as { jobs: Array<{ name: string; lastRun?: { status: string }; state: string; next?: string }> };
    expect(jobs.jobs.find((x) => x.name === 'small')).toMatchObject({ lastRun: { status: 'ok' } });
    const snaps = JSON.parse(cli(w.dir, 'snapshots', '-r', 'repo', '--json').stdout) as { snapshots: Array<{ tags: string[] }> };
    expect(snaps.snapshots.some((s) => s.tags.includes('job=small') && s.tags.includes('nightly'))).toBe(true);
  });

  it('marks a run left by a SIGKILLed daemon interrupted on restart, leaves no partial snapshot, and refuses a second daemon', async () => {
    const w = workDir();
    cleanup = w.cleanup;
    makeDb(join(w.dir, 'big.db'), 600_000);
    expect(cli(w.dir, 'init', 'repo', '-q').status).toBe(0);
    writeConfig(w.dir, { jobs: { big: { source: 'big.db', repository: './repo', every: '1h' } } });
    daemon = start(w.dir, 'daemon');
    const run = await until('the first run to start', () => starts(journal(w.dir))[0]);
    await until('its live progress', () => liveFiles(w.dir));
    daemon.proc.kill('SIGKILL');
    await daemon.exited;
    // Its worker notices the daemon is gone and stops; no snapshot was written.
    await until('the worker to stop', () => {
      try {
        process.kill(run.pid, 0);
        return false;
      } catch {
        return true;
      }
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(snapshotCount(join(w.dir, 'repo'))).toBe(0);
    daemon = start(w.dir, 'daemon');
    const marked = await until('the run marked interrupted', () => ends(journal(w.dir)).find((e) => e.run === run.run));
    expect(marked).toMatchObject({ status: 'interrupted', error: { code: 'E_INTERRUPTED' } });
    // The hourly slot was run once, by the killed daemon: the new one does not run it again.
    await new Promise((r) => setTimeout(r, 1500));
    expect(starts(journal(w.dir)).length).toBe(1);
    const second = cli(w.dir, 'daemon');
    expect(second.status).not.toBe(0);
    expect(second.stderr).toMatch(/E_LOCKED: another scriptorium daemon runs the jobs/);
  });

  it('on SIGTERM waits the grace period, then aborts the running backup cleanly', async () => {
    const w = workDir();
    cleanup = w.cleanup;
    makeDb(join(w.dir, 'big.db'), 600_000);
    expect(cli(w.dir, 'init', 'repo', '-q').status).toBe(0);
    writeConfig(w.dir, { jobs: { big: { source: 'big.db', repository: './repo', every: '1h' } }, daemon: { grace: '1ms' } });
    daemon = start(w.dir, 'daemon');
    const run = await until('the run to start', () => starts(journal(w.dir))[0]);
    await until('the backup to be under way', () => liveFiles(w.dir));
    daemon.proc.kill('SIGTERM');
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
    expect(ends(journal(w.dir)).find((e) => e.run === run.run)).toMatchObject({ status: 'interrupted' });
    expect(snapshotCount(join(w.dir, 'repo'))).toBe(0);
    expect(history(w.dir).find((r) => r.kind === 'backup')).toMatchObject({ job: 'big', ok: false, error: { code: 'E_ABORTED' } });
    // The repository is sound: a backup afterwards works and verifies.
    expect(cli(w.dir, 'run', 'big').status).toBe(0);
    expect(snapshotCount(join(w.dir, 'repo'))).toBe(1);
  });

  it('reloads the config on SIGHUP and keeps the old one when the new one is bad', async () => {
    const w = workDir();
    cleanup = w.cleanup;
    makeDb(join(w.dir, 'a.db'), 100);
    expect(cli(w.dir, 'init', 'repo', '-q').status).toBe(0);
    writeConfig(w.dir, { jobs: { a: { source: 'a.db', repository: './repo', every: '1h' } } });
    daemon = start(w.dir, 'daemon');
    await until('a to run', () => ends(journal(w.dir)).some((e) => e.job === 'a'));
    writeConfig(w.dir, { jobs: { a: { source: 'a.db', repository: './repo', every: '1h', catchUp: 'sometimes' } } });
    daemon.proc.kill('SIGHUP');
    await until('the failed reload to be logged', () => /reload failed, keeping the previous config: .*catchUp/.test(daemon!.output()));
    writeConfig(w.dir, { jobs: { a: { source: 'a.db', repository: './repo', every: '1h' }, b: { source: 'a.db', repository: './repo', every: '1h' } } });
    daemon.proc.kill('SIGHUP');
    await until('b to run after the reload', () => ends(journal(w.dir)).some((e) => e.job === 'b' && e.status === 'ok'));
    expect(ends(journal(w.dir)).filter((e) => e.job === 'a').length).toBe(1);
    daemon.proc.kill('SIGTERM');
    expect((await daemon.exited).code).toBe(0);
  });

  it('refuses a bad config before running anything, naming the line and the field, with a non-zero exit', () => {
    const w = workDir();
    cleanup = w.cleanup;
    writeFileSync(join(w.dir, 'scriptorium.config.json'), '{\n  "jobs": {\n    "a": { "source": "a.db", "repository": "./repo",\n           "every": "2 seconds" } } }\n');
    for (const command of ['daemon', 'jobs', 'serve']) {
      const r = cli(w.dir, command, ...(command === 'serve' ? ['--port', '0'] : []));
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/error E_CONFIG: config .*scriptorium\.config\.json line 4: jobs\.a\.every: must be a duration/);
    }
    expect(existsSync(join(w.dir, 'backups'))).toBe(false); // nothing written
    expect(cli(w.dir, 'daemon', '--config', 'nope.json').stderr).toMatch(/E_NOT_FOUND: config: .*nope\.json does not exist/);
  });

  it('runs a job named daemon: a job\'s lock never collides with the daemon\'s own', async () => {
    const w = workDir();
    cleanup = w.cleanup;
    makeDb(join(w.dir, 'd.db'), 100);
    expect(cli(w.dir, 'init', 'repo', '-q').status).toBe(0);
    writeConfig(w.dir, { jobs: { daemon: { source: 'd.db', repository: './repo', every: '1s' } } });
    daemon = start(w.dir, 'daemon');
    await until('two ok runs of the job named daemon', () => ends(journal(w.dir)).filter((e) => e.job === 'daemon' && e.status === 'ok').length >= 2);
    daemon.proc.kill('SIGTERM');
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
    expect(journal(w.dir).some((e) => e.t === 'skip' && e.job === 'daemon' && e.reason !== 'overlap')).toBe(false);
  });

  it('scriptorium run JOB runs one job now and fails with a non-zero exit when it fails', () => {
    const w = workDir();
    cleanup = w.cleanup;
    makeDb(join(w.dir, 'a.db'), 100);
    expect(cli(w.dir, 'init', 'repo', '-q').status).toBe(0);
    writeConfig(w.dir, { jobs: { a: { source: 'a.db', repository: './repo', every: '1h', retention: { keepLast: 2 }, verify: { readDataPercent: 50, drillEvery: '7d' } }, gone: { source: 'missing.db', repository: './repo', every: '1h' } } });
    const results = [1, 2, 3].map(() => JSON.parse(cli(w.dir, 'run', 'a', '--json').stdout) as { status: string; steps: Array<{ step: string; detail?: Record<string, unknown> }>; readPart?: number; drilled?: boolean });
    expect(results.map((r) => r.status)).toEqual(['ok', 'ok', 'ok']);
    // Retention keeps the last two; the read-data part rotates 1, 2, 1; the drill runs once in 7 days.
    expect(results[2]!.steps.find((s) => s.step === 'retention')!.detail).toEqual({ removed: 1, kept: 2 });
    expect(results.map((r) => r.readPart)).toEqual([1, 2, 1]);
    expect(results.map((r) => r.drilled ?? false)).toEqual([true, false, false]);
    const pruned = JSON.parse(cli(w.dir, 'run', 'a', '--prune', '--json').stdout) as { status: string; kind: string; steps: Array<{ step: string; ok: boolean }> };
    expect(pruned).toMatchObject({ status: 'ok', kind: 'prune', steps: [{ step: 'prune', ok: true }] });
    const failed = cli(w.dir, 'run', 'gone');
    expect(failed.status).toBe(1);
    expect(failed.stdout).toMatch(/backup\s+FAILED .*E_NOT_FOUND/);
    expect(cli(w.dir, 'run', 'nope').stderr).toMatch(/E_NOT_FOUND: no job named nope/);
  });
});
