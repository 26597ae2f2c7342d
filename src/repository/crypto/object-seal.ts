/**
 * Sealed objects of an encrypted repository (format version 2): AES-256-GCM in frames of 64 KiB, each
 * with its own tag, the frame number and a final flag in its nonce, and the object's repository, kind
 * and name (and the sealed header) as associated data. So a flipped bit, a truncated or reordered
 * object, an object renamed or moved to another kind, or one copied from another repository fails to
 * authenticate; and nothing decrypted is returned before every frame's tag has been checked.
 *
 * An object's key is either derived from a repository secret and a random salt (symmetric stanza), or
 * a random file key wrapped to an age X25519 recipient (recipient stanza, as age's `X25519` stanza):
 * whoever holds only the recipient can seal such an object but never open it.
 * See docs/repository-format.md, "Encryption".
 */
import * as crypto from 'node:crypto';
import { AuthError, IntegrityError } from '../../core/errors.js';
import { rawPublicKey, x25519PublicKey, type X25519Identity, type X25519Recipient } from '../../codecs/age-keys.js';

export const SEAL_MAGIC = Buffer.from('SCRSEAL2', 'latin1');
/** Plaintext bytes per frame (the last frame may hold fewer, even none). */
export const FRAME_BYTES = 64 << 10;
export const TAG_BYTES = 16;
const STANZA_SYMMETRIC = 1;
const STANZA_RECIPIENT = 2;
const SALT_BYTES = 16;
const SHARE_BYTES = 32;
const WRAPPED_BYTES = 32 + TAG_BYTES;
const SYMMETRIC_HEADER = SEAL_MAGIC.length + 1 + SALT_BYTES;
const RECIPIENT_HEADER = SEAL_MAGIC.length + 1 + SHARE_BYTES + WRAPPED_BYTES;
const ZERO_NONCE = Buffer.alloc(12);
const KIND_NAMES: Record<string, string> = { packs: 'pack', snapshots: 'snapshot', index: 'index file', locks: 'lock' };

/** How an object is sealed: with a secret the sealer also opens with, or to a recipient it cannot open for. */
export type SealKey = { kind: 'secret'; secret: Buffer } | { kind: 'recipient'; recipient: X25519Recipient };
/** How an object is opened: the same secret, or the identity of the recipient (undefined: the caller has none). */
export type OpenKey = { kind: 'secret'; secret: Buffer } | { kind: 'identity'; identity: X25519Identity | undefined };

/** The bytes sealing adds to `plain` bytes at most (header and one tag a frame). */
export function sealOverhead(plain: number): number {
  return RECIPIENT_HEADER + TAG_BYTES * (Math.floor(plain / FRAME_BYTES) + 1);
}

/** The largest sealed object holding at most `plain` bytes (for bounding reads). */
export function maxSealedBytes(plain: number): number {
  return plain + sealOverhead(plain);
}

function objectKey(secret: Buffer, salt: Buffer): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', secret, salt, 'scriptorium-v2 object key', 32));
}

function wrapKey(shared: Buffer, share: Buffer, recipient: Buffer): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', shared, Buffer.concat([share, recipient]), 'scriptorium-v2 x25519', 32));
}

/** The nonce of frame `n`: 7 zero bytes, the frame number (u32 big-endian), 1 on the last frame. */
function frameNonce(n: number, last: boolean, into: Buffer): Buffer {
  into.fill(0, 0, 7);
  into.writeUInt32BE(n, 7);
  into[11] = last ? 1 : 0;
  return into;
}

/** The associated data of every frame of the object `name` (e.g. `packs/<id>`) of repository `repo`. */
function associatedData(repo: string, name: string, header: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`scriptorium-v2\0${repo}\0${name}\0`, 'utf8'), header]);
}

