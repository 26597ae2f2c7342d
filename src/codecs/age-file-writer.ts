/**
 * An age file written by a worker thread: the export's main thread only copies its bytes into 1 MiB
 * blocks and hands them over; the worker seals them in 64 KiB ChaCha20-Poly1305 STREAM chunks
 * (node:crypto) and writes them at their place in the file. Sealing on the main thread took ~0.2 s of
 * its time at 1M rows (160 MB of SQL), on the path of every row; the worker runs beside it, on the
 * second core. The file is the one {@link AgeSealer} writes, byte for byte but for its random keys.
 */
import * as fs from 'node:fs';
import { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { openPrivate } from '../core/atomic-file.js';
import { CHUNK_BYTES } from './age-format.js';
import type { AgeSealer } from './age-writer.js';

/** Plaintext bytes per block handed to the worker: 16 chunks. */
const BLOCK_BYTES = 16 * CHUNK_BYTES;
/** Blocks handed over and not yet written before a write waits (memory: about 4 MiB of plaintext). */
const MAX_IN_FLIGHT = 4;
/** Bytes the worker seals between two collections of the buffers that sealing made. */
const COLLECT_EVERY = 4 << 20;
/** Bytes the worker writes between background flushes (as DurableFileWriter's FLUSH_EVERY). */
const FLUSH_EVERY = 16 << 20;

/**
 * The worker: seals each block's chunks in order (counter from 0, the last chunk of the last block
 * flagged) and writes each block's ciphertext at its offset with one positional writev. Every
 * FLUSH_EVERY bytes it starts an fdatasync without waiting for it: a synchronous one held the worker
 * ~14 ms each, 138 ms of a 1M-row export (CPU profile), while the export's blocks waited for it.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const crypto = require('node:crypto');
const fs = require('node:fs');
const v8 = require('node:v8');
const vm = require('node:vm');
const { fd, key, start, chunk, tag, flushEvery, collectEvery } = workerData;
// Each chunk's ciphertext and tag are new buffers outside this thread's small heap, which does not grow
// for them, so V8 left ~55 MB of them uncollected at the peak (1M rows: 138-145 MB against the plain
// export's 83). A minor collection every few MiB sealed frees them.
// (Not named gc: once the flag is set, workers started later have a global gc, which a let here would clash with.)
let collect;
try {
  v8.setFlagsFromString('--expose-gc');
  collect = vm.runInNewContext('gc');
} catch {
  collect = undefined;
}
let sinceCollect = 0;
const nonce = Buffer.alloc(12);
let counter = 0, position = start, since = 0;
// A flush runs on the thread pool while this thread seals and writes on (as BackgroundFlusher): one at
// a time; its error is reported with the next block; the last block is answered once it is done.
let flushing = false, flushError, afterFlush;
const fail = (err) => parentPort.postMessage({ error: String(err && err.message || err), code: err && err.code });
parentPort.on('message', ({ block, length, last }) => {
  try {
    if (flushError) throw flushError;
    const data = Buffer.from(block, 0, length);
    const out = [];
    for (let at = 0; at < length || (last && at === 0 && length === 0); at += chunk) {
      const end = Math.min(length, at + chunk);
      nonce.fill(0);
      nonce.writeUIntBE(counter++, 5, 6);
      nonce[11] = last && end === length ? 1 : 0;
      const c = crypto.createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: tag });
      out.push(c.update(data.subarray(at, end)));
      c.final();
      out.push(c.getAuthTag());
      if (length === 0) break;
    }
    let bytes = 0;
    for (const b of out) bytes += b.length;
    for (let left = bytes, bufs = out; left > 0; ) {
      const n = fs.writevSync(fd, bufs, position);
      position += n;
      left -= n;
      if (left > 0) {
        let skip = n;
        const rest = [];
        for (const b of bufs) {
          if (skip >= b.length) skip -= b.length;
          else { rest.push(skip ? b.subarray(skip) : b); skip = 0; }
        }
        bufs = rest;
      }
    }
    since += bytes;
    sinceCollect += bytes;
    if (collect && sinceCollect >= collectEvery) {
      sinceCollect = 0;
      collect({ type: 'minor', execution: 'sync' });
    }
    if (since >= flushEvery && !last && !flushing) {
      since = 0;
      flushing = true;
      fs.fdatasync(fd, (err) => {
        flushing = false;
        if (err) flushError = err;
        const then = afterFlush;
        afterFlush = undefined;
        if (then) then();
      });
    }
    const answer = () => (flushError ? fail(flushError) : parentPort.postMessage({ done: true, block }, [block]));
    if (last && flushing) afterFlush = answer;
    else answer();
  } catch (err) {
    fail(err);
  }
});
`;

/**
 * Writes `file` (created private, must not exist) as an age file of everything written to it, sealed
 * on a worker thread; durable once finished. A deferred header (a passphrase's scrypt) is written at
 * offset 0 at the end.
 */
export class AgeFileWriter extends Writable {
  readonly #fd: number;
  readonly #sealer: AgeSealer;
  readonly #worker: Worker;
  #block = new ArrayBuffer(BLOCK_BYTES);
  /** A view of #block, to copy into. */
  #view = new Uint8Array(this.#block);
  #filled = 0;
  #spare: ArrayBuffer[] = [];
  #inFlight = 0;
  #waiting: (() => void) | undefined;
  #error: Error | undefined;
  #closed = false;

  constructor(file: string, sealer: AgeSealer) {
    super({ highWaterMark: 1 << 20 });
    const { head, key } = sealer.handOver();
    this.#sealer = sealer;
    this.#fd = openPrivate(file);
    try {
      writeAllSync(this.#fd, head, 0);
      this.#worker = new Worker(WORKER, {
        eval: true,
        workerData: { fd: this.#fd, key, start: head.length, chunk: CHUNK_BYTES, tag: 16, flushEvery: FLUSH_EVERY, collectEvery: COLLECT_EVERY },
      });
    } catch (err) {
      fs.closeSync(this.#fd);
      throw err;
    } finally {
      key.fill(0);
    }
    // Referenced only while it has work: an export that fails half way must not keep the process alive.
    this.#worker.unref();
    this.#worker.on('message', (m: { done?: boolean; block?: ArrayBuffer; error?: string; code?: string }) => {
      if (m.error !== undefined) {
        this.#error ??= Object.assign(new Error(m.error), m.code ? { code: m.code } : {});
      } else if (m.block) {
        if (--this.#inFlight === 0) this.#worker.unref();
        this.#spare.push(m.block);
      }
      const wake = this.#waiting;
      this.#waiting = undefined;
      wake?.();
    });
    this.#worker.on('error', (err) => {
      this.#error ??= err;
      const wake = this.#waiting;
      this.#waiting = undefined;
      wake?.();
    });
  }

  /** Resolves once fewer than `max` blocks are in flight (or the worker failed). */
  async #room(max: number): Promise<void> {
    while (this.#inFlight >= max && !this.#error) await new Promise<void>((resolve) => (this.#waiting = resolve));
    if (this.#error) throw this.#error;
  }

  #send(last: boolean): void {
    const block = this.#block;
    if (this.#inFlight++ === 0) this.#worker.ref();
    this.#worker.postMessage({ block, length: this.#filled, last }, [block]);
    this.#block = this.#spare.pop() ?? new ArrayBuffer(BLOCK_BYTES);
    this.#view = new Uint8Array(this.#block);
    this.#filled = 0;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.#copy([chunk], 0, 0, done);
  }

  // The stream hands over everything buffered at once (an export writes three pieces a batch).
  override _writev(chunks: { chunk: Buffer }[], done: (err?: Error | null) => void): void {
    this.#copy(chunks.map((c) => c.chunk), 0, 0, done);
  }

  /**
   * Copies `data[i]` from `at` on, and the buffers after it, into blocks, handing each full block to
   * the worker. Synchronous (no promise per write: this runs on the export's busiest thread) until
   * MAX_IN_FLIGHT blocks are out; then it goes on once the worker has given one back.
   */
  #copy(data: Buffer[], i: number, at: number, done: (err?: Error | null) => void): void {
    if (this.#error) return done(this.#error);
    for (; i < data.length; i++, at = 0) {
      const b = data[i]!;
      while (at < b.length) {
        if (this.#filled === BLOCK_BYTES) {
          if (this.#inFlight >= MAX_IN_FLIGHT) {
            const [from, offset] = [i, at];
            this.#room(MAX_IN_FLIGHT).then(() => this.#copy(data, from, offset, done), (err: Error) => done(err));
            return;
          }
          this.#send(false); // more bytes follow a full block, so its chunks are not the last
        }
        const n = Math.min(b.length - at, BLOCK_BYTES - this.#filled);
        this.#view.set(at === 0 && n === b.length ? b : b.subarray(at, at + n), this.#filled);
        this.#filled += n;
        at += n;
      }
    }
    done();
  }

  override _final(done: (err?: Error | null) => void): void {
    this.#finish().then(() => done(), (err: Error) => done(err));
  }

  async #finish(): Promise<void> {
    await this.#room(MAX_IN_FLIGHT);
    this.#send(true); // the last chunk may be full, and is empty only if the whole payload is
    await this.#room(1);
    await this.#stop();
    const header = await this.#sealer.finishHeader();
    if (header) writeAllSync(this.#fd, header, 0);
    await new Promise<void>((resolve, reject) => fs.fsync(this.#fd, (err) => (err ? reject(err) : resolve())));
    this.#closed = true;
    await new Promise<void>((resolve, reject) => fs.close(this.#fd, (err) => (err ? reject(err) : resolve())));
  }

  async #stop(): Promise<void> {
    await this.#worker.terminate();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (this.#closed) return done(err);
    this.#closed = true;
    void this.#stop().finally(() => fs.close(this.#fd, () => done(err)));
  }
}

/** Positional writeSync until every byte of `data` is at `position`. */
function writeAllSync(fd: number, data: Buffer, position: number): void {
  for (let at = 0; at < data.length; ) at += fs.writeSync(fd, data, at, data.length - at, position + at);
}
