/**
 * `scriptorium key list|add|remove|passwd`: manage the passphrases of an encrypted repository. Each
 * opens the repository with a key it has (passphrase or identity) and rewrites only key objects: the
 * secrets, and so every pack, index file and manifest, stay as they are.
 *
 * `add`, `remove` and `passwd` hold the repository's exclusive lock while they read and change the key
 * objects (after any new passphrase was asked for, so no one blocks the repository while typing). Two
 * of them at once therefore run one after the other, each seeing what the other left: two removes
 * cannot both pass the "not the last key" check on the same listing, and a passwd cannot delete a key
 * that another command has just replaced. The price is that a key command waits for a running backup
 * or restore (shared lock holders) to end, up to `lockWaitMs`.
 */
import { UsageError } from '../../core/errors.js';
import type { HeldLock } from '../locks.js';
import { withRepository, type OpenOptions, type Repository, type RepositoryLocation } from '../repository.js';
import { SealedStore } from './sealed-store.js';
import { addKey, changePassphrase, listKeys, removeKey, type KeyInfo, type RepositoryCrypto } from './repository-crypto.js';

/** Options of the key commands that change key objects. */
export interface KeyChangeOptions extends OpenOptions {
  /** How long to wait for the exclusive lock (another key command, a backup, a prune). Default 60 s. */
  lockWaitMs?: number;
}

/** How long a key command waits for the repository's exclusive lock by default. */
export const KEY_LOCK_WAIT_MS = 60_000;

function encrypted(repo: Repository): { crypto: RepositoryCrypto; store: SealedStore['base'] } {
  if (!repo.crypto || !(repo.store instanceof SealedStore)) {
    throw new UsageError(`key: repository ${repo.location} is not encrypted: it has no keys`, { hint: 'Keys belong to repositories created with `init --encrypt` or `init --recipient`.' });
  }
  return { crypto: repo.crypto, store: repo.store.base };
}

/** Runs `fn` under the repository's exclusive lock for `operation`. */
async function locked<T>(repo: Repository, operation: string, options: KeyChangeOptions, fn: () => Promise<T>): Promise<T> {
  const lock: HeldLock = await repo.lock('exclusive', operation, options.lockWaitMs ?? KEY_LOCK_WAIT_MS);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/**
 * Throws unless the key that opened the repository still exists: another key command may have removed
 * or replaced it between opening and taking the lock.
 */
async function stillThere(store: SealedStore['base'], crypto: RepositoryCrypto, operation: string): Promise<void> {
  if ((await listKeys(store, crypto)).some((k) => k.current)) return;
  throw new UsageError(`${operation}: key ${crypto.keyId}, which opened the repository, was removed meanwhile (by another key command)`, {
    hint: 'Nothing was changed. Run `scriptorium key list` with a passphrase that still opens the repository, then try again.',
  });
}

/** The repository's key objects, oldest first, the one that opened it marked `current`. */
export async function keyList(location: RepositoryLocation | Repository, options: OpenOptions = {}): Promise<{ keys: KeyInfo[] }> {
  return withRepository(location, options, async (repo) => {
    const { crypto, store } = encrypted(repo);
    return { keys: await listKeys(store, crypto) };
  });
}

/** Adds a passphrase (`newPassphrase` is called once, after the repository opened, before the lock). */
export async function keyAdd(location: RepositoryLocation | Repository, newPassphrase: () => Promise<Buffer>, options: KeyChangeOptions = {}): Promise<{ added: string }> {
  return withRepository(location, options, async (repo) => {
    const { crypto, store } = encrypted(repo);
    const passphrase = await newPassphrase();
    try {
      // The secrets are the same whichever key is used: the new key is good even if ours went meanwhile.
      return await locked(repo, 'key add', options, async () => ({ added: await addKey(store, crypto, passphrase, options.keys?.scryptLogN) }));
    } finally {
      passphrase.fill(0);
    }
  });
}

/** Removes key `id` (or a unique prefix); never the last one, nor the one that opened the repository. */
export async function keyRemove(location: RepositoryLocation | Repository, id: string, options: KeyChangeOptions = {}): Promise<{ removed: string }> {
  return withRepository(location, options, async (repo) => {
    const { crypto, store } = encrypted(repo);
    // removeKey lists the keys again under the lock, so the last-key check sees every earlier remove.
    return await locked(repo, 'key remove', options, async () => ({ removed: await removeKey(store, crypto, id) }));
  });
}

/** Replaces the passphrase that opened the repository by a new one. */
export async function keyPasswd(location: RepositoryLocation | Repository, newPassphrase: () => Promise<Buffer>, options: KeyChangeOptions = {}): Promise<{ added: string; removed: string }> {
  return withRepository(location, options, async (repo) => {
    const { crypto, store } = encrypted(repo);
    const passphrase = await newPassphrase();
    try {
      return await locked(repo, 'key passwd', options, async () => {
        await stillThere(store, crypto, 'key passwd');
        return await changePassphrase(store, crypto, passphrase, options.keys?.scryptLogN);
      });
    } finally {
      passphrase.fill(0);
    }
  });
}
