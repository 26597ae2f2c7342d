/**
 * The keys of an open encrypted repository, and what they do: map object names to the names stored
 * (a keyed permutation, so that a name reveals nothing and can be mapped back when listing), key chunk
 * ids (the same rows in two repositories get different ids), and choose how each kind of object is
 * sealed and opened. Created by {@link unlockRepository} or {@link createEncryption}.
 */
import * as crypto from 'node:crypto';
import { AuthError, IntegrityError, UsageError } from '../../core/errors.js';
import { X25519Recipient, type X25519Identity } from '../../codecs/age-keys.js';
import type { Store } from '../../stores/store.js';
import {
  deriveAhead, dropAhead, keyKey, MAX_KEY_OBJECT_BYTES, newKeyId, openWithIdentity, openWithPassphrase, parseKeyObject, passphraseKey, recipientKey,
  wrongKey, type EncryptionMode, type KeyObject, type RepositorySecrets,
} from './key-objects.js';
import type { OpenKey, SealKey } from './object-seal.js';

/** What a caller can unlock a repository with: asked for only when the repository is encrypted. */
export interface RepositoryKeys {
  /** The passphrase (called at most once; its bytes are wiped after use). */
  passphrase?: () => Promise<Buffer>;
  /** age identities, for a public-key repository (restore, verify --read-data, prune need one). */
  identities?: X25519Identity[];
  /** The caller gave a passphrase or identity on purpose: an unencrypted repository is then refused for backup. */
  expectEncrypted?: boolean;
  /** scrypt work factor (log2 N) for new passphrase keys (tests use less than the default). */
  scryptLogN?: number;
}

/** The `encryption` field of a version 2 config (informative: the authenticated settings are in the key objects). */
export interface EncryptionConfig {
  mode: EncryptionMode;
  cipher: 'aes-256-gcm';
  frameBytes: number;
  /** Public-key mode: the age recipient data is sealed to. */
  recipient?: string;
}

/** What `init` needs for an encrypted repository. */
export interface EncryptionSettings {
  /**
   * Passphrase mode: the first passphrase. Public-key mode: the backup host's passphrase (it unlocks
   * names, ids and the index only). `init` wipes these bytes once the key objects are made.
   */
  passphrase: Buffer;
  /** Public-key mode: the age recipient data is sealed to. */
  recipient?: X25519Recipient;
  scryptLogN?: number;
}

/** Kinds of sealed objects: data (rows, schema) and metadata (what a backup host must read). */
export type SealedKind = 'packs' | 'snapshots' | 'index' | 'locks' | 'snapshot-list';
const DATA_KINDS = new Set<SealedKind>(['packs', 'snapshots']);
/** The most key objects a repository may have (each one may cost a reader an scrypt). */
const MAX_KEYS = 64;

function subkey(secret: Buffer, info: string): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', secret, Buffer.alloc(0), `scriptorium-v2 ${info}`, 32));
}

/** A key object as listed by `key list`. */
export interface KeyInfo {
  id: string;
  kind: KeyObject['kind'];
  created: string;
  recipient?: string;
  /** This key opened the repository in this process. */
  current: boolean;
}

export class RepositoryCrypto {
  readonly repositoryId: string;
  readonly mode: EncryptionMode;
  readonly #secrets: RepositorySecrets;
  readonly #names: Buffer;
  readonly #metaSeal: Buffer;
  readonly #dataSeal: Buffer | undefined;
  readonly #recipient: X25519Recipient | undefined;
  readonly #identity: X25519Identity | undefined;
  readonly #ids: crypto.Cipher;
  /** The key object this process unlocked with. */
  readonly keyId: string;
  /**
   * That key object, when it came from a remote store's local cache (unlockRepository's `cachedKeys`):
   * not yet confirmed by the store (see Repository.confirmConfig).
   */
  cachedKey: KeyObject | undefined;

  constructor(repositoryId: string, secrets: RepositorySecrets, keyId: string, identity?: X25519Identity) {
    this.repositoryId = repositoryId;
    this.mode = secrets.mode;
    this.#secrets = secrets;
    this.keyId = keyId;
    this.#names = subkey(secrets.meta, 'names');
    this.#metaSeal = subkey(secrets.meta, 'metadata objects');
    this.#dataSeal = secrets.data ? subkey(secrets.data, 'data objects') : undefined;
    this.#recipient = secrets.recipient ? new X25519Recipient(secrets.recipient) : undefined;
    this.#identity = identity;
    // One ECB context for the whole process: ECB keeps no state between blocks, so update() maps each
    // 16-byte block on its own, and a batch of ids costs one call.
    this.#ids = crypto.createCipheriv('aes-256-ecb', subkey(secrets.meta, 'chunk ids'), null).setAutoPadding(false);
  }

