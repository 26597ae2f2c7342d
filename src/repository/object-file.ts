/**
 * The framing shared by packs, index files and snapshot manifests: an 8-byte magic naming the kind and
 * format version, one codec byte, then the (compressed) body. Such objects are named by the SHA-256 of
 * their whole content, so any damage, truncation included, is detected before the body is read.
 */
import { createHash } from 'node:crypto';
import { IntegrityError } from '../core/errors.js';
import { CODEC_IDS, compressWithPrefix, decompress, type CompressionCodec } from './compression.js';

export const MAGIC = {
  pack: Buffer.from('SCRPACK1', 'latin1'),
  index: Buffer.from('SCRINDX1', 'latin1'),
  snapshot: Buffer.from('SCRSNAP1', 'latin1'),
} as const;

export type ObjectKind = keyof typeof MAGIC;

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
export async function openObject(kind: ObjectKind, file: Buffer, hash: string, what: string): Promise<Buffer> {
  checkObject(kind, file, hash, what);
  return decompress(file.subarray(9), file[8], what);
}

/** The checks of {@link openObject} without the decompression: name, then magic. */
export function checkObject(kind: ObjectKind, file: Buffer, hash: string, what: string): void {
  const actual = sha256(file);
  if (actual !== hash) {
    throw new IntegrityError('E_CORRUPT', `${what}: content does not match its name (damaged or truncated: ${file.length} bytes, SHA-256 ${actual.slice(0, 16)}…)`);
  }
  if (file.length < 9 || !file.subarray(0, 8).equals(MAGIC[kind])) {
    throw new IntegrityError('E_CORRUPT', `${what}: not a ${kind} object of format version 1`);
  }
}
