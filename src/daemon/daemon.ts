/**
 * `scriptorium daemon`: runs the jobs of scriptorium.config.json on their schedules.
 *
 * Each tick reads the journal and decides, per task, from the last slot it handled (see decide.ts):
 * nothing is kept in timers that a restart or a sleep could lose or repeat. A tick happens at the next
 * slot due or at least every {@link MAX_SLEEP_MS} (wall-clock jumps after a sleep are seen then), and
 * the alerts' silence checks run on every tick whether a job ran or not.
 *
 * One daemon per journal (a lock file beside it); runs of one task never overlap (the task lock: a slot
 * that comes while its task runs is skipped and recorded). SIGTERM/SIGINT stop scheduling, give running
 * jobs `daemon.grace` to finish, then abort them (no partial snapshot); SIGHUP reloads the config.
 */
import { ScriptoriumError } from '../core/errors.js';
import { tryLock, type ReleaseLock } from '../monitor/file-lock.js';
import { loadDaemonConfig, type DaemonConfig, type JobConfig } from './job-config.js';
import { decide } from './decide.js';
import { foldJournal, type TaskKind } from './journal.js';
import { Schedule } from './schedule.js';
import { taskName, TaskRunner, type RunEnd, type RunningTask } from './task-runner.js';

/** Longest time between two ticks. */
export const MAX_SLEEP_MS = 30_000;

/** What the daemon tells the alerting side (see alerts/alert-engine.ts). */
export interface DaemonHooks {
  runStarted?(job: JobConfig, kind: TaskKind, run: string): void | Promise<void>;
  runEnded?(job: JobConfig, end: RunEnd): void | Promise<void>;
  /** Every tick, also when no job ran (silence checks). */
  tick?(now: number): void | Promise<void>;
  /** The config was (re)loaded. */
  configured?(config: DaemonConfig): void;
}

export interface DaemonOptions {
  /** The config file (default ./scriptorium.config.json). */
  configPath?: string;
  /** The clock (ms since the epoch); tests inject one. */
  now?: () => number;
  /** Log lines (default: stderr). */
  log?: (line: string) => void;
  hooks?: DaemonHooks;
}

interface Task {
  job: JobConfig;
  kind: TaskKind;
  name: string;
  schedule: Schedule;
}

/** The scheduler process. Create, {@link start}, and {@link stop} it. */
export class Daemon {
  readonly #configPath: string | undefined;
  readonly #now: () => number;
  readonly #log: (line: string) => void;
  readonly #hooks: DaemonHooks;
  #config!: DaemonConfig;
  #runner!: TaskRunner;
  #tasks: Task[] = [];
  readonly #running = new Map<string, RunningTask>();
  #timer: NodeJS.Timeout | undefined;
  #release: ReleaseLock | undefined;
  #stopping = false;
  #ticking: Promise<void> | undefined;

  constructor(options: DaemonOptions = {}) {
    this.#configPath = options.configPath;
    this.#now = options.now ?? Date.now;
    this.#log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.#hooks = options.hooks ?? {};
  }

  get config(): DaemonConfig {
    return this.#config;
  }

  /** Runs in progress, by task name. */
  get running(): ReadonlyMap<string, RunningTask> {
    return this.#running;
  }

