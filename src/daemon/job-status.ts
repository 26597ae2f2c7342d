/** The state of every job as `scriptorium jobs` and the dashboard show it: last run, last result, next run. */
import type { DaemonConfig, JobConfig } from './job-config.js';
import { decide } from './decide.js';
import { foldJournal, type JournalEntry, type TaskState } from './journal.js';
import { Schedule } from './schedule.js';
import { taskName } from './task-runner.js';

/** One job's line. */
export interface JobStatus {
  name: string;
  source: string;
  repository: string;
  /** The schedule as written: a cron expression (with its zone) or `every 2s`. */
  schedule: string;
  state: 'running' | 'idle' | 'never run';
  lastRun?: { status: string; at: string; durationMs: number; error?: { code: string; message: string } };
  lastSuccessAt?: string;
  /** The next slot (ISO); `due` when a slot has passed and the daemon will run it on its next tick. */
  next?: string;
  due: boolean;
  tags: string[];
  alerts: string[];
}

export function describeSchedule(job: JobConfig): string {
  const s = job.schedule;
  return s.kind === 'every' ? `every ${s.everyMs / 1000}s` : `${s.cron}${s.timezone ? ` (${s.timezone})` : ''}`;
}

/** The status of each job at `now`, from the journal's entries. */
export function jobStatuses(config: DaemonConfig, entries: JournalEntry[], now: number = Date.now()): JobStatus[] {
  const { tasks } = foldJournal(entries);
  return [...config.jobs.values()].map((job) => {
    const state: TaskState = tasks.get(taskName(job.name, 'backup')) ?? { open: new Map() };
    const schedule = new Schedule(job.schedule);
    const decision = decide(schedule, job.catchUp, state.lastSlot ?? now, now);
    schedule.dispose();
    const end = state.lastEnd;
    return {
      name: job.name,
      source: job.source,
      repository: job.repository,
      schedule: describeSchedule(job),
      state: state.open.size > 0 ? 'running' : end ? 'idle' : 'never run',
      ...(end ? { lastRun: { status: end.status, at: end.at, durationMs: end.durationMs, ...(end.error ? { error: end.error } : {}) } } : {}),
      ...(state.lastOkAt ? { lastSuccessAt: new Date(state.lastOkAt).toISOString() } : {}),
      ...(decision.action === 'wait' && decision.next !== undefined ? { next: new Date(decision.next).toISOString() } : {}),
      due: decision.action !== 'wait',
      tags: job.tags,
      alerts: job.alerts,
    };
  });
}
