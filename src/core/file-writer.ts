import * as fs from 'node:fs';
import { Writable } from 'node:stream';
import { openPrivate } from './atomic-file.js';

/** Bytes written between background flushes. */
export const FLUSH_EVERY = 16 << 20;

/**
 * Keeps a file's unflushed tail short while it is written: after every `every` bytes it starts an
 * fdatasync on libuv's thread pool (one at a time) and does not wait for it. The disk then writes the
 * file while the caller produces the rest, and the final fsync that makes the file durable only has the
 * last few MiB left to wait for. Flush errors are kept and thrown by {@link finish}.
 */
export class BackgroundFlusher {
  readonly #fd: number;
  readonly #every: number;
  #since = 0;
  #inFlight: Promise<void> | undefined;
  #error: Error | undefined;

  constructor(fd: number, every = FLUSH_EVERY) {
    this.#fd = fd;
    this.#every = every;
  }

  /** Counts `bytes` just written; may start a flush. */
  wrote(bytes: number): void {
    this.#since += bytes;
    if (this.#since < this.#every || this.#inFlight) return;
    this.#since = 0;
    this.#inFlight = new Promise<void>((resolve) => {
      fs.fdatasync(this.#fd, (err) => {
        if (err) this.#error ??= err;
        this.#inFlight = undefined;
        resolve();
      });
    });
  }

  /** Waits for a flush in progress, then makes the whole file durable. */
  async finish(): Promise<void> {
    await this.#inFlight;
    if (this.#error) throw this.#error;
    await new Promise<void>((resolve, reject) => fs.fsync(this.#fd, (err) => (err ? reject(err) : resolve())));
  }

  /** Waits for a flush in progress without raising its error (before closing on a failure path). */
  async settle(): Promise<void> {
    await this.#inFlight;
  }
}

/**
 * A transformation of the bytes on their way into a file (encryption): `update` returns what is ready,
 * `final` the rest. It runs inside the writer's own synchronous writes, without a stream of its own.
 */
export interface ByteEncoder {
  /** Appends the encoded bytes that are ready to `out` (or a new array) and returns it. */
  update(data: Buffer, out?: Buffer[]): Buffer[];
  final(out?: Buffer[]): Buffer[];
}

/**
 * A file written synchronously, flushed in the background as it grows (on libuv's thread pool) and
 * fsynced before it finishes: when `finish` (the stream's end callback) has run, every byte is durable.
 * It creates `file`, which must not exist, private (0600 whatever the umask: exports hold the data of
 * databases that are usually private themselves), and refuses to follow a symlink there.
 *
 * Why synchronous writes: the thread pool made the caller wait for a round trip through the event loop
 * whenever its 1 MiB of buffer filled, and the main thread of an export has little else to do now that
 * rows are encoded on background readers. Measured on the 1M-row demo: ndjson export 0.59-0.66 s
 * through the pool, 0.51-0.57 s with synchronous writes (which cost ~50 ms in all), and 3 MB less RSS.
 */
export class DurableFileWriter extends Writable {
  readonly #fd: number;
  readonly #flusher: BackgroundFlusher;
  readonly #encoder: ByteEncoder | undefined;

  /** With an `encoder`, every byte written passes through it on the way into the file. */
  constructor(file: string, highWaterMark = 1 << 20, encoder?: ByteEncoder) {
    super({ highWaterMark });
    this.#fd = openPrivate(file);
    this.#flusher = new BackgroundFlusher(this.#fd);
    this.#encoder = encoder;
  }

  override _writev(chunks: { chunk: Buffer }[], done: (err?: Error | null) => void): void {
    const buffers = chunks.map((c) => c.chunk);
    if (!this.#encoder) return this.#encode(buffers, done);
    const out: Buffer[] = [];
    for (const b of buffers) this.#encoder.update(b, out);
    this.#encode(out, done);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.#encode(this.#encoder ? this.#encoder.update(chunk) : [chunk], done);
  }

  #encode(buffers: Buffer[], done: (err?: Error | null) => void): void {
    if (buffers.length === 0) done();
    else this.#writeAll(buffers, done);
  }

  #writeAll(buffers: Buffer[], done: (err?: Error | null) => void): void {
    try {
      let left = buffers.reduce((n, b) => n + b.length, 0);
      while (left > 0) {
        const written = fs.writevSync(this.#fd, buffers);
        this.#flusher.wrote(written);
        left -= written;
        if (left === 0) break;
        // A short write: continue after the bytes that went out.
        let skip = written;
        const rest: Buffer[] = [];
        for (const b of buffers) {
          if (skip >= b.length) skip -= b.length;
          else {
            rest.push(skip ? b.subarray(skip) : b);
            skip = 0;
          }
        }
        buffers = rest;
      }
    } catch (err) {
      done(err as Error);
      return;
    }
    done();
  }

  override _final(done: (err?: Error | null) => void): void {
    const finish = (err?: Error | null): void => {
      if (err) return done(err);
      this.#flusher.finish().then(
        () => fs.close(this.#fd, (e) => done(e)),
        (e: Error) => done(e),
      );
    };
    if (this.#encoder) this.#encode(this.#encoder.final(), finish);
    else finish();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (!this.writableFinished) {
      void this.#flusher.settle().then(() => fs.close(this.#fd, () => done(err)));
      return;
    }
    done(err);
  }
}
