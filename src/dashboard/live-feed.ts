/**
 * The event stream behind GET /api/events: one poller for every client, running only while someone
 * listens. It reads the live progress folder every {@link LIVE_POLL_MS} (progress of the daemon's
 * jobs and of any CLI process writing to the same history) and the history's size every
 * {@link HISTORY_POLL_MS}; it emits `progress` for each operation whose live file changed, `ended`
 * when one disappears, and `record` for each new history record.
 */
import type { LiveOperation } from '../monitor/live-progress.js';
import type { DashboardData } from './dashboard-data.js';

export const LIVE_POLL_MS = 300;
export const HISTORY_POLL_MS = 1000;

type Listener = (event: string, payload: unknown) => void;

export class LiveFeed {
  readonly #data: DashboardData;
  readonly #listeners = new Set<Listener>();
  #live = new Map<string, LiveOperation>();
  #historyStamp = '';
  #recordSeq = 0;
  #timer: NodeJS.Timeout | undefined;
  #lastHistory = 0;
  #busy = false;

  constructor(data: DashboardData) {
    this.#data = data;
  }

  get listeners(): number {
    return this.#listeners.size;
  }

  /** Calls `listener` with every event until the returned function is called. */
  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    if (!this.#timer) this.#start();
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.stop();
    };
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #start(): void {
    try {
      this.#historyStamp = this.#data.historyStamp();
      this.#recordSeq = this.#data.recordSeq();
      this.#live = new Map(this.#data.live().map((l) => [l.started.id, l]));
    } catch {
      // Unreadable for now: the first poll sees everything as new.
    }
    if (this.#listeners.size === 0 || this.#timer) return;
    this.#timer = setInterval(() => void this.#poll(), LIVE_POLL_MS);
  }

  #emit(event: string, payload: unknown): void {
    for (const l of this.#listeners) {
      try {
        l(event, payload);
      } catch {
        this.#listeners.delete(l);
      }
    }
  }

  async #poll(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const now = new Map(this.#data.live().map((l) => [l.started.id, l]));
      for (const [id, op] of now) {
        const before = this.#live.get(id);
        if (!before || before.updated !== op.updated) this.#emit('progress', op);
      }
      for (const [id, op] of this.#live) if (!now.has(id)) this.#emit('ended', { id, kind: op.started.kind, job: op.started.job });
      this.#live = now;
      if (Date.now() - this.#lastHistory >= HISTORY_POLL_MS) {
        this.#lastHistory = Date.now();
        const stamp = this.#data.historyStamp();
        if (stamp !== this.#historyStamp) {
          this.#historyStamp = stamp;
          const { records, seq } = this.#data.recordsSince(this.#recordSeq);
          this.#recordSeq = seq;
          for (const r of records) this.#emit('record', r);
        }
      }
    } catch {
      // A file changed under us: the next poll reads it again.
    } finally {
      this.#busy = false;
    }
  }
}