/** A fresh object's sealed header and file key (a new salt, or a new file key wrapped to the recipient). */
function sealHeader(repo: string, name: string, key: SealKey): { header: Buffer; fileKey: Buffer } {
  let header: Buffer;
  let fileKey: Buffer;
  if (key.kind === 'secret') {
    const salt = crypto.randomBytes(SALT_BYTES);
    header = Buffer.concat([SEAL_MAGIC, Buffer.of(STANZA_SYMMETRIC), salt]);
    fileKey = objectKey(key.secret, salt);
  } else {
    fileKey = crypto.randomBytes(32);
    const { privateKey, publicKey } = crypto.generateKeyPairSync('x25519');
    const share = rawPublicKey(publicKey);
    const shared = crypto.diffieHellman({ privateKey, publicKey: key.recipient.key });
    const wrap = crypto.createCipheriv('aes-256-gcm', wrapKey(shared, share, key.recipient.publicKey), ZERO_NONCE);
    wrap.setAAD(Buffer.from(`scriptorium-v2 file key\0${repo}\0${name}`, 'utf8'));
    const wrapped = Buffer.concat([wrap.update(fileKey), wrap.final(), wrap.getAuthTag()]);
    shared.fill(0);
    header = Buffer.concat([SEAL_MAGIC, Buffer.of(STANZA_RECIPIENT), share, wrapped]);
  }
  return { header, fileKey };
}

/**
 * Seals `plain` as the object `name` of repository `repo` (its id). A fresh salt or file key per
 * object, so frame numbers from 0 never repeat a nonce under one key.
 */
export function sealObjectBytes(plain: Uint8Array, repo: string, name: string, key: SealKey): Buffer {
  const { header, fileKey } = sealHeader(repo, name, key);
  const ad = associatedData(repo, name, header);
  const frames = Math.floor(plain.length / FRAME_BYTES) + 1;
  const out = Buffer.allocUnsafe(header.length + plain.length + TAG_BYTES * frames);
  let at = header.copy(out, 0);
  const nonce = Buffer.alloc(12);
  for (let n = 0; n < frames; n++) {
    const piece = plain.subarray(n * FRAME_BYTES, Math.min(plain.length, (n + 1) * FRAME_BYTES));
    const c = crypto.createCipheriv('aes-256-gcm', fileKey, frameNonce(n, n === frames - 1, nonce));
    c.setAAD(ad);
    at += c.update(piece).copy(out, at);
    at += c.final().copy(out, at);
    at += c.getAuthTag().copy(out, at);
  }
  fileKey.fill(0);
  return out.subarray(0, at);
}

/**
 * {@link sealObjectBytes} in pieces, for an object too large to hold (a pack ending in the chunk of a
 * huge value): `read(into, at)` fills `into` with the plaintext's bytes from `at` (all of them: the
 * caller knows the object's `plainBytes`), and the sealed object is yielded header first, then frame by
 * frame (each a fresh buffer). The bytes are exactly those {@link sealObjectBytes} writes for the same
 * plaintext, salt and key, so {@link openObjectPieces} and {@link openObjectBytes} open it unchanged.
 */
export async function* sealObjectPieces(
  plainBytes: number, read: (into: Buffer, at: number) => Promise<void>, repo: string, name: string, key: SealKey,
): AsyncGenerator<Buffer> {
  const { header, fileKey } = sealHeader(repo, name, key);
  try {
    yield header;
    const ad = associatedData(repo, name, header);
    const frames = Math.floor(plainBytes / FRAME_BYTES) + 1;
    const nonce = Buffer.alloc(12);
    const piece = Buffer.allocUnsafe(FRAME_BYTES);
    for (let n = 0; n < frames; n++) {
      const size = Math.min(FRAME_BYTES, plainBytes - n * FRAME_BYTES);
      const plain = piece.subarray(0, size);
      await read(plain, n * FRAME_BYTES);
      const c = crypto.createCipheriv('aes-256-gcm', fileKey, frameNonce(n, n === frames - 1, nonce));
      c.setAAD(ad);
      yield Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
    }
    piece.fill(0);
  } finally {
    fileKey.fill(0);
  }
}

