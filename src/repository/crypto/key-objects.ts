/**
 * Key objects (`keys/<id>`) of an encrypted repository: the repository's secrets, wrapped once per
 * passphrase (by a key scrypt derives from it) or for an age X25519 recipient (public-key mode). The
 * secrets never change, so adding, removing or changing a passphrase rewrites one small object and no
 * data. See docs/repository-format.md, "Key objects".
 */
import * as crypto from 'node:crypto';
import { promisify } from 'node:util';
import { AuthError, IntegrityError } from '../../core/errors.js';
import { rawPublicKey, x25519PublicKey, X25519Recipient, type X25519Identity } from '../../codecs/age-keys.js';

const scryptAsync = promisify(crypto.scrypt) as (pass: Buffer, salt: Buffer, len: number, opts: crypto.ScryptOptions) => Promise<Buffer>;

/** How data objects are sealed: with a secret every passphrase unlocks, or to an age recipient. */
export type EncryptionMode = 'passphrase' | 'recipient';

/** The secrets a key object wraps. */
export interface RepositorySecrets {
  mode: EncryptionMode;
  /** Names, chunk ids, index files and locks: every key object holds it (the backup host needs it). */
  meta: Buffer;
  /** Passphrase mode: the key of packs and manifests. */
  data?: Buffer;
  /** Recipient mode: the raw X25519 public key data objects are sealed to (authenticated here, not taken from the config). */
  recipient?: Buffer;
}

/** scrypt's work factor for new passphrase keys: 2^15 (32 MiB, about 0.1 s here), within backup's memory budget. */
export const DEFAULT_SCRYPT_LOG_N = 15;
/** The most a key object may ask for (2^22: 4 GiB and seconds); more is refused before any work. */
export const MAX_SCRYPT_LOG_N = 22;
const MIN_SCRYPT_LOG_N = 10;
/** The largest key object a reader accepts. */
export const MAX_KEY_OBJECT_BYTES = 64 << 10;
const KEY_ID = /^[0-9a-f]{16,64}$/;

/** A key object as stored (JSON). */
export interface KeyObject {
  version: 2;
  kind: 'passphrase' | 'recipient';
  created: string;
  /** passphrase: scrypt's parameters and salt. */
  scrypt?: { logN: number; r: number; p: number; salt: string };
  /** recipient: the age recipient (public), and the X25519 share of the wrap. */
  recipient?: string;
  share?: string;
  /** Base64 of nonce (12 bytes) ‖ AES-256-GCM(secrets) ‖ tag. */
  sealed: string;
}

/** The store key of key object `id`. */
export function keyKey(id: string): string {
  return `keys/${id}`;
}

/** A new key object id: 16 random hex digits. */
export function newKeyId(): string {
  return crypto.randomBytes(8).toString('hex');
}

export function encodeSecrets(s: RepositorySecrets): Buffer {
  const extra = s.mode === 'passphrase' ? s.data! : s.recipient!;
  return Buffer.concat([Buffer.of(s.mode === 'passphrase' ? 1 : 2), s.meta, extra]);
}

function decodeSecrets(b: Buffer, what: string): RepositorySecrets {
  if (b.length !== 65 || (b[0] !== 1 && b[0] !== 2)) throw new IntegrityError('E_CORRUPT', `${what}: holds no repository secrets`);
  const meta = Buffer.from(b.subarray(1, 33));
  const extra = Buffer.from(b.subarray(33));
  return b[0] === 1 ? { mode: 'passphrase', meta, data: extra } : { mode: 'recipient', meta, recipient: extra };
}

function ad(repo: string, id: string, object: KeyObject): Buffer {
  return Buffer.from(`scriptorium-v2 key\0${repo}\0${id}\0${object.kind}\0${object.recipient ?? ''}`, 'utf8');
}

function gcmSeal(key: Buffer, nonce: Buffer, aad: Buffer, plain: Buffer): Buffer {
  const c = crypto.createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(aad);
  return Buffer.concat([nonce, c.update(plain), c.final(), c.getAuthTag()]);
}

function gcmOpen(key: Buffer, sealed: Buffer, aad: Buffer): Buffer | undefined {
  if (sealed.length < 12 + 16) return undefined;
  const d = crypto.createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  try {
    return Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]);
  } catch {
    return undefined;
  }
}

