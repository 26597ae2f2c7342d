/** Whole-buffer compression for repository objects: zstd (zstd-napi), gzip (node:zlib) or none. */
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import { IntegrityError, UsageError } from '../core/errors.js';
import { zstdBinding as codecZstdBinding, type ZstdBinding } from '../codecs/codec.js';
export type { ZstdBinding };

/** The compression codecs a repository may use. */
export type CompressionCodec = 'zstd' | 'gzip' | 'none';

/** The codec byte written in front of every compressed repository object. */
export const CODEC_IDS: Readonly<Record<CompressionCodec, number>> = { none: 0, gzip: 1, zstd: 2 };

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

type Zstd = typeof import('zstd-napi');
let zstd: Zstd | undefined;
async function loadZstd(): Promise<Zstd> {
  if (zstd) return zstd;
  try {
    zstd = await import('zstd-napi');
    return zstd;
  } catch (err) {
    throw new UsageError('zstd compression needs the zstd-napi package, which failed to load', {
      code: 'E_UNKNOWN_COMPRESSION',
      hint: 'Reinstall scriptorium (npm rebuild zstd-napi), or init the repository with --compression gzip.',
      cause: err,
    });
  }
}

/**
 * zstd's level when the repository names none. Level 1 rather than zstd's own default of 3: on the
 * demo's rows, in 2 MiB packs, it compresses 1.6x as fast and a little smaller (`zstd -b1 -B2097152`
 * over a 163 MB ndjson export: level 1 423 MB/s, ratio 4.57; level 3 264 MB/s, ratio 4.46).
 */
export const ZSTD_DEFAULT_LEVEL = 1;

/** Throws a `UsageError` unless `codec` and `level` are supported. */
export function checkCompression(codec: string, level?: number): asserts codec is CompressionCodec {
  if (!(codec in CODEC_IDS)) {
    throw new UsageError(`unknown compression ${JSON.stringify(codec)}`, {
      code: 'E_UNKNOWN_COMPRESSION',
      hint: 'Use one of: zstd, gzip, none.',
    });
  }
  if (level !== undefined) {
    const [lo, hi] = codec === 'zstd' ? [-7, 22] : codec === 'gzip' ? [1, 9] : [0, 0];
    if (!Number.isInteger(level) || level < lo || level > hi) {
      throw new UsageError(`compression level ${level} is out of range for ${codec} (${lo}..${hi})`);
    }
  }
}

/** Compresses `data` whole. */
export async function compress(data: Buffer, codec: CompressionCodec, level?: number): Promise<Buffer> {
  switch (codec) {
    case 'none':
      return data;
    case 'gzip':
      return gzipAsync(data, { level: level ?? 6 });
    case 'zstd':
      return (await loadZstd()).compress(data, { compressionLevel: level ?? ZSTD_DEFAULT_LEVEL });
  }
}

/** zstd-napi's low-level bindings (contexts, streaming), with the repository's error when it is missing. */
export async function zstdBinding(): Promise<ZstdBinding> {
  await loadZstd();
  return codecZstdBinding();
}
/** One zstd context per thread, kept with its settings, and the scratch buffer it compresses into. */
let context: { cctx: InstanceType<ZstdBinding['CCtx']>; level: number; threads: number } | undefined;
let scratch: Buffer | undefined;

/** Bytes per zstd job when one object is compressed on several threads. */
const ZSTD_JOB_BYTES = 512 << 10;

/**
 * `prefix` followed by `data` compressed whole, in one buffer of exactly that size. zstd compresses
 * through a context and scratch buffer kept between calls (no large buffer becomes garbage per call);
 * with `threads` > 1 it spreads the work over that many threads of its own (a standard frame, a little
 * larger than a single-threaded one).
 */
