/**
 * The handle {@link Monitor.start} returns: it turns progress, completion and failure reports into the
 * same events a library operation would emit, so both kinds of operation are measured alike.
 */
import { performance } from 'node:perf_hooks';
import { isScriptoriumError } from '../core/errors.js';
import type { OperationEvent, OperationKind, Phase } from '../core/events.js';
import type { OperationRecord } from './operation-record.js';
import { redact } from './redact.js';

/** What an operation is, given when it starts. */
export interface StartOptions {
  kind: OperationKind;
  /** Where data comes from and goes to; passwords are redacted before they are emitted or recorded. */
  source?: string;
  target?: string;
  format?: string;
  totalRows?: number;
  tables?: number;
  /** Operation id (default: a random UUID). */
  id?: string;
}

/** Work done so far. Counts are totals for the whole operation, not increments. */
export interface ProgressUpdate {
  rowsDone: number;
  rowsTotal?: number;
  /** Default: the last value reported (0 at first). */
  bytesIn?: number;
  bytesOut?: number;
  /** Default `'rows'`. */
  phase?: Phase;
  table?: string;
}

/** Final figures; each defaults to the last progress report. */
export interface CompleteDetails {
  rows?: number;
  bytesIn?: number;
  bytesOut?: number;
  result?: Record<string, unknown>;
}

/** The stable code of an error: a ScriptoriumError's code, a Node error's `code`, else `E_INTERNAL`. */
export function errorCode(err: unknown): string {
  if (isScriptoriumError(err)) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code !== '' ? code : 'E_INTERNAL';
}

const count = (value: number | undefined, fallback: number, name: string): number => {
  if (value === undefined) return fallback;
  if (!(Number.isFinite(value) && value >= 0)) throw new TypeError(`operation: ${name} must be a number ≥ 0, got ${value}`);
  return value;
};

/** One running operation. After `complete` or `fail`, further calls do nothing (the first end wins). */
export class MonitoredOperation {
  readonly id: string;
  readonly kind: OperationKind;
  readonly #emit: (event: OperationEvent) => OperationRecord | undefined;
  readonly #startClock = performance.now();
  readonly #totalRows: number | undefined;
  #rows = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #record: OperationRecord | undefined;

  /** @internal Created by {@link Monitor.start}, which emits the started event through `emit`. */
  constructor(id: string, options: StartOptions, emit: (event: OperationEvent) => OperationRecord | undefined) {
    this.id = id;
    this.kind = options.kind;
    this.#emit = emit;
    this.#totalRows = options.totalRows;
    emit({
      type: 'started',
      id,
      kind: options.kind,
      time: Date.now(),
      ...(options.source === undefined ? {} : { source: redact(options.source) }),
      ...(options.target === undefined ? {} : { target: redact(options.target) }),
      ...(options.format === undefined ? {} : { format: options.format }),
      ...(options.totalRows === undefined ? {} : { totalRows: options.totalRows }),
      ...(options.tables === undefined ? {} : { tables: options.tables }),
    });
  }

  /** True once `complete` or `fail` was called. */
  get finished(): boolean {
    return this.#record !== undefined;
  }

  /**
   * Reports progress (emits `progress` and samples memory).
   *
   * @throws TypeError when a count is negative or not a number.
   */
  progress(update: ProgressUpdate): void {
    if (this.#record) return;
    this.#rows = count(update.rowsDone, this.#rows, 'rowsDone');
    this.#bytesIn = count(update.bytesIn, this.#bytesIn, 'bytesIn');
    this.#bytesOut = count(update.bytesOut, this.#bytesOut, 'bytesOut');
    const seconds = Math.max(performance.now() - this.#startClock, 1) / 1000;
    const rowsPerSecond = this.#rows / seconds;
    const rowsTotal = update.rowsTotal ?? this.#totalRows;
    this.#emit({
      type: 'progress',
      id: this.id,
      kind: this.kind,
      time: Date.now(),
      phase: update.phase ?? 'rows',
      ...(update.table === undefined ? {} : { table: update.table }),
      rowsDone: this.#rows,
      ...(rowsTotal === undefined ? {} : { rowsTotal }),
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      rowsPerSecond,
      ...(rowsTotal === undefined || rowsPerSecond === 0
        ? {}
        : { etaSeconds: Math.max(0, rowsTotal - this.#rows) / rowsPerSecond }),
    });
  }

  /** Ends the operation successfully (emits `completed`) and returns its record. */
  complete(details: CompleteDetails = {}): OperationRecord {
    if (this.#record) return this.#record;
    return this.#end({
      type: 'completed',
      id: this.id,
      kind: this.kind,
      time: Date.now(),
      rows: count(details.rows, this.#rows, 'rows'),
      bytesIn: count(details.bytesIn, this.#bytesIn, 'bytesIn'),
      bytesOut: count(details.bytesOut, this.#bytesOut, 'bytesOut'),
      durationMs: performance.now() - this.#startClock,
      ...(details.result === undefined ? {} : { result: details.result }),
    });
  }

  /** Ends the operation as failed with `err` (emits `failed`, message redacted) and returns its record. */
  fail(err: unknown): OperationRecord {
    if (this.#record) return this.#record;
    return this.#end({
      type: 'failed',
      id: this.id,
      kind: this.kind,
      time: Date.now(),
      code: errorCode(err),
      message: redact(err instanceof Error ? err.message : String(err)),
      durationMs: performance.now() - this.#startClock,
    });
  }

  #end(event: OperationEvent): OperationRecord {
    const record = this.#emit(event);
    if (!record) throw new TypeError(`operation ${this.id}: the monitor is closed`);
    this.#record = record;
    return record;
  }
}
