/**
 * Seals pack bodies (compress, then hash) on a worker thread when the compiled worker is available, so
 * that compression runs on the second core while the main thread reads and chunks rows. Falls back to
 * sealing inline (when running from TypeScript sources, or if the worker cannot start).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { CompressionCodec } from './compression.js';
import { sealObject } from './object-file.js';

/** zstd threads per pack on the worker: the pack's halves compress on both cores when the reader waits. */
const SEAL_THREADS = 2;

/** A sealed pack, and the body's memory when it can be reused. */
export interface Sealed {
  file: Buffer;
  hash: string;
  body?: Buffer;
}

interface Pending {
  resolve: (sealed: Sealed) => void;
  reject: (err: Error) => void;
}

/** Compresses and names pack bodies, possibly in parallel with the caller. */
export class PackSealer {
  readonly #codec: CompressionCodec;
  readonly #level: number | undefined;
  readonly #worker: Worker | undefined;
  readonly #pending = new Map<number, Pending>();
  #next = 0;

  constructor(codec: CompressionCodec, level: number | undefined) {
    this.#codec = codec;
    this.#level = level;
    const url = new URL('./seal-worker.js', import.meta.url);
    // gzip already runs on the libuv pool; zstd-napi is synchronous, so it gets a thread of its own.
    if (codec === 'zstd' && url.protocol === 'file:' && existsSync(fileURLToPath(url))) {
      try {
        // The worker only moves buffers to and from zstd: a small heap is plenty.
        this.#worker = new Worker(url, { resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 32 } });
        this.#worker.unref();
        this.#worker.on('message', (m: { id: number; file?: Uint8Array; hash?: string; body?: Uint8Array; error?: string }) => {
          const pending = this.#pending.get(m.id);
          this.#pending.delete(m.id);
          if (m.error !== undefined || !m.file || !m.hash) pending?.reject(new Error(`pack compression failed: ${m.error}`));
          else {
            const body = m.body ? Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength) : undefined;
            pending?.resolve({ file: Buffer.from(m.file.buffer, m.file.byteOffset, m.file.byteLength), hash: m.hash, ...(body ? { body } : {}) });
          }
        });
        this.#worker.on('error', (err) => this.#failAll(err));
      } catch {
        this.#worker = undefined;
      }
    }
  }

  /** Compresses `body` into a pack file and returns it with its name. */
  seal(body: Buffer): Promise<Sealed> {
    if (!this.#worker) return sealObject('pack', body, this.#codec, this.#level).then((sealed) => ({ ...sealed, body }));
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      // The body is a buffer of its own (PackBuilder.take): hand its memory over instead of copying it.
      const own = body.byteOffset === 0 && body.buffer.byteLength >= body.length && !(body.buffer instanceof SharedArrayBuffer);
      this.#worker!.postMessage({ id, body, codec: this.#codec, level: this.#level, threads: SEAL_THREADS }, own && body.length > 4096 ? [body.buffer as ArrayBuffer] : []);
    });
  }

  async close(): Promise<void> {
    await this.#worker?.terminate();
  }

  #failAll(err: Error): void {
    for (const pending of this.#pending.values()) pending.reject(err);
    this.#pending.clear();
  }
}
