/**
 * The byte sources an import reads from: a file (read straight into the reader's buffer), any stream,
 * and their decompressed forms. zstd decompresses through one context straight into the reader's
 * buffer, so a compressed import allocates nothing per block either.
 */
import type { FileHandle } from 'node:fs/promises';
import { IntegrityError, ScriptoriumError } from '../core/errors.js';
import { zstdBinding, type CodecName } from '../codecs/codec.js';
import { iterableSource, type ByteSource } from './byte-reader.js';

/** A source reading a file from its current position. */
export function fileSource(handle: FileHandle): ByteSource {
  return {
    async read(into, offset, length) {
      const { bytesRead } = await handle.read(into, offset, length, null);
      return bytesRead;
    },
  };
}

/** Compressed bytes read from the source at a time. */
const ZSTD_INPUT_BYTES = 256 << 10;

/**
 * Reads `source` ahead into two buffers in turn: `next` returns the bytes read into one (valid until the
 * following call) while the next read fills the other, so that reading overlaps with decompressing.
 */
function readAhead(source: ByteSource, size: number): { next(): Promise<Buffer | null> } {
  const buffers = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
  let turn = 0;
  let pending: Promise<number> | undefined;
  const start = (): void => {
    const p = source.read(buffers[turn], 0, size);
    p.catch(() => undefined); // awaited by the next call; keep an early failure from going unhandled
    pending = p;
  };
  let done = false;
  return {
    async next() {
      if (done) return null;
      if (!pending) start();
      const n = await pending!;
      if (n === 0) {
        done = true;
        return null;
      }
      const chunk = buffers[turn].subarray(0, n);
      turn ^= 1;
      start(); // into the other buffer, while the caller uses this one
      return chunk;
    },
  };
}

/**
 * The content of a zstd stream (one or more frames) read from `raw`. A stream that ends inside a frame
 * is E_TRUNCATED; data zstd cannot decode is E_CORRUPT.
 */
export async function zstdSource(raw: ByteSource): Promise<ByteSource> {
  const dctx = new (await zstdBinding()).DCtx();
  const chunks = readAhead(raw, ZSTD_INPUT_BYTES);
  let input: Buffer = Buffer.alloc(0);
  let inPos = 0;
  let inEnd = 0;
  let rawDone = false;
  let inFrame = false;
  return {
    async read(into, offset, length) {
      for (;;) {
        if (inPos >= inEnd && !rawDone) {
          const chunk = await chunks.next();
          if (chunk === null) rawDone = true;
          else input = chunk;
          inPos = 0;
          inEnd = chunk?.length ?? 0;
        }
        let produced: number;
        let consumed: number;
        let ret: number;
        try {
          [ret, produced, consumed] = dctx.decompressStream(into.subarray(offset, offset + length), input.subarray(inPos, inEnd));
        } catch (err) {
          throw new IntegrityError('E_CORRUPT', `zstd: ${(err as Error).message}`, {
            hint: 'The compressed data is damaged; nothing was written to the target.',
            cause: err,
          });
        }
        inPos += consumed;
        if (consumed > 0 || produced > 0) inFrame = ret !== 0;
        if (produced > 0) return produced;
        if (rawDone && inPos >= inEnd) {
          if (inFrame) {
            throw new IntegrityError('E_TRUNCATED', 'zstd: the stream ends in the middle of a compressed frame', {
              hint: 'The compressed file is incomplete (interrupted copy or download?); nothing was written to the target.',
            });
          }
          return 0;
        }
      }
    },
  };
}

/** The content of a gzip stream read from `raw`, through node:zlib; its errors as E_TRUNCATED or E_CORRUPT. */
export async function gzipSource(raw: ByteSource): Promise<ByteSource> {
  const zlib = await import('node:zlib');
  const gunzip = zlib.createGunzip({ chunkSize: 256 * 1024 });
  (async () => {
    try {
      for (;;) {
        const chunk = Buffer.allocUnsafe(64 << 10); // zlib keeps a reference until it has read it
        const n = await raw.read(chunk, 0, chunk.length);
        if (n === 0) break;
        if (!gunzip.write(chunk.subarray(0, n))) await new Promise((r) => gunzip.once('drain', r));
      }
      gunzip.end();
    } catch (err) {
      gunzip.destroy(err as Error);
    }
  })();
  return iterableSource(codecErrors(gunzip, 'gzip'));
}

/** A decompressor's own errors (zlib `Z_*`) as E_TRUNCATED or E_CORRUPT, not as internal errors. */
async function* codecErrors(source: AsyncIterable<Buffer>, codec: CodecName): AsyncGenerator<Buffer> {
  try {
    yield* source;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (err instanceof ScriptoriumError || !e.code?.startsWith('Z_')) throw err;
    const cut = /unexpected end|ended in (?:the )?middle/i.test(e.message);
    throw new IntegrityError(cut ? 'E_TRUNCATED' : 'E_CORRUPT', `${codec}: ${e.message}`, {
      hint: cut
        ? 'The compressed file is incomplete (interrupted copy or download?); nothing was written to the target.'
        : 'The compressed data is damaged; nothing was written to the target.',
      cause: err,
    });
  }
}
