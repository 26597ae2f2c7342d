/**
 * The repository's objects by name: which keys are repository objects (everything else in a store is
 * a stray: never read as an object, never deleted), and how large an object of each kind may be, so
 * that every read is bounded before a byte of it is read (see docs/repository-format.md, Layout).
 */
import type { Store, StoreEntry } from '../stores/store.js';

const HASH = '[0-9a-f]{64}';
/**
 * Lock names: locks.ts writes 32 hex digits (16 random bytes); the format says only `<random>`, so any
 * 1-64 lowercase letters and digits are taken as a lock (a lock is only ever read, never trusted).
 */
const LOCK = '[0-9a-z]{1,64}';

/** Key objects of an encrypted repository (format version 2): `keys/<16-64 hex>`. */
const KEY = '[0-9a-f]{16,64}';

const OBJECT_KEY = new RegExp(`^(?:config|snapshot-list|snapshots/${HASH}|index/${HASH}|locks/${LOCK}|keys/${KEY}|packs/([0-9a-f]{2})/(${HASH}))$`);

/** The folders (list prefixes) of the repository's objects. */
export type ObjectFolder = 'snapshots/' | 'index/' | 'locks/' | 'packs/' | 'keys/';

/**
 * Whether `key` names a repository object: `config`, `snapshot-list` (format 2), `snapshots/<64 hex>`, `index/<64 hex>`,
 * `locks/<1-64 of [0-9a-z]>`, or `packs/<2 hex>/<64 hex>` whose folder is the first two digits of its name.
 */
export function isObjectKey(key: string): boolean {
  const match = OBJECT_KEY.exec(key);
  return match !== null && (match[1] === undefined || match[2]!.startsWith(match[1]));
}

/**
 * Per-kind maxima of an object's file size, in bytes. Earlier versions wrote index files and manifests
 * of any size up to what they could read back (2 GiB − 1, Node's readFile limit), so those bounds stay
 * there; config and locks are small JSON. A pack holds chunks up to `packBytes` plus the chunk that
 * crossed it, which is one row: a row encodes a value of up to SQLite's 1e9 bytes as at most 2e9
 * characters (a BLOB in hex), so a pack may be `packBytes` plus 2 GiB (plus its entry table and framing,
 * within the last MiB).
 */
export const MAX_BYTES = {
  config: 1 << 20,
  lock: 64 << 10,
  snapshot: 2 ** 31 - 1,
  index: 2 ** 31 - 1,
} as const;

/** The largest pack file a repository with these `packBytes` can hold (see {@link MAX_BYTES}). */
export function maxPackBytes(packBytes: number): number {
  return packBytes + 2 ** 31 + (1 << 20);
}

/**
 * Yields the objects under `folder`, leaving out (and, when `strays` is given, pushing there) every
 * name in it that is not a repository object of that folder, and anything the store itself refused
 * to yield (links, FIFOs, devices).
 */
export async function* listObjects(store: Store, folder: ObjectFolder | '', strays?: string[]): AsyncGenerator<StoreEntry> {
  for await (const entry of store.list(folder, strays ? { strays } : {})) {
    if (isObjectKey(entry.key)) yield entry;
    else strays?.push(entry.key);
  }
}

/** Names in the store that are not repository objects (sorted): what prune and verify leave alone and report. */
export async function findStrays(store: Store): Promise<string[]> {
  const strays: string[] = [];
  for await (const entry of listObjects(store, '', strays)) void entry;
  return strays.sort();
}
