/**
 * The jobs, alerts and daemon settings of `scriptorium.config.json` (the monitor's `targets` and
 * `history` sections are parsed by `monitor/config.ts` from the same file):
 *
 * ```json
 * { "jobs": { "guests": { "source": "app.db", "repository": "/mnt/nas/backups", "schedule": "0 * * * *",
 *                         "retention": { "keepHourly": 24, "keepDaily": 7 }, "verify": { "readDataPercent": 10 },
 *                         "alerts": ["ops"] } },
 *   "alerts": { "ops": { "webhook": "http://127.0.0.1:9000/hook", "silenceAfter": "26h" } } }
 * ```
 *
 * Everything is checked before anything runs; a bad value is refused with `E_CONFIG` naming the file,
 * the line and the field. Unknown keys are errors too, so a typo never silently disables a setting.
 * docs/daemon.md is the reference of every field.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { Cron } from 'croner';
import { NotFoundError, ScriptoriumError } from '../core/errors.js';
import { CONFIG_FILE_NAME, parseConfig, type MonitorConfig } from '../monitor/config.js';
import { TARGET_NAMES, type TargetOverrides } from '../monitor/targets.js';
import type { RetentionPolicy } from '../repository/policy.js';
import { parseDuration } from './duration.js';
import { lineMap, pathKey, type JsonPath } from './json-lines.js';

/** When a task runs: a cron expression in a time zone, or a fixed interval. */
export type ScheduleSpec =
  | { kind: 'cron'; cron: string; timezone?: string }
  | { kind: 'every'; everyMs: number };

/** What happens to slots missed while the daemon was not running (or the machine slept). */
export type CatchUp = 'none' | 'once';

/** One job: a database backed up into a repository on a schedule. */
export interface JobConfig {
  name: string;
  /** Absolute path of the SQLite database. */
  source: string;
  /** Absolute path of the repository (or a URL, kept as written). */
  repository: string;
  schedule: ScheduleSpec;
  catchUp: CatchUp;
  /** Tags given to every snapshot, besides `job=<name>` which retention uses to find the job's snapshots. */
  tags: string[];
  /** Applied to the job's snapshots after each successful backup. */
  retention?: RetentionPolicy;
  /** When to prune the repository (a task of its own). */
  prune?: ScheduleSpec;
  verify: {
    /** Structure check after each backup (default true). */
    structure: boolean;
    /** Read this share of the packs after each backup, a different part each time. */
    readDataPercent?: number;
    /** Add a drill restore when the last successful one is older than this. */
    drillEveryMs?: number;
  };
  /** Target overrides for this job's backups. */
  targets: TargetOverrides;
  /** Names of the alerts that watch this job. */
  alerts: string[];
  /** How long a step waits for a conflicting repository lock. */
  lockWaitMs: number;
  /** A run still going after this long is aborted (default: none). */
  timeoutMs?: number;
}

/** The conditions an alert can fire on. */
export const ALERT_CONDITIONS = ['failure', 'target', 'trend', 'silence', 'verify'] as const;
export type AlertCondition = (typeof ALERT_CONDITIONS)[number];

export type WebhookFormat = 'json' | 'slack' | 'ntfy';

export interface WebhookConfig {
  url: string;
  format: WebhookFormat;
  /** HMAC-SHA256 key: the body's signature goes in `X-Scriptorium-Signature: sha256=<hex>`. */
  secret?: string;
  timeoutMs: number;
  retries: number;
}

/** How a slowdown is judged: the median of the last `last` runs against the median of the `baseline` before. */
export interface TrendConfig {
  last: number;
  baseline: number;
  /** Fires when the duration is up (or the throughput down) by more than this many percent. */
  raisePercent: number;
  /** Clears only once the change is below this many percent (hysteresis). */
  clearPercent: number;
  /** Changes smaller than this many milliseconds are never a trend (tiny jobs jitter by whole factors). */
  minDurationMs: number;
}

