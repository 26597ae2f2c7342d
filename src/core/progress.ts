import { randomBytes } from 'node:crypto';
import type { EventListener, OperationKind, Phase, StartedEvent } from './events.js';
import { isScriptoriumError } from './errors.js';

/** Emits one operation's events: started, throttled progress, completed or failed. */
export class ProgressReporter {
  readonly id: string;
  readonly startedAt = Date.now();
  rowsDone = 0;
  bytesIn = 0;
  bytesOut = 0;
  rowsTotal: number | undefined;
  #lastEmit = 0;
  readonly #kind: OperationKind;
  readonly #listener: EventListener | undefined;

  constructor(kind: OperationKind, listener: EventListener | undefined, readonly intervalMs = 100) {
    this.id = `${kind}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
    this.#kind = kind;
    this.#listener = listener;
  }

  started(details: Omit<StartedEvent, 'type' | 'id' | 'kind' | 'time'>): void {
    this.rowsTotal = details.totalRows;
    this.#listener?.({ type: 'started', id: this.id, kind: this.#kind, time: this.startedAt, ...details });
  }

  /** Reports progress, at most once per interval unless `force`. */
  progress(phase: Phase, table?: string, force = false): void {
    if (!this.#listener) return;
    const now = Date.now();
    if (!force && now - this.#lastEmit < this.intervalMs) return;
    this.#lastEmit = now;
    const seconds = Math.max((now - this.startedAt) / 1000, 1e-3);
    const rowsPerSecond = this.rowsDone / seconds;
    const left = this.rowsTotal !== undefined ? this.rowsTotal - this.rowsDone : undefined;
    this.#listener({
      type: 'progress',
      id: this.id,
      kind: this.#kind,
      time: now,
      phase,
      ...(table !== undefined ? { table } : {}),
      rowsDone: this.rowsDone,
      ...(this.rowsTotal !== undefined ? { rowsTotal: this.rowsTotal } : {}),
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      rowsPerSecond,
      ...(left !== undefined && rowsPerSecond > 0 ? { etaSeconds: Math.max(0, left / rowsPerSecond) } : {}),
    });
  }

  completed(result: Record<string, unknown>): void {
    this.#listener?.({
      type: 'completed',
      id: this.id,
      kind: this.#kind,
      time: Date.now(),
      rows: this.rowsDone,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      durationMs: Date.now() - this.startedAt,
      result,
    });
  }

  /** Tells the user something that is not a failure (a `notice` event). */
  notice(message: string, path?: string): void {
    this.#listener?.({ type: 'notice', id: this.id, kind: this.#kind, time: Date.now(), message, ...(path !== undefined ? { path } : {}) });
  }

  failed(err: unknown): void {
    this.#listener?.({
      type: 'failed',
      id: this.id,
      kind: this.#kind,
      time: Date.now(),
      code: isScriptoriumError(err) ? err.code : 'E_INTERNAL',
      message: err instanceof Error ? err.message : String(err),
      durationMs: Date.now() - this.startedAt,
    });
  }
}