  /**
   * Loads the config, takes the daemon lock, marks runs a killed daemon left open as interrupted and
   * starts ticking.
   *
   * @throws ScriptoriumError E_CONFIG for a bad config, E_LOCKED when another daemon runs on this journal.
   */
  start(): void {
    this.#configure(loadDaemonConfig(this.#configPath));
    this.#release = tryLock(`${this.#config.journalPath}.daemon.lock`, { staleMs: 10 * 365 * 86_400_000 });
    if (!this.#release) {
      throw new ScriptoriumError('E_LOCKED', `another scriptorium daemon runs the jobs of this journal (${this.#config.journalPath})`, {
        hint: 'stop it first, or give this config its own "history": { "path": ... }',
      });
    }
    for (const run of this.#runner.markInterrupted()) this.#log(`scriptorium daemon: run ${run.slice(0, 8)} was left running by a process that is gone: marked interrupted`);
    this.#log(`scriptorium daemon: ${this.#config.jobs.size} job(s) from ${this.#config.file}`);
    this.#schedule(0);
  }

  /** Rereads the config (SIGHUP). A bad config is logged and the old one kept; running jobs go on. */
  reload(): boolean {
    try {
      this.#configure(loadDaemonConfig(this.#configPath));
      this.#log(`scriptorium daemon: reloaded ${this.#config.file}: ${this.#config.jobs.size} job(s)`);
      this.#schedule(0);
      return true;
    } catch (err) {
      this.#log(`scriptorium daemon: reload failed, keeping the previous config: ${err instanceof Error ? err.message : String(err)}`);
      return false;
    }
  }

  /**
   * Starts a run of `job` now (the dashboard's button, the API).
   *
   * @returns the run, or undefined when the job is running already (the skip is recorded).
   * @throws ScriptoriumError E_NOT_FOUND for an unknown job.
   */
  runNow(jobName: string, kind: TaskKind = 'backup'): RunningTask | undefined {
    const job = this.#config.jobs.get(jobName);
    if (!job) throw new ScriptoriumError('E_NOT_FOUND', `no job named ${jobName}`, { hint: 'scriptorium jobs lists them' });
    return this.#launch(job, kind, 'manual', {});
  }

  /**
   * Stops scheduling, waits up to `graceMs` (default: the config's) for running jobs, aborts the rest
   * and waits for them to end. Releases the daemon lock.
   */
  async stop(graceMs: number = this.#config?.graceMs ?? 30_000): Promise<void> {
    this.#stopping = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#ticking;
    const runs = [...this.#running.values()];
    if (runs.length > 0) {
      this.#log(`scriptorium daemon: waiting up to ${Math.round(graceMs / 1000)} s for ${runs.map((r) => r.job).join(', ')}`);
      const all = Promise.allSettled(runs.map((r) => r.done));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
      clearTimeout(timer);
      if (timedOut) {
        for (const r of this.#running.values()) {
          this.#log(`scriptorium daemon: aborting ${r.job} (no snapshot is left half-written)`);
          r.abort();
        }
        await all;
      }
    }
    for (const task of this.#tasks) task.schedule.dispose();
    this.#release?.();
    this.#release = undefined;
  }

  #configure(config: DaemonConfig): void {
    for (const task of this.#tasks) task.schedule.dispose();
    this.#config = config;
    this.#runner = new TaskRunner(config, this.#now);
    this.#tasks = [];
    for (const job of config.jobs.values()) {
      this.#tasks.push({ job, kind: 'backup', name: taskName(job.name, 'backup'), schedule: new Schedule(job.schedule) });
      if (job.prune) this.#tasks.push({ job, kind: 'prune', name: taskName(job.name, 'prune'), schedule: new Schedule(job.prune) });
    }
    this.#hooks.configured?.(config);
  }

  #schedule(delay: number): void {
    if (this.#stopping) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#ticking = this.tick().catch((err: unknown) => this.#log(`scriptorium daemon: tick failed: ${err instanceof Error ? err.message : String(err)}`));
    }, Math.max(0, Math.min(delay, MAX_SLEEP_MS)));
  }

  /** One tick: run, skip or wait for each task; alert checks; the next tick. Public for tests. */
  async tick(): Promise<void> {
    if (this.#stopping) return;
    const now = this.#now();
    const entries = this.#runner.journal.read();
    this.#runner.markInterrupted(entries);
    const { tasks } = foldJournal(entries);
    let next = now + MAX_SLEEP_MS;
    for (const task of this.#tasks) {
      const state = tasks.get(task.name);
      let lastSlot = state?.lastSlot;
      if (lastSlot === undefined) {
        // First sight of this task: its slots count from now (an interval backup runs at once).
        lastSlot = task.kind === 'backup' && task.schedule.spec.kind === 'every' ? now - task.schedule.spec.everyMs : now;
        this.#runner.journal.append({ v: 1, t: 'enrol', task: task.name, job: task.job.name, at: new Date(lastSlot).toISOString() });
      }
      const decision = decide(task.schedule, task.job.catchUp, lastSlot, now);
      if (decision.action === 'wait') {
        if (decision.next !== undefined) next = Math.min(next, decision.next);
        continue;
      }
      if (decision.action === 'skip') {
        this.#runner.journal.append({ v: 1, t: 'skip', task: task.name, job: task.job.name, slot: new Date(decision.slot).toISOString(), reason: 'missed', at: new Date(now).toISOString(), count: decision.count });
        this.#log(`scriptorium daemon: ${task.name}: ${decision.count} slot(s) missed while not running; catchUp is none, so not run`);
      } else {
        this.#launch(task.job, task.kind, decision.trigger, { slot: decision.slot, missed: decision.missed });
      }
      const after = task.schedule.next(Math.max(decision.slot, now), decision.slot);
      if (after !== undefined) next = Math.min(next, after);
    }
    try {
      await this.#hooks.tick?.(now);
    } catch (err) {
      this.#log(`scriptorium daemon: alert check failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.#schedule(next - this.#now());
  }

  #launch(job: JobConfig, kind: TaskKind, trigger: 'schedule' | 'catch-up' | 'manual', slot: { slot?: number; missed?: number }): RunningTask | undefined {
    const name = taskName(job.name, kind);
    const run = this.#running.has(name) ? undefined : this.#runner.start(job, kind, trigger, slot);
    if (!run) {
      if (this.#running.has(name)) {
        // The lock is ours, held by the run in progress: record the skipped slot here.
        const at = new Date(this.#now()).toISOString();
        this.#runner.journal.append({ v: 1, t: 'skip', task: name, job: job.name, slot: slot.slot === undefined ? at : new Date(slot.slot).toISOString(), reason: 'overlap', at });
      }
      this.#log(`scriptorium daemon: ${name}: still running, this ${trigger === 'manual' ? 'request' : 'slot'} is skipped (recorded)`);
      return undefined;
    }
    this.#running.set(name, run);
    this.#log(`scriptorium daemon: ${name}: run ${run.run.slice(0, 8)} started (${trigger}${slot.missed ? `, ${slot.missed} earlier slot(s) not run again` : ''})`);
    void Promise.resolve(this.#hooks.runStarted?.(job, kind, run.run)).catch(() => {});
    void run.done.then(async (end) => {
      this.#running.delete(name);
      this.#log(`scriptorium daemon: ${name}: run ${run.run.slice(0, 8)} ${end.status} in ${(end.durationMs / 1000).toFixed(1)} s${end.error ? `: ${end.error.code} ${end.error.message}` : ''}`);
      try {
        await this.#hooks.runEnded?.(job, end);
      } catch (err) {
        this.#log(`scriptorium daemon: alerts after ${name} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
    return run;
  }
}