export interface AlertConfig {
  name: string;
  webhook?: WebhookConfig;
  /** A Healthchecks-style check URL: `/start` when a run starts, the URL on success, `/fail` on failure. */
  healthchecks?: string;
  /** Run through `/bin/sh -c`, the alert in its environment and as JSON on stdin. */
  command?: string;
  /** Conditions this alert fires on (default: all). */
  on: AlertCondition[];
  /** Fire when a job has had no successful backup for this long. */
  silenceAfterMs?: number;
  /** A condition that persists is sent again after this long (default 6h). */
  repeatEveryMs: number;
  /** Send a "resolved" message when a condition clears (default true). */
  resolved: boolean;
  trend: TrendConfig;
  timeoutMs: number;
}

/** The dashboard's settings. */
export interface DashboardConfig {
  /** Extra Host header names the dashboard answers to (besides localhost, 127.0.0.1, [::1]). */
  hosts: string[];
}

/** Everything `scriptorium daemon` needs, checked and with defaults filled in. */
export interface DaemonConfig {
  /** The config file. */
  file: string;
  /** Its folder: relative paths were resolved against it. */
  dir: string;
  jobs: Map<string, JobConfig>;
  alerts: Map<string, AlertConfig>;
  monitor: MonitorConfig;
  /** The daemon's journal of runs, skips and alerts (beside the history). */
  journalPath: string;
  /** How long SIGTERM/SIGINT waits for running jobs before aborting them. */
  graceMs: number;
  dashboard: DashboardConfig;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const DEFAULT_REPEAT_MS = 6 * 3_600_000;
const DEFAULT_GRACE_MS = 30_000;
const HINT = 'see docs/daemon.md for every field of scriptorium.config.json';

type Raw = Record<string, unknown>;

const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
};

/** Builds errors that name the file, the line and the field. */
class Checker {
  readonly #file: string;
  readonly #lines: Map<string, number>;

  constructor(file: string, text: string) {
    this.#file = file;
    this.#lines = lineMap(text);
  }

  error(path: JsonPath, what: string): ScriptoriumError {
    let line: number | undefined;
    for (let n = path.length; n >= 0 && line === undefined; n--) line = this.#lines.get(pathKey(path.slice(0, n)));
    const field = path.map((p) => (typeof p === 'number' ? `[${p}]` : p)).join('.').replace(/\.\[/g, '[');
    return new ScriptoriumError('E_CONFIG', `config ${this.#file}${line ? ` line ${line}` : ''}: ${field || 'top level'}: ${what}`, { hint: HINT });
  }

  object(raw: unknown, path: JsonPath, known: readonly string[]): Raw {
    if (!isObject(raw)) throw this.error(path, `must be an object, got ${show(raw)}`);
    for (const key of Object.keys(raw)) {
      if (!known.includes(key)) throw this.error([...path, key], `is not a setting here (known: ${known.join(', ')})`);
    }
    return raw;
  }

  string(raw: unknown, path: JsonPath): string {
    if (typeof raw !== 'string' || raw.trim() === '') throw this.error(path, `must be a non-empty string, got ${show(raw)}`);
    if (raw.includes('\u0000')) throw this.error(path, 'must not contain a NUL character');
    return raw;
  }

  duration(raw: unknown, path: JsonPath): number {
    const ms = parseDuration(raw);
    if (ms === undefined) throw this.error(path, `must be a duration such as "2s", "15m", "26h" or "7d", got ${show(raw)}`);
    return ms;
  }

  whole(raw: unknown, path: JsonPath, min: number, max: number): number {
    if (!(Number.isSafeInteger(raw) && (raw as number) >= min && (raw as number) <= max)) {
      throw this.error(path, `must be a whole number from ${min} to ${max}, got ${show(raw)}`);
    }
    return raw as number;
  }

  boolean(raw: unknown, path: JsonPath): boolean {
    if (typeof raw !== 'boolean') throw this.error(path, `must be true or false, got ${show(raw)}`);
    return raw;
  }

  strings(raw: unknown, path: JsonPath): string[] {
    if (!Array.isArray(raw)) throw this.error(path, `must be an array of strings, got ${show(raw)}`);
    return raw.map((v, i) => this.string(v, [...path, i]));
  }

  url(raw: unknown, path: JsonPath): string {
    const text = this.string(raw, path);
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw this.error(path, `must be an http:// or https:// URL, got ${show(raw)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw this.error(path, `must be an http:// or https:// URL, got ${show(raw)}`);
    return url.toString();
  }

  timezone(raw: unknown, path: JsonPath): string {
    const zone = this.string(raw, path);
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: zone });
    } catch {
      throw this.error(path, `is not a time zone (an IANA name such as "Europe/Berlin" or "UTC"), got ${show(raw)}`);
    }
    return zone;
  }

  cron(raw: unknown, path: JsonPath, timezone: string | undefined): string {
    const cron = this.string(raw, path);
    try {
      new Cron(cron, { paused: true, ...(timezone ? { timezone } : {}) }).stop();
    } catch (err) {
      throw this.error(path, `is not a cron expression (minute hour day month weekday): ${(err as Error).message}`);
    }
    return cron;
  }
}

