// Several real processes append to one history file at once: no line may be lost or torn, with and
// without compactions running in between.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HistoryStore, decodeRecordLine } from '../../src/monitor/index.js';
import { tempDir, transpileMonitor } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/append-child.mjs', import.meta.url));
const { dir, cleanup } = tempDir();
let moduleDir = '';

beforeAll(() => {
  moduleDir = transpileMonitor(join(dir, 'compiled'));
});
afterAll(cleanup);

/** Starts `children` processes, waits until all are ready, releases them together, waits for all to exit. */
async function runChildren(historyPath: string, children: number, count: number, maxEntries: number): Promise<void> {
  const procs = Array.from({ length: children }, (_, i) =>
    spawn(process.execPath, [CHILD, moduleDir, historyPath, String(count), String(maxEntries), `c${i}`], {
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  );
  const stderr: string[] = procs.map(() => '');
  procs.forEach((p, i) => p.stderr.on('data', (d: Buffer) => (stderr[i] += d.toString())));
  const exits = procs.map((p) => new Promise<number | null>((resolve) => p.on('close', resolve)));
  await Promise.all(
    procs.map((p) => new Promise<void>((resolve) => p.stdout.once('data', () => resolve()))),
  );
  for (const p of procs) p.stdin.write('go\n');
  const codes = await Promise.all(exits);
  expect(stderr.join('')).toBe('');
  expect(codes).toEqual(procs.map(() => 0));
}

describe('history: concurrent appends from several processes', () => {
  it('keeps every line whole and none lost', async () => {
    const path = join(dir, 'plain', 'history.jsonl');
    const children = 4;
    const count = 400;
    await runChildren(path, children, count, 1_000_000);

    const text = readFileSync(path, 'utf8');
    const lines = text.split('\n');
    expect(lines.pop()).toBe(''); // ends with a line break
    expect(lines).toHaveLength(children * count);
    for (const line of lines) expect(decodeRecordLine(line).torn).toBe(false);

    const { records, skipped, duplicates } = await new HistoryStore({ path }).read();
    expect(skipped).toBe(0);
    expect(duplicates).toBe(0);
    const ids = new Set(records.map((r) => r.id));
    expect(ids.size).toBe(children * count);
    for (let c = 0; c < children; c++) {
      // Each child's own records stay in the order it appended them.
      const mine = records.filter((r) => r.id.startsWith(`c${c}-`)).map((r) => Number(r.id.split('-')[1]));
      expect(mine).toEqual(Array.from({ length: count }, (_, i) => i));
    }
  });

  it('loses nothing when compactions run while others append: kept + archived = appended', async () => {
    const path = join(dir, 'compacting', 'history.jsonl');
    const children = 4;
    const count = 300;
    const maxEntries = 100;
    await runChildren(path, children, count, maxEntries);

    const store = new HistoryStore({ path, maxEntries });
    const countAll = async () => {
      const { records, skipped, duplicates } = await store.read();
      const archived = (await store.readArchive()).flatMap((e) => e.kinds).reduce((n, k) => n + k.count, 0);
      return { kept: records.length, archived, skipped, duplicates, records };
    };
    const after = await countAll();
    expect(after.skipped).toBe(0);
    expect(after.duplicates).toBe(0);
    expect(after.archived).toBeGreaterThan(0);
    expect(after.kept + after.archived).toBe(children * count);
    // Appends that found the lock busy may leave the file over the limit until the next compaction.
    expect(new Set(after.records.map((r) => r.id)).size).toBe(after.kept);

    store.compact();
    const compacted = await countAll();
    expect(compacted.kept).toBeLessThanOrEqual(maxEntries);
    expect(compacted.kept + compacted.archived).toBe(children * count);
  });
});