  /** Whether this process can open data objects (passphrase mode, or public-key mode with the identity). */
  get readsData(): boolean {
    return this.mode === 'passphrase' || this.#identity !== undefined;
  }

  /**
   * Keyed chunk ids: each 32-byte SHA-256 in `ids` encrypted with AES-256 (two blocks, a keyed
   * permutation): ids stay unique and fixed per content within the repository, and mean nothing
   * without its secret. Returns a new buffer of the same length.
   */
  keyIds(ids: Buffer): Buffer {
    if (ids.length % 16 !== 0) throw new TypeError('keyIds: not whole ids');
    return this.#ids.update(ids);
  }

  /** {@link keyIds} of one hex SHA-256, as hex. */
  keyIdHex(sha256Hex: string): string {
    return this.keyIds(Buffer.from(sha256Hex, 'hex')).toString('hex');
  }

  /** The stored name of object name `hex` (64 hex digits), and back. */
  storedName(hex: string): string {
    const c = crypto.createCipheriv('aes-256-ecb', this.#names, null).setAutoPadding(false);
    return c.update(Buffer.from(hex, 'hex')).toString('hex');
  }

  plainName(hex: string): string {
    const d = crypto.createDecipheriv('aes-256-ecb', this.#names, null).setAutoPadding(false);
    return d.update(Buffer.from(hex, 'hex')).toString('hex');
  }

  sealKey(kind: SealedKind): SealKey {
    if (!DATA_KINDS.has(kind)) return { kind: 'secret', secret: this.#metaSeal };
    return this.#dataSeal ? { kind: 'secret', secret: this.#dataSeal } : { kind: 'recipient', recipient: this.#recipient! };
  }

  openKey(kind: SealedKind): OpenKey {
    if (!DATA_KINDS.has(kind)) return { kind: 'secret', secret: this.#metaSeal };
    return this.#dataSeal ? { kind: 'secret', secret: this.#dataSeal } : { kind: 'identity', identity: this.#identity };
  }

  /**
   * The secrets, to wrap in another key object (key add / passwd). In public-key mode they hold no data
   * secret at all (only names, ids, metadata and the recipient), so a new passphrase never reads data.
   */
  get secrets(): RepositorySecrets {
    return this.#secrets;
  }
}

/**
 * Lists and parses the key objects (damaged ones are skipped, with their error kept for a message);
 * `cached`: the listing and objects may come from a remote store's local cache (see unlockRepository).
 */
async function readKeys(store: Store, cached = false): Promise<Array<{ id: string; object: KeyObject }>> {
  const out: Array<{ id: string; object: KeyObject }> = [];
  let seen = 0;
  for await (const { key } of store.list('keys/', { cached })) {
    // Each passphrase key costs an scrypt to try: a folder of thousands would make opening take hours.
    if (++seen > MAX_KEYS) {
      throw new IntegrityError('E_CORRUPT', `repository: ${store.location}: more than ${MAX_KEYS} key objects in keys/`, {
        hint: 'No repository needs that many; someone added them to make opening it slow. Remove the ones you do not know (`scriptorium key list` after removing the extra files).',
      });
    }
    const id = key.slice('keys/'.length);
    try {
      out.push({ id, object: parseKeyObject(await store.get(key, { maxBytes: MAX_KEY_OBJECT_BYTES, cached }), id) });
    } catch (err) {
      if (!(err instanceof IntegrityError) && !(err instanceof Error && 'code' in err)) throw err;
    }
  }
  return out.sort((a, b) => a.object.created.localeCompare(b.object.created) || a.id.localeCompare(b.id));
}

/**
 * Starts the scrypt of the first passphrase key in `store` (the first that {@link unlockRepository}
 * tries) on the thread pool, for the unlock that follows to take (see deriveAhead): a caller runs it
 * before it loads the code that opens the repository. Any problem (no keys, a damaged one) is left to
 * that unlock, which reads the keys again and reports it.
 */
export async function deriveKeyAhead(store: Store, passphrase: Buffer): Promise<void> {
  const epoch = opens;
  const first = (await readKeys(store)).find((k) => k.object.kind === 'passphrase');
  // An open that ended meanwhile has derived its own: this one would only cost, and stay.
  if (first && epoch === opens) deriveAhead(first.object, passphrase);
}

/** Unlocks ended (see {@link deriveKeyAhead}). */
let opens = 0;

/** Drops an early derivation no open took (when the command is done), and any still being read. */
export function dropKeyAhead(): void {
  opens++;
  dropAhead();
}

/**
 * Opens the secrets of an encrypted repository: with an identity when one is given and a recipient key
 * matches it, else with the passphrase (asked for once). E_AUTH when nothing opens a key; E_CORRUPT when
 * the config disagrees with the authenticated secrets (edited to point data at another recipient).
 *
 * `cachedKeys` (a backup with a passphrase, on a remote store): the key objects may come from the
 * store's local cache, which is untrusted. A cached object is used only when the passphrase unwraps it
 * (authenticated encryption bound to the repository id and key id: nobody without the passphrase can
 * make one), and the secrets it yields must then open the snapshot list read from the store, which
 * records the config's hash (Repository.confirmConfig). When none opens, the keys are listed and read
 * from the store again. An identity never opens a cached key (a recipient key can be made by anyone).
 */
export async function unlockRepository(store: Store, repositoryId: string, encryption: EncryptionConfig, keys: RepositoryKeys = {}, cachedKeys = false): Promise<RepositoryCrypto> {
  try {
    return await unlock(store, repositoryId, encryption, keys, cachedKeys);
  } finally {
    dropKeyAhead(); // an early derivation this open did not take is of no further use
  }
}

async function unlock(store: Store, repositoryId: string, encryption: EncryptionConfig, keys: RepositoryKeys, cachedKeys: boolean): Promise<RepositoryCrypto> {
  let fromCache = cachedKeys && (keys.identities?.length ?? 0) === 0 && keys.passphrase !== undefined;
  let objects = await readKeys(store, fromCache);
  if (fromCache && objects.length === 0) {
    objects = await readKeys(store);
    fromCache = false;
  }
  if (objects.length === 0) {
    throw new IntegrityError('E_CORRUPT', `repository: ${store.location}: encrypted, but holds no readable key object (keys/)`, {
      hint: 'Restore the keys/ folder from a copy of the repository; without a key its data cannot be read.',
    });
  }
  let opened: { secrets: RepositorySecrets; id: string; identity?: X25519Identity; object?: KeyObject } | undefined;
  for (const identity of keys.identities ?? []) {
    for (const { id, object } of objects) {
      const secrets = openWithIdentity(repositoryId, id, object, identity);
      if (secrets) {
        opened = { secrets, id, identity };
        break;
      }
    }
    if (opened) break;
  }
  // An identity was given on purpose: one that opens nothing is the answer, not a reason to ask for a passphrase.
  if (!opened && (keys.identities?.length ?? 0) > 0) throw wrongKey(store.location, 'identity');
  if (!opened) {
    if (!keys.passphrase) {
      throw new AuthError(`repository: ${store.location} is encrypted and no passphrase was given`, {
        hint: 'Set SCRIPTORIUM_PASSWORD, pass --password-file FILE, or run on a terminal to be asked; a public-key repository also opens with --identity FILE.',
      });
    }
    const passphrase = await keys.passphrase();
    try {
      for (let attempt = fromCache ? 0 : 1; attempt < 2 && !opened; attempt++) {
        if (attempt === 1 && fromCache) objects = await readKeys(store); // the cached keys did not open: ask the store
        for (const { id, object } of objects) {
          const secrets = await openWithPassphrase(repositoryId, id, object, passphrase);
          if (secrets) {
            opened = { secrets, id, ...(attempt === 0 ? { object } : {}) };
            break;
          }
        }
      }
    } finally {
      passphrase.fill(0);
    }
    if (!opened) throw wrongKey(store.location, 'passphrase');
  }
  const { secrets } = opened;
  const recipient = secrets.recipient ? new X25519Recipient(secrets.recipient).toString() : undefined;
  if (secrets.mode !== encryption.mode || (recipient !== undefined && recipient !== encryption.recipient)) {
    throw new IntegrityError('E_CORRUPT', `repository: ${store.location}: config: encryption does not match what its keys say (${secrets.mode}${recipient ? ` to ${recipient}` : ''})`, {
      hint: 'The config was edited (perhaps to send data to another key); restore it from a copy of the repository. The keys are authoritative.',
    });
  }
  // An identity given for a passphrase-opened public-key repository still reads data if it is the recipient's.
  const identity = opened.identity ?? (recipient ? keys.identities?.find((i) => i.recipient.toString() === recipient) : undefined);
  const opens = new RepositoryCrypto(repositoryId, secrets, opened.id, identity);
  opens.cachedKey = opened.object;
  return opens;
}

/** New secrets and the first key objects for `init`; returns the crypto and the key objects to store. */
export async function createEncryption(repositoryId: string, settings: EncryptionSettings): Promise<{ crypto: RepositoryCrypto; config: EncryptionConfig; keys: Array<[string, KeyObject]> }> {
  const mode: EncryptionMode = settings.recipient ? 'recipient' : 'passphrase';
  const secrets: RepositorySecrets = settings.recipient
    ? { mode, meta: crypto.randomBytes(32), recipient: Buffer.from(settings.recipient.publicKey) }
    : { mode, meta: crypto.randomBytes(32), data: crypto.randomBytes(32) };
  const keys: Array<[string, KeyObject]> = [];
  const id = newKeyId();
  keys.push([id, await passphraseKey(repositoryId, id, secrets, settings.passphrase, settings.scryptLogN)]);
  if (settings.recipient) {
    const rid = newKeyId();
    keys.push([rid, recipientKey(repositoryId, rid, secrets, settings.recipient)]);
  }
  const config: EncryptionConfig = { mode, cipher: 'aes-256-gcm', frameBytes: 64 << 10, ...(settings.recipient ? { recipient: settings.recipient.toString() } : {}) };
  return { crypto: new RepositoryCrypto(repositoryId, secrets, id), config, keys };
}

/** `key list`: the key objects, oldest first. */
export async function listKeys(store: Store, current: RepositoryCrypto): Promise<KeyInfo[]> {
  return (await readKeys(store)).map(({ id, object }) => ({
    id, kind: object.kind, created: object.created, ...(object.recipient ? { recipient: object.recipient } : {}), current: id === current.keyId,
  }));
}

/** `key add`: a new passphrase key for the same secrets; returns its id. */
export async function addKey(store: Store, current: RepositoryCrypto, passphrase: Buffer, logN?: number): Promise<string> {
  if ((await readKeys(store)).length >= MAX_KEYS) {
    throw new UsageError(`the repository has ${MAX_KEYS} keys, the most it may have`, { hint: 'Remove keys nobody uses (`scriptorium key list`, `key remove`) first.' });
  }
  const id = newKeyId();
  const object = await passphraseKey(current.repositoryId, id, current.secrets, passphrase, logN);
  await store.put(keyKey(id), Buffer.from(JSON.stringify(object, null, 2) + '\n'));
  return id;
}

/** `key remove`: removes key `ref` (id or unique prefix); never the last key, nor the one in use. */
export async function removeKey(store: Store, current: RepositoryCrypto, ref: string): Promise<string> {
  const all = await readKeys(store);
  const matches = all.filter((k) => k.id.startsWith(ref));
  if (!/^[0-9a-f]{1,64}$/.test(ref) || matches.length !== 1) {
    throw new UsageError(`key ${JSON.stringify(ref)}: ${matches.length === 0 ? 'no such key' : 'matches several keys'}`, { hint: 'Use an id (or a unique prefix) from `scriptorium key list`.' });
  }
  const { id } = matches[0]!;
  if (all.length <= 1) throw new UsageError(`key ${id} is the repository's last key and cannot be removed`, { hint: 'Add another key first (`scriptorium key add`); without a key the data cannot be read.' });
  if (id === current.keyId) throw new UsageError(`key ${id} is the key this command was unlocked with`, { hint: 'Open the repository with another key (its passphrase) to remove this one, or use `scriptorium key passwd` to change it.' });
  await store.delete(keyKey(id));
  return id;
}

/** `key passwd`: replaces the key in use by one for `passphrase`; returns the new id. */
export async function changePassphrase(store: Store, current: RepositoryCrypto, passphrase: Buffer, logN?: number): Promise<{ added: string; removed: string }> {
  const object = (await readKeys(store)).find((k) => k.id === current.keyId);
  if (!object || object.object.kind !== 'passphrase') {
    throw new UsageError('key passwd changes the passphrase the repository was opened with, and it was opened with an identity', { hint: 'Open it with the passphrase to change (SCRIPTORIUM_PASSWORD or --password-file).' });
  }
  const added = await addKey(store, current, passphrase, logN);
  await store.delete(keyKey(current.keyId));
  return { added, removed: current.keyId };
}
