/**
 * The record the Monitor keeps of one finished operation, and its one-line JSON encoding in the
 * history file. Every line starts with `{"v":1,` so a reader can find the start of a record again
 * after a torn line.
 */
import type { OperationKind } from '../core/events.js';

/** What was measured for one finished (completed or failed) operation. */
export interface OperationRecord {
  /** Encoding version of the history line. */
  v: 1;
  /** Operation id, as emitted in its events (unique within the process that ran it). */
  id: string;
  kind: OperationKind;
  /** The job (scriptorium.config.json) the operation ran for, when the daemon or `scriptorium run` ran it. */
  job?: string;
  /** Where data came from and went to, passwords redacted. */
  source?: string;
  target?: string;
  format?: string;
  /** ISO 8601 start and end times. */
  startedAt: string;
  endedAt: string;
  durationMs: number;
  rows: number;
  bytesIn: number;
  bytesOut: number;
  /** `rows` per second of `durationMs` (at least one millisecond is assumed). */
  rowsPerSecond: number;
  /** MiB per second of the busier side, `max(bytesIn, bytesOut)`. */
  mbPerSecond: number;
  /**
   * Highest resident set size and V8 heap use seen while the operation was open, sampled by a timer
   * and at every progress event. They are the process's figures: operations running at the same time
   * in one process share them.
   */
  peakRssBytes: number;
  peakHeapUsedBytes: number;
  /** RSS when the operation started and when it ended: the process baseline around the peak. */
  startRssBytes: number;
  endRssBytes: number;
  /** How many memory samples the peaks were taken from. */
  samples: number;
  ok: boolean;
  /** Set when `ok` is false: the error's code (`E_...` or a Node `errno` code) and redacted message. */
  error?: { code: string; message: string };
  /** Free-form result details from the operation, dropped from history when they do not fit the line budget. */
  result?: Record<string, unknown>;
  /** Process that ran the operation. */
  pid: number;
}

/** Most bytes one history line may take (well under PIPE_BUF, so one `write` appends it whole). */
export const MAX_LINE_BYTES = 2048;

/** Every encoded record starts with this; readers resynchronise on it after a torn line. */
export const LINE_PREFIX = '{"v":1,';

// Longest strings kept (in characters) when a line must be shortened; halved until the line fits.
const LIMITS = { id: 80, job: 80, kind: 40, source: 300, target: 300, format: 40, code: 40, message: 400 } as const;

function clip(text: string, max: number): string {
  const keep = Math.max(1, Math.floor(max));
  return text.length <= keep ? text : `${text.slice(0, keep - 1)}…`;
}

type Fields = Omit<OperationRecord, 'v' | 'result'>;

function clipStrings(record: Fields, scale: number): Fields {
  const optional = (key: 'source' | 'target' | 'format') =>
    record[key] === undefined ? {} : { [key]: clip(record[key], LIMITS[key] * scale) };
  return {
    ...record,
    id: clip(record.id, LIMITS.id * scale),
    ...(record.job === undefined ? {} : { job: clip(record.job, LIMITS.job * scale) }),
    kind: clip(record.kind, LIMITS.kind * scale),
    ...optional('source'),
    ...optional('target'),
    ...optional('format'),
    ...(record.error
      ? { error: { code: clip(record.error.code, LIMITS.code * scale), message: clip(record.error.message, LIMITS.message * scale) } }
      : {}),
  };
}

const fits = (line: string) => Buffer.byteLength(line) < MAX_LINE_BYTES;

/**
 * Encodes a record as one JSON line ending in `\n`, at most {@link MAX_LINE_BYTES} bytes: when it would
 * be longer, `result` is dropped, then strings are clipped (marked with `…`) until it fits.
 */
export function encodeRecord(record: OperationRecord): string {
  // `v` first, so every line starts with LINE_PREFIX.
  const { v: _version, result, ...fields } = record;
  const line = JSON.stringify({ v: 1, ...fields, ...(result === undefined ? {} : { result }) });
  if (fits(line)) return `${line}\n`;
  for (let scale = 1; ; scale /= 2) {
    const shorter = JSON.stringify({ v: 1, ...clipStrings(fields, scale) });
    if (fits(shorter) || scale < 1 / 512) return `${shorter}\n`;
  }
}

function isRecord(value: unknown): value is OperationRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    r.v === 1 &&
    typeof r.id === 'string' &&
    typeof r.kind === 'string' &&
    typeof r.startedAt === 'string' &&
    typeof r.durationMs === 'number' &&
    typeof r.rows === 'number' &&
    typeof r.ok === 'boolean'
  );
}

function parse(text: string): OperationRecord | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Decodes one history line (without its `\n`). A line with garbage in front of a good record (a torn
 * write followed by the next append) yields the record, `torn: true` and the offset where the record
 * starts; a line with nothing readable yields `record: undefined` and `torn: true`.
 */
export function decodeRecordLine(line: string): { record?: OperationRecord; torn: boolean; start: number } {
  const record = parse(line);
  if (record) return { record, torn: false, start: 0 };
  for (let start = line.indexOf(LINE_PREFIX, 1); start > 0; start = line.indexOf(LINE_PREFIX, start + 1)) {
    const rest = parse(line.slice(start));
    if (rest) return { record: rest, torn: true, start };
  }
  return { torn: true, start: 0 };
}
