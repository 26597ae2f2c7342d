/**
 * The daemon's journal: one JSON line per event of its schedule (a task enrolled, a run started or
 * ended, a slot skipped) and of its alerts (sent, resolved, a delivery that failed). It lives beside the
 * operation history and is what makes the schedule durable: the slots already handled, the runs left
 * open by a daemon that was killed and the alerts already sent are all read back from it, never kept
 * only in memory. Each line is appended with one `write` on an O_APPEND file (well under PIPE_BUF), so
 * the daemon and `scriptorium run` may append at the same time.
 *
 * **Bounded.** Every append holds the journal's lock (`<journal>.lock`, held for one write) and, once the
 * file passes {@link COMPACT_AT_BYTES}, rewrites it under that same lock (a temporary file renamed over
 * it) keeping only what the schedule and the alerts read back (see {@link keptEntries}: per task its
 * first entry, latest slot, last start and end, last success, runs still open; per job its verify
 * rotation and drill; per alert its latest state) plus the newest {@link TAIL_ENTRIES}. Folding the
 * compacted journal gives the same state as folding the whole one, so nothing the durable schedule
 * needs is lost. Readers follow a rewrite (the file's inode changes) and keep the same bounded window
 * in memory, so a daemon that runs for months neither grows its file nor its heap.
 */
import { closeSync, fstatSync, fsyncSync, mkdirSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import { ScriptoriumError } from '../core/errors.js';
import { tryLock, type ReleaseLock } from '../monitor/file-lock.js';

/** Most bytes read from the end of the journal (a journal this long predates compaction). */
export const READ_TAIL_BYTES = 16 << 20;
/** Size past which an append compacts the journal (SCRIPTORIUM_JOURNAL_COMPACT_BYTES overrides it, for soaks). */
export const COMPACT_AT_BYTES = 1 << 20;
/** The newest entries a compaction keeps whatever they are (the dashboard's alert and skip list comes from these). */
export const TAIL_ENTRIES = 1000;
/**
 * Newest entries a reader keeps in memory besides the state (see {@link JournalOptions.windowEntries}):
 * its window holds the state and between this many and twice this many of the newest entries.
 */
export const WINDOW_ENTRIES = 200;
/** How long an append waits for the journal's lock (a compaction holds it for milliseconds). */
export const LOCK_WAIT_MS = 10_000;
/** A journal lock older than this is abandoned (its holder is gone or hung). */
const LOCK_STALE_MS = 30_000;
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

/** Options of a {@link Journal}. */
export interface JournalOptions {
  /** Compact once the file is larger than this (default {@link COMPACT_AT_BYTES}). */
  compactAtBytes?: number;
  /** Newest entries a compaction keeps (default {@link TAIL_ENTRIES}). */
  tailEntries?: number;
  /** Newest entries {@link Journal.read} keeps in memory besides the state (default {@link WINDOW_ENTRIES}). */
  windowEntries?: number;
}

const pauseCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * Takes the lock at `path`, waiting (synchronously, in short pauses) up to `waitMs`.
 *
 * @throws ScriptoriumError E_LOCKED when a live holder keeps it longer.
 */
export function lockSync(path: string, waitMs: number, what: string): ReleaseLock {
  const end = Date.now() + waitMs;
  for (let pause = 1; ; pause = Math.min(pause * 2, 25)) {
    const release = tryLock(path, { staleMs: LOCK_STALE_MS });
    if (release) return release;
    if (Date.now() >= end) {
      throw new ScriptoriumError('E_LOCKED', `${what}: its lock ${path} stayed taken for ${Math.round(waitMs / 1000)} s`, {
        hint: 'another scriptorium process holds it; if none runs, remove the lock file',
      });
    }
    Atomics.wait(pauseCell, 0, 0, pause);
  }
}

function envBytes(): number | undefined {
  const n = Number(process.env.SCRIPTORIUM_JOURNAL_COMPACT_BYTES);
  return Number.isSafeInteger(n) && n >= 4096 ? n : undefined;
}

/** Reads `fd` from `start` to `size` (fewer bytes if it shrank meanwhile). */
function readRange(fd: number, start: number, size: number): Buffer {
  const buf = Buffer.alloc(Math.max(0, size - start));
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, start + done);
    if (n === 0) break;
    done += n;
  }
  return buf.subarray(0, done);
}