async function scryptKey(passphrase: Buffer, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** logN;
  return scryptAsync(passphrase, salt, 32, { N, r, p, maxmem: 129 * N * r * p + (1 << 20) });
}

/**
 * The most {@link deriveAhead} starts on its own: the default (32 MiB, ~0.1 s). A key that asks for
 * more is derived by the open alone, so that an early read of a hostile folder (even one whose config
 * says it is not encrypted, which no open would then unlock) costs no more than that.
 */
const AHEAD_MAX_LOG_N = DEFAULT_SCRYPT_LOG_N;

/** A derivation started by {@link deriveAhead}, for the next open of its key with its passphrase. */
let ahead: { passphrase: Buffer; scrypt: NonNullable<KeyObject['scrypt']>; kek: Promise<Buffer> } | undefined;

/**
 * Starts, on the thread pool, the scrypt that opening the passphrase key `object` with `passphrase`
 * will need, and returns at once: the next {@link openWithPassphrase} of a key with the same salt and
 * parameters, given the same passphrase, takes its result instead of deriving again (once). A caller
 * starts it while it loads and opens other things; nothing is trusted from it (the open still checks
 * the key's tag), and an unused one costs only the derivation.
 */
export function deriveAhead(object: KeyObject, passphrase: Buffer): void {
  const s = object.scrypt;
  if (object.kind !== 'passphrase' || !s || s.logN > AHEAD_MAX_LOG_N) return;
  const kek = scryptKey(passphrase, Buffer.from(s.salt, 'base64'), s.logN, s.r, s.p);
  kek.catch(() => undefined); // the open that takes it sees the error; none may go unhandled
  dropAhead();
  ahead = { passphrase: Buffer.from(passphrase), scrypt: { ...s }, kek };
  aheadCounts.started++;
}

/** Derivations {@link deriveAhead} started, and those an open took. */
export const aheadCounts = { started: 0, taken: 0 };

/** Drops a derivation {@link deriveAhead} started and no open took, wiping its copy of the passphrase. */
export function dropAhead(): void {
  if (!ahead) return;
  ahead.passphrase.fill(0);
  ahead.kek.then((kek) => kek.fill(0), () => undefined);
  ahead = undefined;
}

/** The derivation {@link deriveAhead} started for these inputs, taken (undefined when there is none). */
function takeAhead(passphrase: Buffer, s: NonNullable<KeyObject['scrypt']>): Promise<Buffer> | undefined {
  const a = ahead;
  if (!a || a.scrypt.salt !== s.salt || a.scrypt.logN !== s.logN || a.scrypt.r !== s.r || a.scrypt.p !== s.p) return undefined;
  if (a.passphrase.length !== passphrase.length || !crypto.timingSafeEqual(a.passphrase, passphrase)) return undefined;
  ahead = undefined;
  a.passphrase.fill(0);
  aheadCounts.taken++;
  return a.kek; // wiped by the open that takes it
}

/** A key object wrapping `secrets` for `passphrase`. */
export async function passphraseKey(repo: string, id: string, secrets: RepositorySecrets, passphrase: Buffer, logN = DEFAULT_SCRYPT_LOG_N): Promise<KeyObject> {
  const salt = crypto.randomBytes(32);
  const object: KeyObject = { version: 2, kind: 'passphrase', created: new Date().toISOString(), scrypt: { logN, r: 8, p: 1, salt: salt.toString('base64') }, sealed: '' };
  const kek = await scryptKey(passphrase, salt, logN, 8, 1);
  const plain = encodeSecrets(secrets);
  object.sealed = gcmSeal(kek, crypto.randomBytes(12), ad(repo, id, object), plain).toString('base64');
  kek.fill(0);
  plain.fill(0);
  return object;
}

function recipientWrapKey(shared: Buffer, share: Buffer, recipient: Buffer): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', shared, Buffer.concat([share, recipient]), 'scriptorium-v2 key x25519', 32));
}

