/**
 * Decides when to alert and sends the alerts: on a failed run, a missed target, a slowdown (trend), a
 * silence (no successful backup for longer than `silenceAfter`) and a failed verify. A condition that
 * starts is sent once (`firing`), repeated only every `repeatEvery` while it lasts (no storms), and a
 * `resolved` alert follows when it clears. The state (what is active, when it was last sent) is read
 * back from the journal's alert entries, so a restart neither forgets an alert nor sends it again.
 *
 * A trend compares the median duration (and throughput) of the job's last `last` successful backups with
 * the median of the `baseline` before them. It fires above `raisePercent` and clears only below
 * `clearPercent` (hysteresis), and a change of less than `minDuration` is never a trend: one slow run on
 * a busy machine moves a median of three by nothing, and a 40 ms job that takes 80 ms pages no one.
 *
 * **One evaluator at a time.** The daemon and `scriptorium run JOB` may evaluate the same job at once.
 * Reading the alert state, deciding and journaling the alerts decided happen under one lock file
 * (`<journal>-alerts.lock`), so two processes never both send `firing` for one condition nor lose a
 * `resolved`; delivery (which may retry for a while) happens after the lock is released.
 *
 * **Bounded.** The trend reads the history through a {@link HistoryTail} that keeps, per job, only the
 * newest successful backups a trend needs, and reads only what was appended since its last look.
 */
import { setTimeout as pause } from 'node:timers/promises';
import { tryLock, type ReleaseLock } from '../monitor/file-lock.js';
import { HistoryTail } from '../monitor/history-tail.js';
import type { OperationRecord } from '../monitor/operation-record.js';
import { median } from '../monitor/stats.js';
import { formatDurationSetting } from '../daemon/duration.js';
import type { AlertCondition, AlertConfig, DaemonConfig, JobConfig, TrendConfig } from '../daemon/job-config.js';
import { foldJournal, Journal, type JournalEntry } from '../daemon/journal.js';
import type { RunEnd } from '../daemon/task-runner.js';
import type { TaskKind } from '../daemon/journal.js';
import { makeAlert, type Alert } from './alert.js';
import { deliverCommand, deliverWebhook, ping, type DeliveryResult } from './deliver.js';

/** One condition's verdict. */
interface Verdict {
  active: boolean;
  message: string;
  details?: Record<string, unknown>;
}

interface AlertState {
  active: boolean;
  lastSentAt: number;
}

/** How long an evaluation waits for another process's to finish (each holds the lock for milliseconds). */
export const ALERT_LOCK_WAIT_MS = 30_000;
/** An alert lock older than this is abandoned (its holder hung). */
const ALERT_LOCK_STALE_MS = 60_000;

/** The lock file that serializes alert evaluation for a journal. */
export const alertLockPath = (journalPath: string) => `${journalPath}-alerts.lock`;

/** Takes the alert lock, waiting in short pauses up to `waitMs`; undefined when it stayed taken. */
export async function takeAlertLock(journalPath: string, waitMs = ALERT_LOCK_WAIT_MS): Promise<ReleaseLock | undefined> {
  const end = Date.now() + waitMs;
  for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
    const release = tryLock(alertLockPath(journalPath), { staleMs: ALERT_LOCK_STALE_MS });
    if (release || Date.now() >= end) return release;
    await pause(wait);
  }
}

const stateKey = (alert: string, job: string, condition: string) => `${alert}\u0000${job}\u0000${condition}`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The active state of every (alert, job, condition) from the journal. */
export function alertStates(entries: readonly JournalEntry[]): Map<string, AlertState> {
  const states = new Map<string, AlertState>();
  for (const e of entries) {
    if (e.t !== 'alert' || e.state === 'test') continue;
    states.set(stateKey(e.alert, e.job, e.condition), { active: e.state !== 'resolved', lastSentAt: Date.parse(e.at) });
  }
  return states;
}

/**
 * The trend of a job's successful backups: how many percent the median duration of the last `last` is
 * above the median of the `baseline` before (or the throughput below), or undefined without enough runs.
 */
