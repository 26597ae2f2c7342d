/**
 * What the dashboard shows, read from the files every scriptorium process writes: the history (cached
 * until the file changes), the daemon's journal, the live progress folder and the repositories.
 */
import { statSync } from 'node:fs';
import type { DaemonConfig } from '../daemon/job-config.js';
import { jobStatuses, type JobStatus } from '../daemon/job-status.js';
import { Journal, type JournalEntry } from '../daemon/journal.js';
import { HistoryStore } from '../monitor/history-store.js';
import { liveDirFor, readLive, type LiveOperation } from '../monitor/live-progress.js';
import type { OperationRecord } from '../monitor/operation-record.js';
import { targetsFor, type Targets } from '../monitor/targets.js';

/** How long a repository's snapshot list is reused. */
const SNAPSHOT_CACHE_MS = 5000;

export class DashboardData {
  config: DaemonConfig;
  #history: HistoryStore;
  #cache: { key: string; records: OperationRecord[] } | undefined;
  readonly #snapshots = new Map<string, { at: number; value: Promise<unknown> }>();

  constructor(config: DaemonConfig) {
    this.config = config;
    this.#history = new HistoryStore({ ...config.monitor.history, onError: () => {} });
  }

  setConfig(config: DaemonConfig): void {
    this.config = config;
    this.#history = new HistoryStore({ ...config.monitor.history, onError: () => {} });
    this.#cache = undefined;
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

  /** Every record, oldest first; parsed again only when the file changed. */
  async records(): Promise<OperationRecord[]> {
    const key = this.historyStamp();
    if (this.#cache?.key === key) return this.#cache.records;
    const { records } = await this.#history.read();
    this.#cache = { key, records };
    return records;
  }

  async operations(filter: { limit: number; job?: string; kind?: string }): Promise<OperationRecord[]> {
    let records = await this.records();
    if (filter.job) records = records.filter((r) => r.job === filter.job);
    if (filter.kind) records = records.filter((r) => r.kind === filter.kind);
    return records.slice(-filter.limit);
  }

  journal(): JournalEntry[] {
    return new Journal(this.config.journalPath).read();
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
