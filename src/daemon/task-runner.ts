/**
 * Runs one task of a job (its backup with retention and verification, or its prune) in a worker
 * process, with the task's lock held and the run in the journal from start to end. The daemon and
 * `scriptorium run` both run tasks through here, so no two runs of one task overlap whichever process
 * starts them: the second finds the lock held and records a skip.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ScriptoriumError } from '../core/errors.js';
import { tryLock, type ReleaseLock } from '../monitor/file-lock.js';
import type { DaemonConfig, JobConfig } from './job-config.js';
import { foldJournal, Journal, type JournalEntry, type RunStatus, type RunTrigger, type StepResult, type TaskKind } from './journal.js';
import type { WorkerOutcome, WorkerPlan } from './job-worker.js';
import { processRuns } from '../core/atomic-file.js';

/** How long an aborted worker gets to clean up before it is killed. */
const KILL_AFTER_MS = 10_000;
/** Locks of live processes never go stale by age: a run may take hours. */
const NEVER_STALE = 10 * 365 * 86_400_000;

/**
 * The worker's file: beside this module once compiled; from the TypeScript sources (the tests), the
 * compiled copy in dist/ (a forked process cannot load TypeScript).
 */
export function workerPath(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.ts') ? here.replace(/([\\/])src([\\/]daemon[\\/])task-runner\.ts$/, '$1dist$2job-worker.js') : fileURLToPath(new URL('./job-worker.js', import.meta.url));
}

/** The name of a job's task in the journal. */
export const taskName = (job: string, kind: TaskKind) => (kind === 'prune' ? `${job}#prune` : job);

/** The end of a run, as journaled. */
export type RunEnd = Extract<JournalEntry, { t: 'end' }> & { missedTargets: WorkerOutcome['missedTargets'] };

/** A run in progress. */
export interface RunningTask {
  run: string;
  job: string;
  kind: TaskKind;
  startedAt: number;
  /** Resolves when the run has ended and been journaled. */
  done: Promise<RunEnd>;
  /** Asks the worker to stop now (it records its operation as aborted, leaves no snapshot). */
  abort(): void;
}


/** Starts tasks for one config. */
export class TaskRunner {
  readonly #config: DaemonConfig;
  readonly journal: Journal;
  readonly #now: () => number;

  constructor(config: DaemonConfig, now: () => number = Date.now) {
    this.#config = config;
    this.journal = new Journal(config.journalPath);
    this.#now = now;
    // The journal's folder (beside the history) holds the lock files too; it may not exist yet.
    mkdirSync(dirname(config.journalPath), { recursive: true });
  }

  /**
   * One lock file per task, in a namespace of its own (`.task-`), so that no job name (`daemon`, say)
   * can collide with the daemon's own lock or the journal's.
   */
  lockPath(task: string): string {
    return `${this.#config.journalPath}.task-${task.replace('#', '-')}.lock`;
  }

