/**
 * The second reader of a parallel export (see parallel-reader.ts): a worker thread with its own read-only
 * connection, at the same snapshot as the main one, that encodes the segments it is given and hands
 * each over as soon as it is done. Jobs arrive on `port`; results go back on it and are announced in the
 * shared state, which the main thread waits on synchronously.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { loadExtension } from './extension.js';
import { AHEAD, claim, S, type ReaderJob, type SegmentResult } from './parallel-protocol.js';

const { file, state: shared, port } = workerData as { file: string; state: SharedArrayBuffer; port: MessagePort };
const state = new Int32Array(shared);
let db: Database.Database | undefined;

function signal(slot: number, value?: number): void {
  if (value === undefined) Atomics.add(state, slot, 1);
  else Atomics.store(state, slot, value);
  Atomics.notify(state, slot);
}

/** Opens the connection and starts its read transaction (the main thread holds writers off meanwhile). */
function begin(): void {
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 250');
    db.pragma('cache_size = -512');
    if (!loadExtension(db)) throw new Error('the scriptorium extension is not available');
    db.exec('BEGIN');
    db.prepare('SELECT count(*) FROM sqlite_schema').get(); // the first read fixes the snapshot
    signal(S.BEGUN, 1);
  } catch {
    db?.close();
    db = undefined;
    signal(S.BEGUN, 2);
  }
}

/**
 * Encodes whichever of the job's segments the main thread has not claimed, in order, staying at most
 * AHEAD segments ahead of it.
 */
function run(job: Extract<ReaderJob, { type: 'segments' }>): void {
  const scan = db!.prepare('SELECT data, rows FROM scriptorium_encode(?, ?, ?, ?, ?)').raw();
  const end = job.first + job.segments.length;
  for (;;) {
    for (;;) {
      if (Atomics.load(state, S.ABORT)) return;
      const consumed = Atomics.load(state, S.CONSUMED);
      if (Atomics.load(state, S.PRODUCED) - consumed < AHEAD) break;
      Atomics.wait(state, S.CONSUMED, consumed, 1000);
    }
    let index = Atomics.load(state, S.NEXT);
    while (index < end && !claim(state, index)) index = Atomics.load(state, S.NEXT);
    if (index >= end) return;
    let result: SegmentResult;
    const transfer: ArrayBuffer[] = [];
    try {
      const batches: { data: Uint8Array; rows: number }[] = [];
      for (const [data, rows] of scan.iterate(job.segments[index - job.first], job.encoding, job.keys, job.batchRows, job.batchBytes) as IterableIterator<[Buffer, number]>) {
        batches.push({ data, rows: Number(rows) });
        // Buffers from SQLite own their memory: hand it over instead of copying it.
        if (data.byteOffset === 0 && data.buffer.byteLength === data.length) transfer.push(data.buffer as ArrayBuffer);
      }
      result = { index, batches };
    } catch (err) {
      result = { index, error: err instanceof Error ? err.message : String(err) };
    }
    port.postMessage(result, transfer);
    signal(S.PRODUCED);
    if ('error' in result) return;
  }
}

port.on('message', (job: ReaderJob) => {
  if (job.type === 'begin') begin();
  else if (job.type === 'segments') run(job);
  else {
    db?.close();
    port.close();
  }
});