/** A `schedule`/`every` pair (with `timezone`) in `raw`, or undefined when neither is there. */
function parseSchedule(c: Checker, raw: Raw, path: JsonPath): ScheduleSpec | undefined {
  if (raw.schedule !== undefined && raw.every !== undefined) {
    throw c.error([...path, 'every'], 'give either "schedule" (cron) or "every" (an interval), not both');
  }
  const timezone = raw.timezone === undefined ? undefined : c.timezone(raw.timezone, [...path, 'timezone']);
  if (raw.every !== undefined) {
    if (timezone) throw c.error([...path, 'timezone'], 'applies to a cron "schedule" only, not to "every"');
    return { kind: 'every', everyMs: c.duration(raw.every, [...path, 'every']) };
  }
  if (raw.schedule === undefined) return undefined;
  return { kind: 'cron', cron: c.cron(raw.schedule, [...path, 'schedule'], timezone), ...(timezone ? { timezone } : {}) };
}

const RETENTION_COUNTS = ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly'] as const;

function parseRetention(c: Checker, raw: unknown, path: JsonPath): RetentionPolicy {
  const r = c.object(raw, path, [...RETENTION_COUNTS, 'keepTags', 'keepWithin']);
  const policy: RetentionPolicy = {};
  for (const key of RETENTION_COUNTS) if (r[key] !== undefined) policy[key] = c.whole(r[key], [...path, key], 0, 1_000_000);
  if (r.keepTags !== undefined) policy.keepTags = c.strings(r.keepTags, [...path, 'keepTags']);
  if (r.keepWithin !== undefined) policy.keepWithinMs = c.duration(r.keepWithin, [...path, 'keepWithin']);
  const keeps = RETENTION_COUNTS.some((k) => (policy[k] ?? 0) > 0) || (policy.keepTags?.length ?? 0) > 0 || policy.keepWithinMs !== undefined;
  if (!keeps) throw c.error(path, 'keeps nothing: give at least one of keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly, keepTags, keepWithin');
  return policy;
}

function parseLocation(text: string, dir: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(text) || isAbsolute(text) ? text : resolve(dir, text);
}

const JOB_KEYS = ['source', 'repository', 'schedule', 'timezone', 'every', 'catchUp', 'tags', 'retention', 'prune', 'verify', 'targets', 'alerts', 'lockWait', 'timeout'];

