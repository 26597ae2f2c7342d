/**
 * A bounded, incremental view of the history file for long-running readers (the dashboard, the
 * daemon's trend alerts): the first read takes at most the file's last `maxBytes`; later reads take only
 * the bytes appended since, and start over when the file was replaced (a compaction renames a new file
 * over it). Records are kept in windows of the newest `maxPerGroup` per group (one group by default),
 * so memory stays bounded however long the process runs and however often the history grows.
 *
 * Lines are decoded as {@link HistoryStore.read} decodes them (torn lines and seal lines skipped,
 * garbage in front of a record recovered); a record seen twice (an append that raced a compaction) is
 * kept once.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { SEAL_PREFIX } from './history-file.js';
import { decodeRecordLine, MAX_LINE_BYTES, type OperationRecord } from './operation-record.js';

/** Options of a {@link HistoryTail}. */
export interface HistoryTailOptions {
  /** The history file (it need not exist yet). */
  path: string;
  /** Most records kept per group, the newest. */
  maxPerGroup: number;
  /** The group a record is kept in, or undefined to not keep it (default: one group, ''). */
  group?: (record: OperationRecord) => string | undefined;
  /** Most bytes read when the file is read from its start (default: `maxPerGroup` lines of the longest size, at most 32 MiB). */
  maxBytes?: number;
}

const keyOf = (r: OperationRecord) => `${r.pid}:${r.id}:${r.startedAt}:${r.endedAt}`;

/** See the module comment. Not safe to share between processes; cheap to call often. */
export class HistoryTail {
  readonly path: string;
  readonly #max: number;
  readonly #group: (record: OperationRecord) => string | undefined;
  readonly #maxBytes: number;
  #ino = -1;
  #offset = 0;
  #groups = new Map<string, OperationRecord[]>();
  #seen = new Set<string>();
  #version = 0;

  constructor(options: HistoryTailOptions) {
    if (!Number.isSafeInteger(options.maxPerGroup) || options.maxPerGroup < 1) throw new TypeError(`HistoryTail: maxPerGroup must be a whole number ≥ 1, got ${options.maxPerGroup}`);
    this.path = options.path;
    this.#max = options.maxPerGroup;
    this.#group = options.group ?? (() => '');
    this.#maxBytes = options.maxBytes ?? Math.min(32 << 20, options.maxPerGroup * MAX_LINE_BYTES);
  }

  /** Changes whenever {@link update} found new records (or the file was replaced): a cache key. */
  get version(): number {
    return this.#version;
  }

  /**
   * Reads what was appended since the last call (everything, bounded, on the first call or after the
   * file was replaced). Returns the records not seen before that belong to a group (also those a big
   * batch pushed out of its window at once), oldest first.
   */
  update(): OperationRecord[] {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (this.#ino !== -1 || this.#seen.size > 0) {
        this.#ino = -1;
        this.#offset = 0;
        this.#clear();
      }
      return [];
    }
    let text: string;
    let fresh = false;
    try {
      const stat = fstatSync(fd);
      if (stat.ino !== this.#ino || stat.size < this.#offset) {
        fresh = true;
        this.#ino = stat.ino;
        this.#offset = 0;
      }
      if (stat.size === this.#offset && !fresh) return [];
      const start = Math.max(this.#offset, stat.size - this.#maxBytes);
      const buf = Buffer.alloc(stat.size - start);
      let done = 0;
      while (done < buf.length) {
        const n = readSync(fd, buf, done, buf.length - done, start + done);
        if (n === 0) break;
        done += n;
      }
      // Whole lines only (the last one may be being written); a cut first line is skipped.
      const from = start > this.#offset ? buf.indexOf(10) + 1 : 0;
      const end = Math.max(from, buf.lastIndexOf(10, done - 1) + 1);
      text = buf.toString('utf8', from, end);
      this.#offset = start + end;
    } finally {
      closeSync(fd);
    }
    const records: OperationRecord[] = [];
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith(SEAL_PREFIX)) continue;
      const { record } = decodeRecordLine(line);
      if (record) records.push(record);
    }
    return fresh ? this.#replaceWith(records) : this.#add(records);
  }

  /** The kept records of `group`, oldest first (at most `maxPerGroup`). Call {@link update} first. */
  records(group = ''): readonly OperationRecord[] {
    const list = this.#groups.get(group);
    if (!list) return [];
    return list.length > this.#max ? list.slice(-this.#max) : list;
  }

  /** The groups that hold records. */
  groups(): string[] {
    return [...this.#groups.keys()];
  }

  #clear(): void {
    this.#groups = new Map();
    this.#seen = new Set();
    this.#version++;
  }

  /** After the file was replaced: the new windows; records the old ones did not hold are new. */
  #replaceWith(records: OperationRecord[]): OperationRecord[] {
    const before = this.#seen;
    // Records older than everything the windows held were pushed out of them before, not new.
    let oldest: string | undefined;
    for (const list of this.#groups.values()) if (list[0] && (oldest === undefined || list[0].endedAt < oldest)) oldest = list[0].endedAt;
    this.#clear();
    return this.#add(records).filter((r) => !before.has(keyOf(r)) && (oldest === undefined || r.endedAt >= oldest));
  }

  #add(records: OperationRecord[]): OperationRecord[] {
    const added: OperationRecord[] = [];
    for (const r of records) {
      const group = this.#group(r);
      if (group === undefined) continue;
      const key = keyOf(r);
      if (this.#seen.has(key)) continue;
      this.#seen.add(key);
      let list = this.#groups.get(group);
      if (!list) this.#groups.set(group, (list = []));
      list.push(r);
      added.push(r);
      // Pruned in batches (a window holds up to 1.5 × its size between prunes) so appends stay O(1).
      if (list.length > this.#max + (this.#max >> 1)) {
        for (const old of list.splice(0, list.length - this.#max)) this.#seen.delete(keyOf(old));
      }
    }
    if (added.length > 0) this.#version++;
    return added;
  }
}
