import * as fs from 'node:fs';
import { Writable } from 'node:stream';
import { openPrivate } from '../core/atomic-file.js';
import { BackgroundFlusher } from '../core/file-writer.js';
import { zstdBinding, type ZstdBinding as Binding } from './codec.js';

/**
 * A zstd-compressed file written through one compression context and one reused output buffer. The
 * library's CompressStream allocates a fresh output buffer for every block it emits; at 1M rows those
 * spent buffers held ~70 MB of native memory at the peak. Here nothing is allocated per block, and each
 * block goes to the file with a synchronous write (into the page cache), in order. Like
 * DurableFileWriter, it flushes in the background as the file grows and is durable once finished.
 */
export class ZstdFileWriter extends Writable {
  readonly #fd: number;
  readonly #cctx: Binding['CCtx']['prototype'];
  readonly #binding: Binding;
  readonly #out: Buffer;
  readonly #flusher: BackgroundFlusher;

  private constructor(fd: number, binding: Binding, level: number) {
    super({ highWaterMark: 1 << 20 });
    this.#fd = fd;
    this.#flusher = new BackgroundFlusher(fd);
    this.#binding = binding;
    this.#cctx = new binding.CCtx();
    this.#cctx.setParameter(binding.CParameter.compressionLevel, level);
    this.#out = Buffer.allocUnsafe(binding.cStreamOutSize());
  }

  /** Creates `file` (which must not exist; private, 0600) and returns a writer that compresses into it. */
  static async create(file: string, level = 3): Promise<ZstdFileWriter> {
    const binding = await zstdBinding(); // before the file exists: a failure here leaves nothing behind
    return new ZstdFileWriter(openPrivate(file), binding, level);
  }

  #compress(chunk: Buffer, end: boolean): void {
    const directive = end ? this.#binding.EndDirective.end : this.#binding.EndDirective.continue;
    let input = chunk;
    for (;;) {
      const [remaining, produced, consumed] = this.#cctx.compressStream2(this.#out, input, directive);
      if (produced > 0) {
        writeFully(this.#fd, this.#out.subarray(0, produced));
        this.#flusher.wrote(produced);
      }
      input = input.subarray(consumed);
      if (input.length === 0 && (!end || remaining === 0)) return;
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    try {
      this.#compress(chunk, false);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _final(done: (err?: Error | null) => void): void {
    try {
      this.#compress(Buffer.alloc(0), true);
    } catch (err) {
      return done(err as Error);
    }
    this.#flusher.finish().then(
      () => fs.close(this.#fd, (err) => done(err)),
      (err: Error) => done(err),
    );
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (this.writableFinished) return done(err);
    void this.#flusher.settle().then(() => fs.close(this.#fd, () => done(err)));
  }
}

/** writeSync until every byte is written (it may write fewer than asked). */
function writeFully(fd: number, data: Buffer): void {
  let at = 0;
  while (at < data.length) at += fs.writeSync(fd, data, at, data.length - at);
}
