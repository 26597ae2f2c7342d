/**
 * A repository: a store holding `config`, `packs/`, `index/`, `snapshots/` and `locks/` (see
 * docs/repository-format.md). This class opens or creates one and reads its objects; the operations
 * (backup, restore, verify, forget, prune, diff) live in their own files and take a Repository.
 */
import { hash as oneShotHash } from 'node:crypto';
import { NotFoundError, ScriptoriumError, UsageError } from '../core/errors.js';
import { openStore, type StoreRegistry } from '../stores/registry.js';
import type { Store } from '../stores/store.js';
import { ChunkIndex, decodeIndex } from './chunk-index.js';
import { createConfig, parseConfig, type RepositoryConfig, type RepositorySettings } from './config.js';
import { ambiguousSnapshot, notRepository, unknownSnapshot } from './errors.js';
import { acquireLock, type HeldLock, type LockKind } from './locks.js';
import { decodeManifest, snapshotKey, type Snapshot } from './manifest.js';
import { Pack, packKey } from './pack.js';
import { listObjects, MAX_BYTES, maxPackBytes } from './objects.js';
import { createEncryption, unlockRepository, type EncryptionSettings, type RepositoryCrypto, type RepositoryKeys } from './crypto/repository-crypto.js';
import { keyKey, MAX_KEY_OBJECT_BYTES, parseKeyObject } from './crypto/key-objects.js';
import { SealedStore } from './crypto/sealed-store.js';

/** Where a repository is: a location string (path or URL) or an already opened Store. */
export type RepositoryLocation = string | Store;

/** Options shared by every repository operation. */
export interface OpenOptions {
  /** Store backends by URL scheme (default: `defaultStores()`). */
  stores?: StoreRegistry;
  /**
   * Take no lock (as restic's `--no-lock`): for reading a repository this process cannot write (a
   * read-only mount, someone else's files). Only restore, verify and diff accept it; a prune running
   * meanwhile may delete packs they read (never ones a snapshot refers to).
   */
  noLock?: boolean;
  /** Called with a line for the user when the repository was tidied on the way (stale temporaries removed). */
  onNotice?: (message: string) => void;
  /** How to unlock an encrypted repository (asked for only when it is one). */
  keys?: RepositoryKeys;
  /**
   * Accept `config` from a remote store's local cache (no request), for an operation that then calls
   * {@link Repository.confirmConfig} with the hash the snapshot list records before it writes anything
   * (backup does). Other operations read it from the store.
   */
  cachedConfig?: boolean;
}

/** Operations that only read the repository, which may run without a lock ({@link OpenOptions.noLock}). */
const READ_ONLY_OPERATIONS = new Set(['restore', 'verify', 'diff']);

/** An open repository. Close it (which closes its store) when done. */
export class Repository {
  /** The repository's objects; in an encrypted repository a SealedStore over the real one. */
  readonly store: Store;
  #config: RepositoryConfig;
  /** SHA-256 (hex) of the config file this repository was opened with. */
  #configHash: string;
  /** Whether the config is known to be the store's (false: it came from a local cache, unchecked). */
  #configChecked: boolean;
  /** The keys of an encrypted repository (undefined: not encrypted). */
  readonly crypto: RepositoryCrypto | undefined;
  readonly #options: OpenOptions;

  private constructor(store: Store, config: RepositoryConfig, options: OpenOptions = {}, crypto?: RepositoryCrypto, configFile?: Buffer, checked = true) {
    this.store = crypto ? new SealedStore(store, crypto) : store;
    this.#config = config;
    this.#configHash = sha256Hex(configFile ?? Buffer.from(JSON.stringify(config, null, 2) + '\n'));
    this.#configChecked = checked;
    this.crypto = crypto;
    this.#options = options;
  }

  /** The repository's settings (its `config`). */
  get config(): RepositoryConfig {
    return this.#config;
  }

  /** SHA-256 (hex) of the `config` file, which the snapshot list records (see {@link confirmConfig}). */
  get configHash(): string {
    return this.#configHash;
  }

