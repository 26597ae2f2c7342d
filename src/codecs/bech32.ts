/**
 * Bech32 (BIP 173), as age uses it for its keys: `age1…` recipients and `AGE-SECRET-KEY-1…` identities.
 * Unlike BIP 173 there is no 90-character limit (age lifts it too), and only the original Bech32
 * checksum constant (1), not Bech32m's.
 */

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

/** Why a string is not valid Bech32; its message never repeats the input (it may be a secret key). */
export class Bech32Error extends Error {}

function polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATOR[i]!;
  }
  return chk >>> 0;
}

function hrpExpand(hrp: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) >>> 5);
  out.push(0);
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) & 31);
  return out;
}

/** Regroups bits: 8→5 pads the last group with zeros; 5→8 refuses padding that is not zeros or too long. */
function convertBits(data: ArrayLike<number>, from: number, to: number, pad: boolean): number[] {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  const max = (1 << to) - 1;
  for (let i = 0; i < data.length; i++) {
    acc = (acc << from) | data[i]!;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >>> bits) & max);
    }
    acc &= (1 << bits) - 1;
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & max);
  } else if (bits >= from || acc !== 0) {
    throw new Bech32Error('invalid padding');
  }
  return out;
}

/**
 * Encodes `data` under the human-readable part `hrp`. The result is lower case, or upper case when
 * `upper` (age writes secret keys in upper case).
 */
export function bech32Encode(hrp: string, data: Uint8Array, upper = false): string {
  const lower = hrp.toLowerCase();
  if (lower.length === 0 || /[^\x21-\x7e]/.test(lower)) throw new Bech32Error('invalid human-readable part');
  const words = convertBits(data, 8, 5, true);
  const checksumInput = [...hrpExpand(lower), ...words, 0, 0, 0, 0, 0, 0];
  const mod = polymod(checksumInput) ^ 1;
  let out = `${lower}1`;
  for (const w of words) out += CHARSET[w];
  for (let i = 0; i < 6; i++) out += CHARSET[(mod >>> (5 * (5 - i))) & 31];
  return upper ? out.toUpperCase() : out;
}

/** Decodes a Bech32 string: its human-readable part (lower case) and its bytes. Mixed case is invalid. */
export function bech32Decode(text: string): { hrp: string; data: Buffer } {
  if (text !== text.toLowerCase() && text !== text.toUpperCase()) throw new Bech32Error('mixed case');
  const s = text.toLowerCase();
  const sep = s.lastIndexOf('1');
  if (sep < 1 || sep + 7 > s.length) throw new Bech32Error('missing separator or checksum');
  const hrp = s.slice(0, sep);
  if (/[^\x21-\x7e]/.test(hrp)) throw new Bech32Error('invalid human-readable part');
  const words: number[] = [];
  for (let i = sep + 1; i < s.length; i++) {
    const v = CHARSET.indexOf(s[i]!);
    if (v < 0) throw new Bech32Error('invalid character');
    words.push(v);
  }
  if (polymod([...hrpExpand(hrp), ...words]) !== 1) throw new Bech32Error('invalid checksum');
  return { hrp, data: Buffer.from(convertBits(words.slice(0, -6), 5, 8, false)) };
}