  /**
   * Marks as interrupted every run the journal shows open whose process is gone (a daemon or
   * `scriptorium run` that was killed) and whose task lock is free. Returns the runs marked.
   */
  markInterrupted(entries: JournalEntry[] = this.journal.read()): string[] {
    const marked: string[] = [];
    const host = hostname();
    for (const [task, state] of foldJournal(entries).tasks) {
      for (const start of state.open.values()) {
        if (start.host !== host || start.pid === process.pid || processRuns(start.pid)) continue;
        const release = tryLock(this.lockPath(task), { staleMs: NEVER_STALE });
        if (!release) continue;
        try {
          this.journal.append({
            v: 1, t: 'end', run: start.run, task, job: start.job, kind: start.kind, status: 'interrupted', at: new Date(this.#now()).toISOString(),
            durationMs: Math.max(0, this.#now() - Date.parse(start.at)), steps: [],
            error: { code: 'E_INTERRUPTED', message: `the process that ran it (pid ${start.pid}) ended before the run did` },
          });
          marked.push(start.run);
        } finally {
          release();
        }
      }
    }
    return marked;
  }

  /**
   * Starts a task. When the task's lock is held (a run in another process, or still in this one) the
   * slot is recorded as skipped and `undefined` is returned.
   */
  start(job: JobConfig, kind: TaskKind, trigger: RunTrigger, options: { slot?: number; missed?: number } = {}): RunningTask | undefined {
    const task = taskName(job.name, kind);
    const release = tryLock(this.lockPath(task), { staleMs: NEVER_STALE });
    const at = new Date(this.#now()).toISOString();
    const slot = options.slot === undefined ? undefined : new Date(options.slot).toISOString();
    if (!release) {
      this.journal.append({ v: 1, t: 'skip', task, job: job.name, slot: slot ?? at, reason: 'overlap', at });
      return undefined;
    }
    try {
      const run = randomUUID();
      const state = foldJournal(this.journal.read()).jobs.get(job.name) ?? {};
      const plan = this.#plan(job, kind, state);
      this.journal.append({
        v: 1, t: 'start', run, task, job: job.name, kind, trigger, ...(slot ? { slot } : {}), ...(options.missed ? { missed: options.missed } : {}),
        at, pid: process.pid, host: hostname(),
      });
      const startedAt = this.#now();
      let child: ChildProcess | undefined;
      let aborted = false;
      const done = this.#fork(plan, (c) => (child = c), job.timeoutMs, () => aborted).then(
        (outcome) => this.#end(run, task, job, kind, startedAt, plan, outcome, aborted),
      ).finally(release);
      return {
        run, job: job.name, kind, startedAt, done,
        abort: () => {
          aborted = true;
          if (child && child.exitCode === null) {
            child.kill('SIGTERM');
            setTimeout(() => child?.exitCode === null && child.kill('SIGKILL'), KILL_AFTER_MS).unref();
          }
        },
      };
    } catch (err) {
      release();
      throw err;
    }
  }

  #plan(job: JobConfig, kind: TaskKind, state: { lastReadPart?: number; lastDrillAt?: number }): WorkerPlan {
    const plan: WorkerPlan = { job, kind, history: this.#config.monitor.history, targets: this.#config.monitor.targets, drill: false };
    if (kind === 'backup' && job.verify.readDataPercent !== undefined) {
      const of = Math.ceil(100 / job.verify.readDataPercent);
      plan.readPart = { part: ((state.lastReadPart ?? 0) % of) + 1, of };
    }
    if (kind === 'backup' && job.verify.drillEveryMs !== undefined) {
      plan.drill = state.lastDrillAt === undefined || this.#now() - state.lastDrillAt >= job.verify.drillEveryMs;
    }
    return plan;
  }

  #fork(plan: WorkerPlan, onChild: (c: ChildProcess) => void, timeoutMs: number | undefined, aborted: () => boolean): Promise<WorkerOutcome> {
    return new Promise((resolve) => {
      const child = fork(workerPath(), [], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json', cwd: this.#config.dir,
      });
      onChild(child);
      let outcome: WorkerOutcome | undefined;
      let timedOut = false;
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
        timedOut = true;
        child.kill('SIGTERM');
      }, timeoutMs);
      child.on('message', (m: WorkerOutcome) => {
        if (m?.type === 'outcome') outcome = m;
      });
      child.once('error', (err) => {
        outcome ??= { type: 'outcome', ok: false, steps: [], missedTargets: [], error: { code: 'E_WORKER', message: `could not start the job's process: ${err.message}` } };
      });
      child.once('exit', (code, signal) => {
        if (timer) clearTimeout(timer);
        if (!outcome) {
          const why = timedOut ? `it ran longer than its timeout (${timeoutMs} ms) and was stopped`
            : aborted() ? 'it was stopped (the daemon is shutting down)'
            : `its process ended (${signal ?? `exit code ${code}`}) before it reported`;
          outcome = { type: 'outcome', ok: false, steps: [], missedTargets: [], error: { code: timedOut ? 'E_TIMEOUT' : aborted() ? 'E_ABORTED' : 'E_WORKER', message: why } };
        }
        resolve(outcome);
      });
      child.send(plan);
    });
  }

  #end(run: string, task: string, job: JobConfig, kind: TaskKind, startedAt: number, plan: WorkerPlan, outcome: WorkerOutcome, aborted: boolean): RunEnd {
    const status: RunStatus = outcome.ok ? 'ok' : aborted ? 'interrupted' : 'failed';
    const verify = outcome.steps.find((s) => s.step === 'verify');
    const entry: Extract<JournalEntry, { t: 'end' }> = {
      v: 1, t: 'end', run, task, job: job.name, kind, status, at: new Date(this.#now()).toISOString(), durationMs: this.#now() - startedAt,
      ...(outcome.error ? { error: outcome.error } : {}), steps: outcome.steps as StepResult[],
      ...(plan.readPart && verify?.ok ? { readPart: plan.readPart.part } : {}),
      ...(plan.drill && verify?.ok ? { drilled: true } : {}),
      ...(outcome.missedTargets.length > 0 ? { missedTargets: outcome.missedTargets } : {}),
    };
    this.journal.append(entry);
    return { ...entry, missedTargets: outcome.missedTargets };
  }
}

/** The error `scriptorium run` reports when the job is running elsewhere. */
export function busyError(job: string): ScriptoriumError {
  return new ScriptoriumError('E_LOCKED', `job ${job} is already running (in the daemon or another scriptorium run); this run was skipped and recorded`, {
    hint: 'wait for it to finish: `scriptorium jobs` shows its state',
  });
}
