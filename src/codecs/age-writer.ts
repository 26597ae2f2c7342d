/**
 * Writes standard age files (age-encryption.org/v1): the header for a passphrase (scrypt) or for
 * X25519 recipients, then the payload in 64 KiB ChaCha20-Poly1305 STREAM chunks, on node:crypto.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
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
  scryptStanza,
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
 * {@link AgeSealer.create} (the header is made first: a passphrase's scrypt takes its second there), or,
 * for a seekable output, with {@link AgeSealer.deferred}.
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
  /** With a deferred header: the header, once scrypt has wrapped the file key. */
  readonly #later: Promise<Buffer> | undefined;

  private constructor(head: Buffer, key: Buffer, later?: Promise<Buffer>) {
    this.#head = head;
    this.#key = key;
    this.#later = later;
  }

  static async create(encryption: AgeEncryption): Promise<AgeSealer> {
    return AgeSealer.deferred(encryption).whole();
  }

  /**
   * This deferred sealer as one whose output starts with the real header (waits for scrypt), for an
   * output that cannot be written at offset 0 later (a stream). So a caller can make the sealer, and
   * start scrypt, before it knows which kind of output it writes. This sealer is not to be used after.
   */
  async whole(): Promise<AgeSealer> {
    if (this.#finished || this.#counter > 0 || this.#filled > 0 || !this.#head) throw new Error('AgeSealer: whole after use');
    const header = await this.#later;
    if (!header) return this;
    this.#finished = true;
    return new AgeSealer(Buffer.concat([header, this.#head.subarray(header.length)]), this.#key);
  }

  /**
   * A sealer whose payload can be written at once, while a passphrase's scrypt (~0.8 s at 2^18) runs
   * on libuv's thread pool: the payload key comes from the random file key, and scrypt only wraps that
   * key in the header, whose length is known in advance. The output starts with that many zero bytes
   * instead; {@link finishHeader} gives the real header, to be written over them at offset 0 before the
   * file is made durable. Only for seekable outputs (a file); a stream needs {@link create}.
   * Recipients' X25519 stanzas are quick, so their header is there from the start.
   */
  static deferred(encryption: AgeEncryption): AgeSealer {
    const fileKey = crypto.randomBytes(FILE_KEY_BYTES);
    const nonce = crypto.randomBytes(NONCE_BYTES);
    const key = payloadKey(fileKey, nonce);
    if (encryption.kind === 'passphrase') {
      if (encryption.passphrase.length === 0) throw new UsageError('the passphrase is empty', { hint: 'Give a passphrase that is not empty.' });
      const logN = encryption.logN ?? scryptLogN();
      const salt = crypto.randomBytes(16);
      // Every field of an scrypt header has a fixed length (salt, work factor, a 32-byte body, the MAC).
      const length = encodeHeader(fileKey, [scryptStanza(salt, logN, Buffer.alloc(FILE_KEY_BYTES + TAG_BYTES))]).length;
      const later = wrapScrypt(fileKey, encryption.passphrase, logN, salt).then((stanza) => {
        const header = encodeHeader(fileKey, [stanza]);
        fileKey.fill(0);
        if (header.length !== length) throw new Error('AgeSealer: the scrypt header changed length');
        return header;
      });
      later.catch(() => undefined); // (a failure reaches whoever awaits finishHeader; never unhandled)
      return new AgeSealer(Buffer.concat([Buffer.alloc(length), nonce]), key, later);
    }
    if (encryption.recipients.length === 0) throw new UsageError('no recipient to encrypt to', { hint: 'Pass --recipient age1… at least once.' });
    const stanzas: Stanza[] = encryption.recipients.map((r) => wrapX25519(fileKey, r));
    const sealer = new AgeSealer(Buffer.concat([encodeHeader(fileKey, stanzas), nonce]), key);
    fileKey.fill(0);
    return sealer;
  }

  /**
   * With a deferred header: the header, to be written at offset 0 over the zero bytes the output began
   * with (waits for scrypt; rejects if it failed). Undefined when the output began with the header.
   */
  async finishHeader(): Promise<Buffer | undefined> {
    return this.#later;
  }

  /**
   * For {@link AgeFileWriter} only: what the output starts with (the header, or its placeholder, and
   * the nonce) and the payload key, for a writer that seals the chunks elsewhere (a worker thread).
   * The sealer cannot be used for `update` or `final` afterwards.
   */
  handOver(): { head: Buffer; key: Buffer } {
    if (this.#finished || this.#counter > 0 || this.#filled > 0 || !this.#head) throw new Error('AgeSealer: handOver after use');
    this.#finished = true;
    const head = this.#head;
    this.#head = undefined;
    return { head, key: Buffer.from(this.#key) };
  }

  /**
   * Writes the deferred header (if any) at the start of `file`, the complete output of this sealer, and
   * makes it durable: the rest of the file was synced already, so this syncs one block.
   */
  async writeHeaderInto(file: string): Promise<void> {
    const header = await this.#later;
    if (!header) return;
    const fh = await fs.promises.open(file, fs.constants.O_WRONLY | (fs.constants.O_NOFOLLOW ?? 0));
    try {
      for (let at = 0; at < header.length; ) at += (await fh.write(header, at, header.length - at, at)).bytesWritten;
      await fh.sync();
    } finally {
      await fh.close();
    }
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
