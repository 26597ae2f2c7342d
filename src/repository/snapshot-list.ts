/**
 * Format 2's snapshot list (`snapshot-list`): a small object naming the snapshots and the index files
 * they use, so that a backup finds its parent snapshot and the index files to load without listing
 * the store (one GET instead of a LIST and a GET per manifest; on S3 that is most of a backup's
 * requests). It is a cache, rewritten whole: `snapshots/` stays the truth. A backup adds its snapshot
 * at the end; prune rewrites it from the manifests; a snapshot it names that no longer exists (forgotten)
 * is skipped, and one it lacks (two backups rewrote it at once) costs only deduplication.
 */
import { IntegrityError, NotFoundError } from '../core/errors.js';
import type { Store } from '../stores/store.js';
import { CODEC_IDS } from './compression.js';
import type { Snapshot } from './manifest.js';
import { MAGIC } from './object-file.js';

/** The store key of the snapshot list. */
export const SNAPSHOT_LIST_KEY = 'snapshot-list';
/** The largest snapshot list read (about 200 bytes a snapshot: 300,000 snapshots). */
export const MAX_SNAPSHOT_LIST_BYTES = 64 << 20;

/** One snapshot as the list names it: enough to choose a parent without reading its manifest. */
export interface ListedSnapshot {
  id: string;
  time: string;
  host: string;
  source: string;
  /** Rows in the snapshot (for choosing a parent for a database of about that size). */
  rows?: number;
}

export interface SnapshotList {
  version: 2;
  snapshots: ListedSnapshot[];
  /** Index files the listed snapshots' manifests name. */
  index: string[];
  /**
   * SHA-256 (hex) of the repository's `config` file, as the writer of the list read it: a backup
   * checks a locally cached config against it (Repository.confirmConfig) instead of downloading it.
   */
  config?: string;
}

const HASH = /^[0-9a-f]{64}$/;

/** The entry of a snapshot in the list. */
export function listed(snapshot: Snapshot): ListedSnapshot {
  return { id: snapshot.id, time: snapshot.time, host: snapshot.host, source: snapshot.source, rows: snapshot.stats.rows };
}

/** Reads the snapshot list; undefined when there is none or it is damaged (it is a cache). */
export async function readSnapshotList(store: Store): Promise<SnapshotList | undefined> {
  let file: Buffer;
  try {
    file = await store.get(SNAPSHOT_LIST_KEY, { maxBytes: MAX_SNAPSHOT_LIST_BYTES });
  } catch (err) {
    if (err instanceof NotFoundError || err instanceof IntegrityError) return undefined;
    throw err;
  }
  return parseSnapshotList(file);
}

/** Parses a snapshot list file, or undefined when it is not a well-formed one. */
export function parseSnapshotList(file: Buffer): SnapshotList | undefined {
  if (file.length < 9 || !file.subarray(0, 8).equals(MAGIC.snapshotList) || file[8] !== CODEC_IDS.none) return undefined;
  let list: SnapshotList;
  try {
    list = JSON.parse(file.subarray(9).toString('utf8')) as SnapshotList;
  } catch {
    return undefined;
  }
  if (list === null || typeof list !== 'object' || list.version !== 2 || !Array.isArray(list.snapshots) || !Array.isArray(list.index)) return undefined;
  const ok = list.snapshots.every((s) => s !== null && typeof s === 'object' && typeof s.id === 'string' && HASH.test(s.id)
    && typeof s.time === 'string' && typeof s.host === 'string' && typeof s.source === 'string'
    && (s.rows === undefined || (Number.isSafeInteger(s.rows) && s.rows >= 0)))
    && list.index.every((i) => typeof i === 'string' && HASH.test(i))
    && (list.config === undefined || (typeof list.config === 'string' && HASH.test(list.config)));
  return ok ? list : undefined;
}

/** The file content of a snapshot list. */
export function encodeSnapshotList(list: SnapshotList): Buffer {
  return Buffer.concat([MAGIC.snapshotList, Buffer.of(CODEC_IDS.none), Buffer.from(JSON.stringify(list))]);
}

/** Stores the list (atomic put). */
export async function writeSnapshotList(store: Store, list: SnapshotList): Promise<void> {
  await store.put(SNAPSHOT_LIST_KEY, encodeSnapshotList(list));
}

/**
 * Adds `snapshot` and the index files its manifest names to the list `base` (the one the backup read
 * when it started, under its lock: read once, one GET fewer a backup), or to the current list when no
 * base is given, recording `config` (the config's hash). A backup that ended meanwhile and rewrote the
 * list loses its entry: that costs only deduplication (its snapshot is no parent until the next prune
 * rewrites the list from the manifests), never a snapshot.
 */
export async function addToSnapshotList(store: Store, snapshot: Snapshot, base?: SnapshotList | null, config?: string): Promise<void> {
  const read = base === undefined ? await readSnapshotList(store) : base ?? undefined;
  const list: SnapshotList = read ? { ...read, snapshots: [...read.snapshots], index: [...read.index] } : { version: 2, snapshots: [], index: [] };
  if (config !== undefined) list.config = config;
  if (!list.snapshots.some((s) => s.id === snapshot.id)) list.snapshots.push(listed(snapshot));
  const index = new Set(list.index);
  for (const file of snapshot.index ?? []) index.add(file);
  list.index = [...index];
  await writeSnapshotList(store, list);
}

/**
 * The candidates for a backup's parent, best first: the snapshots of `host` and `source`, newest
 * first, then all others, newest first (a copy of the database under another name still shares its
 * tables' chunks).
 */
export function parentCandidates(list: SnapshotList, host: string, source: string): ListedSnapshot[] {
  const same = (s: ListedSnapshot): number => (s.host === host && s.source === source ? 1 : 0);
  return [...list.snapshots].sort((a, b) => same(b) - same(a) || b.time.localeCompare(a.time) || b.id.localeCompare(a.id));
}
