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
  /**
   * Every operation is a network request, billed and slow (S3): callers skip checks that only guard
   * against a damaged repository (verify finds that) and listings that only find leftovers of
   * interrupted runs. Absent or false: operations are local and cheap.
   */
  remote?: boolean;
}

/** Options of {@link Store.get}. */
export interface GetOptions {
  /**
   * The most bytes the object may hold. A longer object is refused at once (E_CORRUPT), before any of it
   * is read into memory: callers pass the object's known size or the per-kind maximum of its folder.
   */
  maxBytes?: number;
  /**
   * The caller accepts a copy of a *mutable* object (`config`) from a local cache of a remote store,
   * and checks it itself against a hash it reads from the store (see Repository.open), or of a key
   * object (`keys/`), which it only uses if it unwraps with the caller's passphrase. Immutable
   * objects named by their content may come from such a cache anyway (their name checks them).
   */
  cached?: boolean;
  /** Never from a local cache: the store's own current content (and the cache is refreshed with it). */
  fresh?: boolean;
}

/** Options of {@link Store.getPieces}. */
export interface GetPiecesOptions extends GetOptions {
  /** The most bytes of one piece (default 4 MiB). */
  pieceBytes?: number;
}

/**
 * `options` of a `getPieces` checked (a TypeError naming `where` for a bad `maxBytes` or `pieceBytes`),
 * with the default piece size filled in: one rule for every store.
 */
export function piecesOptions(where: string, options: GetPiecesOptions): { maxBytes: number | undefined; pieceBytes: number } {
  const { maxBytes } = options;
  const pieceBytes = options.pieceBytes ?? 4 << 20;
  if (maxBytes !== undefined && !(Number.isSafeInteger(maxBytes) && maxBytes >= 0)) throw new TypeError(`${where}: invalid maxBytes ${maxBytes}`);
  if (!(Number.isSafeInteger(pieceBytes) && pieceBytes > 0)) throw new TypeError(`${where}: invalid pieceBytes ${pieceBytes}`);
  return { maxBytes, pieceBytes };
}

/** Options of {@link Store.list}. */
export interface ListOptions {
  /**
   * When given, the backend pushes here the names (relative to the store's root, `/`-separated) of what
   * it met under the prefix and did not yield: symbolic links, files that are not regular files, and
   * names that are not valid keys. Its own temporary files are not strays and are never pushed.
   */
  strays?: string[];
  /**
   * The caller accepts a listing of `keys/` from a local cache of a remote store (no request), and
   * falls back to a fresh listing when what it lists does not serve (see unlockRepository). Stores
   * without a cache ignore it.
   */
  cached?: boolean;
}

/** A temporary file removed because the process that wrote it is gone (see {@link Store.removeDeadTemporaries}). */
export interface RemovedTemporary {
  /** Its name, relative to the store's root. */
  name: string;
  /** The process that wrote it, which no longer runs on this host. */
  pid: number;
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
   * Optional: stores `data` under `key` only when nothing is stored there yet, in one request where the
   * backend can (S3: `If-None-Match: *`), with put's guarantees otherwise; resolves to whether this
   * call created the object. `false` when it was there already, and also whenever the backend cannot
   * tell (it never claims an object it may not have created). For callers that remove only their own
   * objects after a failure: one request where `has` and `put` take two.
   */
  putNew?(key: string, data: Uint8Array): Promise<boolean>;

  /**
   * Optional: stores `data` under `key` only when nothing is stored there yet, atomically: of several
   * callers racing for the same key, exactly one gets `true`; the others get `false` and leave the
   * object as it is. Unlike {@link putNew} this holds for every key, also mutable ones (the
   * repository's exclusive lock is such an object). A backend that cannot promise it omits it.
   */
  putIfAbsent?(key: string, data: Uint8Array): Promise<boolean>;