  /**
   * Checks a config taken from a local cache ({@link OpenOptions.cachedConfig}) against `hash`, the
   * config's hash that the snapshot list (read from the store) records: when they differ, or the list
   * records none, the config is read from the store again (the cache is never trusted). A config that
   * changed (a repository created again at this location) replaces the cached one when neither is
   * encrypted; otherwise the operation stops with a clear error (the cache is refreshed by then).
   * Nothing to do (no request) when the config was read from the store.
   */
  async confirmConfig(hash: string | undefined): Promise<void> {
    if (this.#configChecked) return;
    this.#configChecked = true;
    // The list opened with this process's secrets (its seal) and records this config: both confirmed.
    if (hash === this.#configHash) return;
    const base = this.store instanceof SealedStore ? this.store.base : this.store;
    const key = this.crypto?.cachedKey;
    if (this.crypto && key) {
      // No list to confirm a key object taken from the cache (a first backup, or a list that did not
      // open): compare it with the store's own (one GET), which also refreshes the cache.
      const fresh = await base.get(keyKey(this.crypto.keyId), { maxBytes: MAX_KEY_OBJECT_BYTES, fresh: true }).then((d) => parseKeyObject(d, this.crypto!.keyId), () => undefined);
      if (!fresh || JSON.stringify(fresh) !== JSON.stringify(key)) {
        for await (const _ of base.list('keys/')); // a fresh listing replaces the cached one
        throw new ScriptoriumError('E_CORRUPT', `repository: the key object of ${this.location} cached on this machine is not the repository's`, {
          hint: 'The key was removed or the local cache was tampered with; the cache now holds the current keys: run the command again.',
        });
      }
      this.crypto.cachedKey = undefined;
    }
    const file = await base.get('config', { maxBytes: MAX_BYTES.config, fresh: true });
    const fileHash = sha256Hex(file);
    if (fileHash === this.#configHash) return;
    const config = parseConfig(file, this.location);
    if (config.encryption || this.#config.encryption || this.crypto) {
      throw new ScriptoriumError('E_CORRUPT', `repository: the config of ${this.location} is not the one cached on this machine`, {
        hint: 'The repository was created again at this location, or the local cache was tampered with; the cache now holds the current config: run the command again.',
      });
    }
    this.#config = config;
    this.#configHash = fileHash;
  }

  /** The id of a chunk whose SHA-256 is `sha256Hex`: keyed in an encrypted repository, the hash itself otherwise. */
  chunkId(sha256Hex: string): string {
    return this.crypto ? this.crypto.keyIdHex(sha256Hex) : sha256Hex;
  }

  /** Where the repository lives, for messages. */
  get location(): string {
    return this.store.location;
  }

  /**
   * Creates a repository at `location` (an empty or missing directory, or a store). Throws
   * E_TARGET_EXISTS when one is already there.
   *
   * @example
   * ```ts
   * const repo = await Repository.init('/mnt/nas/backups', { compression: 'zstd', compressionLevel: 3 });
   * await repo.close();
   * ```
   */
  static async init(location: RepositoryLocation, settings: RepositorySettings & { encryption?: EncryptionSettings } = {}, options: OpenOptions = {}): Promise<Repository> {
    const config = createConfig(settings);
    if (settings.encryption && config.version < 2) {
      settings.encryption.passphrase.fill(0);
      throw new UsageError(`repository: format version ${config.version} cannot be encrypted`, {
        hint: 'Encrypted repositories are format version 2; leave the format version at its default.',
      });
    }
    let encrypted: Awaited<ReturnType<typeof createEncryption>> | undefined;
    try {
      encrypted = settings.encryption ? await createEncryption(config.id, settings.encryption) : undefined;
    } finally {
      settings.encryption?.passphrase.fill(0);
    }
    if (encrypted) {
      config.encryption = encrypted.config;
    }
    const store = await toStore(location, options);
    try {
      if (await store.has('config')) {
        throw new UsageError(`repository: ${store.location} already holds a repository`, {
          code: 'E_TARGET_EXISTS',
          hint: 'Use it as it is, or choose another --repo.',
        });
      }
      // Anything at all, objects or not (a link, a FIFO), makes the place not empty.
      const strays: string[] = [];
      let first: string | undefined;
      for await (const entry of store.list('', { strays })) {
        first = entry.key;
        break;
      }
      first ??= strays[0];
      if (first !== undefined) {
        const entry = { key: first };
        throw new UsageError(`repository: ${store.location} is not empty (it holds ${entry.key})`, {
          code: 'E_TARGET_EXISTS',
          hint: 'Initialise a repository in a new or empty directory.',
        });
      }
      // Keys first: a config that says "encrypted" is never there without a key to open it.
      for (const [id, object] of encrypted?.keys ?? []) await store.put(keyKey(id), Buffer.from(JSON.stringify(object, null, 2) + '\n'));
      await store.put('config', Buffer.from(JSON.stringify(config, null, 2) + '\n'));
      return new Repository(store, config, options, encrypted?.crypto);
    } catch (err) {
      if (typeof location === 'string') await store.close();
      throw err;
    }
  }

  /** Opens the repository at `location`; throws E_NOT_REPOSITORY or E_VERSION. */
  static async open(location: RepositoryLocation, options: OpenOptions = {}): Promise<Repository> {
    const store = await toStore(location, options);
    try {
      let data: Buffer;
      try {
        data = await store.get('config', { maxBytes: MAX_BYTES.config, cached: options.cachedConfig === true });
      } catch (err) {
        if (err instanceof NotFoundError) throw notRepository(store.location, err);
        throw err;
      }
      let config = parseConfig(data, store.location);
      if (options.cachedConfig && config.version < 2) {
        // Format 1 has no snapshot list to check a cached config against: read it from the store.
        data = await store.get('config', { maxBytes: MAX_BYTES.config, fresh: true });
        config = parseConfig(data, store.location);
      }
      // An encrypted repository with a cached config: its keys may come from the cache too, used only if
      // the passphrase unwraps them; the snapshot list read from the store then confirms both (its seal
      // opens only with the right secrets, and it records the config's hash: confirmConfig).
      const cachedKeys = options.cachedConfig === true && config.version >= 2;
      const crypto = config.encryption ? await unlockRepository(store, config.id, config.encryption, options.keys, cachedKeys) : undefined;
      const checked = !options.cachedConfig || config.version < 2;
      return new Repository(store, config, options, crypto, data, checked);
    } catch (err) {
      if (typeof location === 'string') await store.close();
      throw err;
    }
  }

  /**
   * Takes a repository lock (see locks.ts for the rule), then removes the temporary files that writers
   * killed on this host left (their pid no longer runs), saying so through `onNotice`. With `noLock`
   * (read-only operations only) takes none and writes nothing.
   */
  async lock(kind: LockKind, operation: string, waitMs = 0): Promise<HeldLock> {
    if (this.#options.noLock) {
      if (kind !== 'shared' || !READ_ONLY_OPERATIONS.has(operation)) {
        throw new UsageError(`${operation}: --no-lock is only for reading a repository (snapshots, restore, verify, diff)`, {
          hint: `${operation} writes to the repository and must lock it: run it without --no-lock.`,
        });
      }
      return { release: async () => undefined };
    }
    const lock = await acquireLock(this.store, kind, operation, waitMs);
    try {
      await this.removeDeadTemporaries();
    } catch (err) {
      await lock.release();
      throw err;
    }
    return lock;
  }

  /** Removes temporaries of dead writers on this host (see {@link lock}); returns how many. */
  async removeDeadTemporaries(): Promise<number> {
    const removed = (await this.store.removeDeadTemporaries?.()) ?? [];
    if (removed.length > 0) {
      const pids = [...new Set(removed.map((r) => r.pid))].join(', ');
      this.#options.onNotice?.(`removed ${removed.length} temporary file(s) left in ${this.location} by a process that no longer runs (pid ${pids}): ${removed.map((r) => r.name).slice(0, 5).join(', ')}${removed.length > 5 ? ', …' : ''}`);
    }
    return removed.length;
  }

  /** Ids of all snapshots, unordered. */
  async snapshotIds(): Promise<string[]> {
    const ids: string[] = [];
    for await (const { key } of listObjects(this.store, 'snapshots/')) ids.push(key.slice('snapshots/'.length));
    return ids;
  }

  /** Reads snapshot `id` (full id). Throws NotFoundError, or IntegrityError when damaged. */
  async snapshot(id: string): Promise<Snapshot> {
    let file: Buffer;
    try {
      file = await this.store.get(snapshotKey(id), { maxBytes: MAX_BYTES.snapshot });
    } catch (err) {
      if (err instanceof NotFoundError) throw unknownSnapshot(id, this.location);
      throw err;
    }
    return decodeManifest(id, file);
  }

  /** All snapshots, oldest first. Throws on the first damaged manifest. */
  async snapshots(): Promise<Snapshot[]> {
    const all = await Promise.all((await this.snapshotIds()).map((id) => this.snapshot(id)));
    return all.sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
  }

  /** Resolves `latest`, a full id or a unique id prefix to a snapshot. */
  async resolve(ref: string): Promise<Snapshot> {
    if (typeof ref !== 'string' || ref === '') throw new UsageError('no snapshot id given', { hint: 'Give a snapshot id or `latest`.' });
    // A whole id names its manifest: one GET (or a cache hit), no listing of snapshots/.
    if (/^[0-9a-f]{64}$/.test(ref)) return this.snapshot(ref);
    const ids = await this.snapshotIds();
    if (ref === 'latest') {
      if (ids.length === 0) throw new NotFoundError(`repository: ${this.location} has no snapshots yet`, { hint: 'Take one with `scriptorium backup`.' });
      // The newest by the order of snapshots(), reading one manifest at a time: a repository of many
      // snapshots of a large database never holds more than two of them in memory.
      let latest: Snapshot | undefined;
      for (const id of ids) {
        const snap = await this.snapshot(id);
        if (!latest || snap.time.localeCompare(latest.time) > 0 || (snap.time === latest.time && snap.id.localeCompare(latest.id) > 0)) latest = snap;
      }
      return latest!;
    }
    if (!/^[0-9a-f]{4,64}$/.test(ref)) throw unknownSnapshot(ref, this.location);
    const matches = ids.filter((id) => id.startsWith(ref));
    if (matches.length === 0) throw unknownSnapshot(ref, this.location);
    if (matches.length > 1) throw ambiguousSnapshot(ref, matches);
    return this.snapshot(matches[0]);
  }

  /**
   * Loads every index file into one ChunkIndex. Damaged index files are skipped unless `strict`.
   * With `existingOnly`, packs that are not in the store are left out, so that a backup never refers
   * to a chunk whose pack was lost (it stores the chunk again instead).
   */
  async loadIndex(strict = false, existingOnly = false): Promise<ChunkIndex> {
    const index = new ChunkIndex();
    let present: Set<string> | undefined;
    if (existingOnly) {
      present = new Set();
      for await (const { key } of listObjects(this.store, 'packs/')) present.add(key.slice(key.lastIndexOf('/') + 1));
    }
    for await (const { key } of listObjects(this.store, 'index/')) {
      try {
        const packs = await decodeIndex(key.slice('index/'.length), await this.store.get(key, { maxBytes: MAX_BYTES.index }));
        index.addIndexed(present ? packs.filter((p) => present.has(p.hash)) : packs);
      } catch (err) {
        // A damaged index only costs deduplication; prune rebuilds it. Verify reports it.
        if (strict || !(err instanceof Error && 'code' in err)) throw err;
      }
    }
    return index;
  }

  /** Reads and checks pack `hash`. Throws NotFoundError when it is missing, IntegrityError when damaged. */
  async pack(hash: string): Promise<Pack> {
    return Pack.open(hash, await this.store.get(packKey(hash), { maxBytes: maxPackBytes(this.config.packBytes) }), this.config.packBytes);
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}

function sha256Hex(data: Buffer): string {
  return oneShotHash('sha256', data, 'hex');
}

async function toStore(location: RepositoryLocation, options: OpenOptions): Promise<Store> {
  return typeof location === 'string' ? openStore(location, options.stores) : location;
}

/** Opens `location`, runs `fn`, and closes the repository again if this call opened it. */
export async function withRepository<T>(
  location: RepositoryLocation | Repository,
  options: OpenOptions,
  fn: (repo: Repository) => Promise<T>,
): Promise<T> {
  if (location instanceof Repository) return fn(location);
  const repo = await Repository.open(location, options);
  try {
    return await fn(repo);
  } finally {
    if (typeof location === 'string') await repo.close();
  }
}

export { PackCache, type PackCacheOptions, type PackCacheStats } from './pack-cache.js';
