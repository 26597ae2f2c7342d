/**
 * Writes standard age files (age-encryption.org/v1): the header for a passphrase (scrypt) or for
 * X25519 recipients, then the payload in 64 KiB ChaCha20-Poly1305 STREAM chunks, on node:crypto.
 */
import * as crypto from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { UsageError } from '../core/errors.js';
import type { ByteEncoder } from '../core/file-writer.js';
import type { X25519Recipient } from './age-keys.js';
import {
  CHUNK_BYTES,
  chunkNonce,
  DEFAULT_SCRYPT_LOG_N,
  encodeHeader,
  FILE_KEY_BYTES,
  MAX_SCRYPT_LOG_N,
  NONCE_BYTES,
  payloadKey,
  TAG_BYTES,
  wrapScrypt,
  wrapX25519,
  type Stanza,
} from './age-format.js';

/** Who can open the file: whoever knows a passphrase, or the holders of these recipients' identities. */
export type AgeEncryption =
  | { kind: 'passphrase'; passphrase: Buffer; /** scrypt work factor, log2 N (default: SCRIPTORIUM_SCRYPT_LOG_N, else 18) */ logN?: number }
  | { kind: 'recipients'; recipients: X25519Recipient[] };

/** The scrypt work factor for new files: SCRIPTORIUM_SCRYPT_LOG_N (tests set it low), else age's default. */
export function scryptLogN(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SCRIPTORIUM_SCRYPT_LOG_N;
  if (raw === undefined || raw === '') return DEFAULT_SCRYPT_LOG_N;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_SCRYPT_LOG_N) {
    throw new UsageError(`SCRIPTORIUM_SCRYPT_LOG_N=${JSON.stringify(raw)} is not a work factor from 1 to ${MAX_SCRYPT_LOG_N}`, {
      hint: `Unset it to use age's default (${DEFAULT_SCRYPT_LOG_N}).`,
    });
  }
  return n;
}

/**
 * The age encryption of a byte stream, without any stream machinery: `update` takes plaintext and
 * returns the ciphertext that is ready (the header first), `final` the rest (both append to `out`
 * when given, and return it). A full chunk is held
 * back until more bytes arrive, since only then is it known not to be the last. Make one with
 * {@link AgeSealer.create}: the header is made first (a passphrase's scrypt takes its second there).
 */
export class AgeSealer implements ByteEncoder {
  readonly #key: Buffer;
  readonly #nonce = Buffer.alloc(12);
  /** Plaintext of the chunk being filled. */
  readonly #chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  #filled = 0;
  #counter = 0;
  #head: Buffer | undefined;
  #finished = false;

  private constructor(head: Buffer, key: Buffer) {
    this.#head = head;
    this.#key = key;
  }

  static async create(encryption: AgeEncryption): Promise<AgeSealer> {
    const fileKey = crypto.randomBytes(FILE_KEY_BYTES);
    let stanzas: Stanza[];
    if (encryption.kind === 'passphrase') {
      if (encryption.passphrase.length === 0) throw new UsageError('the passphrase is empty', { hint: 'Give a passphrase that is not empty.' });
      stanzas = [await wrapScrypt(fileKey, encryption.passphrase, encryption.logN ?? scryptLogN())];
    } else {
      if (encryption.recipients.length === 0) throw new UsageError('no recipient to encrypt to', { hint: 'Pass --recipient age1… at least once.' });
      stanzas = encryption.recipients.map((r) => wrapX25519(fileKey, r));
    }
    const nonce = crypto.randomBytes(NONCE_BYTES);
    const sealer = new AgeSealer(Buffer.concat([encodeHeader(fileKey, stanzas), nonce]), payloadKey(fileKey, nonce));
    fileKey.fill(0);
    return sealer;
  }

  #seal(plaintext: Buffer, last: boolean, out: Buffer[]): void {
    const cipher = crypto.createCipheriv('chacha20-poly1305', this.#key, chunkNonce(this.#counter++, last, this.#nonce), { authTagLength: TAG_BYTES });
    out.push(cipher.update(plaintext));
    cipher.final();
    out.push(cipher.getAuthTag());
  }

  #start(out: Buffer[]): void {
    if (this.#head) {
      out.push(this.#head);
      this.#head = undefined;
    }
  }

  update(data: Buffer, out: Buffer[] = []): Buffer[] {
    if (this.#finished) throw new Error('AgeSealer: update after final');
    this.#start(out);
    let at = 0;
    while (at < data.length) {
      if (this.#filled === CHUNK_BYTES) {
        // More bytes follow a full chunk, so it is not the last one.
        this.#seal(this.#chunk, false, out);
        this.#filled = 0;
      }
      if (this.#filled === 0 && data.length - at > CHUNK_BYTES) {
        // A whole chunk with more after it: sealed straight from the input, without a copy.
        this.#seal(data.subarray(at, at + CHUNK_BYTES), false, out);
        at += CHUNK_BYTES;
        continue;
      }
      const n = data.copy(this.#chunk, this.#filled, at, Math.min(data.length, at + CHUNK_BYTES - this.#filled));
      this.#filled += n;
      at += n;
    }
    return out;
  }

  final(out: Buffer[] = []): Buffer[] {
    if (this.#finished) return out;
    this.#finished = true;
    this.#start(out);
    // The last chunk may be full, and is empty only if the whole payload is.
    this.#seal(this.#chunk.subarray(0, this.#filled), true, out);
    return out;
  }
}

/** An AgeSealer as a Node transform, for outputs that are streams (stdout, a caller's stream). */
export class AgeEncryptStream extends Transform {
  readonly #sealer: AgeSealer;

  constructor(sealer: AgeSealer) {
    super({ highWaterMark: 1 << 20 });
    this.#sealer = sealer;
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    for (const b of this.#sealer.update(data)) this.push(b);
    done();
  }

  override _flush(done: TransformCallback): void {
    for (const b of this.#sealer.final()) this.push(b);
    done();
  }
}
