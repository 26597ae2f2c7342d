/**
 * Live progress shared between processes: while an operation runs, the process running it keeps one
 * small JSON file in a folder beside the history (`.scriptorium-live/`) with its started event and
 * its latest progress, rewritten (write and rename, so readers never see half a file) at most every
 * {@link LIVE_INTERVAL_MS}, and removed when the operation ends. The dashboard reads the folder, so it
 * shows the progress of the daemon's jobs and of any CLI process writing to the same history alike.
 * A file left by a process that was killed names its pid and host: readers skip it when that process
 * is gone, and remove it.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { OperationEvent, ProgressEvent, StartedEvent } from '../core/events.js';
import { processRuns } from '../core/atomic-file.js';

/** Shortest time between two rewrites of one operation's file. */
export const LIVE_INTERVAL_MS = 250;
/** Largest live file read (a started event and a progress event are far smaller). */
const MAX_LIVE_BYTES = 16 << 10;
/** Most live files read at once. */
const MAX_LIVE_FILES = 256;

/** One running operation as its live file describes it. */
export interface LiveOperation {
  pid: number;
  host: string;
  started: StartedEvent;
  progress?: ProgressEvent;
  /** When the file was last written (ms). */
  updated: number;
}

/** The live folder that belongs to a history file. */
export function liveDirFor(historyPath: string): string {
  return join(dirname(historyPath), '.scriptorium-live');
}

const fileName = (id: string) => `${process.pid}-${id.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100)}.json`;

/**
 * Keeps the live files of this process's operations. Pass {@link LiveProgressWriter.listener} every
 * event (for instance with `monitor.on(writer.listener)`). A failed write is ignored: live progress is
 * a view, never a reason for an operation to fail.
 */
export class LiveProgressWriter {
  readonly dir: string;
  readonly #open = new Map<string, { file: string; started: StartedEvent; written: number; progress?: ProgressEvent }>();
  readonly #host = hostname();

  constructor(dir: string) {
    this.dir = dir;
  }

  readonly listener = (event: OperationEvent): void => {
    try {
      this.#on(event);
    } catch {
      // A full disk or a read-only folder: the operation goes on without live progress.
    }
  };

  #on(event: OperationEvent): void {
    if (event.type === 'started') {
      const entry = { file: join(this.dir, fileName(event.id)), started: event, written: 0 };
      this.#open.set(event.id, entry);
      this.#write(entry);
      return;
    }
    const entry = this.#open.get(event.id);
    if (!entry) return;
    if (event.type === 'progress') {
      entry.progress = event;
      if (event.time - entry.written >= LIVE_INTERVAL_MS) this.#write(entry);
    } else if (event.type === 'completed' || event.type === 'failed') {
      this.#open.delete(event.id);
      try {
        unlinkSync(entry.file);
      } catch {
        // Already gone.
      }
    }
  }

  #write(entry: { file: string; started: StartedEvent; written: number; progress?: ProgressEvent }): void {
    entry.written = Date.now();
    const body: LiveOperation = { pid: process.pid, host: this.#host, started: entry.started, ...(entry.progress ? { progress: entry.progress } : {}), updated: entry.written };
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const temp = join(this.dir, `.${entry.file.slice(this.dir.length + 1)}.tmp`);
    writeFileSync(temp, JSON.stringify(body), { mode: 0o600 });
    renameSync(temp, entry.file);
  }

  /** Removes the files of operations still open (the process is about to exit). */
  close(): void {
    for (const entry of this.#open.values()) {
      try {
        unlinkSync(entry.file);
      } catch {
        // Already gone.
      }
    }
    this.#open.clear();
  }
}


function isLive(value: unknown): value is LiveOperation {
  const v = value as Record<string, unknown> | null;
  const started = v?.started as Record<string, unknown> | undefined;
  return (
    typeof v === 'object' && v !== null && Number.isSafeInteger(v.pid) && typeof v.host === 'string' && typeof v.updated === 'number' &&
    typeof started === 'object' && started !== null && started.type === 'started' && typeof started.id === 'string' && typeof started.kind === 'string'
  );
}

/**
 * The operations running now, from the live folder (oldest first). Files of processes gone from this
 * host are removed; unreadable or oversized files are skipped.
 */
export function readLive(dir: string): LiveOperation[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const host = hostname();
  const out: LiveOperation[] = [];
  for (const name of names.filter((n) => n.endsWith('.json') && !n.startsWith('.')).slice(0, MAX_LIVE_FILES)) {
    const file = join(dir, name);
    try {
      if (statSync(file).size > MAX_LIVE_BYTES) continue;
      const value: unknown = JSON.parse(readFileSync(file, 'utf8'));
      if (!isLive(value)) continue;
      if (value.host === host && !processRuns(value.pid)) {
        unlinkSync(file);
        continue;
      }
      out.push(value);
    } catch {
      // Removed while we read it, or half-written by a foreign tool: skipped.
    }
  }
  return out.sort((a, b) => a.started.time - b.started.time);
}
