import { existsSync, statSync } from 'node:fs';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import type { RowBatch, RowEncoding } from '../../core/encoding.js';
import { ScriptoriumError } from '../../core/errors.js';
import { rowColumns, type TableSchema } from '../../core/schema.js';
import { hasExtension } from './extension.js';
import { AHEAD, claim, S, STATE_SLOTS, type ReaderJob, type SegmentResult } from './parallel-protocol.js';
import { jsonKeys, rowsQuery, tableOrder } from './row-sql.js';
import { quoteIdent } from './sql-text.js';

/**
 * A second reader for large tables: a worker thread with its own connection, at the same snapshot as the
 * main connection, encodes every other run of rows while the main thread encodes, hashes and writes the
 * rest. The output is the same, byte for byte, as one reader's.
 *
 * Same snapshot: a third connection holds the write lock (BEGIN IMMEDIATE) from before the main
 * connection's first read until the worker's transaction has started (tens of milliseconds; writers
 * wait for it as for any other writer), so nothing commits between the two. When that lock cannot be
 * had (a read-only file, a long-running writer): in WAL mode there is no second reader; in rollback-
 * journal mode the main connection's shared lock already keeps commits out, and the worker joins if it
 * can get its own shared lock in time.
 *
 * How a table is split: one pass over its rowids finds the key of every `batchRows`-th row; the main
 * thread encodes the first batch itself, which tells the bytes per row, then cuts the rest into
 * segments of about {@link SEGMENT_BYTES} at those keys. Each thread claims the next segment when it is
 * free: the worker runs up to {@link AHEAD} segments ahead, and the main thread, which also hashes and
 * writes everything, encodes a segment itself when the worker has not claimed it yet, or when it would
 * otherwise wait for the worker (then it keeps that one segment until its turn). The split follows
 * whichever thread the machine gives more time.
 */

/** Encoded bytes per segment handed to the worker. */
export const SEGMENT_BYTES = 1 << 19;
/** Tables with fewer batches than this are read by the main thread alone. */
export const MIN_PARALLEL_BATCHES = 24;
/**
 * Fewer CPUs than this, and the main thread reads alone unless asked (SCRIPTORIUM_READERS=2). Measured
 * on a 2-vCPU machine whose second vCPU adds only ~60% (two busy processes took 1.6x as long as one):
 * the worker's start-up (~0.1 s of CPU, ~10 MB) and the hand-over cost more than the second reader
 * saved, so a 1M-row export was slower with it (ndjson 1.2 s vs 0.95 s, sql 1.4 s vs 1.1 s).
 */
export const MIN_PARALLEL_CPUS = 4;
/** Databases smaller than this are read by the main thread alone (a worker costs ~0.1 s of CPU to start). */
export const MIN_PARALLEL_FILE_BYTES = 16 << 20;
/** Longest wait for one segment before the worker is presumed lost. */
const SEGMENT_TIMEOUT_MS = 10 * 60_000;
/** Longest wait for the worker's read transaction. */
const BEGIN_TIMEOUT_MS = 5_000;

const ENCODE = 'SELECT data, rows FROM scriptorium_encode(?, ?, ?, ?, ?)';

/** The database's size with its WAL: a cheap measure of how much there is to read. */
function fileBytes(file: string): number {
  let bytes = 0;
  for (const f of [file, `${file}-wal`]) {
    try {
      bytes += statSync(f).size;
    } catch {
      // no WAL
    }
  }
  return bytes;
}

export class ReadHelper {
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #state: Int32Array;
  #lock: Database.Database | undefined;
  #ready: boolean | undefined;
  #taken = 0;
  #used = false;

  private constructor(worker: Worker, port: MessagePort, state: Int32Array) {
    this.#worker = worker;
    this.#port = port;
    this.#state = state;
  }