/** The readable entries of whole lines in `text`, with their lines. */
function parseEntries(text: string): Array<{ entry: JournalEntry; line: string }> {
  const out: Array<{ entry: JournalEntry; line: string }> = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      const value: unknown = JSON.parse(line);
      if (isEntry(value)) out.push({ entry: value, line });
    } catch {
      // A torn line (a process killed mid-write): skipped.
    }
  }
  return out;
}

/**
 * Which of `entries` (oldest first) a compaction keeps, as their indexes in order: the newest `tail`,
 * and everything the schedule and the alerts read back, so that {@link foldJournal}, the alert states
 * and the alert verdicts of the kept entries equal those of all of them: per task its first entry (the
 * silence check counts from it), the entry with its latest slot, its last start, last end, last
 * successful end, last end with a verify step and every start not ended yet; per job the last
 * successful end with a read part and with a drill; per (alert, job, condition) the latest alert.
 */
export function keptIndexes(entries: readonly JournalEntry[], tail: number): number[] {
  const keep = new Set<number>();
  for (let i = Math.max(0, entries.length - tail); i < entries.length; i++) keep.add(i);
  const last = new Map<string, number>(); // "<what>\0<name>" -> index
  const first = new Map<string, number>();
  const slots = new Map<string, { ms: number; i: number }>();
  const open = new Map<string, number>();
  const slot = (task: string, iso: string | undefined, i: number) => {
    const ms = iso === undefined ? NaN : Date.parse(iso);
    const had = slots.get(task);
    if (Number.isFinite(ms) && (had === undefined || ms > had.ms)) slots.set(task, { ms, i });
  };
  entries.forEach((e, i) => {
    if ('task' in e && !first.has(e.task)) first.set(e.task, i);
    switch (e.t) {
      case 'enrol':
        slot(e.task, e.at, i);
        break;
      case 'start':
        open.set(e.run, i);
        last.set(`start\0${e.task}`, i);
        if (e.trigger !== 'manual') slot(e.task, e.slot, i);
        break;
      case 'end':
        open.delete(e.run);
        last.set(`end\0${e.task}`, i);
        if (e.status === 'ok') last.set(`ok\0${e.task}`, i);
        if (e.steps.some((s) => s.step === 'verify')) last.set(`verify\0${e.task}`, i);
        if (e.status === 'ok' && e.readPart !== undefined) last.set(`read\0${e.job}`, i);
        if (e.status === 'ok' && e.drilled) last.set(`drill\0${e.job}`, i);
        break;
      case 'skip':
        slot(e.task, e.slot, i);
        break;
      case 'alert':
        if (e.state !== 'test') last.set(`alert\0${e.alert}\0${e.job}\0${e.condition}`, i);
        break;
      default:
        break;
    }
  });
  for (const m of [last, first, open]) for (const i of m.values()) keep.add(i);
  for (const s of slots.values()) keep.add(s.i);
  return [...keep].sort((a, b) => a - b);
}

/** {@link keptIndexes} as entries. */
export function keptEntries(entries: readonly JournalEntry[], tail: number = TAIL_ENTRIES): JournalEntry[] {
  return keptIndexes(entries, tail).map((i) => entries[i]!);
}

/** The journal file. */
export class Journal {
  readonly path: string;
  readonly lockPath: string;
  readonly #compactAt: number;
  readonly #tail: number;
  readonly #window: number;
  // The window's length after its last pruning: it is pruned again #window entries later.
  #pruneAt: number;
  // Size at which this process next compacts (a compaction that keeps much raises it, so it is not redone on every append).
  #nextCompactAt: number;
  // What was read so far: the file (inode), the offset after its last whole line, and the entries.
  #ino = -1;
  #offset = 0;
  #entries: JournalEntry[] = [];

  constructor(path: string, options: JournalOptions = {}) {
    this.path = path;
    this.lockPath = `${path}.lock`;
    this.#compactAt = options.compactAtBytes ?? envBytes() ?? COMPACT_AT_BYTES;
    this.#tail = options.tailEntries ?? TAIL_ENTRIES;
    this.#window = options.windowEntries ?? WINDOW_ENTRIES;
    this.#pruneAt = 2 * this.#window;
    this.#nextCompactAt = this.#compactAt;
  }