function parseJob(c: Checker, name: string, raw: unknown, dir: string, alerts: Map<string, AlertConfig>): JobConfig {
  const path = ['jobs', name];
  if (!NAME.test(name)) throw c.error(path, 'a job name is 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  const j = c.object(raw, path, JOB_KEYS);
  for (const key of ['source', 'repository'] as const) if (j[key] === undefined) throw c.error([...path, key], 'is required');
  const schedule = parseSchedule(c, j, path);
  if (!schedule) throw c.error([...path, 'schedule'], 'is required: a cron expression such as "0 * * * *", or "every": "15m" instead');
  let catchUp: CatchUp = 'once';
  if (j.catchUp !== undefined) {
    if (j.catchUp !== 'none' && j.catchUp !== 'once') throw c.error([...path, 'catchUp'], `must be "none" or "once", got ${show(j.catchUp)}`);
    catchUp = j.catchUp;
  }
  const tags = j.tags === undefined ? [] : c.strings(j.tags, [...path, 'tags']);
  for (const [i, tag] of tags.entries()) {
    if (tag.includes(',') || tag.startsWith('job=')) throw c.error([...path, 'tags', i], 'a tag must not contain "," nor start with "job=" (that tag is given by the daemon)');
  }
  let prune: ScheduleSpec | undefined;
  if (typeof j.prune === 'string') prune = { kind: 'every', everyMs: c.duration(j.prune, [...path, 'prune']) };
  else if (j.prune !== undefined) {
    const p = c.object(j.prune, [...path, 'prune'], ['schedule', 'every', 'timezone']);
    prune = parseSchedule(c, p, [...path, 'prune']);
    if (!prune) throw c.error([...path, 'prune'], 'needs "schedule" (cron) or "every"');
  }
  const verify: JobConfig['verify'] = { structure: true };
  if (j.verify !== undefined) {
    const v = c.object(j.verify, [...path, 'verify'], ['afterBackup', 'readDataPercent', 'drillEvery']);
    if (v.afterBackup !== undefined) verify.structure = c.boolean(v.afterBackup, [...path, 'verify', 'afterBackup']);
    if (v.readDataPercent !== undefined) verify.readDataPercent = c.whole(v.readDataPercent, [...path, 'verify', 'readDataPercent'], 1, 100);
    if (v.drillEvery !== undefined) verify.drillEveryMs = c.duration(v.drillEvery, [...path, 'verify', 'drillEvery']);
  }
  const targets: TargetOverrides = {};
  if (j.targets !== undefined) {
    const t = c.object(j.targets, [...path, 'targets'], TARGET_NAMES);
    for (const key of TARGET_NAMES) {
      const value = t[key];
      if (value === undefined) continue;
      if (value !== null && !(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
        throw c.error([...path, 'targets', key], `must be a positive number or null, got ${show(value)}`);
      }
      targets[key] = value;
    }
  }
  const alertNames = j.alerts === undefined ? [] : c.strings(j.alerts, [...path, 'alerts']);
  for (const [i, alert] of alertNames.entries()) {
    if (!alerts.has(alert)) throw c.error([...path, 'alerts', i], `names no alert in "alerts" (defined: ${[...alerts.keys()].join(', ') || 'none'})`);
  }
  return {
    name,
    source: resolve(dir, c.string(j.source, [...path, 'source'])),
    repository: parseLocation(c.string(j.repository, [...path, 'repository']), dir),
    schedule,
    catchUp,
    tags,
    ...(j.retention === undefined ? {} : { retention: parseRetention(c, j.retention, [...path, 'retention']) }),
    ...(prune ? { prune } : {}),
    verify,
    targets,
    alerts: alertNames,
    lockWaitMs: j.lockWait === undefined ? 60_000 : c.duration(j.lockWait, [...path, 'lockWait']),
    ...(j.timeout === undefined ? {} : { timeoutMs: c.duration(j.timeout, [...path, 'timeout']) }),
  };
}

const ALERT_KEYS = ['webhook', 'healthchecks', 'command', 'on', 'silenceAfter', 'repeatEvery', 'resolved', 'trend', 'timeout'];

function parseWebhook(c: Checker, raw: unknown, path: JsonPath): WebhookConfig {
  if (typeof raw === 'string') return { url: c.url(raw, path), format: 'json', timeoutMs: 10_000, retries: 3 };
  const w = c.object(raw, path, ['url', 'format', 'secret', 'secretEnv', 'timeout', 'retries']);
  if (w.url === undefined) throw c.error([...path, 'url'], 'is required');
  let format: WebhookFormat = 'json';
  if (w.format !== undefined) {
    if (w.format !== 'json' && w.format !== 'slack' && w.format !== 'ntfy') throw c.error([...path, 'format'], `must be "json", "slack" or "ntfy", got ${show(w.format)}`);
    format = w.format;
  }
  if (w.secret !== undefined && w.secretEnv !== undefined) throw c.error([...path, 'secretEnv'], 'give either "secret" or "secretEnv", not both');
  let secret: string | undefined;
  if (w.secret !== undefined) secret = c.string(w.secret, [...path, 'secret']);
  if (w.secretEnv !== undefined) {
    const name = c.string(w.secretEnv, [...path, 'secretEnv']);
    secret = process.env[name];
    if (!secret) throw c.error([...path, 'secretEnv'], `the environment variable ${name} is not set`);
  }
  return {
    url: c.url(w.url, [...path, 'url']),
    format,
    ...(secret === undefined ? {} : { secret }),
    timeoutMs: w.timeout === undefined ? 10_000 : c.duration(w.timeout, [...path, 'timeout']),
    retries: w.retries === undefined ? 3 : c.whole(w.retries, [...path, 'retries'], 0, 10),
  };
}

function parseAlert(c: Checker, name: string, raw: unknown): AlertConfig {
  const path = ['alerts', name];
  if (!NAME.test(name)) throw c.error(path, 'an alert name is 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  const a = c.object(raw, path, ALERT_KEYS);
  if (a.webhook === undefined && a.healthchecks === undefined && a.command === undefined) {
    throw c.error(path, 'needs at least one of "webhook", "healthchecks" or "command"');
  }
  let on: AlertCondition[] = [...ALERT_CONDITIONS];
  if (a.on !== undefined) {
    on = c.strings(a.on, [...path, 'on']).map((v, i) => {
      if (!(ALERT_CONDITIONS as readonly string[]).includes(v)) throw c.error([...path, 'on', i], `must be one of ${ALERT_CONDITIONS.join(', ')}, got ${show(v)}`);
      return v as AlertCondition;
    });
  }
  const trend: TrendConfig = { last: 3, baseline: 10, raisePercent: 50, clearPercent: 20, minDurationMs: 1000 };
  if (a.trend !== undefined) {
    const t = c.object(a.trend, [...path, 'trend'], ['last', 'baseline', 'raisePercent', 'clearPercent', 'minDuration']);
    if (t.last !== undefined) trend.last = c.whole(t.last, [...path, 'trend', 'last'], 1, 100);
    if (t.baseline !== undefined) trend.baseline = c.whole(t.baseline, [...path, 'trend', 'baseline'], 2, 1000);
    if (t.raisePercent !== undefined) trend.raisePercent = c.whole(t.raisePercent, [...path, 'trend', 'raisePercent'], 1, 10_000);
    if (t.clearPercent !== undefined) trend.clearPercent = c.whole(t.clearPercent, [...path, 'trend', 'clearPercent'], 0, 10_000);
    if (t.minDuration !== undefined) trend.minDurationMs = c.duration(t.minDuration, [...path, 'trend', 'minDuration']);
    if (trend.clearPercent >= trend.raisePercent) throw c.error([...path, 'trend', 'clearPercent'], `must be below raisePercent (${trend.raisePercent}) so a trend clears only well below the line it fired at`);
  }
  return {
    name,
    ...(a.webhook === undefined ? {} : { webhook: parseWebhook(c, a.webhook, [...path, 'webhook']) }),
    ...(a.healthchecks === undefined ? {} : { healthchecks: c.url(a.healthchecks, [...path, 'healthchecks']).replace(/\/+$/, '') }),
    ...(a.command === undefined ? {} : { command: c.string(a.command, [...path, 'command']) }),
    on,
    ...(a.silenceAfter === undefined ? {} : { silenceAfterMs: c.duration(a.silenceAfter, [...path, 'silenceAfter']) }),
    repeatEveryMs: a.repeatEvery === undefined ? DEFAULT_REPEAT_MS : c.duration(a.repeatEvery, [...path, 'repeatEvery']),
    resolved: a.resolved === undefined ? true : c.boolean(a.resolved, [...path, 'resolved']),
    trend,
    timeoutMs: a.timeout === undefined ? 30_000 : c.duration(a.timeout, [...path, 'timeout']),
  };
}

const TOP_KEYS = ['jobs', 'alerts', 'daemon', 'dashboard', 'targets', 'history'];

/**
 * Checks the text of a config file and returns the daemon's settings. `file` names it in errors and its
 * folder is where relative paths start.
 *
 * @throws ScriptoriumError `E_CONFIG` naming the line and the field of the first bad value.
 */
export function parseDaemonConfig(text: string, file: string): DaemonConfig {
  let content: unknown;
  try {
    content = JSON.parse(text);
  } catch (err) {
    throw new ScriptoriumError('E_CONFIG', `config ${file}: not valid JSON: ${(err as Error).message}`, { hint: HINT, cause: err });
  }
  const c = new Checker(file, text);
  const top = c.object(content, [], TOP_KEYS);
  const dir = dirname(file);
  const monitor = parseConfig({ ...(top.targets === undefined ? {} : { targets: top.targets }), ...(top.history === undefined ? {} : { history: top.history }) }, file, dir);
  const alerts = new Map<string, AlertConfig>();
  if (top.alerts !== undefined) {
    for (const [name, raw] of Object.entries(c.object(top.alerts, ['alerts'], Object.keys(top.alerts as Raw)))) alerts.set(name, parseAlert(c, name, raw));
  }
  const jobs = new Map<string, JobConfig>();
  if (top.jobs !== undefined) {
    for (const [name, raw] of Object.entries(c.object(top.jobs, ['jobs'], Object.keys(top.jobs as Raw)))) jobs.set(name, parseJob(c, name, raw, dir, alerts));
  }
  let graceMs = DEFAULT_GRACE_MS;
  if (top.daemon !== undefined) {
    const d = c.object(top.daemon, ['daemon'], ['grace']);
    if (d.grace !== undefined) graceMs = c.duration(d.grace, ['daemon', 'grace']);
  }
  const dashboard: DashboardConfig = { hosts: [] };
  if (top.dashboard !== undefined) {
    const d = c.object(top.dashboard, ['dashboard'], ['hosts']);
    if (d.hosts !== undefined) dashboard.hosts = c.strings(d.hosts, ['dashboard', 'hosts']).map((h) => h.toLowerCase());
  }
  return { file, dir, jobs, alerts, monitor, journalPath: join(dirname(monitor.history.path), '.scriptorium-daemon.jsonl'), graceMs, dashboard };
}

/**
 * Reads and checks the config: `path`, else `scriptorium.config.json` in `cwd`.
 *
 * @throws NotFoundError when the file does not exist; ScriptoriumError `E_CONFIG` when it is not valid.
 */
export function loadDaemonConfig(path: string | undefined, cwd: string = process.cwd()): DaemonConfig {
  const file = resolve(cwd, path ?? CONFIG_FILE_NAME);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(`config: ${file} does not exist`, { hint: `create ${CONFIG_FILE_NAME} (see docs/daemon.md) or pass --config FILE`, cause: err });
    }
    throw new ScriptoriumError('E_IO', `config: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseDaemonConfig(text, file);
}
