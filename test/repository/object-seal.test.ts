/**
 * The sealed-object format on its own: every frame layout (empty, one short frame, exact multiples of
 * the frame size, several frames), and every way to cut, extend or re-label one fails with E_AUTH
 * before any plaintext is returned.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { X25519Identity } from '../../src/codecs/age-keys.js';
import { FRAME_BYTES, maxSealedBytes, openObjectBytes, sealObjectBytes, TAG_BYTES } from '../../src/repository/crypto/object-seal.js';

const repo = 'a'.repeat(32);
const name = `packs/${'b'.repeat(64)}`;
const secret = { kind: 'secret' as const, secret: randomBytes(32) };

function fails(f: () => unknown, code = 'E_AUTH'): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toMatchObject({ code });
}

describe('sealed objects', () => {
  it('round-trips every frame layout and stays within maxSealedBytes', () => {
    for (const size of [0, 1, FRAME_BYTES - 1, FRAME_BYTES, FRAME_BYTES + 1, 3 * FRAME_BYTES, 3 * FRAME_BYTES + 17]) {
      const plain = randomBytes(size);
      const sealed = sealObjectBytes(plain, repo, name, secret);
      expect(sealed.length, String(size)).toBeLessThanOrEqual(maxSealedBytes(size));
      expect(openObjectBytes(sealed, repo, name, secret).equals(plain), String(size)).toBe(true);
      // Every frame boundary is a place to cut; every cut fails.
      for (let cut = 25; cut < sealed.length; cut += FRAME_BYTES + TAG_BYTES) fails(() => openObjectBytes(sealed.subarray(0, cut), repo, name, secret));
      fails(() => openObjectBytes(sealed.subarray(0, sealed.length - 1), repo, name, secret));
      fails(() => openObjectBytes(Buffer.concat([sealed, Buffer.alloc(1)]), repo, name, secret));
    }
  });

  it('binds the repository, the name, the key and the stanza', () => {
    const plain = randomBytes(FRAME_BYTES + 5);
    const sealed = sealObjectBytes(plain, repo, name, secret);
    fails(() => openObjectBytes(sealed, 'c'.repeat(32), name, secret));
    fails(() => openObjectBytes(sealed, repo, `packs/${'d'.repeat(64)}`, secret));
    fails(() => openObjectBytes(sealed, repo, `index/${'b'.repeat(64)}`, secret));
    fails(() => openObjectBytes(sealed, repo, name, { kind: 'secret', secret: randomBytes(32) }));
    const { identity } = X25519Identity.generate();
    fails(() => openObjectBytes(sealed, repo, name, { kind: 'identity', identity }));
    const toRecipient = sealObjectBytes(plain, repo, name, { kind: 'recipient', recipient: identity.recipient });
    expect(openObjectBytes(toRecipient, repo, name, { kind: 'identity', identity }).equals(plain)).toBe(true);
    fails(() => openObjectBytes(toRecipient, repo, name, secret));
    fails(() => openObjectBytes(toRecipient, repo, name, { kind: 'identity', identity: X25519Identity.generate().identity }));
    fails(() => openObjectBytes(toRecipient, repo, name, { kind: 'identity', identity: undefined }));
    fails(() => openObjectBytes(plain, repo, name, secret), 'E_CORRUPT');
    // Every byte matters: header, each frame, each tag.
    for (const at of [8, 9, 24, 25, 25 + FRAME_BYTES, 25 + FRAME_BYTES + TAG_BYTES, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[at] ^= 0x01;
      fails(() => openObjectBytes(bad, repo, name, secret));
    }
  });
});
