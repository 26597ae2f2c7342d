/**
 * age's native X25519 keys: recipients (`age1…`, a public key) and identities (`AGE-SECRET-KEY-1…`, a
 * private key), in the encodings and files `age-keygen` writes, so that users keep one kind of key.
 * All the curve arithmetic is node:crypto's (OpenSSL); raw 32-byte keys enter it wrapped in the fixed
 * DER prefixes of RFC 8410.
 */
import * as crypto from 'node:crypto';
import { UsageError } from '../core/errors.js';
import { bech32Decode, bech32Encode } from './bech32.js';

const RECIPIENT_HRP = 'age';
const IDENTITY_HRP = 'age-secret-key-';
// SubjectPublicKeyInfo and PKCS#8 PrivateKeyInfo for X25519 (OID 1.3.101.110), followed by the 32 raw bytes.
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** A raw X25519 public key as a node:crypto key object. */
export function x25519PublicKey(raw: Buffer): crypto.KeyObject {
  if (raw.length !== 32) throw new TypeError('an X25519 public key has 32 bytes');
  return crypto.createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** The raw 32 bytes of an X25519 public key object. */
export function rawPublicKey(key: crypto.KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
}

function x25519PrivateKey(raw: Buffer): crypto.KeyObject {
  return crypto.createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

/** Someone a file can be encrypted to: an `age1…` X25519 public key. */
export class X25519Recipient {
  /** The raw public key. */
  readonly publicKey: Buffer;
  readonly key: crypto.KeyObject;

  constructor(publicKey: Buffer) {
    this.publicKey = Buffer.from(publicKey);
    this.key = x25519PublicKey(this.publicKey);
  }

  /** Parses `age1…`; a usage error (naming the text, which is public) when it is not one. */
  static parse(text: string): X25519Recipient {
    let decoded: { hrp: string; data: Buffer } | undefined;
    try {
      decoded = bech32Decode(text);
    } catch {
      decoded = undefined;
    }
    if (!decoded || decoded.hrp !== RECIPIENT_HRP || decoded.data.length !== 32 || text !== text.toLowerCase()) {
      throw new UsageError(`${JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text)} is not an age X25519 recipient`, {
        hint: 'A recipient is a public key as age-keygen or `scriptorium keygen` prints it: age1 followed by 58 characters.',
      });
    }
    return new X25519Recipient(decoded.data);
  }

  toString(): string {
    return bech32Encode(RECIPIENT_HRP, this.publicKey);
  }
}

/**
 * A private key that opens files encrypted to its recipient. The secret stays in a key object and a
 * private field: it has no toString, and JSON shows only the public recipient.
 */
export class X25519Identity {
  readonly #secret: crypto.KeyObject;
  readonly recipient: X25519Recipient;

  private constructor(secret: crypto.KeyObject) {
    this.#secret = secret;
    this.recipient = new X25519Recipient(rawPublicKey(crypto.createPublicKey(secret)));
  }

  /** Parses `AGE-SECRET-KEY-1…`. The error never contains the text. */
  static parse(text: string): X25519Identity {
    let decoded: { hrp: string; data: Buffer } | undefined;
    try {
      decoded = bech32Decode(text);
    } catch {
      decoded = undefined;
    }
    if (!decoded || decoded.hrp !== IDENTITY_HRP || decoded.data.length !== 32) {
      throw new UsageError('not a valid age secret key (AGE-SECRET-KEY-1…)', {
        hint: 'Use an identity file as age-keygen or `scriptorium keygen` writes it.',
      });
    }
    const identity = new X25519Identity(x25519PrivateKey(decoded.data));
    decoded.data.fill(0);
    return identity;
  }

  /** A fresh key pair, with its secret in age's encoding (to be written to a file, never shown). */
  static generate(): { identity: X25519Identity; secretKey: string } {
    const { privateKey } = crypto.generateKeyPairSync('x25519');
    const raw = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_PREFIX.length);
    const secretKey = bech32Encode(IDENTITY_HRP, raw, true);
    raw.fill(0);
    return { identity: new X25519Identity(privateKey), secretKey };
  }

  /** X25519(secret, peer): the shared secret with a peer's public key. */
  sharedSecret(peer: crypto.KeyObject): Buffer {
    return crypto.diffieHellman({ privateKey: this.#secret, publicKey: peer });
  }

  toJSON(): { recipient: string } {
    return { recipient: this.recipient.toString() };
  }
}

/**
 * The identities of an identity file as age-keygen writes it: `#` comments, blank lines and one
 * AGE-SECRET-KEY-1 line per key. Errors name the file and line, never the line's content.
 */
export function parseIdentityFile(text: string, name: string): X25519Identity[] {
  const out: X25519Identity[] = [];
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    if (/^AGE-PLUGIN-|^AGE-SECRET-KEY-PQ-/i.test(line)) {
      throw new UsageError(`${name}: line ${i + 1}: plugin and post-quantum identities are not supported`, {
        code: 'E_UNSUPPORTED',
        hint: 'Use an X25519 identity (AGE-SECRET-KEY-1…), as `age-keygen` or `scriptorium keygen` writes it.',
      });
    }
    try {
      out.push(X25519Identity.parse(line));
    } catch (err) {
      throw new UsageError(`${name}: line ${i + 1} is not an age secret key`, { hint: (err as UsageError).hint, cause: undefined });
    }
  }
  if (out.length === 0) {
    throw new UsageError(`${name} holds no age secret key`, {
      hint: 'An identity file has AGE-SECRET-KEY-1… lines, as `age-keygen` or `scriptorium keygen` writes them.',
    });
  }
  return out;
}

/** The recipients of a recipients file (age's `-R`): `#` comments, blank lines and one `age1…` per line. */
export function parseRecipientsFile(text: string, name: string): X25519Recipient[] {
  const out: X25519Recipient[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      out.push(X25519Recipient.parse(line));
    } catch (err) {
      throw new UsageError(`${name}: line ${i + 1}: ${(err as Error).message}`, { hint: (err as UsageError).hint });
    }
  }
  if (out.length === 0) throw new UsageError(`${name} holds no recipient`, { hint: 'List age1… public keys, one a line.' });
  return out;
}