/** A key object wrapping `secrets` for the age recipient `recipient`. */
export function recipientKey(repo: string, id: string, secrets: RepositorySecrets, recipient: X25519Recipient): KeyObject {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('x25519');
  const share = rawPublicKey(publicKey);
  const shared = crypto.diffieHellman({ privateKey, publicKey: recipient.key });
  const object: KeyObject = { version: 2, kind: 'recipient', created: new Date().toISOString(), recipient: recipient.toString(), share: share.toString('base64'), sealed: '' };
  const plain = encodeSecrets(secrets);
  object.sealed = gcmSeal(recipientWrapKey(shared, share, recipient.publicKey), Buffer.alloc(12), ad(repo, id, object), plain).toString('base64');
  shared.fill(0);
  plain.fill(0);
  return object;
}

/** Parses a stored key object, checking every field before anything uses it (E_CORRUPT). */
export function parseKeyObject(data: Buffer, id: string): KeyObject {
  const what = `key ${id}`;
  const bad = (why: string) => new IntegrityError('E_CORRUPT', `${what}: ${why}`, { hint: 'The key object was damaged or edited; use another key, or restore it from a copy of the repository.' });
  if (!KEY_ID.test(id)) throw bad('not a key object name');
  let o: KeyObject;
  try {
    o = JSON.parse(data.toString('utf8')) as KeyObject;
  } catch {
    throw bad('not JSON');
  }
  if (o === null || typeof o !== 'object' || o.version !== 2 || typeof o.sealed !== 'string' || typeof o.created !== 'string') throw bad('not a key object of format version 2');
  if (o.kind === 'passphrase') {
    const s = o.scrypt;
    if (!s || typeof s !== 'object' || !Number.isInteger(s.logN) || s.logN < MIN_SCRYPT_LOG_N || s.logN > MAX_SCRYPT_LOG_N || s.r !== 8 || s.p !== 1 || typeof s.salt !== 'string') {
      throw bad(`scrypt parameters out of range (log2 N from ${MIN_SCRYPT_LOG_N} to ${MAX_SCRYPT_LOG_N}, r 8, p 1)`);
    }
  } else if (o.kind === 'recipient') {
    if (typeof o.recipient !== 'string' || typeof o.share !== 'string' || Buffer.from(o.share, 'base64').length !== 32) throw bad('recipient or share missing');
  } else throw bad('unknown kind');
  return o;
}

/** The secrets of a passphrase key object, or undefined when the passphrase is not its. */
export async function openWithPassphrase(repo: string, id: string, object: KeyObject, passphrase: Buffer): Promise<RepositorySecrets | undefined> {
  if (object.kind !== 'passphrase') return undefined;
  const s = object.scrypt!;
  const kek = await (takeAhead(passphrase, s) ?? scryptKey(passphrase, Buffer.from(s.salt, 'base64'), s.logN, s.r, s.p));
  const plain = gcmOpen(kek, Buffer.from(object.sealed, 'base64'), ad(repo, id, object));
  kek.fill(0);
  if (!plain) return undefined;
  try {
    return decodeSecrets(plain, `key ${id}`);
  } finally {
    plain.fill(0);
  }
}

/** The secrets of a recipient key object, or undefined when `identity` is not its recipient's. */
export function openWithIdentity(repo: string, id: string, object: KeyObject, identity: X25519Identity): RepositorySecrets | undefined {
  if (object.kind !== 'recipient' || object.recipient !== identity.recipient.toString()) return undefined;
  const share = Buffer.from(object.share!, 'base64');
  let shared: Buffer;
  try {
    shared = identity.sharedSecret(x25519PublicKey(share));
  } catch {
    return undefined;
  }
  if (shared.every((b) => b === 0)) return undefined;
  const plain = gcmOpen(recipientWrapKey(shared, share, identity.recipient.publicKey), Buffer.from(object.sealed, 'base64'), ad(repo, id, object));
  shared.fill(0);
  if (!plain) return undefined;
  try {
    return decodeSecrets(plain, `key ${id}`);
  } finally {
    plain.fill(0);
  }
}

/** The error for a passphrase or identity that opens none of the repository's keys. */
export function wrongKey(location: string, what: 'passphrase' | 'identity'): AuthError {
  return new AuthError(`repository: ${location}: the ${what} opens none of its keys`, {
    hint: what === 'passphrase'
      ? 'Check SCRIPTORIUM_PASSWORD or --password-file (`scriptorium key list` shows the keys once you can open one).'
      : 'Use the identity file whose public key the repository was created with (init --recipient).',
  });
}
