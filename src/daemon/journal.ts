/**
 * The daemon's journal: one JSON line per event of its schedule (a task enrolled, a run started or
 * ended, a slot skipped) and of its alerts (sent, resolved, a delivery that failed). It lives beside the
 * operation history and is what makes the schedule durable: the slots already handled, the runs left
 * open by a daemon that was killed and the alerts already sent are all read back from it, never kept
 * only in memory. Each line is appended with one `write` on an O_APPEND file (well under PIPE_BUF), so
 * the daemon and `scriptorium run` may append at the same time.
 *
 * The file only grows (about 300 bytes per run); reads take its last {@link READ_TAIL_BYTES} at most.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** Most bytes read from the end of the journal. */
export const READ_TAIL_BYTES = 16 << 20;
/** Most entries one reader keeps in memory (the newest). */
export const KEEP_ENTRIES = 100_000;
const MAX_TEXT = 500;

export type RunStatus = 'ok' | 'failed' | 'interrupted';
export type RunTrigger = 'schedule' | 'catch-up' | 'manual';
/** A task is a job's backup (named like the job) or its prune (`<job>#prune`). */
export type TaskKind = 'backup' | 'prune';

/** What one step of a run did (backup, retention, verify, prune). */
export interface StepResult {
  step: 'backup' | 'retention' | 'verify' | 'prune';
  ok: boolean;
  durationMs: number;
  /** The operation's id in the history, when it recorded one. */
  operation?: string;
  error?: { code: string; message: string };
  /** A short summary: snapshot id, snapshots removed, packs read, ... */
  detail?: Record<string, string | number | boolean>;
}

export type JournalEntry =
  | { v: 1; t: 'enrol'; task: string; job: string; at: string }
  | { v: 1; t: 'start'; run: string; task: string; job: string; kind: TaskKind; trigger: RunTrigger; slot?: string; missed?: number; at: string; pid: number; host: string }
  | { v: 1; t: 'end'; run: string; task: string; job: string; kind: TaskKind; status: RunStatus; at: string; durationMs: number; error?: { code: string; message: string }; steps: StepResult[]; readPart?: number; drilled?: boolean; missedTargets?: Array<{ target: string; limit: number; measured: number }> }
  | { v: 1; t: 'skip'; task: string; job: string; slot: string; reason: 'overlap' | 'missed'; at: string; count?: number }
  | { v: 1; t: 'alert'; id: string; alert: string; job: string; condition: string; state: 'firing' | 'repeat' | 'resolved' | 'test'; message: string; at: string }
  | { v: 1; t: 'delivery'; id: string; alert: string; channel: string; ok: boolean; attempts: number; error?: string; at: string };

const clip = (text: string) => (text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text);

/** Shortens free text (error messages) so every line stays small. */
export function clipEntry(entry: JournalEntry): JournalEntry {
  const e = { ...entry } as Record<string, unknown>;
  if (typeof e.message === 'string') e.message = clip(e.message);
  if (typeof e.error === 'string') e.error = clip(e.error);
  if (e.error && typeof e.error === 'object') {
    const err = e.error as { code: string; message: string };
    e.error = { code: clip(String(err.code)).slice(0, 40), message: clip(String(err.message)) };
  }
  if (Array.isArray(e.steps)) {
    e.steps = (e.steps as StepResult[]).map((s) => (s.error ? { ...s, error: { code: s.error.code.slice(0, 40), message: clip(s.error.message).slice(0, 200) } } : s));
  }
  return e as JournalEntry;
}

function isEntry(value: unknown): value is JournalEntry {
  const e = value as Record<string, unknown> | null;
  return typeof e === 'object' && e !== null && e.v === 1 && typeof e.t === 'string' && typeof e.at === 'string' && Number.isFinite(Date.parse(e.at as string));
}

/** The journal file. */
export class Journal {
  readonly path: string;
  // What was read so far: the file offset after the last whole line, and the entries.
  #offset = 0;
  #entries: JournalEntry[] = [];

  constructor(path: string) {
    this.path = path;
  }

