import { once } from 'node:events';
import type { Writable } from 'node:stream';

/** Writes to a Node stream with backpressure, counting bytes; chunks are written as given. */
export class Sink {
  bytes = 0;
  readonly #stream: Writable;
  #error: Error | undefined;

  constructor(stream: Writable) {
    this.#stream = stream;
    stream.on('error', (err) => {
      this.#error ??= err;
    });
  }

  async write(chunk: Buffer | string): Promise<void> {
    if (this.#error) throw this.#error;
    if (chunk.length === 0) return;
    this.bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (!this.#stream.write(chunk)) await once(this.#stream, 'drain'); // rejects if the stream errors
    if (this.#error) throw this.#error;
  }
}
