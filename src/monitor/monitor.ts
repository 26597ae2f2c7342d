/**
 * The performance monitor: follows operations through their events, measures each one (duration,
 * throughput, peak memory sampled while it runs), keeps a record of it, appends the record to the
 * history and passes every event on to listeners and event streams.
 */
import { randomUUID } from 'node:crypto';
import type { CompletedEvent, EventListener, FailedEvent, OperationEvent, OperationKind, StartedEvent } from '../core/events.js';
import type { MonitorConfig } from './config.js';
import { EventHub, type EventStreamOptions } from './event-hub.js';
import { HistoryStore } from './history-store.js';
import { MemorySampler, sampleMemory, type MemoryPeaks } from './memory-sampler.js';
import { MonitoredOperation, type StartOptions } from './monitored-operation.js';
import type { OperationRecord } from './operation-record.js';
import { redact } from './redact.js';
import { DEFAULT_TARGETS, meetsTargets, targetsFor, type TargetOverrides, type TargetTable, type TargetsResult } from './targets.js';

export interface MonitorOptions {
  /** Where finished operations are appended; without it records are kept in memory only. */
  history?: HistoryStore;
  /** The whole targets table used by {@link Monitor.check} (default {@link DEFAULT_TARGETS}, or a config's `targets`). */
  targets?: TargetTable;
  /** Memory sampling period while an operation is open (default 75 ms). */
  sampleIntervalMs?: number;
  /** Finished records kept in memory for {@link Monitor.record} and {@link Monitor.recent} (default 100). */
  keep?: number;
  /** Receives failures that must not break the operation: a history write, a throwing listener (default: a process warning). */
  onError?: (err: unknown) => void;
}

/** An operation between its started event and its completed or failed event. */
interface OpenOperation {
  started: StartedEvent;
  rows: number;
  bytesIn: number;
  bytesOut: number;
  startRss: number;
  peaks: MemoryPeaks;
}

const MIB = 1024 * 1024;
const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

/** A JSON-safe, redacted copy of an operation's result (bigints become strings); undefined if it cannot be copied. */
function cleanResult(result: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (result === undefined) return undefined;
  try {
    const json = JSON.stringify(result, (_key, value: unknown) =>
      typeof value === 'bigint' ? value.toString() : typeof value === 'string' ? redact(value) : value,
    );
    return json === undefined ? undefined : (JSON.parse(json) as Record<string, unknown>);
  } catch {
    return undefined;
  }
}

/**
 * Measures operations and keeps their history. Feed it events either by passing
 * {@link Monitor.listener} as an operation's `onEvent`, or through the explicit {@link Monitor.start} API.
 *
 * @example
 * const monitor = Monitor.fromConfig(loadConfig());
 * await exportDatabase({ source, output, onEvent: monitor.listener });
 *
 * const op = monitor.start({ kind: 'backup', source: 'app.db', target: 's3://bucket/repo' });
 * op.progress({ rowsDone: 5000, bytesIn: 1 << 20, bytesOut: 400_000 });
 * const record = op.complete({ rows: 10_000 });
 * console.log(formatTargetsLine(monitor.check(record)));
 */
export class Monitor {
  /** Targets per kind used by {@link Monitor.check}. */
  readonly targets: TargetTable;
  /** The history store finished operations are appended to, if any. */
  readonly history: HistoryStore | undefined;
  /** An `onEvent` callback for library operations: every event it receives is measured and passed on. */
  readonly listener: EventListener = (event) => void this.#ingest(event);

  readonly #open = new Map<string, OpenOperation>();
  readonly #finished = new Map<string, OperationRecord>();
  readonly #keep: number;
  readonly #onError: (err: unknown) => void;
  readonly #hub: EventHub;
  readonly #sampler: MemorySampler;
  #closed = false;

  constructor(options: MonitorOptions = {}) {
    this.targets = options.targets ?? DEFAULT_TARGETS;
    this.history = options.history;
    this.#keep = options.keep ?? 100;
    this.#onError = options.onError ?? ((err) => process.emitWarning(`scriptorium monitor: ${String(err)}`));
    this.#hub = new EventHub(this.#onError);
    this.#sampler = new MemorySampler(options.sampleIntervalMs ?? 75);
  }

  /** A monitor with the config's targets and history file. */
  static fromConfig(config: MonitorConfig, options: Omit<MonitorOptions, 'targets' | 'history'> = {}): Monitor {
    const history = new HistoryStore({ ...config.history, onError: options.onError });
    return new Monitor({ ...options, targets: config.targets, history });
  }