export function trendOf(records: readonly OperationRecord[], trend: TrendConfig): { percent: number; recentMs: number; baselineMs: number; absoluteMs: number } | undefined {
  if (records.length < trend.last + trend.baseline) return undefined;
  const recent = records.slice(-trend.last);
  const before = records.slice(-(trend.last + trend.baseline), -trend.last);
  const recentMs = median(recent.map((r) => r.durationMs)) ?? 0;
  const baselineMs = median(before.map((r) => r.durationMs)) ?? 0;
  let percent = baselineMs > 0 ? ((recentMs - baselineMs) / baselineMs) * 100 : 0;
  const recentRate = median(recent.map((r) => r.rowsPerSecond)) ?? 0;
  const baseRate = median(before.map((r) => r.rowsPerSecond)) ?? 0;
  if (baseRate > 0 && recent.every((r) => r.rows > 0)) percent = Math.max(percent, ((baseRate - recentRate) / baseRate) * 100);
  return { percent, recentMs, baselineMs, absoluteMs: recentMs - baselineMs };
}

export interface AlertEngineOptions {
  now?: () => number;
  log?: (line: string) => void;
  /** Pause before the first webhook retry (doubling after). */
  retryBaseMs?: number;
}

/** Evaluates conditions and delivers alerts for one config (the daemon's hooks, and `scriptorium run`'s). */
export class AlertEngine {
  #config: DaemonConfig;
  #journal: Journal;
  #history: HistoryTail;
  readonly #now: () => number;
  readonly #log: (line: string) => void;
  readonly #retryBaseMs: number | undefined;

  constructor(config: DaemonConfig, options: AlertEngineOptions = {}) {
    this.#config = config;
    this.#journal = new Journal(config.journalPath);
    this.#history = this.#historyTail(config);
    this.#now = options.now ?? Date.now;
    this.#log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.#retryBaseMs = options.retryBaseMs;
  }

  configured(config: DaemonConfig): void {
    this.#config = config;
    this.#journal = new Journal(config.journalPath);
    this.#history = this.#historyTail(config);
  }

