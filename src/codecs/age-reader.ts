/**
 * Reads standard age files (age-encryption.org/v1): finds the file key with a passphrase or X25519
 * identities, checks the header's MAC, then decrypts the STREAM payload chunk by chunk on node:crypto.
 * Nothing decrypted leaves here before its chunk's tag has been checked, and the last-chunk flag tells
 * a complete file from one cut short at a chunk boundary.
 */
import * as crypto from 'node:crypto';
import { AuthError, IntegrityError, ScriptoriumError, UsageError } from '../core/errors.js';
import type { ByteSource } from '../formats/byte-reader.js';
import type { X25519Identity } from './age-keys.js';
import {
  AGE_INTRO,
  AgeHeaderError,
  chunkNonce,
  ENCRYPTED_CHUNK_BYTES,
  headerMac,
  MAX_SCRYPT_LOG_N,
  NONCE_BYTES,
  parseHeader,
  payloadKey,
  scryptWorkFactor,
  TAG_BYTES,
  unwrapScrypt,
  unwrapX25519,
  type Stanza,
} from './age-format.js';

/** What may open an age file. The passphrase is asked for only when the file is passphrase-encrypted. */
export interface AgeKeys {
  identities?: X25519Identity[];
  passphrase?: () => Promise<Buffer>;
  /** Largest scrypt work factor accepted (default 22). */
  maxScryptLogN?: number;
}

/** How the file was encrypted. */
export type AgeKind = 'passphrase' | 'recipients';

/** A header larger than this is not one age or scriptorium writes (a stanza per recipient is ~100 bytes). */
const MAX_HEADER_BYTES = 1 << 20;
const ARMOR = Buffer.from('-----BEGIN AGE ENCRYPTED FILE-----');

const truncated = (what: string): IntegrityError =>
  new IntegrityError('E_TRUNCATED', `age: the encrypted file ends ${what}`, { hint: 'The file is incomplete; nothing was written to the target.' });
const corrupt = (what: string): IntegrityError =>
  new IntegrityError('E_CORRUPT', `age: ${what}`, { hint: 'The encrypted file is damaged or not one age writes; nothing was written to the target.' });

/** Whether `head` starts like an age file; 'damaged' when its intro is a bit or two away from age's. */
export function ageIntro(head: Buffer): 'age' | 'damaged' | 'armored' | undefined {
  if (head.length >= AGE_INTRO.length && head.subarray(0, AGE_INTRO.length).equals(AGE_INTRO)) return 'age';
  if (head.length >= ARMOR.length && head.subarray(0, ARMOR.length).equals(ARMOR)) return 'armored';
  if (head.length < AGE_INTRO.length) return undefined;
  let bits = 0;
  for (let i = 0; i < AGE_INTRO.length; i++) {
    for (let x = head[i]! ^ AGE_INTRO[i]!; x; x &= x - 1) bits++;
  }
  return bits <= 2 ? 'damaged' : undefined;
}

/** Bytes the intro check needs. */
export const AGE_HEAD_BYTES = Math.max(AGE_INTRO.length, ARMOR.length);

/**
 * The plaintext of the age file that `raw` reads (from its first byte), once the header has been
 * authenticated. Errors: E_AUTH for a wrong key or passphrase or a changed byte, E_TRUNCATED for a
 * file cut short, E_CORRUPT for a malformed one, E_USAGE when no key was given for it.
 */
export async function ageSource(raw: ByteSource, keys: AgeKeys): Promise<{ source: ByteSource; kind: AgeKind }> {
  const { header, rest } = await readHeader(raw);
  let parsed: ReturnType<typeof parseHeader>;
  try {
    parsed = parseHeader(header);
  } catch (err) {
    if (err instanceof AgeHeaderError) throw corrupt(`malformed header: ${err.message}`);
    throw err;
  }
  const { fileKey, kind } = await findFileKey(parsed.stanzas, keys);
  if (!crypto.timingSafeEqual(headerMac(fileKey, parsed.withoutMac), parsed.mac)) {
    throw new AuthError('age: the header does not match its MAC: the file was modified', {
      hint: 'The encrypted file was changed after it was written; nothing was written to the target.',
    });
  }
  return { source: new DecryptSource(rest, fileKey), kind };
}

