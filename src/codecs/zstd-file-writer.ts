import * as fs from 'node:fs';
import { Writable } from 'node:stream';
import { openPrivate } from '../core/atomic-file.js';
import { BackgroundFlusher, type ByteEncoder } from '../core/file-writer.js';
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
  readonly #encoder: ByteEncoder | undefined;

  private constructor(fd: number, binding: Binding, level: number, encoder: ByteEncoder | undefined) {
    super({ highWaterMark: 1 << 20 });
    this.#fd = fd;
    this.#encoder = encoder;
    this.#flusher = new BackgroundFlusher(fd);
    this.#binding = binding;
    this.#cctx = new binding.CCtx();
    this.#cctx.setParameter(binding.CParameter.compressionLevel, level);
    this.#out = Buffer.allocUnsafe(binding.cStreamOutSize());
  }

  /**
   * Creates `file` (which must not exist; private, 0600) and returns a writer that compresses into it;
   * with an `encoder` (encryption), the compressed blocks pass through it on their way into the file.
   */
  static async create(file: string, level = 3, encoder?: ByteEncoder): Promise<ZstdFileWriter> {
    const binding = await zstdBinding(); // before the file exists: a failure here leaves nothing behind
    return new ZstdFileWriter(openPrivate(file), binding, level, encoder);
  }

  #put(data: Buffer): void {
    writeFully(this.#fd, data);
    this.#flusher.wrote(data.length);
  }

  #compress(chunk: Buffer, end: boolean): void {
    const directive = end ? this.#binding.EndDirective.end : this.#binding.EndDirective.continue;
    let input = chunk;
    for (;;) {
      const [remaining, produced, consumed] = this.#cctx.compressStream2(this.#out, input, directive);
      if (produced > 0) {
        // The encoder copies what it keeps: #out is reused for the next block.
        if (this.#encoder) for (const b of this.#encoder.update(this.#out.subarray(0, produced))) this.#put(b);
        else this.#put(this.#out.subarray(0, produced));
      }
      input = input.subarray(consumed);
      if (input.length === 0 && (!end || remaining === 0)) {
        if (end && this.#encoder) for (const b of this.#encoder.final()) this.#put(b);
        return;
      }
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
