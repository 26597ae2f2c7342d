/**
 * The age file format, version 1 (https://age-encryption.org/v1), the parts both directions share: the
 * header (intro, recipient stanzas, HMAC), the key derivations and the two stanza types scriptorium
 * speaks (X25519 and scrypt). Every primitive is node:crypto's.
 *
 * ```
 * age-encryption.org/v1
 * -> X25519 <ephemeral share, base64>
 * <wrapped file key, base64 in lines of 64 columns; the last line is shorter, maybe empty>
 * --- <HMAC-SHA256 of everything above up to and including "---", base64>
 * <16-byte nonce><payload: 64 KiB ChaCha20-Poly1305 STREAM chunks>
 * ```
 */
import * as crypto from 'node:crypto';
import { promisify } from 'node:util';
import { x25519PublicKey, rawPublicKey, type X25519Identity, type X25519Recipient } from './age-keys.js';

export const AGE_INTRO = Buffer.from('age-encryption.org/v1\n');
export const FILE_KEY_BYTES = 16;
export const NONCE_BYTES = 16;
/** Plaintext bytes of every chunk but the last. */
export const CHUNK_BYTES = 64 << 10;
export const TAG_BYTES = 16;
export const ENCRYPTED_CHUNK_BYTES = CHUNK_BYTES + TAG_BYTES;
/** Base64 columns of a stanza body line. */
const COLUMNS = 64;

/** The work factor (log2 N) age's own tools use for a passphrase: ~1 s and 256 MiB here. */
export const DEFAULT_SCRYPT_LOG_N = 18;
/**
 * The largest work factor a file may ask us for (age's default limit too: 4 GiB, ~15 s). A hostile file
 * could otherwise ask for any amount of memory and time before the passphrase is even checked.
 */
export const MAX_SCRYPT_LOG_N = 22;

const X25519_LABEL = Buffer.from('age-encryption.org/v1/X25519');
const SCRYPT_LABEL = Buffer.from('age-encryption.org/v1/scrypt');
const ZERO_NONCE = Buffer.alloc(12);
const scryptAsync = promisify(crypto.scrypt) as (password: Buffer, salt: Buffer, keylen: number, options: crypto.ScryptOptions) => Promise<Buffer>;

/** One recipient stanza: `-> type args…` and a body. */
export interface Stanza {
  type: string;
  args: string[];
  body: Buffer;
}

/** Unpadded standard base64, as age writes it. */
export function encodeBase64(data: Buffer): string {
  return data.toString('base64').replace(/=+$/, '');
}

/**
 * Strict unpadded base64: only the alphabet, no padding, no newline, and canonical (the unused bits of
 * the last character are zero), so that a header has exactly one encoding. Undefined when invalid.
 */
export function decodeBase64(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]*$/.test(text) || text.length % 4 === 1) return undefined;
  const data = Buffer.from(text, 'base64');
  return encodeBase64(data) === text ? data : undefined;
}

export function hkdf(ikm: Buffer, salt: Buffer, info: string, length = 32): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', ikm, salt, info, length));
}

/** ChaCha20-Poly1305 with a zero nonce, as age wraps a file key (every wrapping key is used once). */
function seal(key: Buffer, plaintext: Buffer): Buffer {
  const c = crypto.createCipheriv('chacha20-poly1305', key, ZERO_NONCE, { authTagLength: TAG_BYTES });
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
}

/** The inverse of seal, or undefined when the tag does not match. */
function open(key: Buffer, sealed: Buffer): Buffer | undefined {
  if (sealed.length < TAG_BYTES) return undefined;
  const d = crypto.createDecipheriv('chacha20-poly1305', key, ZERO_NONCE, { authTagLength: TAG_BYTES });
  d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([d.update(sealed.subarray(0, sealed.length - TAG_BYTES)), d.final()]);
  } catch {
    return undefined;
  }
}