/** The parts of opening an object that come before its frames: its header, checked, and its file key. */
function openHeader(start: Buffer, total: number, repo: string, name: string, key: OpenKey): { what: string; fail: (why: string) => AuthError; header: Buffer; fileKey: Buffer } {
  const sealed = start;
  const kind = name.slice(0, name.indexOf('/'));
  const what = `${KIND_NAMES[kind] ?? kind} ${name.slice(kind.length + 1, kind.length + 17)}`;
  if (total < SEAL_MAGIC.length + 1 || sealed.length < SEAL_MAGIC.length + 1 || !sealed.subarray(0, SEAL_MAGIC.length).equals(SEAL_MAGIC)) {
    throw new IntegrityError('E_CORRUPT', `${what}: not a sealed object of an encrypted repository (format version 2)`, {
      hint: 'The object is damaged, or was written by something else; run `scriptorium verify` to list what is affected.',
    });
  }
  const fail = (why: string) => new AuthError(`${what}: does not authenticate (${why})`, {
    hint: 'It was changed, truncated, renamed or copied from another repository, or the key is wrong; nothing of it was used. Run `scriptorium verify` to list what is affected.',
  });
  const stanza = sealed[SEAL_MAGIC.length];
  let header: Buffer;
  let fileKey: Buffer;
  if (key.kind === 'secret') {
    if (stanza !== STANZA_SYMMETRIC || total < SYMMETRIC_HEADER || sealed.length < SYMMETRIC_HEADER) throw fail('not sealed with the repository key');
    header = sealed.subarray(0, SYMMETRIC_HEADER);
    fileKey = objectKey(key.secret, header.subarray(SEAL_MAGIC.length + 1));
  } else {
    if (stanza !== STANZA_RECIPIENT || total < RECIPIENT_HEADER || sealed.length < RECIPIENT_HEADER) throw fail('not sealed to the repository recipient');
    const identity = key.identity;
    if (!identity) {
      throw new AuthError(`${what}: is sealed to the repository's recipient, and no identity was given`, {
        hint: 'Reading data of a public-key repository needs its private key: pass --identity FILE or set SCRIPTORIUM_IDENTITY_FILE.',
      });
    }
    header = sealed.subarray(0, RECIPIENT_HEADER);
    const share = header.subarray(SEAL_MAGIC.length + 1, SEAL_MAGIC.length + 1 + SHARE_BYTES);
    const wrapped = header.subarray(SEAL_MAGIC.length + 1 + SHARE_BYTES);
    let shared: Buffer;
    try {
      shared = identity.sharedSecret(x25519PublicKey(Buffer.from(share)));
    } catch {
      throw fail('invalid key share');
    }
    if (shared.every((b) => b === 0)) throw fail('low-order key share');
    const d = crypto.createDecipheriv('aes-256-gcm', wrapKey(shared, share, identity.recipient.publicKey), ZERO_NONCE);
    shared.fill(0);
    d.setAAD(Buffer.from(`scriptorium-v2 file key\0${repo}\0${name}`, 'utf8'));
    d.setAuthTag(wrapped.subarray(32));
    try {
      fileKey = Buffer.concat([d.update(wrapped.subarray(0, 32)), d.final()]);
    } catch {
      throw fail('the file key does not open with this identity');
    }
  }
  return { what, fail, header, fileKey };
}

/**
 * Opens what {@link sealObjectBytes} sealed as `name`: E_AUTH when any frame does not authenticate
 * (damaged, truncated, renamed, another repository's, or a wrong key), E_CORRUPT when it is not a
 * sealed object at all. `accepts` says which stanza the caller expects, so that an object a repository
 * seals with its secret cannot be replaced by one sealed to some recipient, nor the other way round.
 */