  /**
   * Appends one entry (one write, under the journal's lock; created 0600 with its folder), and compacts
   * the journal when it has grown past its limit.
   *
   * @throws ScriptoriumError E_LOCKED when the lock stays taken for {@link LOCK_WAIT_MS}.
   */
  append(entry: JournalEntry): void {
    mkdirSync(dirname(this.path), { recursive: true });
    const line = Buffer.from(`${JSON.stringify(clipEntry(entry))}\n`);
    const release = lockSync(this.lockPath, LOCK_WAIT_MS, 'the daemon journal');
    try {
      const fd = openSync(this.path, 'a', 0o600);
      let size: number;
      try {
        writeSync(fd, line);
        size = fstatSync(fd).size;
      } finally {
        closeSync(fd);
      }
      if (size > this.#nextCompactAt) this.#compactLocked();
    } finally {
      release();
    }
  }

  /**
   * Compacts the journal now (see the module's comment). Returns the entries before and after.
   *
   * @throws ScriptoriumError E_LOCKED when the lock stays taken for {@link LOCK_WAIT_MS}.
   */
  compact(): { before: number; after: number } {
    mkdirSync(dirname(this.path), { recursive: true });
    const release = lockSync(this.lockPath, LOCK_WAIT_MS, 'the daemon journal');
    try {
      return this.#compactLocked();
    } finally {
      release();
    }
  }

  #compactLocked(): { before: number; after: number } {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { before: 0, after: 0 };
      throw err;
    }
    let parsed: Array<{ entry: JournalEntry; line: string }>;
    try {
      const size = fstatSync(fd).size;
      const start = Math.max(0, size - READ_TAIL_BYTES);
      const buf = readRange(fd, start, size);
      const from = start > 0 ? buf.indexOf(10) + 1 : 0;
      parsed = parseEntries(buf.toString('utf8', from, buf.lastIndexOf(10) + 1));
    } finally {
      closeSync(fd);
    }
    const kept = keptIndexes(parsed.map((p) => p.entry), this.#tail);
    const body = Buffer.from(kept.map((i) => `${parsed[i]!.line}\n`).join(''));
    const temp = `${this.path}.${process.pid}-${randomUUID().slice(0, 8)}.tmp`;
    const out = openSync(temp, 'wx', 0o600);
    try {
      for (let done = 0; done < body.length; ) done += writeSync(out, body, done, body.length - done);
      fsyncSync(out);
      closeSync(out);
      renameSync(temp, this.path);
    } catch (err) {
      try {
        closeSync(out);
      } catch {
        // closed already
      }
      try {
        unlinkSync(temp);
      } catch {
        // never created or renamed
      }
      throw err;
    }
    this.#nextCompactAt = Math.max(this.#compactAt, body.length + (this.#compactAt >> 1));
    return { before: parsed.length, after: kept.length };
  }

  /**
   * The journal's entries, oldest first; a missing file is empty. Later calls on the same instance read
   * only what was appended since (a long-running daemon ticking every second does not parse the whole
   * file each time) and start over when the file was replaced (a compaction). The window is pruned as a
   * compaction prunes the file ({@link keptEntries}, keeping the newest `windowEntries`), so what it
   * folds to stays the same and its size stays bounded.
   */
  read(): JournalEntry[] {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.#ino = -1;
        this.#offset = 0;
        this.#entries = [];
        this.#pruneAt = 2 * this.#window;
        return [];
      }
      throw err;
    }
    let text: string;
    try {
      const stat = fstatSync(fd);
      if (stat.ino !== this.#ino || stat.size < this.#offset) {
        // Replaced (compacted) or truncated by hand: start over.
        this.#ino = stat.ino;
        this.#offset = 0;
        this.#entries = [];
        this.#pruneAt = 2 * this.#window;
      }
      const start = this.#offset === 0 ? Math.max(0, stat.size - READ_TAIL_BYTES) : this.#offset;
      const buf = readRange(fd, start, stat.size);
      // Only whole lines: a line being written now is read on the next call.
      let end = buf.lastIndexOf(10) + 1;
      let from = 0;
      if (this.#offset === 0 && start > 0) from = buf.indexOf(10) + 1; // the first line was cut
      if (end < from) end = from;
      text = buf.toString('utf8', from, end);
      this.#offset = start + end;
    } finally {
      closeSync(fd);
    }
    for (const { entry } of parseEntries(text)) this.#entries.push(entry);
    if (this.#entries.length > this.#pruneAt) {
      this.#entries = keptEntries(this.#entries, this.#window);
      this.#pruneAt = this.#entries.length + this.#window;
    }
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
export function foldJournal(entries: readonly JournalEntry[]): { tasks: Map<string, TaskState>; jobs: Map<string, JobState> } {
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
