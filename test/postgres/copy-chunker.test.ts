/**
 * The COPY text chunker: chunks end at row boundaries, do not depend on how the stream was split into
 * pieces, follow the rows' keys (an update moves no boundary but its own chunk's), and a stream cut
 * inside a row is refused.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ChunkBatch } from '../../src/repository/native-chunks.js';
import { CopyChunker } from '../../src/repository/copy-chunker.js';

const SETTINGS = { algorithm: 'row-key-v1' as const, minBytes: 288, targetBytes: 576, maxBytes: 4096 };

function rows(n: number, changed = new Set<number>()): Buffer {
  let text = '';
  for (let i = 1; i <= n; i++) text += `${i}\tname ${i}${changed.has(i) ? ' (changed)' : ''}\t${'x'.repeat(i % 50)}\t\\N\n`;
  return Buffer.from(text);
}

/** The chunks (as hex SHA-256 of each) of `stream` fed in pieces of the given sizes, and their row counts. */
function chunks(stream: Buffer, pieces: number[], keyValues = 1): Array<[string, number]> {
  const chunker = new CopyChunker(SETTINGS, keyValues);
  const out: Array<[string, number]> = [];
  const take = (b: ChunkBatch | undefined) => {
    if (!b) return;
    let at = 0;
    for (let i = 0; i < b.chunks.length; i += 8) {
      const length = b.chunks.readUInt32LE(i);
      const data = b.data!.subarray(at, at + length);
      expect(data[data.length - 1]).toBe(10); // whole rows
      out.push([createHash('sha256').update(data).digest('hex'), b.chunks.readUInt32LE(i + 4)]);
      at += length;
    }
    expect(at).toBe(b.data!.length);
  };
  let at = 0;
  for (let i = 0; at < stream.length; i++) {
    const size = pieces[i % pieces.length]!;
    take(chunker.push(stream.subarray(at, at + size)));
    at += size;
  }
  take(chunker.finish());
  return out;
}

describe('CopyChunker', () => {
  it('cuts the same chunks however the stream is split, and they hold every row', () => {
    const stream = rows(5000);
    const whole = chunks(stream, [stream.length]);
    expect(whole.length).toBeGreaterThan(50);
    expect(whole.reduce((a, [, n]) => a + n, 0)).toBe(5000);
    expect(chunks(stream, [1, 7, 300, 65536, 3])).toEqual(whole);
    expect(chunks(stream, [4096])).toEqual(whole);
  });

  it('an updated row changes only chunks around it (boundaries follow the keys)', () => {
    const before = chunks(rows(5000), [8192]);
    const after = chunks(rows(5000, new Set([1234, 4321])), [8192]);
    const old = new Set(before.map(([h]) => h));
    const fresh = after.filter(([h]) => !old.has(h));
    expect(fresh.length).toBeGreaterThan(0);
    expect(fresh.length).toBeLessThanOrEqual(4);
  });

  it('a stream that ends inside a row is refused', () => {
    const chunker = new CopyChunker(SETTINGS, 1);
    chunker.push(Buffer.from('1\tone\n2\ttw'));
    expect(() => chunker.finish()).toThrow('ended inside a row');
  });
});
