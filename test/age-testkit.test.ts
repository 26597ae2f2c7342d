/**
 * The C2SP age test vectors (test/fixtures/age-testkit): every one goes through scriptorium's age
 * reader, which must succeed exactly on the `success` vectors with the right payload, fail on every
 * other with a ScriptoriumError of the matching kind, and never release plaintext that the vector
 * does not expect (the released bytes of a failing payload must hash to its `payload`).
 */
import { createDecipheriv, createHash, hkdfSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { X25519Identity } from '../src/codecs/age-keys.js';
import { ageSource } from '../src/codecs/age-reader.js';
import { isScriptoriumError } from '../src/core/errors.js';
import type { ByteSource } from '../src/formats/byte-reader.js';
import { ROOT } from './export-import/helpers.js';

const DIR = path.join(ROOT, 'test/fixtures/age-testkit');

interface Vector {
  name: string;
  expect: string;
  payload: string;
  identities: string[];
  passphrases: string[];
  fileKey: string;
  file: Buffer;
}

function loadVector(name: string): Vector {
  const raw = fs.readFileSync(path.join(DIR, name));
  const split = raw.indexOf('\n\n');
  const fields = raw.subarray(0, split).toString('utf8').split('\n').map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)] as const);
  const get = (k: string): string[] => fields.filter(([key]) => key === k).map(([, v]) => v);
  let file = raw.subarray(split + 2);
  if (get('compressed')[0] === 'zlib') file = zlib.inflateSync(file);
  return { name, expect: get('expect')[0]!, payload: get('payload')[0] ?? '', identities: get('identity'), passphrases: get('passphrase'), fileKey: get('file key')[0] ?? '', file };
}

/** Which of scriptorium's error codes each expected failure may be. */
const CODES: Record<string, string[]> = {
  'no match': ['E_AUTH', 'E_USAGE'],
  'HMAC failure': ['E_AUTH'],
  'header failure': ['E_CORRUPT', 'E_TRUNCATED', 'E_UNSUPPORTED'],
  'payload failure': ['E_AUTH', 'E_TRUNCATED', 'E_CORRUPT'],
};

async function decrypt(v: Vector): Promise<{ released: Buffer; code?: string }> {
  let at = 0;
  const raw: ByteSource = {
    read: async (into, offset, length) => {
      const n = v.file.copy(into, offset, at, Math.min(v.file.length, at + length));
      at += n;
      return n;
    },
  };
  const parts: Buffer[] = [];
  try {
    const { source } = await ageSource(raw, {
      identities: v.identities.map((i) => X25519Identity.parse(i)),
      ...(v.passphrases.length > 0 ? { passphrase: async () => Buffer.from(v.passphrases[0]!) } : {}),
    });
    for (;;) {
      const buf = Buffer.alloc(100_000);
      const n = await source.read(buf, 0, buf.length);
      if (n === 0) break;
      parts.push(buf.subarray(0, n));
    }
    return { released: Buffer.concat(parts) };
  } catch (err) {
    expect(isScriptoriumError(err), `${v.name}: ${String(err)}`).toBe(true);
    return { released: Buffer.concat(parts), code: (err as { code: string }).code };
  }
}

/**
 * What age itself releases from a vector's payload before it fails, computed independently from the
 * vector's `file key`: chunk after chunk, whichever of the two last-chunk flags authenticates, up to
 * the first chunk that does not (or the one flagged last).
 */
function ageRelease(v: Vector): Buffer {
  const fileKey = Buffer.from(v.fileKey, 'hex');
  const close = v.file.indexOf('\n---');
  const start = v.file.indexOf(0x0a, close + 1) + 1;
  const nonce = v.file.subarray(start, start + 16);
  const key = Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', 32));
  const out: Buffer[] = [];
  for (let at = start + 16, i = 0; at < v.file.length; at += 65_552, i++) {
    const chunk = v.file.subarray(at, at + 65_552);
    let plain: Buffer | undefined;
    // A short chunk can only be the last (and an empty one only if it is the first); a full one is tried as a middle one first.
    if (chunk.length < 16 || (chunk.length === 16 && i > 0)) break;
    for (const last of chunk.length < 65_552 ? [1] : [0, 1]) {
      const n = Buffer.alloc(12);
      n.writeUIntBE(i, 5, 6);
      n[11] = last;
      const d = createDecipheriv('chacha20-poly1305', key, n, { authTagLength: 16 });
      d.setAuthTag(chunk.subarray(chunk.length - 16));
      try {
        plain = Buffer.concat([d.update(chunk.subarray(0, chunk.length - 16)), d.final()]);
        if (last) return Buffer.concat([...out, plain]);
        break;
      } catch {
        plain = undefined;
      }
    }
    if (!plain) break;
    out.push(plain);
  }
  return Buffer.concat(out);
}

describe('C2SP age test vectors', () => {
  const names = fs.readdirSync(DIR).filter((n) => n !== 'README.md').sort();

  it('holds the vectors', () => {
    expect(names.length).toBeGreaterThan(80);
  });

  for (const name of names) {
    it(name, async () => {
      const v = loadVector(name);
      const { released, code } = await decrypt(v);
      if (v.expect === 'success') {
        expect(code, name).toBeUndefined();
      } else {
        expect(CODES[v.expect], `${name}: unknown expectation ${v.expect}`).toBeDefined();
        expect(CODES[v.expect], `${name} (${v.expect})`).toContain(code);
      }
      const hash = createHash('sha256').update(released).digest('hex');
      if (v.expect === 'success') expect(hash, name).toBe(v.payload);
      else if (v.expect === 'payload failure') {
        // Before a payload failure, age releases what it authenticated; scriptorium may release less (it
        // holds a chunk back until it knows whether the chunk is the last, and import drops everything
        // on an error anyway), but only whole chunks, and never more than age.
        const age = ageRelease(v);
        expect(createHash('sha256').update(age).digest('hex'), `${name}: the independent release`).toBe(v.payload);
        expect(released.length % 65_536, name).toBe(0);
        expect(released.length, name).toBeLessThanOrEqual(age.length);
        expect(released.equals(age.subarray(0, released.length)), name).toBe(true);
      } else expect(released.length, name).toBe(0);
    });
  }
});
