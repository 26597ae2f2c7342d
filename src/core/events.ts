/**
 * Progress events. Every long operation (export, import, backup, restore, verify, ...) reports through
 * an `onEvent` callback with these shapes; the Monitor, the CLI progress bar and the dashboard all
 * consume the same stream.
 */

export type OperationKind = 'export' | 'import' | 'backup' | 'restore' | 'verify' | 'prune' | 'bench' | (string & {});

export type Phase = 'schema' | 'rows' | 'indexes' | 'verify' | 'swap' | 'done' | (string & {});

interface EventBase {
  /** Operation id, unique within the process. */
  id: string;
  kind: OperationKind;
  /** Milliseconds since the epoch. */
  time: number;
}

export interface StartedEvent extends EventBase {
  type: 'started';
  /** Where data comes from and goes to, passwords already redacted. */
  source?: string;
  target?: string;
  format?: string;
  /** Total rows expected, when known up front. */
  totalRows?: number;
  tables?: number;
  /** The scheduled job (scriptorium.config.json) the operation runs for, if any. */
  job?: string;
}

export interface ProgressEvent extends EventBase {
  type: 'progress';
  phase: Phase;
  table?: string;
  /** Rows done in the whole operation so far, and expected in all (when known). */
  rowsDone: number;
  rowsTotal?: number;
  /** Bytes read from the source side and written to the destination side so far. */
  bytesIn: number;
  bytesOut: number;
  /** Rows per second since the start, and the estimated seconds left (when the total is known). */
  rowsPerSecond: number;
  etaSeconds?: number;
}

export interface CompletedEvent extends EventBase {
  type: 'completed';
  rows: number;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  /** Free-form result details (output path, snapshot id, per-table figures...). */
  result?: Record<string, unknown>;
}

export interface FailedEvent extends EventBase {
  type: 'failed';
  code: string;
  message: string;
  durationMs: number;
}

/**
 * Something the user should know that is not a failure, such as a stale temporary file removed before
 * the work started. The CLI prints `message` on stderr.
 */
export interface NoticeEvent extends EventBase {
  type: 'notice';
  message: string;
  /** The file concerned, when there is one. */
  path?: string;
}

export type OperationEvent = StartedEvent | ProgressEvent | CompletedEvent | FailedEvent | NoticeEvent;

export type EventListener = (event: OperationEvent) => void;
