/**
 * What the dashboard shows, read from the files every scriptorium process writes: the history, the
 * daemon's journal, the live progress folder and the repositories.
 *
 * Bounded by design, so `serve` stays flat however long it runs: the history is read incrementally
 * into a window of its newest {@link HISTORY_WINDOW} records (history-tail.ts), the journal through one
 * reader that keeps a bounded window too (journal.ts), and the records new since a given point are kept
 * for the event stream only up to {@link RECENT_RECORDS}.
 */
import { statSync } from 'node:fs';
import type { DaemonConfig } from '../daemon/job-config.js';
import { jobStatuses, type JobStatus } from '../daemon/job-status.js';
import { Journal, type JournalEntry } from '../daemon/journal.js';
import { HistoryTail } from '../monitor/history-tail.js';
import { liveDirFor, readLive, type LiveOperation } from '../monitor/live-progress.js';
import type { OperationRecord } from '../monitor/operation-record.js';
import { targetsFor, type Targets } from '../monitor/targets.js';

/** How long a repository's snapshot list is reused. */
const SNAPSHOT_CACHE_MS = 5000;
/** Most history records the dashboard holds (the most GET /api/operations returns). */
export const HISTORY_WINDOW = 10_000;
/** Newest journal entries the dashboard holds besides the state: its list of alerts, deliveries and skips comes from them. */
export const EVENT_WINDOW = 500;
/** Most new records kept for the event stream between two of its polls. */
export const RECENT_RECORDS = 1000;

export class DashboardData {
  config: DaemonConfig;
  #history!: HistoryTail;
  #journal!: Journal;
  // Records new since the first read, numbered, for the event stream (bounded).
  #recent: Array<{ seq: number; record: OperationRecord }> = [];
  #seq = 0;
  readonly #snapshots = new Map<string, { at: number; value: Promise<unknown> }>();

  constructor(config: DaemonConfig) {
    this.config = config;
    this.#open(config);
  }

  setConfig(config: DaemonConfig): void {
    this.config = config;
    this.#open(config);
  }

  #open(config: DaemonConfig): void {
    this.#history = new HistoryTail({ path: config.monitor.history.path, maxPerGroup: HISTORY_WINDOW });
    this.#history.update();
    this.#journal = new Journal(config.journalPath, { windowEntries: EVENT_WINDOW });
    this.#recent = [];
  }

  /** Reads what the history gained; new records get a number for {@link recordsSince}. */
  #refresh(): void {
    for (const record of this.#history.update()) this.#recent.push({ seq: ++this.#seq, record });
    if (this.#recent.length > RECENT_RECORDS * 2) this.#recent = this.#recent.slice(-RECENT_RECORDS);
  }

  /** The number of the newest record seen: pass it to {@link recordsSince} later. */
  recordSeq(): number {
    this.#refresh();
    return this.#seq;
  }

  /** Records new since `seq` (at most {@link RECENT_RECORDS}), and the number to ask from next. */
  recordsSince(seq: number): { records: OperationRecord[]; seq: number } {
    this.#refresh();
    return { records: this.#recent.filter((r) => r.seq > seq).map((r) => r.record), seq: this.#seq };
  }

  get liveDir(): string {
    return liveDirFor(this.config.monitor.history.path);
  }

  /** The history's size and change time: a cheap "has it changed" for the event stream. */
  historyStamp(): string {
    try {
      const s = statSync(this.#history.path);
      return `${s.size}:${s.mtimeMs}:${s.ino}`;
    } catch {
      return 'none';
    }
  }

  /** Changes whenever the history window does (reads what was appended first): a cache key. */
  historyVersion(): number {
    this.#refresh();
    return this.#history.version;
  }

  /** The newest records (at most {@link HISTORY_WINDOW}), oldest first. */
  async records(): Promise<readonly OperationRecord[]> {
    this.#refresh();
    return this.#history.records();
  }

  async operations(filter: { limit: number; job?: string; kind?: string }): Promise<OperationRecord[]> {
    const all = await this.records();
    const out: OperationRecord[] = [];
    // From the newest back, so a small limit reads a small part of the window.
    for (let i = all.length - 1; i >= 0 && out.length < filter.limit; i--) {
      const r = all[i]!;
      if ((!filter.job || r.job === filter.job) && (!filter.kind || r.kind === filter.kind)) out.push(r);
    }
    return out.reverse();
  }

  journal(): JournalEntry[] {
    return this.#journal.read();
  }

  jobs(): Array<JobStatus & { targets: Targets }> {
    return jobStatuses(this.config, this.journal()).map((s) => ({ ...s, targets: targetsFor('backup', this.config.monitor.targets, this.config.jobs.get(s.name)?.targets) }));
  }

  /** Alerts, delivery failures and skipped slots, newest last. */
  events(limit: number): JournalEntry[] {
    return this.journal().filter((e) => e.t === 'alert' || e.t === 'delivery' || e.t === 'skip').slice(-limit);
  }

  live(): LiveOperation[] {
    return readLive(this.liveDir);
  }

  /** The snapshots of a job's repository (cached a few seconds), newest last. */
  snapshots(job: string): Promise<unknown> {
    const location = this.config.jobs.get(job)?.repository;
    if (!location) return Promise.resolve(undefined);
    const cached = this.#snapshots.get(location);
    if (cached && Date.now() - cached.at < SNAPSHOT_CACHE_MS) return cached.value;
    const value = import('../repository/index.js').then((r) => r.snapshots(location, { noLock: true }));
    value.catch(() => this.#snapshots.delete(location));
    this.#snapshots.set(location, { at: Date.now(), value });
    return value;
  }

  /** One snapshot's tables. */
  async snapshot(job: string, id: string): Promise<unknown> {
    const location = this.config.jobs.get(job)?.repository;
    if (!location) return undefined;
    const { Repository } = await import('../repository/index.js');
    const repo = await Repository.open(location);
    try {
      const ids = (await repo.snapshotIds()).filter((s) => s === id);
      if (ids.length !== 1) return undefined;
      const s = await repo.snapshot(ids[0]!);
      return { id: s.id, time: s.time, host: s.host, source: s.source, tags: s.tags, tables: s.tables.map((t) => ({ name: t.name, rows: t.rows, bytes: t.bytes, chunks: t.chunkCount })) };
    } finally {
      await repo.close();
    }
  }
}