  /**
   * Returns the whole content of `key`, reading at most `options.maxBytes` (when given): an object longer
   * than that is refused at once with code `E_CORRUPT`, without reading it. Throws `NotFoundError` (code
   * `E_NOT_FOUND`) when no object has that key; `E_CORRUPT` when what is stored under the key is not an
   * object of this store (a backend on a file system: a symbolic link, a FIFO, a device, a folder, or a
   * path through a linked folder), never following it or blocking on it; `E_NO_SPACE` or `E_IO` for other
   * failures. Safe to retry.
   */
  get(key: string, options?: GetOptions): Promise<Buffer>;

  /**
   * Optional: the content of `key` in pieces of at most `options.pieceBytes`, for objects too large to
   * hold whole (a pack ending in a chunk of one huge value): memory stays at one piece. Each piece is a
   * view valid only until the next one is asked for (the backend may reuse its buffer). The checks of
   * {@link get} (not found, not an object, longer than `maxBytes`) are made before the first piece; an
   * object that is not, when read, as long as it was when opened is `E_CORRUPT`. Nothing is verified
   * here: the caller checks what it reads (a pack's name is its SHA-256) before it trusts any of it.
   * Callers fall back to `get` when a store has no such method.
   */
  getPieces?(key: string, options?: GetPiecesOptions): AsyncIterable<Buffer>;

  /**
   * Returns whether anything is stored under `key` (also something `get` would refuse, so that a caller
   * never replaces what it does not know). Safe to retry.
   */
  has(key: string): Promise<boolean>;

  /**
   * Returns the size of `key` in bytes. Throws `NotFoundError` when it does not exist, and `E_CORRUPT`
   * when it is not an object (as for `get`). Safe to retry.
   */
  stat(key: string): Promise<StoreEntry>;

  /**
   * Yields every object whose key starts with `prefix` (`''` for all), in no particular order, each once.
   * Objects put or deleted while the listing runs may or may not be included. Temporary files of
   * unfinished puts are never included. A backend on a file system yields only regular files reached
   * without following a symbolic link, and never leaves its root; anything else it meets is a stray,
   * pushed to `options.strays` when given, never yielded.
   */
  list(prefix: string, options?: ListOptions): AsyncIterable<StoreEntry>;

  /**
   * Removes `key`. Resolves without error when the object does not exist, so a retried or concurrent
   * delete is harmless. Never removes what is not an object (a symbolic link, a FIFO, a folder, anything
   * reached through a linked folder): that is `E_CORRUPT`, and it stays where it is.
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
   * Optional: deletes temporary files whose writer, a process on this host, no longer runs (killed
   * before it could clean up), whatever their age, and returns them. Safe without any lock: no other
   * process ever renames another's temporary file. Backends without temporary files omit it.
   */
  removeDeadTemporaries?(): Promise<RemovedTemporary[]>;

  /**
   * Optional, for backends that can hold objects immutable for a time (S3 Object Lock): until when
   * `key` is held (it cannot be deleted before), or undefined when it is not held or does not exist.
   * Resolves at once, without a request, when the repository has no such retention. forget and prune
   * ask before deleting, and leave held objects alone.
   */
  heldUntil?(key: string): Promise<Date | undefined>;

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

  /**
   * Optional: stores the `size` bytes of the open file `fd` (read with positional reads from offset 0;
   * the caller keeps `fd` and closes it) under `key`, with the guarantees of `put` of that content, but
   * never holding it whole: for a pack too large to hold (one ending in the chunk of a huge value).
   * Callers without it read the file and `put` it.
   */
  putFromFd?(key: string, fd: number, size: number): Promise<void>;

  /**
   * Optional, with {@link putFile}: the same, resolving to whether this call created the object, as
   * {@link putNew} does (one request where a `has` and a `putFile` take two on a remote store).
   * `sha256`: the SHA-256 (hex) of the file's content, when the caller knows it (a pack named by its
   * content): a remote store may have the server check the upload against it instead of computing a
   * checksum of its own.
   */
  putFileNew?(key: string, path: string, sha256?: string): Promise<boolean>;
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
