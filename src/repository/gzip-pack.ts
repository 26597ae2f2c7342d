/**
 * Packs of a gzip repository filled by the native packer. The extension has no gzip, so in a gzip
 * repository its packer fills packs of codec none (the same body: chunks, entry table, count), and they
 * are gzipped here: a pack that fits in memory whole (nearly every one), and one too large to hold (a
 * pack ending in the chunk of a huge value, which the packer hands over in an unnamed temporary file)
 * in pieces, through node:zlib into a file of its own, never held whole. The result is the pack file
 * {@link PackWriter} writes for gzip (magic, codec byte 1, one gzip stream of the body), named by its
 * SHA-256 like every pack; a reader does not tell which wrote it.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { read as readCallback } from 'node:fs';
import { promisify } from 'node:util';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { ScriptoriumError } from '../core/errors.js';
import { CODEC_IDS } from './compression.js';
import { MAGIC, objectPrefix, sealObject } from './object-file.js';

const readFd = promisify(readCallback);

/** Bytes read from the packer's file at a time, and gzip's output buffer. */
const PIECE_BYTES = 4 << 20;
/** Bytes of gzip's output gathered before one write. */
const WRITE_BYTES = 4 << 20;
/** gzip's level when the repository names none (what {@link PackWriter} uses: node:zlib's default). */
const GZIP_DEFAULT_LEVEL = 6;

/** Throws unless `head` begins with the prefix of a pack file of codec none (what the packer writes here). */
function checkedPrefix(head: Buffer): void {
  if (head.length < 9 || !head.subarray(0, 8).equals(MAGIC.pack) || head[8] !== CODEC_IDS.none) {
    // The packer's own output: anything else is a packer this code does not know, not a user's mistake.
    throw new Error('gzip-pack: the native packer did not hand over a pack of codec none');
  }
}

/** The pack file `file` (of codec none, from the native packer) as a gzip pack file, and its name. */
export async function gzipPackFile(file: Buffer, level: number | undefined): Promise<{ file: Buffer; hash: string }> {
  checkedPrefix(file);
  return sealObject('pack', file.subarray(9), 'gzip', level ?? GZIP_DEFAULT_LEVEL);
}

/**
 * The `size` bytes of the open file `fd` (a pack file of codec none, read with positional reads from
 * offset 0; the caller closes it) written to `out` from its start as a gzip pack file, in pieces:
 * memory stays a few pieces and zlib's window however large the pack. Returns the new file's name
 * (its SHA-256) and size; `out` is synced. A full disk is E_NO_SPACE.
 */
export async function gzipPackFromFd(fd: number, size: number, out: FileHandle, level: number | undefined): Promise<{ hash: string; size: number }> {
  const digest = createHash('sha256');
  const prefix = objectPrefix('pack', 'gzip');
  digest.update(prefix);
  let written = 0;
  let held: Buffer[] = [prefix];
  let heldBytes = prefix.length;
  const flush = async (): Promise<void> => {
    for (const piece of held) {
      for (let at = 0; at < piece.length;) {
        const { bytesWritten } = await out.write(piece, at, piece.length - at, written);
        at += bytesWritten;
        written += bytesWritten;
      }
    }
    held = [];
    heldBytes = 0;
  };
  async function* body(): AsyncGenerator<Buffer> {
    const buffer = Buffer.allocUnsafe(PIECE_BYTES);
    for (let at = 0; at < size;) {
      const { bytesRead } = await readFd(fd, buffer, 0, Math.min(PIECE_BYTES, size - at), at);
      if (bytesRead === 0) throw new ScriptoriumError('E_IO', `backup: the packer's temporary file ended after ${at} of its ${size} bytes`);
      let piece = buffer.subarray(0, bytesRead);
      if (at === 0) {
        checkedPrefix(piece);
        piece = piece.subarray(9);
      }
      at += bytesRead;
      // zlib may still hold the piece after it was written to it: a copy, as the buffer is reused.
      yield Buffer.from(piece);
    }
  }
  await pipeline(body(), createGzip({ level: level ?? GZIP_DEFAULT_LEVEL, chunkSize: 1 << 20 }), async (compressed: AsyncIterable<Buffer>) => {
    for await (const piece of compressed) {
      digest.update(piece);
      held.push(piece);
      heldBytes += piece.length;
      if (heldBytes >= WRITE_BYTES) await flush();
    }
  });
  await flush();
  await out.sync();
  return { hash: digest.digest('hex'), size: written };
}
