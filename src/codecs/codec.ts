import type { Duplex } from 'node:stream';
import * as zlib from 'node:zlib';
import { ScriptoriumError, UsageError } from '../core/errors.js';

/**
 * Stream compression. Import recognises a codec by its magic bytes, never by a file name. zstd is
 * loaded lazily from its native addon, so plain exports never load it.
 */
export type CodecName = 'none' | 'gzip' | 'zstd';

export interface Codec {
  readonly name: CodecName;
  /** File name suffix, including the dot ('' for none). */
  readonly extension: string;
  /** The first bytes of every stream this codec writes. */
  readonly magic: Buffer;
  compressor(level?: number): Promise<Duplex>;
}

const gzip: Codec = {
  name: 'gzip',
  extension: '.gz',
  magic: Buffer.from([0x1f, 0x8b]),
  compressor: async (level) => zlib.createGzip({ level: level ?? 6, chunkSize: 256 * 1024 }),
};

const zstd: Codec = {
  name: 'zstd',
  extension: '.zst',
  magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]),
  async compressor(level) {
    const { CompressStream } = await loadZstd();
    return new CompressStream({ compressionLevel: level ?? 3 });
  },
};

const none: Codec = {
  name: 'none',
  extension: '',
  magic: Buffer.alloc(0),
  compressor: () => Promise.reject(new TypeError('codec none has no compressor')),
};

/** The codecs scriptorium knows, by name. */
export function defaultCodecs(): ReadonlyMap<CodecName, Codec> {
  return new Map<CodecName, Codec>([
    ['none', none],
    ['gzip', gzip],
    ['zstd', zstd],
  ]);
}

export function codecByName(name: string): Codec {
  const codec = defaultCodecs().get(name as CodecName);
  if (!codec) {
    throw new UsageError(`unknown compression ${JSON.stringify(name)}`, {
      code: 'E_UNKNOWN_COMPRESSION',
      hint: 'Use --compress gzip or --compress zstd (or leave it out).',
    });
  }
  return codec;
}

/** The codec whose magic bytes start `head` (none if no compressed format matches). */
export function detectCodec(head: Buffer): Codec {
  for (const codec of [zstd, gzip]) {
    if (head.length >= codec.magic.length && head.subarray(0, codec.magic.length).equals(codec.magic)) return codec;
  }
  return none;
}

async function loadZstd(): Promise<typeof import('zstd-napi')> {
  try {
    return await import('zstd-napi');
  } catch (err) {
    throw new ScriptoriumError('E_DEPENDENCY', 'zstd: the zstd-napi package could not be loaded', {
      hint: 'Reinstall with `npm install` (zstd-napi builds from source), or use --compress gzip.',
      cause: err,
    });
  }
}

export type ZstdBinding = typeof import('zstd-napi/binding.js');
let binding: ZstdBinding | undefined;

/** zstd-napi's low-level bindings (contexts with reused buffers), loaded once, with the same error as above. */
export async function zstdBinding(): Promise<ZstdBinding> {
  if (binding) return binding;
  await loadZstd();
  const mod = (await import('zstd-napi/binding.js')) as ZstdBinding & { default?: ZstdBinding };
  binding = mod.default ?? mod;
  return binding;
}
