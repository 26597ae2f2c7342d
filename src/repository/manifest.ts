/**
 * Snapshot manifests: everything needed to restore one snapshot on its own. A manifest is the last
 * object a backup writes; it is stored at `snapshots/<id>` where the id is the SHA-256 of the file.
 */
import type { DatabaseSchema } from '../core/schema.js';
import { IntegrityError } from '../core/errors.js';
import type { CompressionCodec } from './compression.js';
import { manifestProblem } from './manifest-check.js';
import { objectPrefix, openObject, sealObject, sha256 } from './object-file.js';

/** A run of consecutive entries of one pack: `[index into manifest.packs, first entry, count]`. */
export type ChunkRange = [pack: number, first: number, count: number];

/** One table of a snapshot. */
export interface TableEntry {
  name: string;
  rows: number;
  /** Bytes of the table's row encodings (uncompressed). */
  bytes: number;
  /** The table digest: hex SHA-256 over every row's `ndjson` encoding followed by `\n`, in key order. */
  sha256: string;
  /** Number of chunks. */
  chunkCount: number;
  /** The table's chunks, in row order, as runs of pack entries. */
  chunks: ChunkRange[];
}

/** What a backup wrote and reused, for `snapshots` and the monitor. */
export interface SnapshotStats {
  rows: number;
  /** Logical size: bytes of all row encodings. */
  bytes: number;
  chunks: number;
  newChunks: number;
  /** Uncompressed bytes of the new chunks. */
  newChunkBytes: number;
  /** Bytes this backup added to the store: pack files and index file (the manifest is counted on top). */
  storedBytes: number;
  durationMs: number;
}

/** The content of a manifest. */
export interface SnapshotManifest {
  /** 1 in a version-1 repository, 2 in a version-2 one (which adds `index` and `packIndex`). */
  version: 1 | 2;
  /** The repository's id, so a manifest copied into another repository is recognised. */
  repository: string;
  /** ISO 8601 time the backup started. */
  time: string;
  host: string;
  tags: string[];
  /** The database that was backed up, as given (passwords redacted). */
  source: string;
  /**
   * How rows are encoded in the chunks: `ndjson` (one JSON array a row, SQLite), or `pg-copy-text`
   * (PostgreSQL's COPY text format, one row a line, as the server of `schema.engineVersion` wrote it).
   */
  encoding: 'ndjson' | 'pg-copy-text';
  /** Schema of the tables in this snapshot, plus the database's other objects and metadata. */
  schema: DatabaseSchema;
  /** Hashes of the packs the chunk ranges point into. */
  packs: string[];
  tables: TableEntry[];
  stats: SnapshotStats;
  /**
   * Version 2: index files that list the fingerprints of this snapshot's packs (hints for the next
   * backup, which deduplicates against this snapshot; a prune may have replaced them since).
   */
  index?: string[];
  /** Version 2: per entry of `packs`, the position in `index` of its index file, or -1. */
  packIndex?: number[];
}

/** A manifest with its id and stored size. */
export interface Snapshot extends SnapshotManifest {
  id: string;
  /** Bytes of the manifest file. */
  manifestBytes: number;
}

/** The store key of snapshot `id`. */
export function snapshotKey(id: string): string {
  return `snapshots/${id}`;
}

/** Encodes a manifest; returns the file content and the snapshot id. */
export async function encodeManifest(
  manifest: SnapshotManifest,
  codec: CompressionCodec,
  level?: number,
  zstd?: (body: Buffer) => Buffer | undefined,
): Promise<{ file: Buffer; hash: string }> {
  const body = Buffer.from(JSON.stringify(manifest));
  // zstd through the caller's compressor when it has one (backup's native packer), else through sealObject.
  const compressed = codec === 'zstd' ? zstd?.(body) : undefined;
  if (compressed) {
    const file = Buffer.concat([objectPrefix('snapshot', 'zstd'), compressed]);
    return { file, hash: sha256(file) };
  }
  return sealObject('snapshot', body, codec, level);
}

/** Decodes and checks a manifest file (E_CORRUPT when damaged, truncated or malformed). */
export async function decodeManifest(id: string, file: Buffer): Promise<Snapshot> {
  const what = `snapshot ${id.slice(0, 8)}: manifest`;
  const body = await openObject('snapshot', file, id, what);
  let manifest: SnapshotManifest;
  try {
    manifest = JSON.parse(body.toString('utf8')) as SnapshotManifest;
  } catch (err) {
    throw new IntegrityError('E_CORRUPT', `${what}: not valid JSON`, { cause: err, hint: CORRUPT_HINT });
  }
  // Every id, range, count and name is checked before anything uses it (see manifest-check.ts).
  const problem = manifestProblem(manifest);
  if (problem) throw new IntegrityError('E_CORRUPT', `${what}: ${problem}`, { hint: CORRUPT_HINT });
  return { ...manifest, id, manifestBytes: file.length };
}

const CORRUPT_HINT =
  'The manifest is damaged or was edited: its snapshot cannot be trusted. Restore another snapshot, ' +
  'or `scriptorium forget` this one by id.';

/** Appends `(pack, entry)` to a list of ranges, extending the last range when it is contiguous. */
export function appendRange(ranges: ChunkRange[], pack: number, entry: number): void {
  const last = ranges[ranges.length - 1];
  if (last && last[0] === pack && last[1] + last[2] === entry) last[2]++;
  else ranges.push([pack, entry, 1]);
}

/** Every `(pack hash, entry)` of a table, in row order. */
export function* tableChunks(snapshot: SnapshotManifest, table: TableEntry): Generator<{ pack: string; entry: number }> {
  for (const [pack, first, count] of table.chunks) {
    for (let e = first; e < first + count; e++) yield { pack: snapshot.packs[pack], entry: e };
  }
}
