/**
 * The Store: where a repository keeps its files. A store is a flat namespace of keys (slash-separated
 * relative names such as `packs/ab/ab12…`) holding immutable byte strings. Backends (local directory,
 * memory, later S3) implement this interface; retry, metering and concurrency limits wrap a Store and
 * return a Store.
 */

/** What a backend can promise, as data. */
export interface StoreCapabilities {
  /** `put` is all-or-nothing: a reader sees either no object or the whole new content, never a prefix. */
  atomicPut: boolean;
  /** A completed `put` survives a crash of the process and of the machine (data and name are synced). */
  durablePut: boolean;
  /** How many operations the backend handles well at once. */
  maxConcurrency: number;
}

/** One object found by {@link Store.list}. */
export interface StoreEntry {
  key: string;
  /** Size in bytes. */
  size: number;
}

/**
 * A key-value store of immutable objects.
 *
 * Keys are 1-255 characters of `[A-Za-z0-9._-]` separated by `/`, with no empty, `.` or `..` segment and
 * no segment starting with `.` (names starting with `.` are reserved for the backend's temporary files).
 * Every method throws a `TypeError` for an invalid key.
 *
 * @example
 * ```ts
 * const store = new FsStore('/mnt/backups/repo');
 * await store.put('snapshots/abc', Buffer.from('{}'));
 * const bytes = await store.get('snapshots/abc');
 * for await (const { key, size } of store.list('snapshots/')) console.log(key, size);
 * await store.close();
 * ```
 */
export interface Store {
  /** Where the store lives, for messages (never contains a secret). */
  readonly location: string;
  readonly capabilities: StoreCapabilities;

  /**
   * Stores `data` under `key`, replacing any previous object of that name. When `capabilities.atomicPut`
   * is true the replacement is all-or-nothing; when `durablePut` is true the object has been synced to
   * stable storage when the promise resolves. Safe to retry after a failure: a retried put of the same
   * content leaves the same object.
   */
  put(key: string, data: Uint8Array): Promise<void>;

  /**
   * Returns the whole content of `key`. Throws `NotFoundError` (code `E_NOT_FOUND`) when no object has that
   * key; any other failure is a `ScriptoriumError` with code `E_IO`. Safe to retry.
   */
  get(key: string): Promise<Buffer>;

  /** Returns whether an object named `key` exists. Safe to retry. */
  has(key: string): Promise<boolean>;

  /** Returns the size of `key` in bytes. Throws `NotFoundError` when it does not exist. Safe to retry. */
  stat(key: string): Promise<StoreEntry>;

  /**
   * Yields every object whose key starts with `prefix` (`''` for all), in no particular order, each once.
   * Objects put or deleted while the listing runs may or may not be included. Temporary files of
   * unfinished puts are never included.
   */
  list(prefix: string): AsyncIterable<StoreEntry>;

  /**
   * Removes `key`. Resolves without error when the object does not exist, so a retried or concurrent
   * delete is harmless.
   */
  delete(key: string): Promise<void>;

  /** Releases the store's resources. No other method may be called afterwards. */
  close(): Promise<void>;

  /**
   * Optional: deletes temporary files that interrupted puts left behind and that are older than
   * `olderThanMs` (so that a put still running elsewhere is not disturbed); returns how many. Prune
   * calls it under the repository's exclusive lock. Backends without temporary files omit it.
   */
  removeStaleTemporaries?(olderThanMs: number): Promise<number>;

  /**
   * Optional, for backends on a local file system: a path prefix, unique to this call, under which the
   * caller may create files itself (appending any of `[0-9a-z]`) to hand to {@link putFile}. Such a file
   * is a temporary file until then: `list` never reports it, and `removeStaleTemporaries` removes it.
   * Lets a writer outside JavaScript (a backup's native packer) put files that never enter the V8 heap.
   */
  tempPrefix?(): string;

  /**
   * Optional, with {@link tempPrefix}: stores the file at `path` (created under a prefix from
   * tempPrefix, complete, and synced by the caller) under `key`, with the same guarantees as `put` of
   * its content, by moving it. The file at `path` is gone afterwards, whether this succeeds or fails.
   */
  putFile?(key: string, path: string): Promise<void>;
}

const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** Throws a `TypeError` unless `key` is a valid store key (see {@link Store}). */
export function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > 255) {
    throw new TypeError(`store key must be a string of 1-255 characters, got ${JSON.stringify(key)}`);
  }
  for (const segment of key.split('/')) {
    if (!SEGMENT.test(segment)) throw new TypeError(`invalid store key ${JSON.stringify(key)}`);
  }
}

/** Throws a `TypeError` unless `prefix` is `''` or the beginning of a valid key. */
export function checkPrefix(prefix: string): void {
  if (typeof prefix !== 'string') throw new TypeError('store list prefix must be a string');
  if (prefix === '') return;
  checkKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}
