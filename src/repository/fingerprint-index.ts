/**
 * Format 2's index files (`SCRINDX2`): for each pack, its id, its entry count and an 8-byte fingerprint
 * of each entry (the first 8 bytes of the chunk id). A version-1 index file keeps the whole 32-byte id,
 * which at 512-byte chunks made the index a third of a repository; 8 bytes are enough because a
 * backup of format 2 matches a chunk mostly at its expected place in the previous snapshot of its
 * table, not against every chunk of the repository (see docs/repository-format.md, "Index, version 2").
 *
 * Body (codec none, fingerprints do not compress):
 *
 * | size | content |
 * | --- | --- |
 * | 4 | `packs`, the number of packs |
 * | 36 × packs | per pack: 32 bytes pack id, 4 bytes `count` |
 * | 8 × Σ count | the fingerprints, pack after pack, in entry order |
 *
 * The header comes first so that a reader looking for one pack can skip the rest.
 */
import { IntegrityError } from '../core/errors.js';
import type { IndexedPack } from './chunk-index.js';
import { CODEC_IDS } from './compression.js';
import { MAGIC, openObject, sha256 } from './object-file.js';

/** Bytes of a chunk fingerprint in a version-2 index file. */
export const FINGERPRINT_BYTES = 8;

/** Packs per index file a format-2 backup writes: a file is at most ~1 MiB at the default sizes. */
export const PACKS_PER_INDEX_FILE = 32;

/**
 * Encodes `packs` as a version-2 index file. `chunkIds` of each pack may hold whole 32-byte ids (a
 * backup's own) or 8-byte fingerprints (`idBytes: 8`, as decoded): only the first 8 bytes of each are kept.
 */
export function encodeFingerprintIndex(packs: IndexedPack[]): { file: Buffer; hash: string } {
  let entries = 0;
  for (const pack of packs) entries += pack.chunkIds.length / (pack.idBytes ?? 32);
  const prefix = MAGIC.index2.length + 1;
  const file = Buffer.allocUnsafe(prefix + 4 + 36 * packs.length + FINGERPRINT_BYTES * entries);
  let at = MAGIC.index2.copy(file, 0);
  file[at++] = CODEC_IDS.none;
  at = file.writeUInt32LE(packs.length, at);
  for (const pack of packs) {
    at += file.write(pack.hash, at, 32, 'hex');
    at = file.writeUInt32LE(pack.chunkIds.length / (pack.idBytes ?? 32), at);
  }
  for (const pack of packs) {
    const step = pack.idBytes ?? 32;
    const ids = pack.chunkIds;
    if (step === FINGERPRINT_BYTES) {
      at += ids.copy(file, at); // fingerprints already (a backup's, or decoded): one copy
      continue;
    }
    for (let i = 0; i < ids.length; i += step) {
      for (let b = 0; b < FINGERPRINT_BYTES; b++) file[at + b] = ids[i + b]!;
      at += FINGERPRINT_BYTES;
    }
  }
  return { file, hash: sha256(file) };
}

/**
 * Decodes a version-2 index file checked against its name: every pack once, at least one entry each,
 * the counts adding up to the fingerprints the file holds (E_CORRUPT otherwise). The packs'
 * `chunkIds` are views of 8-byte fingerprints (`idBytes: 8`).
 */
export async function decodeFingerprintIndex(hash: string, file: Buffer): Promise<IndexedPack[]> {
  const what = `index ${hash.slice(0, 16)}`;
  const body = await openObject('index2', file, hash, what);
  const bad = (why: string) => new IntegrityError('E_CORRUPT', `${what}: ${why}`, {
    hint: 'An index file is a cache: a damaged one costs only deduplication. `scriptorium prune` rebuilds the index from the packs.',
  });
  if (body.length < 4) throw bad('truncated header');
  const count = body.readUInt32LE(0);
  if (4 + 36 * count > body.length) throw bad(`claims ${count} packs, more than the file holds`);
  const packs: IndexedPack[] = [];
  const seen = new Set<string>();
  let at = 4 + 36 * count;
  for (let i = 0; i < count; i++) {
    const h = 4 + 36 * i;
    const pack = body.toString('hex', h, h + 32);
    const entries = body.readUInt32LE(h + 32);
    if (entries === 0) throw bad(`pack ${pack.slice(0, 16)} with no entries`);
    if (seen.has(pack)) throw bad(`pack ${pack.slice(0, 16)} is listed twice`);
    seen.add(pack);
    const end = at + FINGERPRINT_BYTES * entries;
    if (end > body.length) throw bad(`pack ${pack.slice(0, 16)} claims ${entries} entries, more than the file holds`);
    packs.push({ hash: pack, chunkIds: body.subarray(at, end), idBytes: FINGERPRINT_BYTES });
    at = end;
  }
  if (at !== body.length) throw bad(`${body.length - at} bytes after the last pack's fingerprints`);
  return packs;
}

/** Whether `file` starts like a version-2 index file (its magic), so that a reader picks the decoder. */
export function isFingerprintIndex(file: Buffer): boolean {
  return file.length >= 8 && file.subarray(0, 8).equals(MAGIC.index2);
}
