/**
 * `scriptorium key list|add|remove|passwd`: manage the passphrases of an encrypted repository. Each
 * opens the repository with a key it has (passphrase or identity) and rewrites only key objects: the
 * secrets, and so every pack, index file and manifest, stay as they are.
 */
import { UsageError } from '../../core/errors.js';
import { withRepository, type OpenOptions, type Repository, type RepositoryLocation } from '../repository.js';
import { SealedStore } from './sealed-store.js';
import { addKey, changePassphrase, listKeys, removeKey, type KeyInfo, type RepositoryCrypto } from './repository-crypto.js';

function encrypted(repo: Repository): { crypto: RepositoryCrypto; store: SealedStore['base'] } {
  if (!repo.crypto || !(repo.store instanceof SealedStore)) {
    throw new UsageError(`key: repository ${repo.location} is not encrypted: it has no keys`, { hint: 'Keys belong to repositories created with `init --encrypt` or `init --recipient`.' });
  }
  return { crypto: repo.crypto, store: repo.store.base };
}

/** The repository's key objects, oldest first, the one that opened it marked `current`. */
export async function keyList(location: RepositoryLocation | Repository, options: OpenOptions = {}): Promise<{ keys: KeyInfo[] }> {
  return withRepository(location, options, async (repo) => {
    const { crypto, store } = encrypted(repo);
    return { keys: await listKeys(store, crypto) };
  });
}

/** Adds a passphrase (`newPassphrase` is called once, after the repository opened). */
export async function keyAdd(location: RepositoryLocation | Repository, newPassphrase: () => Promise<Buffer>, options: OpenOptions = {}): Promise<{ added: string }> {
  return withRepository(location, options, async (repo) => {
    const { crypto, store } = encrypted(repo);
    const passphrase = await newPassphrase();
    try {
      return { added: await addKey(store, crypto, passphrase, options.keys?.scryptLogN) };
    } finally {
      passphrase.fill(0);
    }
  });
}

/** Removes key `id` (or a unique prefix); never the last one, nor the one that opened the repository. */
export async function keyRemove(location: RepositoryLocation | Repository, id: string, options: OpenOptions = {}): Promise<{ removed: string }> {
  return withRepository(location, options, async (repo) => {
    const { crypto, store } = encrypted(repo);
    return { removed: await removeKey(store, crypto, id) };
  });
}

/** Replaces the passphrase that opened the repository by a new one. */
export async function keyPasswd(location: RepositoryLocation | Repository, newPassphrase: () => Promise<Buffer>, options: OpenOptions = {}): Promise<{ added: string; removed: string }> {
  return withRepository(location, options, async (repo) => {
    const { crypto, store } = encrypted(repo);
    const passphrase = await newPassphrase();
    try {
      return await changePassphrase(store, crypto, passphrase, options.keys?.scryptLogN);
    } finally {
      passphrase.fill(0);
    }
  });
}