  /** Per job, the newest successful backups: as many as its alerts' longest trend window reads. */
  #historyTail(config: DaemonConfig): HistoryTail {
    const need = Math.max(1, ...[...config.alerts.values()].map((a) => a.trend.last + a.trend.baseline));
    return new HistoryTail({
      path: config.monitor.history.path,
      maxPerGroup: need,
      group: (r) => (r.kind === 'backup' && r.ok && r.job !== undefined && config.jobs.has(r.job) ? r.job : undefined),
    });
  }

  #alertsOf(job: JobConfig): AlertConfig[] {
    return job.alerts.map((name) => this.#config.alerts.get(name)).filter((a): a is AlertConfig => a !== undefined);
  }

  /** Healthchecks `/start` pings for a backup that starts. */
  async runStarted(job: JobConfig, kind: TaskKind, run: string): Promise<void> {
    if (kind !== 'backup') return;
    await Promise.all(this.#alertsOf(job).filter((a) => a.healthchecks).map(async (a) => {
      this.#recordDelivery(a.name, run, await ping(a.healthchecks!, 'start', `job ${job.name}: run ${run} started`, a.timeoutMs));
    }));
  }

  /** After a run: success or `/fail` pings, then every condition of the job's alerts. */
  async runEnded(job: JobConfig, end: RunEnd): Promise<void> {
    if (end.kind === 'backup') {
      const text = end.status === 'ok' ? `job ${job.name}: ok in ${seconds(end.durationMs)}` : `job ${job.name}: ${end.status}: ${end.error?.code ?? ''} ${end.error?.message ?? ''}`;
      await Promise.all(this.#alertsOf(job).filter((a) => a.healthchecks).map(async (a) => {
        this.#recordDelivery(a.name, end.run, await ping(a.healthchecks!, end.status === 'ok' ? 'success' : 'fail', text, a.timeoutMs));
      }));
    }
    await this.evaluate([job], ['failure', 'verify', 'target', 'trend', 'silence']);
  }

  /** A daemon tick: silence is checked whether a job ran or not. */
  async tick(): Promise<void> {
    await this.evaluate([...this.#config.jobs.values()], ['silence']);
  }

  /** Evaluates `conditions` for `jobs` and sends what changed (or is due to repeat). Returns the alerts sent. */
  async evaluate(jobs: JobConfig[], conditions: AlertCondition[]): Promise<Alert[]> {
    const release = await takeAlertLock(this.#config.journalPath);
    if (!release) {
      this.#log(`scriptorium alert: another process kept ${alertLockPath(this.#config.journalPath)} for ${ALERT_LOCK_WAIT_MS / 1000} s; conditions are checked again on the next tick`);
      return [];
    }
    const decided: Array<{ alert: AlertConfig; a: Alert; deliver: boolean }> = [];
    try {
      // Read under the lock: what another process decided a moment ago is seen here.
      const entries = this.#journal.read();
      const states = alertStates(entries);
      const now = this.#now();
      let historyRead = false;
      for (const job of jobs) {
        const alerts = this.#alertsOf(job);
        if (alerts.length === 0) continue;
        for (const alert of alerts) {
          for (const condition of conditions) {
            if (!alert.on.includes(condition)) continue;
            if (condition === 'silence' && alert.silenceAfterMs === undefined) continue;
            const prev = states.get(stateKey(alert.name, job.name, condition));
            if (condition === 'trend' && !historyRead) {
              this.#history.update();
              historyRead = true;
            }
            const verdict = this.#verdict(condition, job, alert, entries, condition === 'trend' ? this.#history.records(job.name) : [], prev?.active ?? false, now);
            let state: Alert['state'] | undefined;
            if (verdict.active && !prev?.active) state = 'firing';
            else if (verdict.active && prev && now - prev.lastSentAt >= alert.repeatEveryMs) state = 'repeat';
            else if (!verdict.active && prev?.active) state = 'resolved';
            if (!state) continue;
            const a = makeAlert({ alert: alert.name, job: job.name, condition, state, message: verdict.message, at: now, ...(verdict.details ? { details: verdict.details } : {}) });
            this.#record(a);
            decided.push({ alert, a, deliver: state !== 'resolved' || alert.resolved });
          }
        }
      }
    } finally {
      release();
    }
    for (const d of decided) await this.#deliver(d.alert, d.a, d.deliver);
    return decided.map((d) => d.a);
  }

  /** Sends a test alert through every channel of `name` (Healthchecks gets a `/log` ping). */
  async test(name: string): Promise<DeliveryResult[]> {
    const alert = this.#config.alerts.get(name);
    if (!alert) throw new Error(`no alert named ${name}`);
    const a = makeAlert({ alert: name, job: '(test)', condition: 'test', state: 'test', message: `a test alert from scriptorium alert test ${name}`, at: this.#now() });
    const results = await this.#send(alert, a, true);
    if (alert.healthchecks) {
      const r = await ping(alert.healthchecks, 'log', a.message, alert.timeoutMs);
      this.#recordDelivery(name, a.id, r);
      results.push(r);
    }
    return results;
  }

  async #send(alert: AlertConfig, a: Alert, deliver: boolean): Promise<DeliveryResult[]> {
    this.#record(a);
    return this.#deliver(alert, a, deliver);
  }

  /** Journals the alert (its state is what later evaluations read back) and logs it. */
  #record(a: Alert): void {
    this.#journal.append({ v: 1, t: 'alert', id: a.id, alert: a.alert, job: a.job, condition: a.condition, state: a.state, message: a.message, at: a.at });
    this.#log(`scriptorium alert ${a.alert}: ${a.title}: ${a.message}`);
  }

  async #deliver(alert: AlertConfig, a: Alert, deliver: boolean): Promise<DeliveryResult[]> {
    if (!deliver) return [];
    const results = await Promise.all([
      ...(alert.webhook ? [deliverWebhook(a, alert.webhook, this.#retryBaseMs)] : []),
      ...(alert.command ? [deliverCommand(a, alert.command, alert.timeoutMs)] : []),
    ]);
    for (const r of results) this.#recordDelivery(alert.name, a.id, r);
    return results;
  }

  /** Failures are recorded (and logged); successes are not, to keep the journal small. */
  #recordDelivery(alert: string, id: string, r: DeliveryResult): void {
    if (r.ok) return;
    this.#journal.append({ v: 1, t: 'delivery', id, alert, channel: r.channel, ok: false, attempts: r.attempts, ...(r.error ? { error: r.error } : {}), at: new Date(this.#now()).toISOString() });
    this.#log(`scriptorium alert ${alert}: ${r.channel} delivery failed after ${r.attempts} attempt(s): ${r.error ?? ''}`);
  }

  #verdict(condition: AlertCondition, job: JobConfig, alert: AlertConfig, entries: readonly JournalEntry[], history: readonly OperationRecord[], wasActive: boolean, now: number): Verdict {
    const ends = entries.filter((e): e is Extract<JournalEntry, { t: 'end' }> => e.t === 'end' && e.job === job.name && e.kind === 'backup');
    const last = ends.at(-1);
    switch (condition) {
      case 'failure': {
        const failed = last && last.status !== 'ok' && !last.steps.some((s) => s.step === 'verify' && !s.ok);
        if (!failed) return { active: false, message: last ? `job ${job.name} ran successfully again (${last.at})` : `job ${job.name}: no failed run` };
        const step = last.steps.find((s) => !s.ok)?.step;
        return { active: true, message: `job ${job.name} ${last.status === 'interrupted' ? 'was interrupted' : 'failed'}${step ? ` in its ${step} step` : ''}: ${last.error?.code ?? ''} ${last.error?.message ?? ''}`.trim(), details: { run: last.run, error: last.error } };
      }
      case 'verify': {
        const checked = [...ends].reverse().find((e) => e.steps.some((s) => s.step === 'verify'));
        const step = checked?.steps.find((s) => s.step === 'verify');
        if (!step || step.ok) return { active: false, message: `job ${job.name}: the repository verified without problems${checked ? ` (${checked.at})` : ''}` };
        return { active: true, message: `job ${job.name}: verifying ${job.repository} failed: ${step.error?.code ?? ''} ${step.error?.message ?? ''}`.trim(), details: { run: checked!.run, error: step.error } };
      }
      case 'target': {
        const ok = [...ends].reverse().find((e) => e.status === 'ok');
        const missed = ok?.missedTargets ?? [];
        if (missed.length === 0) return { active: false, message: `job ${job.name}: the last backup met its targets` };
        const text = missed.map((m) => `${m.target} measured ${Math.round(m.measured * 100) / 100}, limit ${m.limit}`).join('; ');
        return { active: true, message: `job ${job.name}: the last backup missed its targets: ${text}`, details: { run: ok!.run, missed } };
      }
      case 'trend': {
        const t = trendOf(history, alert.trend);
        if (!t) return { active: wasActive, message: `job ${job.name}: not enough runs to judge a trend` };
        const line = wasActive ? alert.trend.clearPercent : alert.trend.raisePercent;
        const active = t.percent > line && (wasActive || t.absoluteMs >= alert.trend.minDurationMs);
        const text = `the median of the last ${alert.trend.last} backups of ${job.name} is ${seconds(t.recentMs)}, ${Math.round(t.percent)}% ${t.percent >= 0 ? 'slower' : 'faster'} than the median ${seconds(t.baselineMs)} of the ${alert.trend.baseline} before`;
        return { active, message: active ? text : `${text} (back under the ${line}% line)`, details: { percent: Math.round(t.percent * 10) / 10, recentMs: t.recentMs, baselineMs: t.baselineMs } };
      }
      case 'silence': {
        const task = foldJournal(entries).tasks.get(job.name);
        const firstSeen = entries.find((e) => 'task' in e && e.task === job.name)?.at;
        const since = task?.lastOkAt ?? (firstSeen ? Date.parse(firstSeen) : now);
        const quiet = now - since;
        const window = alert.silenceAfterMs!;
        if (quiet <= window) return { active: false, message: `job ${job.name} has a successful backup again (${new Date(since).toISOString()})` };
        return {
          active: true,
          message: `job ${job.name} has had no successful backup for ${formatDurationSetting(Math.floor(quiet / 60_000) * 60_000 || 1000)} (silenceAfter ${formatDurationSetting(window)}); last success: ${task?.lastOkAt ? new Date(task.lastOkAt).toISOString() : 'never'}`,
          details: { lastSuccessAt: task?.lastOkAt ? new Date(task.lastOkAt).toISOString() : null },
        };
      }
    }
  }
}
