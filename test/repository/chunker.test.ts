import { describe, expect, it } from 'vitest';
import type { TableSchema } from '../../src/core/schema.js';
import { identityValues, keyEndOf, RowChunker, type Chunk } from '../../src/repository/chunker.js';

const settings = { algorithm: 'row-key-v1' as const, targetBytes: 256, minBytes: 64, maxBytes: 4096 };

function rows(ids: number[], note = (id: number) => `row ${id}`): string[] {
  return ids.map((id) => JSON.stringify([id, note(id), 'x'.repeat(id % 40)]));
}

function chunk(lines: string[], batchRows = 37): Chunk[] {
  const chunker = new RowChunker(settings, 1);
  const out: Chunk[] = [];
  for (let i = 0; i < lines.length; i += batchRows) {
    const batch = lines.slice(i, i + batchRows);
    out.push(...chunker.push({ data: Buffer.from(batch.join('\n')), rows: batch.length }));
  }
  const last = chunker.finish();
  if (last) out.push(last);
  return out;
}

const texts = (chunks: Chunk[]) => chunks.map((c) => c.data.toString());

describe('RowChunker', () => {
  const ids = Array.from({ length: 2000 }, (_, i) => i + 1);

  it('cuts at row boundaries into chunks of about the target size, whatever the batching', () => {
    const chunks = chunk(rows(ids));
    expect(chunks.map((c) => c.data.toString()).join('')).toBe(rows(ids).join('\n') + '\n');
    expect(chunks.reduce((a, c) => a + c.rows, 0)).toBe(ids.length);
    for (const c of chunks) expect(c.data.toString().split('\n').length - 1).toBe(c.rows);
    const mean = chunks.reduce((a, c) => a + c.data.length, 0) / chunks.length;
    expect(mean).toBeGreaterThan(150);
    expect(mean).toBeLessThan(400);
    expect(texts(chunk(rows(ids), 1))).toEqual(texts(chunks));
    expect(texts(chunk(rows(ids), 1000))).toEqual(texts(chunks));
  });

  it('an updated row changes only its own chunk', () => {
    const before = texts(chunk(rows(ids)));
    const after = texts(chunk(rows(ids, (id) => (id === 1000 ? 'ROW 1000' : `row ${id}`))));
    const changed = after.filter((c) => !before.includes(c));
    expect(changed.length).toBe(1);
    expect(changed[0]).toContain('ROW 1000');
  });

  it('an inserted or deleted row changes only the chunks around it', () => {
    const before = texts(chunk(rows(ids)));
    const inserted = texts(chunk(rows([...ids.slice(0, 700), 700.5, ...ids.slice(700)])));
    expect(inserted.filter((c) => !before.includes(c)).length).toBeLessThanOrEqual(3);
    const deleted = texts(chunk(rows(ids.filter((id) => id !== 1500))));
    expect(deleted.filter((c) => !before.includes(c)).length).toBeLessThanOrEqual(3);
    const appended = texts(chunk(rows([...ids, 2001, 2002, 2003])));
    expect(appended.filter((c) => !before.includes(c)).length).toBeLessThanOrEqual(2);
  });

  it('never grows a chunk of several rows past maxBytes', () => {
    const big = Array.from({ length: 300 }, (_, i) => JSON.stringify([7, 'same key hash', 'y'.repeat(100 + i)]));
    const chunker = new RowChunker({ ...settings, maxBytes: 1000 }, 0);
    const out = chunker.push({ data: Buffer.from(big.join('\n')), rows: big.length });
    for (const c of out) expect(c.data.length).toBeLessThan(1000 + 500);
  });

  it('finds the end of the leading key values in a JSON row', () => {
    const line = Buffer.from('["a,\\"b]",[1,{"$blob":"00"}],3,null]');
    expect(line.toString('utf8', 0, keyEndOf(line, 0, line.length, 1))).toBe('["a,\\"b]"');
    expect(line.toString('utf8', 0, keyEndOf(line, 0, line.length, 2))).toBe('["a,\\"b]",[1,{"$blob":"00"}]');
    expect(keyEndOf(line, 0, line.length, 9)).toBe(line.length - 1);
  });

  it('uses leading primary-key columns as the identity', () => {
    const col = (name: string, pk = 0) => ({ name, type: '', notNull: false, pk });
    const base: TableSchema = { name: 't', sql: '', columns: [col('a', 1), col('b', 2), col('c')], primaryKey: ['a', 'b'], withoutRowid: false };
    expect(identityValues(base)).toBe(2);
    expect(identityValues({ ...base, primaryKey: ['c'] })).toBe(0);
    expect(identityValues({ ...base, primaryKey: [], rowidAlias: 'rowid' })).toBe(1);
  });
});
