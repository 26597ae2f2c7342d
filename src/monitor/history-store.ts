/**
 * The operation history: one JSON line per finished operation in a file beside the backups, kept
 * across restarts and shared by every process that runs scriptorium there.
 *
 * **Appending.** Each record is one line of at most {@link MAX_LINE_BYTES} bytes, written with a single
 * `write` on a file opened with O_APPEND. On local file systems such a write is never interleaved with
 * another, so processes may append at the same time without a lock. (Network file systems such as NFS
 * do not promise this.) How an append that races a compaction still lands exactly once is described in
 * `history-file.ts`.
 *
 * **Reading.** Lines that are not valid records are skipped and counted: a torn last line (a write in
 * progress, or a process killed mid-write), or garbage glued in front of a good record (which is then
 * recovered, since every record starts with `{"v":1,`).
 *
 * **Retention.** When the file holds more than `maxEntries` records, the next append compacts it: under
 * a lock file (O_EXCL, broken when its process is gone or it is older than a minute) the newest 90% of
 * `maxEntries` are written to a temporary file that is renamed over the history. Before anything is
 * dropped, one roll-up line summarising the dropped records per kind (count, successes, rows, bytes,
 * median and p95 duration and rows/s) is appended to the archive file beside it
 * (`…-archive.jsonl`), so old runs are summarised, never silently lost. Lines other processes append
 * while the compaction runs are handed over to the new file. Compacting to 90% rather than
 * to `maxEntries` means the rewrite and the roll-up happen once per tenth of `maxEntries` appends, not on
 * every one. While one process compacts, others skip compaction (they never wait), so the file can hold
 * a few more than `maxEntries` records until the next append compacts it.
 *
 * **Crashes.** If the compacting process dies between writing the roll-up and the rename, the next
 * compaction may summarise some records twice (each roll-up carries the time range it covers); if it
 * dies after the rename but before the hand-over, lines appended during that compaction are lost.
 */
import { appendFileSync, closeSync, fchmodSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import { tryLock } from './file-lock.js';
import { appendLine, measureLines, readFrom, sealAndCopyTail, SEAL_PREFIX, writeAll } from './history-file.js';
import { decodeRecordLine, encodeRecord, MAX_LINE_BYTES, type OperationRecord } from './operation-record.js';
import { groupByKind, summarizeKind, type KindSummary } from './stats.js';

export interface HistoryStoreOptions {
  /** The history file (created with its folder on first append). */
  path: string;
  /** Most records kept; older ones are rolled up into the archive (default 10,000). */
  maxEntries?: number;
  /** Age after which a compaction lock is considered abandoned (default 60 s). */
  lockStaleMs?: number;
  /** Called when a compaction after an append fails; the append itself succeeded (default: a process warning). */
  onError?: (err: unknown) => void;
}

/** What {@link HistoryStore.read} found. */
export interface HistoryReadResult {
  /** Records in the order they were appended (oldest first). */
  records: OperationRecord[];
  /** Lines (or parts of lines) that were not readable records. */
  skipped: number;
  /** Exact duplicate lines dropped (left by an append that raced a compaction). */
  duplicates: number;
}

/** One line of the archive: the records one compaction dropped, summarised per kind. */
export interface ArchiveEntry {
  v: 1;
  type: 'rollup';
  compactedAt: string;
  /** Unreadable lines the compaction discarded. */
  discardedLines: number;
  kinds: KindSummary[];
}

/** What a compaction did. */
export interface CompactResult {
  kept: number;
  archived: number;
  discardedLines: number;
}

interface ParsedLines {
  entries: { line: string; record: OperationRecord }[];
  skipped: number;
  duplicates: number;
}

/** Parses complete history lines (the text must end at a line break or be empty). */
function parseLines(text: string): ParsedLines {
  const seen = new Set<string>();
  const out: ParsedLines = { entries: [], skipped: 0, duplicates: 0 };
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith(SEAL_PREFIX)) continue;
    const { record, torn, start } = decodeRecordLine(line);
    if (torn) out.skipped++;
    if (!record) continue;
    const key = line.slice(start);
    if (seen.has(key)) {
      out.duplicates++;
      continue;
    }
    seen.add(key);
    out.entries.push({ line: key, record });
  }
  return out;
}