  /**
   * Starts a worker for `file`, or returns undefined when there are fewer than {@link MIN_PARALLEL_CPUS}
   * CPUs, the database is small, the compiled worker is missing (running from TypeScript sources) or
   * `SCRIPTORIUM_READERS=1` asks for one reader (`SCRIPTORIUM_READERS=2` asks for two on any machine
   * with a second CPU, whatever the size).
   */
  static spawn(file: string): ReadHelper | undefined {
    const readers = process.env.SCRIPTORIUM_READERS;
    if (readers === '1' || process.env.SCRIPTORIUM_NO_EXTENSION === '1') return undefined;
    const cpus = os.availableParallelism?.() ?? os.cpus().length;
    if (cpus < 2) return undefined;
    if (readers !== '2' && (cpus < MIN_PARALLEL_CPUS || fileBytes(file) < MIN_PARALLEL_FILE_BYTES)) return undefined;
    const url = new URL('./read-worker.js', import.meta.url);
    if (url.protocol !== 'file:' || !existsSync(fileURLToPath(url))) return undefined;
    try {
      const state = new Int32Array(new SharedArrayBuffer(STATE_SLOTS * 4));
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(url, {
        workerData: { file, state: state.buffer, port: port2 },
        transferList: [port2],
        resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 32 },
      });
      worker.unref();
      worker.on('error', () => {
        Atomics.store(state, S.BEGUN, 2);
        Atomics.notify(state, S.BEGUN);
      });
      return new ReadHelper(worker, port1, state);
    } catch {
      return undefined;
    }
  }

  /**
   * Before the main connection's first read: holds writers off (BEGIN IMMEDIATE on a third connection)
   * until the worker has begun. Returns false when the worker cannot be sure to see the main
   * connection's snapshot (then the helper must be closed).
   */
  holdWriters(file: string, open: (file: string) => Database.Database): boolean {
    let lock: Database.Database | undefined;
    let wal = true;
    try {
      lock = open(file);
      wal = lock.pragma('journal_mode', { simple: true }) === 'wal';
      lock.pragma('busy_timeout = 500');
      lock.exec('BEGIN IMMEDIATE');
      this.#lock = lock;
      return true;
    } catch {
      lock?.close();
      // In rollback-journal mode the main connection's shared lock alone keeps every commit out; the
      // worker then only has to get its own shared lock before a writer queues for the exclusive one.
      return !wal;
    }
  }

  /** After the main connection's first read: the worker opens its transaction. */
  begin(): void {
    this.#send({ type: 'begin' });
  }

  /** Waits for the worker's transaction and lets writers go; false when the worker could not begin. */
  ready(): boolean {
    if (this.#ready !== undefined) return this.#ready;
    const deadline = Date.now() + BEGIN_TIMEOUT_MS;
    while (Atomics.load(this.#state, S.BEGUN) === 0 && Date.now() < deadline) Atomics.wait(this.#state, S.BEGUN, 0, 50);
    this.#release();
    this.#ready = Atomics.load(this.#state, S.BEGUN) === 1;
    return this.#ready;
  }

  /**
   * The table's batches, read by both threads, in key order; undefined when the table is not worth
   * splitting (or cannot be: WITHOUT ROWID tables, too few rows).
   */
  batches(db: Database.Database, table: TableSchema, encoding: RowEncoding, batchRows: number, batchBytes: number): Generator<RowBatch> | undefined {
    if (!this.ready() || table.withoutRowid || !hasExtension(db, rowColumns(table).length)) return undefined;
    const key = tableOrder(table).keys[0]!;
    const blob = db.prepare(`SELECT scriptorium_every(${key}, ?) FROM ${quoteIdent(table.name)} NOT INDEXED`).pluck().get(batchRows) as Buffer;
    const count = blob.length / 8;
    if (count < MIN_PARALLEL_BATCHES) return undefined;
    const bounds: bigint[] = [];
    for (let i = 0; i < count; i++) bounds.push(blob.readBigInt64LE(i * 8));
    const range = (from: number, to: number): string =>
      rowsQuery(table, [from > 0 ? `${key} >= ${bounds[from]}` : '', to < count ? `${key} < ${bounds[to]}` : ''].filter(Boolean).join(' AND '));
    return this.#split(db, table, encoding, batchRows, batchBytes, count, range);
  }

  *#split(
    db: Database.Database,
    table: TableSchema,
    encoding: RowEncoding,
    batchRows: number,
    batchBytes: number,
    count: number,
    range: (from: number, to: number) => string,
  ): Generator<RowBatch> {
    this.#used = true;
    const keys = encoding === 'json' ? jsonKeys(table) : null;
    const scan = db.prepare(ENCODE).raw();
    const encode = function* (sql: string): Generator<RowBatch> {
      for (const [data, rows] of scan.iterate(sql, encoding, keys, batchRows, batchBytes) as IterableIterator<[Buffer, bigint | number]>) {
        yield { data, rows: Number(rows) };
      }
    };
    // The first batch, by the main thread, says how many batches make a segment.
    let bytes = 0;
    let rows = 0;
    for (const batch of encode(range(0, 1))) {
      bytes += batch.data.length;
      rows += batch.rows;
      yield batch;
    }
    const perSegment = Math.max(1, Math.floor(SEGMENT_BYTES / Math.max(1, (bytes / Math.max(rows, 1)) * batchRows)));
    const segments: string[] = [];
    for (let from = 1; from < count; from += perSegment) segments.push(range(from, Math.min(from + perSegment, count)));
    const first = Atomics.load(this.#state, S.NEXT);
    this.#send({ type: 'segments', encoding, keys, batchRows, batchBytes, first, segments });
    const end = first + segments.length;
    let early: { index: number; batches: RowBatch[] } | undefined;
    let finished = false;
    try {
      for (let index = first; index < end; index++) {
        if (early?.index === index) {
          yield* early.batches;
          early = undefined;
        } else if (claim(this.#state, index)) {
          yield* encode(segments[index - first]!);
        } else {
          // The worker's. Rather than wait for it, encode the next unclaimed segment (keeping one).
          while (!early && !this.#hasNext()) {
            const next = Atomics.load(this.#state, S.NEXT);
            if (next >= end) break;
            if (claim(this.#state, next)) early = { index: next, batches: [...encode(segments[next - first]!)] };
          }
          yield* this.#take(table, index);
        }
      }
      finished = true;
    } finally {
      // Stopped early (an error downstream): the worker may still be busy; it is closed with the source.
      if (!finished) {
        Atomics.store(this.#state, S.ABORT, 1);
        Atomics.notify(this.#state, S.CONSUMED);
        this.#ready = false;
      }
    }
  }

  /** Whether the worker's next segment is ready. */
  #hasNext(): boolean {
    return Atomics.load(this.#state, S.PRODUCED) > this.#taken;
  }

  /** The worker's next segment, which is segment `index`, waiting for it if needed. */
  #take(table: TableSchema, index: number): RowBatch[] {
    const need = this.#taken + 1;
    const deadline = Date.now() + SEGMENT_TIMEOUT_MS;
    let received: { message: SegmentResult } | undefined;
    for (;;) {
      const produced = Atomics.load(this.#state, S.PRODUCED);
      if (produced >= need && (received = receiveMessageOnPort(this.#port) as { message: SegmentResult } | undefined)) break;
      if (Date.now() > deadline) {
        throw new ScriptoriumError('E_IO', `sqlite: the second reader stopped answering while reading ${quoteIdent(table.name)}`, {
          hint: 'Run again with SCRIPTORIUM_READERS=1 to read with one connection.',
        });
      }
      Atomics.wait(this.#state, S.PRODUCED, produced, 50);
    }
    this.#taken = need;
    Atomics.store(this.#state, S.CONSUMED, need);
    Atomics.notify(this.#state, S.CONSUMED);
    const result = received.message;
    if (result.index !== index) throw new Error(`parallel reader: got segment ${result.index}, expected ${index}`);
    if ('error' in result) {
      throw new ScriptoriumError('E_IO', `sqlite: reading ${quoteIdent(table.name)}: ${result.error}`, {
        hint: 'The database could not be read; check it with `sqlite3 <db> "PRAGMA integrity_check"`.',
      });
    }
    return result.batches.map((b) => ({ data: Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength), rows: b.rows }));
  }

  #send(job: ReaderJob): void {
    this.#port.postMessage(job);
  }

  #release(): void {
    const lock = this.#lock;
    this.#lock = undefined;
    if (!lock) return;
    try {
      lock.exec('ROLLBACK');
    } finally {
      lock.close();
    }
  }

  /** Whether the worker has read rows of some table. */
  get used(): boolean {
    return this.#used;
  }

  /** Lets writers go (if still held) and stops the worker. */
  close(): void {
    this.#release();
    Atomics.store(this.#state, S.ABORT, 1);
    Atomics.notify(this.#state, S.CONSUMED);
    this.#port.close();
    void this.#worker.terminate();
  }
}