/** Reads up to the end of the header's closing line; returns the header and the bytes read past it. */
async function readHeader(raw: ByteSource): Promise<{ header: Buffer; rest: { buffered: Buffer; raw: ByteSource } }> {
  let buf = Buffer.allocUnsafe(4096);
  let len = 0;
  let searchFrom = 0;
  for (;;) {
    // The closing line is the first that starts with "---" (base64 bodies and "->" lines cannot).
    const close = buf.subarray(0, len).indexOf('\n---', searchFrom);
    if (close >= 0) {
      const end = buf.indexOf(0x0a, close + 1);
      if (end >= 0 && end < len) return { header: Buffer.from(buf.subarray(0, end + 1)), rest: { buffered: Buffer.from(buf.subarray(end + 1, len)), raw } };
    } else {
      searchFrom = Math.max(0, len - 3);
    }
    if (len >= MAX_HEADER_BYTES) throw corrupt(`the header is larger than ${MAX_HEADER_BYTES} bytes`);
    if (len === buf.length) {
      const bigger = Buffer.allocUnsafe(buf.length * 2);
      buf.copy(bigger, 0, 0, len);
      buf = bigger;
    }
    const n = await raw.read(buf, len, buf.length - len);
    if (n === 0) throw truncated('inside its header');
    len += n;
  }
}

async function findFileKey(stanzas: Stanza[], keys: AgeKeys): Promise<{ fileKey: Buffer; kind: AgeKind }> {
  const scrypt = stanzas.filter((s) => s.type === 'scrypt');
  if (scrypt.length > 0) {
    // age: a passphrase stanza is always alone, else a recipient could forge a "passphrase" file.
    if (stanzas.length !== 1) throw corrupt('an scrypt stanza must be the only one in a header');
    let logN: number;
    try {
      logN = scryptWorkFactor(scrypt[0]!, keys.maxScryptLogN ?? MAX_SCRYPT_LOG_N);
    } catch (err) {
      if (err instanceof RangeError) {
        throw new ScriptoriumError('E_UNSUPPORTED', `age: ${err.message}`, {
          hint: 'The file asks for more scrypt work (memory and time) than scriptorium allows; decrypt it with `age -d` if you trust it.',
        });
      }
      throw corrupt((err as Error).message);
    }
    if (!keys.passphrase) {
      throw new UsageError('age: the file is encrypted with a passphrase, and none was given', {
        hint: 'Set SCRIPTORIUM_PASSWORD, pass --password-file FILE, or run in a terminal to be asked.',
      });
    }
    const passphrase = await keys.passphrase();
    let fileKey: Buffer | undefined;
    try {
      fileKey = await unwrapScrypt(scrypt[0]!, passphrase, logN);
    } finally {
      passphrase.fill(0);
    }
    if (!fileKey) {
      throw new AuthError('age: wrong passphrase (the file key did not authenticate)', {
        hint: 'Check the passphrase (SCRIPTORIUM_PASSWORD or --password-file); if it is right, the file was damaged. Nothing was written to the target.',
      });
    }
    return { fileKey, kind: 'passphrase' };
  }
  const x25519 = stanzas.filter((s) => s.type === 'X25519');
  if (!keys.identities || keys.identities.length === 0) {
    throw new UsageError('age: the file is encrypted to public keys, and no identity was given', {
      hint: 'Pass --identity FILE (an age identity file, as age-keygen or `scriptorium keygen` writes) or set SCRIPTORIUM_IDENTITY_FILE.',
    });
  }
  for (const stanza of x25519) {
    for (const identity of keys.identities) {
      let fileKey: Buffer | undefined;
      try {
        fileKey = unwrapX25519(stanza, identity);
      } catch (err) {
        throw corrupt((err as Error).message);
      }
      if (fileKey) return { fileKey, kind: 'recipients' };
    }
  }
  throw new AuthError(`age: no identity given opens this file (identities tried: ${keys.identities.length}; X25519 recipients in the file: ${x25519.length}${stanzas.length > x25519.length ? `, of other kinds: ${stanzas.length - x25519.length}` : ''})`, {
    hint: 'It was encrypted to other keys (or its header was damaged): pass the identity file whose public key it was encrypted to. Nothing was written to the target.',
  });
}

/** Ciphertext read from the source at a time (16 chunks). */
const READ_BYTES = 16 * ENCRYPTED_CHUNK_BYTES;