  /** Appends one entry (one write; created 0600 with its folder). */
  append(entry: JournalEntry): void {
    mkdirSync(dirname(this.path), { recursive: true });
    const fd = openSync(this.path, 'a', 0o600);
    try {
      const line = Buffer.from(`${JSON.stringify(clipEntry(entry))}\n`);
      writeSync(fd, line);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Every readable entry of the journal's last {@link READ_TAIL_BYTES}, oldest first; a missing file is
   * empty. Later calls on the same instance read only what was appended since (a long-running daemon
   * ticking every second does not parse the whole file each time); at most {@link KEEP_ENTRIES} are kept.
   */
  read(): JournalEntry[] {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.#offset = 0;
        this.#entries = [];
        return [];
      }
      throw err;
    }
    let text: string;
    try {
      const size = fstatSync(fd).size;
      if (size < this.#offset) {
        // Replaced or truncated by hand: start over.
        this.#offset = 0;
        this.#entries = [];
      }
      const start = this.#offset === 0 ? Math.max(0, size - READ_TAIL_BYTES) : this.#offset;
      const buf = Buffer.alloc(size - start);
      let done = 0;
      while (done < buf.length) {
        const n = readSync(fd, buf, done, buf.length - done, start + done);
        if (n === 0) break;
        done += n;
      }
      // Only whole lines: a line being written now is read on the next call.
      let end = buf.lastIndexOf(10, done - 1) + 1;
      let from = 0;
      if (this.#offset === 0 && start > 0) from = buf.indexOf(10) + 1; // the first line was cut
      if (end < from) end = from;
      text = buf.toString('utf8', from, end);
      this.#offset = start + end;
    } finally {
      closeSync(fd);
    }
    for (const line of text.split('\n')) {
      if (line === '') continue;
      try {
        const value: unknown = JSON.parse(line);
        if (isEntry(value)) this.#entries.push(value);
      } catch {
        // A torn line (a process killed mid-write): skipped.
      }
    }
    if (this.#entries.length > KEEP_ENTRIES) this.#entries = this.#entries.slice(-KEEP_ENTRIES);
    return [...this.#entries];
  }
}

/** What the journal says about one task. */
export interface TaskState {
  /** The latest slot handled (run, skipped or missed) or the time the task was enrolled, in ms. */
  lastSlot?: number;
  /** Runs started and never ended, by run id. */
  open: Map<string, Extract<JournalEntry, { t: 'start' }>>;
  lastStart?: Extract<JournalEntry, { t: 'start' }>;
  lastEnd?: Extract<JournalEntry, { t: 'end' }>;
  /** When the last successful run ended (ms). */
  lastOkAt?: number;
}

/** What the journal says about one job's verification rotation. */
export interface JobState {
  lastReadPart?: number;
  lastDrillAt?: number;
}

/** Folds the journal into per-task and per-job state. */
export function foldJournal(entries: JournalEntry[]): { tasks: Map<string, TaskState>; jobs: Map<string, JobState> } {
  const tasks = new Map<string, TaskState>();
  const jobs = new Map<string, JobState>();
  const task = (name: string) => {
    let s = tasks.get(name);
    if (!s) tasks.set(name, (s = { open: new Map() }));
    return s;
  };
  const job = (name: string) => {
    let s = jobs.get(name);
    if (!s) jobs.set(name, (s = {}));
    return s;
  };
  const slotAt = (s: TaskState, iso: string | undefined) => {
    const ms = iso === undefined ? NaN : Date.parse(iso);
    if (Number.isFinite(ms) && (s.lastSlot === undefined || ms > s.lastSlot)) s.lastSlot = ms;
  };
  for (const e of entries) {
    switch (e.t) {
      case 'enrol':
        slotAt(task(e.task), e.at);
        break;
      case 'start': {
        const s = task(e.task);
        s.open.set(e.run, e);
        s.lastStart = e;
        if (e.trigger !== 'manual') slotAt(s, e.slot);
        break;
      }
      case 'end': {
        const s = task(e.task);
        s.open.delete(e.run);
        s.lastEnd = e;
        if (e.status === 'ok') s.lastOkAt = Date.parse(e.at);
        if (e.readPart !== undefined && e.status === 'ok') job(e.job).lastReadPart = e.readPart;
        if (e.drilled && e.status === 'ok') job(e.job).lastDrillAt = Date.parse(e.at);
        break;
      }
      case 'skip':
        slotAt(task(e.task), e.slot);
        break;
      default:
        break;
    }
  }
  return { tasks, jobs };
}
