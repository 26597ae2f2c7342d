/**
 * The journal stays bounded: past its size limit an append rewrites it, under the lock every append
 * holds, keeping what the schedule and the alerts read back. Checked against the whole journal: the
 * fold (slots, open runs, last results, verify rotation), the alert states and the first sight of each
 * task are the same before and after; readers follow the rewrite; and two real processes appending
 * while compactions happen lose nothing.
 */
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { alertStates } from '../../src/alerts/alert-engine.js';
import { foldJournal, Journal, keptEntries, type JournalEntry } from '../../src/daemon/journal.js';
import { ROOT, needDist, workDir } from './helpers.js';

/** A long, mixed journal: enrolments, runs (some left open, some failing, with verify steps and read parts), skips, alerts. */
function syntheticJournal(runs: number): JournalEntry[] {
  const out: JournalEntry[] = [];
  let t = Date.parse('2026-01-01T00:00:00Z');
  const at = () => new Date((t += 1000)).toISOString();
  const tasks = ['a', 'b', 'b#prune', 'c'];
  for (const task of tasks) out.push({ v: 1, t: 'enrol', task, job: task.split('#')[0]!, at: at() });
  for (let i = 0; i < runs; i++) {
    const task = tasks[i % tasks.length]!;
    const job = task.split('#')[0]!;
    const kind = task.endsWith('#prune') ? 'prune' : 'backup';
    const run = `run-${i}`;
    if (i % 37 === 5) {
      out.push({ v: 1, t: 'skip', task, job, slot: at(), reason: i % 2 ? 'overlap' : 'missed', at: at(), count: 2 });
      continue;
    }
    out.push({ v: 1, t: 'start', run, task, job, kind, trigger: i % 11 === 0 ? 'manual' : 'schedule', slot: at(), at: at(), pid: 1, host: 'h' });
    if (i === 7 || i === runs - 3) continue; // left open (a killed daemon)
    const status = i % 13 === 0 ? 'failed' : 'ok';
    const verify = i % 5 === 0;
    out.push({
      v: 1, t: 'end', run, task, job, kind, status, at: at(), durationMs: 900 + i,
      steps: verify ? [{ step: 'verify', ok: i % 10 !== 0, durationMs: 5 }] : [],
      ...(status === 'ok' && i % 3 === 0 ? { readPart: (i % 7) + 1 } : {}),
      ...(status === 'ok' && i % 17 === 0 ? { drilled: true } : {}),
    });
    if (i % 19 === 0) out.push({ v: 1, t: 'alert', id: `al-${i}`, alert: 'ops', job, condition: i % 2 ? 'failure' : 'silence', state: i % 3 ? 'firing' : 'resolved', message: 'm', at: at() });
    if (i % 23 === 0) out.push({ v: 1, t: 'delivery', id: `al-${i}`, alert: 'ops', channel: 'webhook', ok: false, attempts: 3, error: 'HTTP 500', at: at() });
  }
  out.push({ v: 1, t: 'alert', id: 'test', alert: 'ops', job: '(test)', condition: 'test', state: 'test', message: 'test', at: at() });
  return out;
}

/** Everything the daemon and the alerts derive from a journal. */
function derived(entries: readonly JournalEntry[]) {
  const { tasks, jobs } = foldJournal(entries);
  return {
    // Sorted: the order a map was first touched in is no part of the state.
    tasks: [...tasks].map(([name, s]) => [name, { ...s, open: [...s.open.keys()] }]).sort(),
    jobs: [...jobs].sort(),
    alerts: [...alertStates(entries)].sort(),
    firstSight: ['a', 'b', 'c'].map((job) => entries.find((e) => 'task' in e && e.task === job)?.at),
    lastVerify: ['a', 'b', 'c'].map((job) => [...entries].reverse().find((e) => e.t === 'end' && e.job === job && e.kind === 'backup' && e.steps.some((s) => s.step === 'verify'))),
    lastOk: ['a', 'b', 'c'].map((job) => [...entries].reverse().find((e) => e.t === 'end' && e.job === job && e.kind === 'backup' && e.status === 'ok')),
  };
}

describe('journal compaction', () => {
  let cleanup: (() => void) | undefined;
  beforeAll(needDist);
  afterEach(() => cleanup?.());

  it('keeps what the schedule and the alerts read back: the same fold, alert states and first sightings as the whole journal', () => {
    const all = syntheticJournal(6000);
    const kept = keptEntries(all, 200);
    expect(kept.length).toBeLessThan(300);
    expect(derived(kept)).toEqual(derived(all));
    // The newest entries are all there, in order.
    expect(kept.slice(-200)).toEqual(all.slice(-200));
  });

  it('rewrites the file once it passes its limit, under the append lock, and a reader follows the rewrite', () => {
    const w = workDir();
    cleanup = w.cleanup;
    const path = join(w.dir, 'j.jsonl');
    const writer = new Journal(path, { compactAtBytes: 64 << 10, tailEntries: 100 });
    const reader = new Journal(path);
    const all = syntheticJournal(3000);
    let maxSize = 0;
    all.forEach((e, i) => {
      writer.append(e);
      maxSize = Math.max(maxSize, statSync(path).size);
      if (i % 500 === 0) reader.read();
    });
    expect(maxSize).toBeLessThan((64 << 10) + 1024); // never much past the limit
    const inFile = readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as JournalEntry);
    expect(inFile.length).toBeLessThan(all.length / 5);
    expect(derived(inFile)).toEqual(derived(all));
    expect(derived(reader.read())).toEqual(derived(all));
    expect(reader.read().slice(-100)).toEqual(all.slice(-100));
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('loses no entry appended by two processes while they compact each other', async () => {
    const w = workDir();
    cleanup = w.cleanup;
    const path = join(w.dir, 'j.jsonl');
    const N = 400;
    // A small limit and a tail longer than everything written: compactions run often, and must keep all.
    const script = `
      import { Journal } from ${JSON.stringify(join(ROOT, 'dist/daemon/journal.js'))};
      const [path, who, n] = process.argv.slice(1);
      const j = new Journal(path, { compactAtBytes: 8192, tailEntries: 100000 });
      for (let i = 0; i < Number(n); i++) j.append({ v: 1, t: 'skip', task: who, job: who, slot: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(), reason: 'overlap', at: new Date().toISOString(), count: i });
    `;
    const run = (who: string) => new Promise<number | null>((resolve) => spawn(process.execPath, ['--input-type=module', '-e', script, path, who, String(N)], { stdio: 'inherit' }).on('exit', resolve));
    expect(await Promise.all([run('p'), run('q')])).toEqual([0, 0]);
    const inFile = readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Extract<JournalEntry, { t: 'skip' }>);
    for (const who of ['p', 'q']) {
      expect(inFile.filter((e) => e.task === who).map((e) => e.count)).toEqual([...Array(N).keys()]);
    }
  });
});