/** The decrypted payload, one authenticated chunk at a time. */
class DecryptSource implements ByteSource {
  readonly #raw: ByteSource;
  readonly #fileKey: Buffer;
  #key: Buffer | undefined;
  readonly #nonce = Buffer.alloc(12);
  #buf = Buffer.allocUnsafe(READ_BYTES + ENCRYPTED_CHUNK_BYTES + 1);
  #start = 0;
  #end = 0;
  #rawEnded = false;
  #counter = 0;
  #done = false;
  #plain: Buffer = Buffer.alloc(0);
  #at = 0;

  constructor(rest: { buffered: Buffer; raw: ByteSource }, fileKey: Buffer) {
    this.#raw = rest.raw;
    this.#fileKey = fileKey;
    if (rest.buffered.length > this.#buf.length) this.#buf = Buffer.allocUnsafe(rest.buffered.length + READ_BYTES);
    this.#end = rest.buffered.copy(this.#buf, 0);
  }

  async read(into: Buffer, offset: number, length: number): Promise<number> {
    while (this.#at >= this.#plain.length) {
      if (this.#done) return 0;
      await this.#nextChunk();
    }
    const n = this.#plain.copy(into, offset, this.#at, Math.min(this.#plain.length, this.#at + length));
    this.#at += n;
    return n;
  }

  /** Makes sure `need` ciphertext bytes are buffered, or the source has ended. */
  async #fill(need: number): Promise<void> {
    while (this.#end - this.#start < need && !this.#rawEnded) {
      if (this.#start > 0) {
        this.#buf.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
      const n = await this.#raw.read(this.#buf, this.#end, this.#buf.length - this.#end);
      if (n === 0) this.#rawEnded = true;
      else this.#end += n;
    }
  }

  async #nextChunk(): Promise<void> {
    if (!this.#key) {
      await this.#fill(NONCE_BYTES);
      if (this.#end - this.#start < NONCE_BYTES) throw truncated('before its payload');
      this.#key = payloadKey(this.#fileKey, this.#buf.subarray(this.#start, this.#start + NONCE_BYTES));
      this.#fileKey.fill(0);
      this.#start += NONCE_BYTES;
    }
    // One byte past a full chunk tells whether it is the last.
    await this.#fill(ENCRYPTED_CHUNK_BYTES + 1);
    const available = this.#end - this.#start;
    const last = available <= ENCRYPTED_CHUNK_BYTES;
    const size = last ? available : ENCRYPTED_CHUNK_BYTES;
    const chunk = this.#buf.subarray(this.#start, this.#start + size);
    const index = this.#counter;
    if (size < TAG_BYTES) throw truncated(this.#counter === 0 && size === 0 ? 'right after its header' : `inside payload chunk ${index}`);
    if (last && size === TAG_BYTES && index > 0) throw corrupt(`payload chunk ${index} is an empty last chunk, which age never writes`);
    const plain = this.#open(chunk, index, last);
    if (!plain) {
      // Tell a cut at a chunk boundary (a full chunk that opens as a middle one) and data after the
      // end (a full chunk that opens as the last) from damage; all three fail before any use.
      if (last && size === ENCRYPTED_CHUNK_BYTES && this.#open(chunk, index, false)) throw truncated(`after payload chunk ${index}, which is not the last`);
      if (!last && this.#open(chunk, index, true)) throw corrupt(`data follows the last payload chunk (${index})`);
      throw new AuthError(`age: payload chunk ${index} does not authenticate: the file was modified or damaged`, {
        hint: 'The encrypted file was changed (or cut short inside a chunk) after it was written; nothing was written to the target.',
      });
    }
    this.#start += size;
    this.#counter++;
    if (last) this.#done = true;
    this.#plain = plain;
    this.#at = 0;
  }

  #open(chunk: Buffer, index: number, last: boolean): Buffer | undefined {
    const d = crypto.createDecipheriv('chacha20-poly1305', this.#key!, chunkNonce(index, last, this.#nonce), { authTagLength: TAG_BYTES });
    d.setAuthTag(chunk.subarray(chunk.length - TAG_BYTES));
    const out = d.update(chunk.subarray(0, chunk.length - TAG_BYTES));
    try {
      d.final(); // throws when the tag does not match: `out` is then dropped unused
    } catch {
      return undefined;
    }
    return out;
  }
}