  /**
   * Starts an operation and returns the handle that reports its progress and its end. Emits `started`.
   *
   * @throws TypeError when the monitor is closed or `kind` is missing.
   */
  start(options: StartOptions): MonitoredOperation {
    if (this.#closed) throw new TypeError('monitor.start: the monitor is closed');
    if (typeof options?.kind !== 'string' || options.kind === '') {
      throw new TypeError('monitor.start: options.kind must be a non-empty string');
    }
    const id = options.id ?? randomUUID();
    if (this.#open.has(id) || this.#finished.has(id)) throw new TypeError(`monitor.start: operation id ${id} is already used`);
    return new MonitoredOperation(id, options, (event) => this.#ingest(event));
  }

  /** Calls `listener` with every event from now on; returns the function that unsubscribes it. */
  on(listener: EventListener): () => void {
    return this.#hub.on(listener);
  }

  /**
   * Every event from now on, as an async iterable. It ends when `options.signal` fires (at once) or
   * when the monitor closes (after the events already queued). Slow readers never slow operations down:
   * see {@link EventStreamOptions.maxBuffered}.
   *
   * @example
   * for await (const event of monitor.events({ signal })) console.log(event.type, event.id);
   */
  events(options: EventStreamOptions = {}): AsyncIterableIterator<OperationEvent> {
    return this.#hub.stream(options);
  }

  /** The record of a finished operation, while it is among the last `keep` finished. */
  record(id: string): OperationRecord | undefined {
    return this.#finished.get(id);
  }

  /** The last `keep` finished records, oldest first. */
  recent(): OperationRecord[] {
    return [...this.#finished.values()];
  }

  /** Checks a record against this monitor's targets for its kind, with optional per-call overrides. */
  check(record: OperationRecord, overrides?: TargetOverrides): TargetsResult {
    return meetsTargets(record, targetsFor(record.kind, this.targets, overrides));
  }

  /**
   * Stops sampling, records still-open operations as failed (`E_ABORTED`), ends every event stream and
   * drops every listener. Later events are ignored. Calling it again does nothing.
   */
  close(): void {
    if (this.#closed) return;
    for (const op of [...this.#open.values()]) {
      const { id, kind } = op.started;
      const time = Date.now();
      this.#ingest({
        type: 'failed', id, kind, time, code: 'E_ABORTED',
        message: 'the monitor was closed before the operation ended', durationMs: time - op.started.time,
      });
    }
    this.#closed = true;
    this.#sampler.stop();
    this.#hub.close();
  }

  /** Measures one event, records the operation if it ended, and passes the event on. */
  #ingest(event: OperationEvent): OperationRecord | undefined {
    if (this.#closed) return typeof event?.id === 'string' ? this.#finished.get(event.id) : undefined;
    if (typeof event?.id !== 'string' || typeof event.type !== 'string') {
      this.#onError(new TypeError(`monitor: ignored an event without id or type: ${JSON.stringify(event)}`));
      return undefined;
    }
    let record: OperationRecord | undefined;
    const op = this.#open.get(event.id);
    switch (event.type) {
      case 'started':
        if (!op && !this.#finished.has(event.id)) this.#open.set(event.id, this.#opened(event));
        break;
      case 'progress':
        if (op) {
          op.rows = event.rowsDone;
          op.bytesIn = event.bytesIn;
          op.bytesOut = event.bytesOut;
          this.#sampler.sampleNow();
        }
        break;
      case 'completed':
      case 'failed':
        if (op || !this.#finished.has(event.id)) record = this.#close(op ?? this.#openedLate(event), event);
        break;
    }
    this.#hub.emit(event);
    return record ?? this.#finished.get(event.id);
  }

  #opened(started: StartedEvent): OpenOperation {
    const peaks = this.#sampler.track();
    return { started, rows: 0, bytesIn: 0, bytesOut: 0, startRss: peaks.peakRss, peaks };
  }

  /** An operation whose started event was not seen: it is taken to have begun `durationMs` before its end. */
  #openedLate(end: CompletedEvent | FailedEvent): OpenOperation {
    return this.#opened({ type: 'started', id: end.id, kind: end.kind, time: end.time - end.durationMs });
  }

  #close(op: OpenOperation, end: CompletedEvent | FailedEvent): OperationRecord {
    const endRss = op.peaks.observe(sampleMemory()).rss;
    this.#sampler.untrack(op.peaks);
    this.#open.delete(end.id);
    const record = this.#toRecord(op, end, endRss);
    this.#finished.set(record.id, record);
    if (this.#finished.size > this.#keep) this.#finished.delete(this.#finished.keys().next().value as string);
    try {
      this.history?.append(record);
    } catch (err) {
      this.#onError(err);
    }
    return record;
  }

  #toRecord(op: OpenOperation, end: CompletedEvent | FailedEvent, endRss: number): OperationRecord {
    const { started } = op;
    const rows = end.type === 'completed' ? end.rows : op.rows;
    const bytesIn = end.type === 'completed' ? end.bytesIn : op.bytesIn;
    const bytesOut = end.type === 'completed' ? end.bytesOut : op.bytesOut;
    const durationMs = Math.max(0, end.durationMs);
    const seconds = Math.max(durationMs, 1) / 1000;
    const result = end.type === 'completed' ? cleanResult(end.result) : undefined;
    return {
      v: 1,
      id: end.id,
      kind: (started.kind || end.kind) as OperationKind,
      ...(typeof started.job === 'string' ? { job: started.job } : {}),
      ...(started.source === undefined ? {} : { source: redact(started.source) }),
      ...(started.target === undefined ? {} : { target: redact(started.target) }),
      ...(started.format === undefined ? {} : { format: started.format }),
      startedAt: new Date(started.time).toISOString(),
      endedAt: new Date(end.time).toISOString(),
      durationMs: round(durationMs, 1),
      rows,
      bytesIn,
      bytesOut,
      rowsPerSecond: round(rows / seconds, 2),
      mbPerSecond: round(Math.max(bytesIn, bytesOut) / MIB / seconds, 3),
      peakRssBytes: op.peaks.peakRss,
      peakHeapUsedBytes: op.peaks.peakHeapUsed,
      startRssBytes: op.startRss,
      endRssBytes: endRss,
      samples: op.peaks.samples,
      ok: end.type === 'completed',
      ...(end.type === 'failed' ? { error: { code: end.code, message: redact(end.message) } } : {}),
      ...(result === undefined ? {} : { result }),
      pid: process.pid,
    };
  }
}
