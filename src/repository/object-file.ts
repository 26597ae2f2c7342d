/**
 * The framing shared by packs, index files and snapshot manifests: an 8-byte magic naming the kind and
 * format version, one codec byte, then the (compressed) body. Such objects are named by the SHA-256 of
 * their whole content, so any damage, truncation included, is detected before the body is read.
 */
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { IntegrityError } from '../core/errors.js';
import { CODEC_IDS, compressWithPrefix, zstdBinding, type CompressionCodec } from './compression.js';

const gunzipAsync = promisify(gunzip);

export const MAGIC = {
  pack: Buffer.from('SCRPACK1', 'latin1'),
  index: Buffer.from('SCRINDX1', 'latin1'),
  snapshot: Buffer.from('SCRSNAP1', 'latin1'),
  /** Format 2's index file: 8-byte chunk fingerprints (see fingerprint-index.ts). */
  index2: Buffer.from('SCRINDX2', 'latin1'),
  /** Format 2's snapshot list: which snapshots and index files a backup starts from (see snapshot-list.ts). */
  snapshotList: Buffer.from('SCRLIST2', 'latin1'),
} as const;

export type ObjectKind = keyof typeof MAGIC;

/**
 * The largest body (uncompressed) a reader accepts for an object of `kind` whose compressed body has
 * `compressed` bytes, so that a hostile or damaged object cannot make it allocate without limit (a
 * compressed body may claim, or expand to, any size: 32 KB of zstd RLE blocks expand to 1 GiB).
 * - An index file is 32 bytes of hash a chunk, which do not compress (it is written with codec none):
 *   twice its compressed size and a mebibyte.
 * - A manifest is JSON that V8 must hold as one string (at most about 512 MiB): up to 1024 times its
 *   compressed size (JSON of ranges and schema compresses far less), at least 16 MiB, at most 256 MiB.
 * A pack's limit depends on the repository's pack size and is given by its reader (see pack.ts).
 */
export function maxBodyBytes(kind: Exclude<ObjectKind, 'pack'>, compressed: number): number {
  if (kind === 'index' || kind === 'index2') return 2 * compressed + (1 << 20);
  return Math.min(256 << 20, Math.max(16 << 20, 1024 * compressed));
}

/** Hex SHA-256 of `data`. */
export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The first 9 bytes of every object of `kind` written with `codec`: its magic, then the codec byte. */
export function objectPrefix(kind: ObjectKind, codec: CompressionCodec): Buffer {
  return Buffer.concat([MAGIC[kind], Buffer.of(CODEC_IDS[codec])]);
}

/** Frames and compresses `body`; returns the file content and its name (hex SHA-256). */
export async function sealObject(
  kind: ObjectKind,
  body: Buffer,
  codec: CompressionCodec,
  level?: number,
  threads = 1,
): Promise<{ file: Buffer; hash: string }> {
  const file = await compressWithPrefix(objectPrefix(kind, codec), body, codec, level, threads);
  return { file, hash: sha256(file) };
}

/**
 * Checks `file` against its name `hash` and returns the decompressed body. Throws `IntegrityError`
 * (E_CORRUPT) when the content does not match its name, the magic is wrong, or it does not decompress.
 */
export async function openObject(kind: ObjectKind, file: Buffer, hash: string, what: string, maxBytes?: number): Promise<Buffer> {
  checkObject(kind, file, hash, what);
  const limit = maxBytes ?? (kind === 'pack' ? 2 ** 32 : maxBodyBytes(kind, file.length - 9));
  return decompressBounded(file.subarray(9), file[8], what, limit);
}

/**
 * Decompresses an object's body, refusing (E_CORRUPT) one that claims or expands to more than
 * `maxBytes`: memory grows only with what the data really holds, up to the limit, never with what a
 * frame header claims. (compression.ts's `decompress` trusts a zstd frame's content size and, without
 * one, grows without limit.)
 */
export async function decompressBounded(data: Buffer, codecId: number, what: string, maxBytes: number): Promise<Buffer> {
  const tooLarge = (): IntegrityError => new IntegrityError('E_CORRUPT', `${what}: expands to more than ${maxBytes} bytes, more than such an object can hold`, {
    hint: 'The object is damaged or was written to exhaust memory; run `scriptorium verify` to list what is affected.',
  });
  switch (codecId) {
    case CODEC_IDS.none:
      if (data.length > maxBytes) throw tooLarge();
      return data;
    case CODEC_IDS.gzip:
      try {
        return await gunzipAsync(data, { maxOutputLength: Math.max(1, maxBytes) });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge();
        throw new IntegrityError('E_CORRUPT', `${what}: cannot decompress: ${(err as Error).message}`, { cause: err });
      }
    case CODEC_IDS.zstd:
      return zstdBounded(data, what, maxBytes, tooLarge);
    default:
      throw new IntegrityError('E_CORRUPT', `${what}: unknown codec id ${codecId}`);
  }
}

/** The content size a zstd frame's header claims (undefined when it records none); E_CORRUPT when it is no frame. */
export async function zstdClaimedSize(data: Buffer, what: string): Promise<number | undefined> {
  const b = await zstdBinding();
  try {
    const known = b.getFrameContentSize(data);
    return typeof known === 'number' ? known : undefined;
  } catch (err) {
    throw new IntegrityError('E_CORRUPT', `${what}: cannot decompress: ${(err as Error).message}`, { cause: err });
  }
}

async function zstdBounded(data: Buffer, what: string, maxBytes: number, tooLarge: () => IntegrityError): Promise<Buffer> {
  const b = await zstdBinding();
  const claimed = await zstdClaimedSize(data, what);
  if (claimed !== undefined && claimed > maxBytes) throw tooLarge();
  const dctx = new b.DCtx();
  let out = Buffer.allocUnsafe(Math.max(1, Math.min(maxBytes, claimed ?? Math.max(64 << 10, 4 * data.length))));
  let length = 0;
  let input = data;
  try {
    for (;;) {
      if (length === out.length) {
        if (length >= maxBytes) throw tooLarge();
        const grown = Buffer.allocUnsafe(Math.min(maxBytes, 2 * out.length));
        out.copy(grown, 0, 0, length);
        out = grown;
      }
      const [remaining, produced, consumed] = dctx.decompressStream(out.subarray(length), input);
      length += produced;
      input = input.subarray(consumed);
      if (input.length === 0 && remaining === 0) break;
      // No input left and nothing more produced: the frame ends early (truncated).
      if (input.length === 0 && produced === 0 && length < out.length) throw new Error('the frame is truncated');
    }
  } catch (err) {
    if (err instanceof IntegrityError) throw err;
    throw new IntegrityError('E_CORRUPT', `${what}: cannot decompress: ${(err as Error).message}`, { cause: err });
  }
  return out.subarray(0, length);
}

/** The checks of {@link openObject} without the decompression: name, then magic. */
export function checkObject(kind: ObjectKind, file: Buffer, hash: string, what: string): void {
  const actual = sha256(file);
  if (actual !== hash) {
    throw new IntegrityError('E_CORRUPT', `${what}: content does not match its name (damaged or truncated: ${file.length} bytes, SHA-256 ${actual.slice(0, 16)}…)`);
  }
  if (file.length < 9 || !file.subarray(0, 8).equals(MAGIC[kind])) {
    throw new IntegrityError('E_CORRUPT', `${what}: not a ${kind} object of format version ${kind === 'index2' || kind === 'snapshotList' ? 2 : 1}`);
  }
}
