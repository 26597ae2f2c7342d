/** Bech32 as age uses it: BIP 173's test vectors, round trips, and the failures that must be caught. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bech32Decode, bech32Encode, Bech32Error } from '../src/codecs/bech32.js';

describe('bech32', () => {
  it('accepts the valid strings of BIP 173 and re-encodes them exactly', () => {
    const valid = [
      'A12UEL5L',
      'a12uel5l',
      'an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs',
      'abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw',
      'split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w',
      '?1ezyfcl',
    ];
    for (const s of valid) {
      const { hrp, data } = bech32Decode(s);
      // Vectors whose data is not a whole number of bytes cannot round-trip through bytes; the rest must.
      if (s.startsWith('a1') || s.startsWith('A1') || s.startsWith('?1') || s.startsWith('abcdef1') || s.startsWith('an83')) {
        expect(bech32Encode(hrp, data, s === s.toUpperCase())).toBe(s);
      }
    }
  });

  it('refuses the invalid strings of BIP 173 and mixed case', () => {
    const invalid = ['pzry9x0s0muk', '1pzry9x0s0muk', 'x1b4n0q5v', 'li1dgmt3', 'A1G7SGD8', '10a06t8', '1qzzfhee', 'a12uEL5L', 'a12uel5m', ''];
    for (const s of invalid) expect(() => bech32Decode(s), s).toThrow(Bech32Error);
  });

  it('round-trips any bytes under the hrps age uses, in either case', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 80 }), fc.constantFrom('age', 'age-secret-key-'), fc.boolean(), (bytes, hrp, upper) => {
        const text = bech32Encode(hrp, bytes, upper);
        expect(text === text.toUpperCase() || text === text.toLowerCase()).toBe(true);
        const back = bech32Decode(text);
        expect(back.hrp).toBe(hrp);
        expect([...back.data]).toEqual([...bytes]);
      }),
    );
  });

  it('catches any single changed character (the checksum)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat(), fc.nat(31), (bytes, pos, sub) => {
        const text = bech32Encode('age', bytes);
        const at = 4 + (pos % (text.length - 4)); // after "age1"
        const alphabet = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
        const replacement = alphabet[sub]!;
        fc.pre(replacement !== text[at]);
        expect(() => bech32Decode(text.slice(0, at) + replacement + text.slice(at + 1))).toThrow(Bech32Error);
      }),
    );
  });
});