export function openObjectBytes(sealed: Buffer, repo: string, name: string, key: OpenKey): Buffer {
  const { what, fail, header, fileKey } = openHeader(sealed, sealed.length, repo, name, key);
  const body = sealed.length - header.length;
  // Every frame but the last holds FRAME_BYTES; the last holds 0..FRAME_BYTES (so it may be a bare tag).
  const frames = Math.max(1, Math.ceil(body / (FRAME_BYTES + TAG_BYTES)));
  const plainBytes = body - TAG_BYTES * frames;
  if (plainBytes < (frames - 1) * FRAME_BYTES) throw fail('truncated');
  const ad = associatedData(repo, name, header);
  const out = Buffer.allocUnsafe(plainBytes);
  const nonce = Buffer.alloc(12);
  let at = header.length;
  let written = 0;
  try {
    for (let n = 0; n < frames; n++) {
      const size = Math.min(FRAME_BYTES, plainBytes - n * FRAME_BYTES);
      const d = crypto.createDecipheriv('aes-256-gcm', fileKey, frameNonce(n, n === frames - 1, nonce));
      d.setAAD(ad);
      d.setAuthTag(sealed.subarray(at + size, at + size + TAG_BYTES));
      written += d.update(sealed.subarray(at, at + size)).copy(out, written);
      try {
        written += d.final().copy(out, written);
      } catch {
        throw fail(n === frames - 1 ? 'its last frame, or it is truncated' : `frame ${n}`);
      }
      at += size + TAG_BYTES;
    }
  } catch (err) {
    out.fill(0, 0, written); // never leave what did not authenticate where a caller could reach it
    throw err;
  } finally {
    fileKey.fill(0);
  }
  return out;
}

/**
 * {@link openObjectBytes} in pieces, for objects too large to hold (a pack ending in the chunk of a
 * huge value): `pieces` are the sealed object's bytes in order (views that may be reused once the next
 * is asked for), `total` its length. Each frame's plaintext is yielded only once its tag has been
 * checked, so nothing that did not authenticate is ever used; a truncated, extended or reordered object
 * fails at the frame where it differs (the last frame's nonce carries the final flag), with E_AUTH.
 */
export async function* openObjectPieces(pieces: AsyncIterable<Buffer>, total: number, repo: string, name: string, key: OpenKey): AsyncGenerator<Buffer> {
  const source = pieces[Symbol.asyncIterator]();
  let held = Buffer.alloc(0);
  /** The next `n` bytes of the object (a fresh buffer), or fewer at its end. */
  const take = async (n: number): Promise<Buffer> => {
    while (held.length < n) {
      const next = await source.next();
      if (next.done) break;
      held = Buffer.concat([held, next.value]); // a copy: the piece may be reused
    }
    const out = held.subarray(0, n);
    held = held.subarray(out.length);
    return out;
  };
  try {
    const start = await take(Math.min(total, RECIPIENT_HEADER));
    const probe = Buffer.from(start);
    const { fail, header: fullHeader, fileKey } = openHeader(probe, total, repo, name, key);
    const header = Buffer.from(fullHeader);
    held = Buffer.concat([start.subarray(header.length), held]); // bytes of the first frame read with the header
    try {
      const body = total - header.length;
      const frames = Math.max(1, Math.ceil(body / (FRAME_BYTES + TAG_BYTES)));
      const plainBytes = body - TAG_BYTES * frames;
      if (plainBytes < (frames - 1) * FRAME_BYTES) throw fail('truncated');
      const ad = associatedData(repo, name, header);
      const nonce = Buffer.alloc(12);
      for (let n = 0; n < frames; n++) {
        const size = Math.min(FRAME_BYTES, plainBytes - n * FRAME_BYTES);
        const frame = await take(size + TAG_BYTES);
        if (frame.length < size + TAG_BYTES) throw fail('truncated');
        const d = crypto.createDecipheriv('aes-256-gcm', fileKey, frameNonce(n, n === frames - 1, nonce));
        d.setAAD(ad);
        d.setAuthTag(frame.subarray(size));
        const plain = d.update(frame.subarray(0, size));
        try {
          d.final();
        } catch {
          plain.fill(0);
          throw fail(n === frames - 1 ? 'its last frame, or it is truncated' : `frame ${n}`);
        }
        if (plain.length > 0) yield plain;
      }
      if (held.length > 0 || !(await source.next()).done) throw fail(`it is longer than the ${total} bytes it had when opened`);
    } finally {
      fileKey.fill(0);
    }
  } finally {
    await source.return?.();
  }
}