export async function compressWithPrefix(prefix: Buffer, data: Buffer, codec: CompressionCodec, level?: number, threads = 1): Promise<Buffer> {
  if (codec !== 'zstd') return Buffer.concat([prefix, await compress(data, codec, level)]);
  const binding = await zstdBinding();
  const lvl = level ?? ZSTD_DEFAULT_LEVEL;
  const workers = threads > 1 && data.length >= 2 * ZSTD_JOB_BYTES ? threads : 0;
  if (!context || context.level !== lvl || context.threads !== workers) {
    const cctx = new binding.CCtx();
    cctx.setParameter(binding.CParameter.compressionLevel, lvl);
    if (workers > 0) {
      cctx.setParameter(binding.CParameter.nbWorkers, workers);
      cctx.setParameter(binding.CParameter.jobSize, ZSTD_JOB_BYTES);
    }
    context = { cctx, level: lvl, threads: workers };
  }
  const bound = binding.compressBound(data.length);
  if (!scratch || scratch.length < bound) scratch = Buffer.allocUnsafe(Math.max(bound, 64 << 10));
  const length = context.cctx.compress2(scratch, data);
  const out = Buffer.allocUnsafe(prefix.length + length);
  prefix.copy(out, 0);
  scratch.copy(out, prefix.length, 0, length);
  return out;
}

/**
 * Buffers handed out and taken back, so that objects read one after the other (packs, during a restore)
 * reuse the same memory instead of leaving a large garbage buffer behind each.
 */
export class BufferPool {
  readonly #free: Buffer[] = [];

  constructor(readonly keep = 4) {}

  /** A buffer of at least `size` bytes (contents undefined). */
  take(size: number): Buffer {
    for (let i = this.#free.length - 1; i >= 0; i--) {
      if (this.#free[i].length >= size) return this.#free.splice(i, 1)[0];
    }
    return Buffer.allocUnsafe(size);
  }

  /** Drops every buffer kept. */
  clear(): void {
    this.#free.length = 0;
  }

  /** Gives back a buffer from {@link take} (or any buffer of its own); the smallest go first when full. */
  give(buffer: Buffer): void {
    this.#free.push(buffer);
    if (this.#free.length > this.keep) {
      this.#free.sort((a, b) => b.length - a.length);
      this.#free.length = this.keep;
    }
  }
}

/**
 * Like {@link decompress}, but a zstd body is decompressed into a buffer taken from `pool` (of the
 * frame's content size, else of `sizeHint` bytes, twice that when too small): returns the body, and the
 * buffer to give back to the pool once the body is no longer used (none for other codecs).
 */
export async function decompressPooled(data: Buffer, codecId: number, what: string, pool: BufferPool, sizeHint = 0): Promise<{ body: Buffer; buffer?: Buffer }> {
  if (codecId !== CODEC_IDS.zstd) return { body: await decompress(data, codecId, what) };
  const b = await zstdBinding();
  let size = Math.max(sizeHint, 64 << 10);
  try {
    const known = b.getFrameContentSize(data);
    if (typeof known === 'number') size = Math.max(known, 1);
  } catch (err) {
    throw new IntegrityError('E_CORRUPT', `${what}: cannot decompress: ${(err as Error).message}`, { cause: err });
  }
  // One call decodes straight into the buffer (no window buffer of its own, no copy); a frame without
  // its size that does not fit is retried in a buffer twice as large.
  for (;;) {
    const buffer = pool.take(size);
    try {
      const length = (pooledDctx ??= new b.DCtx()).decompress(buffer, data);
      return { body: buffer.subarray(0, length), buffer };
    } catch (err) {
      pool.give(buffer);
      pooledDctx = undefined; // a context that failed midway starts afresh
      if (/destination buffer is too small/i.test((err as Error).message) && size < 1 << 30) {
        size *= 2;
        continue;
      }
      throw new IntegrityError('E_CORRUPT', `${what}: cannot decompress: ${(err as Error).message}`, { cause: err });
    }
  }
}

let pooledDctx: InstanceType<ZstdBinding['DCtx']> | undefined;

/** Decompresses an object written with the codec whose id is `codecId`; throws E_CORRUPT on damage. */
export async function decompress(data: Buffer, codecId: number, what: string): Promise<Buffer> {
  try {
    switch (codecId) {
      case CODEC_IDS.none:
        return data;
      case CODEC_IDS.gzip:
        return await gunzipAsync(data);
      case CODEC_IDS.zstd:
        return (await loadZstd()).decompress(data);
    }
  } catch (err) {
    throw new IntegrityError('E_CORRUPT', `${what}: cannot decompress: ${(err as Error).message}`, { cause: err });
  }
  throw new IntegrityError('E_CORRUPT', `${what}: unknown codec id ${codecId}`);
}
