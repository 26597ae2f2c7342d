/** Whole-buffer compression for repository objects: zstd (zstd-napi), gzip (node:zlib) or none. */
import { promisify } from 'node:util';
import { createGunzip, gunzip, gzip } from 'node:zlib';
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
  if (typeof codec !== 'string' || !Object.hasOwn(CODEC_IDS, codec)) {
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
 * `data` decompressed whole into a buffer of `size` bytes (taken from `pool` when given) if it fits
 * there: returns the body and, for zstd, the buffer to give back to the pool once the body is no longer
 * used; returns `undefined`, having allocated nothing that stays, when the body is larger than `size`
 * (or a zstd frame claims so). Memory is never sized by the data: a caller that must read a larger body
 * measures it first with {@link decompressPieces} against the bounds of its format. E_CORRUPT on damage.
 */
export async function decompressPooled(data: Buffer, codecId: number, what: string, size: number, pool?: BufferPool): Promise<{ body: Buffer; buffer?: Buffer } | undefined> {
  switch (codecId) {
    case CODEC_IDS.none:
      return data.length <= size ? { body: data } : undefined;
    case CODEC_IDS.gzip:
      try {
        return { body: await gunzipAsync(data, { maxOutputLength: Math.max(1, size) }) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return undefined;
        throw corrupt(what, err);
      }
    case CODEC_IDS.zstd:
      break;
    default:
      throw new IntegrityError('E_CORRUPT', `${what}: unknown codec id ${codecId}`);
  }
  const b = await zstdBinding();
  let known: number | bigint | null | undefined;
  try {
    known = b.getFrameContentSize(data);
  } catch (err) {
    throw corrupt(what, err);
  }
  if (typeof known === 'number' && known > size) return undefined;
  // One call decodes straight into the buffer (no window buffer of its own, no copy).
  const buffer = pool?.take(size) ?? Buffer.allocUnsafe(size);
  try {
    const length = (pooledDctx ??= new b.DCtx()).decompress(buffer, data);
    return { body: buffer.subarray(0, length), buffer };
  } catch (err) {
    pool?.give(buffer);
    pooledDctx = undefined; // a context that failed midway starts afresh
    if (/destination buffer is too small/i.test((err as Error).message)) return undefined;
    throw corrupt(what, err);
  }
}

/**
 * The decompressed content of `data`, piece by piece: each piece (at most `pieceBytes`) is a view that
 * is valid until the next one is asked for, so memory stays one piece and the decompressor's window
 * however far the data expands (a zstd frame's content size is not trusted). E_CORRUPT on damage,
 * a body that ends inside a frame included.
 */
export async function* decompressPieces(data: Buffer, codecId: number, what: string, pieceBytes = 1 << 20): AsyncGenerator<Buffer> {
  switch (codecId) {
    case CODEC_IDS.none:
      for (let at = 0; at < data.length; at += pieceBytes) yield data.subarray(at, at + pieceBytes);
      return;
    case CODEC_IDS.gzip: {
      const gunzip = createGunzip({ chunkSize: Math.min(pieceBytes, 1 << 20) });
      gunzip.end(data);
      try {
        for await (const piece of gunzip) yield piece as Buffer;
      } catch (err) {
        throw corrupt(what, err);
      } finally {
        gunzip.destroy();
      }
      return;
    }
    case CODEC_IDS.zstd:
      break;
    default:
      throw new IntegrityError('E_CORRUPT', `${what}: unknown codec id ${codecId}`);
  }
  const dctx = new (await zstdBinding()).DCtx();
  const out = Buffer.allocUnsafe(pieceBytes);
  let input = data;
  let inFrame = false;
  for (;;) {
    let ret: number, produced: number, consumed: number;
    try {
      [ret, produced, consumed] = dctx.decompressStream(out, input);
    } catch (err) {
      throw corrupt(what, err);
    }
    input = input.subarray(consumed);
    if (consumed > 0 || produced > 0) inFrame = ret !== 0;
    if (produced > 0) yield out.subarray(0, produced);
    // Nothing left to read and nothing more to flush: the end, or a frame cut short.
    else if (input.length === 0) {
      if (inFrame) throw corrupt(what, new Error('the frame is truncated'));
      return;
    }
  }
}

function corrupt(what: string, err: unknown): IntegrityError {
  return new IntegrityError('E_CORRUPT', `${what}: cannot decompress: ${(err as Error).message}`, { cause: err });
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