/**
 * A history file of {@link OperationRecord}s. Appends are synchronous (one small write) so they can run
 * from an operation's completion callback; reads are asynchronous.
 *
 * @example
 * const history = new HistoryStore({ path: './backups/.scriptorium-history.jsonl' });
 * history.append(record);
 * const lastExports = await history.list({ kind: 'export', last: 20 });
 */
export class HistoryStore {
  /** The history file. */
  readonly path: string;
  /** The roll-up file beside it. */
  readonly archivePath: string;
  readonly lockPath: string;
  readonly maxEntries: number;
  readonly #lockStaleMs: number;
  readonly #onError: (err: unknown) => void;
  // File size at which the line count is next checked against maxEntries (0: on the next append).
  #checkAtSize = 0;

  constructor(options: HistoryStoreOptions) {
    if (typeof options?.path !== 'string' || options.path === '') {
      throw new TypeError('HistoryStore: options.path must be a non-empty string');
    }
    const maxEntries = options.maxEntries ?? 10_000;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new TypeError(`HistoryStore: options.maxEntries must be a whole number ≥ 1, got ${maxEntries}`);
    }
    this.path = options.path;
    this.archivePath = options.path.endsWith('.jsonl')
      ? `${options.path.slice(0, -'.jsonl'.length)}-archive.jsonl`
      : `${options.path}-archive.jsonl`;
    this.lockPath = `${options.path}.lock`;
    this.maxEntries = maxEntries;
    this.#lockStaleMs = options.lockStaleMs ?? 60_000;
    this.#onError = options.onError ?? ((err) => process.emitWarning(`scriptorium history: ${String(err)}`));
  }

  /**
   * Appends one record as one line, then compacts the file if it now holds more than `maxEntries`.
   * Safe to call from several processes at once. A failed compaction is reported to `onError`, not thrown.
   *
   * @throws the file system's error when the line cannot be written.
   */
  append(record: OperationRecord): void {
    const size = appendLine(this.path, Buffer.from(encodeRecord(record)));
    if (size < this.#checkAtSize) return;
    try {
      this.#compact(false);
    } catch (err) {
      this.#onError(err);
    }
  }

  /** Reads every record; unreadable lines are skipped and counted. A missing file is an empty history. */
  async read(): Promise<HistoryReadResult> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], skipped: 0, duplicates: 0 };
      throw err;
    }
    const end = text.lastIndexOf('\n') + 1;
    const parsed = parseLines(text.slice(0, end));
    const partialTail = end < text.length ? 1 : 0;
    return {
      records: parsed.entries.map((e) => e.record),
      skipped: parsed.skipped + partialTail,
      duplicates: parsed.duplicates,
    };
  }

  /**
   * Records oldest first, optionally only those of one kind and only the newest `last` of them.
   *
   * @example
   * await history.list({ kind: 'restore', last: 10 })
   */
  async list(options: { last?: number; kind?: string } = {}): Promise<OperationRecord[]> {
    const { last, kind } = options;
    if (last !== undefined && !(Number.isSafeInteger(last) && last >= 0)) {
      throw new TypeError(`history.list: last must be a whole number ≥ 0, got ${last}`);
    }
    let records = (await this.read()).records;
    if (kind !== undefined) records = records.filter((r) => r.kind === kind);
    return last === undefined ? records : records.slice(Math.max(0, records.length - last));
  }

  /** Reads the archive's roll-ups, oldest first (unreadable lines are skipped). */
  async readArchive(): Promise<ArchiveEntry[]> {
    let text: string;
    try {
      text = await readFile(this.archivePath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const entries: ArchiveEntry[] = [];
    for (const line of text.split('\n')) {
      try {
        const value = JSON.parse(line) as ArchiveEntry;
        if (value?.type === 'rollup' && Array.isArray(value.kinds)) entries.push(value);
      } catch {
        // A torn or empty line.
      }
    }
    return entries;
  }

  /**
   * Rewrites the file now: drops unreadable and duplicate lines and, when there are more than
   * `maxEntries` records, rolls the oldest up into the archive, keeping the newest 90% of `maxEntries`.
   *
   * @returns what was done, or `undefined` when another process holds the compaction lock.
   */
  compact(): CompactResult | undefined {
    return this.#compact(true);
  }

  #compact(always: boolean): CompactResult | undefined {
    mkdirSync(dirname(this.path), { recursive: true });
    const release = tryLock(this.lockPath, { staleMs: this.#lockStaleMs });
    if (!release) return undefined;
    let fd: number | undefined;
    try {
      // Read and append access: the old file is read, then sealed once it is replaced.
      fd = openSync(this.path, 'a+');
      const buf = readFrom(fd, 0);
      const end = buf.lastIndexOf(10) + 1;
      const lines = measureLines(buf.subarray(0, end), MAX_LINE_BYTES).lines;
      if (!always && lines <= this.maxEntries) {
        // Not over the limit even if every line is a record: no need to parse them.
        this.#planNextCheck(buf.subarray(0, end), buf.length);
        return { kept: lines, archived: 0, discardedLines: 0 };
      }
      const parsed = parseLines(buf.toString('utf8', 0, end));
      const over = parsed.entries.length > this.maxEntries;
      if (!always && !over) {
        this.#planNextCheck(buf.subarray(0, end), buf.length);
        return { kept: parsed.entries.length, archived: 0, discardedLines: 0 };
      }
      const keep = over ? this.maxEntries - Math.floor(this.maxEntries / 10) : parsed.entries.length;
      const dropped = parsed.entries.slice(0, parsed.entries.length - keep).map((e) => e.record);
      const kept = parsed.entries.slice(parsed.entries.length - keep);
      if (dropped.length > 0 || parsed.skipped > 0) this.#archive(dropped, parsed.skipped);
      const body = Buffer.from(kept.map((e) => `${e.line}\n`).join(''));
      this.#replace(body);
      const copied = sealAndCopyTail(fd, end, this.path);
      this.#planNextCheck(body, body.length + copied);
      return { kept: kept.length, archived: dropped.length, discardedLines: parsed.skipped };
    } finally {
      if (fd !== undefined) closeSync(fd);
      release();
    }
  }

  /** Appends one roll-up of the dropped records to the archive, in one write. */
  #archive(dropped: OperationRecord[], discardedLines: number): void {
    const entry: ArchiveEntry = {
      v: 1,
      type: 'rollup',
      compactedAt: new Date().toISOString(),
      discardedLines,
      kinds: [...groupByKind(dropped).values()].map(summarizeKind),
    };
    appendFileSync(this.archivePath, `${JSON.stringify(entry)}\n`, { mode: 0o600 }); // private, like the history
  }

  /** Writes `body` to a temporary file, flushes it and renames it over the history. */
  #replace(body: Buffer): void {
    const temp = `${this.path}.${process.pid}-${randomUUID().slice(0, 8)}.tmp`;
    const fd = openSync(temp, 'wx', 0o600);
    try {
      fchmodSync(fd, 0o600); // private whatever the umask: the history names databases and paths
      writeAll(fd, body);
      fsyncSync(fd);
    } catch (err) {
      closeSync(fd);
      unlinkSync(temp); // a full disk must not leave a half history behind
      throw err;
    }
    closeSync(fd);
    try {
      renameSync(temp, this.path);
    } catch (err) {
      unlinkSync(temp);
      throw err;
    }
  }

  /** Sets the size at which the file could first hold more than maxEntries lines. */
  #planNextCheck(body: Buffer, size: number): void {
    const { lines, shortest } = measureLines(body, MAX_LINE_BYTES);
    this.#checkAtSize = size + shortest * Math.max(1, this.maxEntries - lines + 1);
  }
}
