/**
 * verify's `readDataSubset` (what a job's `verify.readDataPercent` rotates through): parts 1..of read
 * every referenced pack exactly once between them, and a damaged pack is found by the part it is in.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup } from '../../src/repository/backup.js';
import { init } from '../../src/repository/operations.js';
import { packPart, verify } from '../../src/repository/verify.js';
import { demoDb, tempDir } from '../repository/helpers.js';

const packFiles = (repo: string) => readdirSync(join(repo, 'packs')).flatMap((sub) => readdirSync(join(repo, 'packs', sub)).map((f) => join(repo, 'packs', sub, f)));

describe('verify readDataSubset', () => {
  it('reads each pack in exactly one of the parts, and finds a damaged pack in its part only', async () => {
    const dir = tempDir('subset');
    const repo = join(dir, 'repo');
    await init(repo, { packBytes: 64 * 1024, chunkBytes: 4096 });
    await backup(demoDb(dir, 3000), repo);
    const packs = packFiles(repo);
    expect(packs.length).toBeGreaterThan(3);
    const of = 3;
    const read: number[] = [];
    for (let part = 1; part <= of; part++) read.push((await verify(repo, { readDataSubset: { part, of } })).packsRead!);
    expect(read.reduce((a, b) => a + b, 0)).toBe(packs.length);

    const victim = packs[0]!;
    const name = victim.slice(victim.lastIndexOf('/') + 1);
    const bytes = readFileSync(victim);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(victim, bytes);
    const bad = packPart(name, of);
    for (let part = 1; part <= of; part++) {
      const run = verify(repo, { readDataSubset: { part, of } });
      if (part === bad) await expect(run).rejects.toMatchObject({ problems: expect.arrayContaining([expect.objectContaining({ pack: name })]) });
      else await expect(run).resolves.toMatchObject({ problems: [] });
    }
    await expect(verify(repo, { readDataSubset: { part: 4, of } })).rejects.toMatchObject({ code: 'E_USAGE' });
  });
});