/** The `-> X25519` stanza that gives `fileKey` to `recipient`. */
export function wrapX25519(fileKey: Buffer, recipient: X25519Recipient): Stanza {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('x25519');
  const share = rawPublicKey(publicKey);
  const shared = crypto.diffieHellman({ privateKey, publicKey: recipient.key });
  const wrapKey = hkdf(shared, Buffer.concat([share, recipient.publicKey]), X25519_LABEL.toString());
  return { type: 'X25519', args: [encodeBase64(share)], body: seal(wrapKey, fileKey) };
}

/**
 * The file key from an X25519 stanza if `identity` is the one it was made for; undefined if not. A
 * malformed stanza (wrong sizes, a low-order share) throws a plain Error.
 */
export function unwrapX25519(stanza: Stanza, identity: X25519Identity): Buffer | undefined {
  const share = stanza.args.length === 1 ? decodeBase64(stanza.args[0]!) : undefined;
  if (!share || share.length !== 32) throw new Error('malformed X25519 stanza');
  if (stanza.body.length !== FILE_KEY_BYTES + TAG_BYTES) throw new Error('malformed X25519 stanza body');
  let shared: Buffer;
  try {
    shared = identity.sharedSecret(x25519PublicKey(share));
  } catch {
    throw new Error('X25519 stanza with an invalid share');
  }
  if (shared.every((b) => b === 0)) throw new Error('X25519 stanza with a low-order share');
  const wrapKey = hkdf(shared, Buffer.concat([share, identity.recipient.publicKey]), X25519_LABEL.toString());
  return open(wrapKey, stanza.body);
}

async function scryptKey(passphrase: Buffer, salt: Buffer, logN: number): Promise<Buffer> {
  const N = 2 ** logN;
  // Node refuses unless maxmem covers scrypt's 128·N·r bytes (plus its own small overhead).
  return scryptAsync(passphrase, Buffer.concat([SCRYPT_LABEL, salt]), 32, { N, r: 8, p: 1, maxmem: 129 * N * 8 + (1 << 20) });
}

/** The `-> scrypt` stanza that gives `fileKey` to whoever knows `passphrase`. */
export async function wrapScrypt(fileKey: Buffer, passphrase: Buffer, logN: number, salt: Buffer = crypto.randomBytes(16)): Promise<Stanza> {
  return scryptStanza(salt, logN, seal(await scryptKey(passphrase, salt, logN), fileKey));
}

/** An scrypt stanza of these fields (`body`: the sealed file key, 32 bytes). */
export function scryptStanza(salt: Buffer, logN: number, body: Buffer): Stanza {
  return { type: 'scrypt', args: [encodeBase64(salt), String(logN)], body };
}

/** The work factor of an scrypt stanza, checked (decimal without leading zeros, 1…max); throws on a bad one. */
export function scryptWorkFactor(stanza: Stanza, max = MAX_SCRYPT_LOG_N): number {
  const salt = stanza.args.length === 2 ? decodeBase64(stanza.args[0]!) : undefined;
  if (!salt || salt.length !== 16 || !/^[1-9][0-9]{0,2}$/.test(stanza.args[1]!)) throw new Error('malformed scrypt stanza');
  if (stanza.body.length !== FILE_KEY_BYTES + TAG_BYTES) throw new Error('malformed scrypt stanza body');
  const logN = Number(stanza.args[1]);
  if (logN > max) throw new RangeError(`the scrypt work factor 2^${logN} is above the limit 2^${max}`);
  return logN;
}

/** The file key from an scrypt stanza, or undefined when the passphrase is wrong. */
export async function unwrapScrypt(stanza: Stanza, passphrase: Buffer, max = MAX_SCRYPT_LOG_N): Promise<Buffer | undefined> {
  const logN = scryptWorkFactor(stanza, max);
  return open(await scryptKey(passphrase, decodeBase64(stanza.args[0]!)!, logN), stanza.body);
}

/** The header without its MAC: intro, stanzas, `---`. */
export function headerWithoutMac(stanzas: Stanza[]): Buffer {
  let text = AGE_INTRO.toString();
  for (const s of stanzas) {
    text += `-> ${[s.type, ...s.args].join(' ')}\n`;
    const b64 = encodeBase64(s.body);
    // Full lines of 64 columns, then always a shorter (possibly empty) last line.
    for (let at = 0; at + COLUMNS <= b64.length; at += COLUMNS) text += `${b64.slice(at, at + COLUMNS)}\n`;
    text += `${b64.slice(b64.length - (b64.length % COLUMNS))}\n`;
  }
  return Buffer.from(`${text}---`);
}

/** HMAC-SHA256 of the header (up to and including `---`) under a key derived from the file key. */
export function headerMac(fileKey: Buffer, withoutMac: Buffer): Buffer {
  return crypto.createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header')).update(withoutMac).digest();
}

/** The whole header, ending in its newline. */
export function encodeHeader(fileKey: Buffer, stanzas: Stanza[]): Buffer {
  const withoutMac = headerWithoutMac(stanzas);
  return Buffer.concat([withoutMac, Buffer.from(` ${encodeBase64(headerMac(fileKey, withoutMac))}\n`)]);
}

/** The payload key: HKDF-SHA256 of the file key, salted with the payload's nonce. */
export function payloadKey(fileKey: Buffer, nonce: Buffer): Buffer {
  return hkdf(fileKey, nonce, 'payload');
}

/** STREAM's 12-byte nonce: an 11-byte big-endian chunk counter, then 1 for the last chunk, else 0. */
export function chunkNonce(counter: number, last: boolean, into: Buffer = Buffer.alloc(12)): Buffer {
  into.fill(0);
  into.writeUIntBE(counter, 5, 6); // 2^48 chunks of 64 KiB is far beyond any file; the high bytes stay zero
  into[11] = last ? 1 : 0;
  return into;
}

/** Parse failures of a header: a plain message; the reader turns it into E_CORRUPT. */
export class AgeHeaderError extends Error {}

function isArg(s: string): boolean {
  return s.length > 0 && /^[\x21-\x7e]+$/.test(s);
}

/**
 * Parses a complete header (`text` runs from the intro through the MAC line's newline). Strict, like
 * age: one encoding per header, so that the MAC covers exactly what was parsed.
 */
export function parseHeader(header: Buffer): { stanzas: Stanza[]; mac: Buffer; withoutMac: Buffer } {
  const text = header.toString('latin1');
  if (!text.startsWith(AGE_INTRO.toString())) throw new AgeHeaderError('not an age v1 header');
  const lines = text.slice(AGE_INTRO.length).split('\n');
  if (lines.pop() !== '') throw new AgeHeaderError('the header does not end with a newline');
  const stanzas: Stanza[] = [];
  let i = 0;
  for (;;) {
    const line = lines[i++];
    if (line === undefined) throw new AgeHeaderError('the header has no closing line');
    if (line.startsWith('---')) {
      const parts = line.split(' ');
      const mac = parts.length === 2 && parts[0] === '---' ? decodeBase64(parts[1]!) : undefined;
      if (!mac || mac.length !== 32) throw new AgeHeaderError('malformed closing line');
      if (i !== lines.length) throw new AgeHeaderError('data after the closing line');
      const withoutMac = header.subarray(0, header.length - (line.length - 3) - 1);
      return { stanzas, mac, withoutMac };
    }
    const parts = line.split(' ');
    if (parts[0] !== '->' || parts.length < 2 || !parts.slice(1).every(isArg)) throw new AgeHeaderError('malformed stanza line');
    const chunks: Buffer[] = [];
    for (;;) {
      const body = lines[i++];
      if (body === undefined) throw new AgeHeaderError('a stanza body does not end');
      const bytes = body.length <= COLUMNS ? decodeBase64(body) : undefined;
      if (!bytes) throw new AgeHeaderError('malformed stanza body line');
      chunks.push(bytes);
      if (body.length < COLUMNS) break; // a body always ends with a short line
    }
    stanzas.push({ type: parts[1]!, args: parts.slice(2), body: Buffer.concat(chunks) });
  }
}
