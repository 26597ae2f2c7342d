/**
 * Load and stress, with bounded sizes: concurrent exports of one database, and memory that stays flat
 * when the database grows tenfold. Each export is its own CLI process, as an operator would run it.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDemoDatabase } from '../src/demo/demo-data.js';
import { CLI, removeDir, tempDir } from './export-import/helpers.js';

interface Summary {
  rows: number;
  tables: { name: string; rows: number; sha256: string }[];
  peakRssBytes: number;
}

/** Runs `scriptorium export … --json` in its own process (with the CLI's own V8 flags). */
function exportProcess(db: string, out: string, cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<Summary> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--max-semi-space-size=2', CLI, 'export', db, '--format', 'ndjson', '-o', out, '--force', '--json'] /* measured twice into the same file */, { cwd, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(stdout) as Summary) : reject(new Error(`exit ${code}: ${stderr}`))));
  });
}

/** The file without its header line (which carries the export time). */
const body = (file: string): Buffer => {
  const buf = fs.readFileSync(file);
  return buf.subarray(buf.indexOf(0x0a) + 1);
};

let dir: string;
beforeAll(() => {
  dir = tempDir('stress');
});
afterAll(() => removeDir(dir));

describe('load and stress', () => {
  it('three exports of the same database at once all succeed and write identical data', async () => {
    const db = path.join(dir, 'three.db');
    createDemoDatabase(db, { records: 20_000 });
    const outs = [1, 2, 3].map((i) => path.join(dir, `three-${i}.ndjson`));
    const results = await Promise.all(outs.map((out) => exportProcess(db, out, dir)));
    for (const r of results) expect(r.rows).toBe(results[0]!.rows);
    for (const r of results.slice(1)) expect(r.tables).toEqual(results[0]!.tables);
    expect(body(outs[1]!).equals(body(outs[0]!))).toBe(true);
    expect(body(outs[2]!).equals(body(outs[0]!))).toBe(true);
  });

  it('peak memory of an export of a 10x larger database stays within 20% of the smaller one', async () => {
    const small = path.join(dir, 'small.db');
    const large = path.join(dir, 'large.db');
    // 25,000 registrations (50,000 rows) already fill every bounded buffer: the background readers'
    // queue of encoded rows (8 MiB, about 50,000 demo rows), SQLite's page cache, the writer's buffer.
    // Below that the peak still rises towards the bound (the benchmark: 66 MB at 2,000 rows, 74 MB at
    // 50,000, 76 MB at 1,000,000), so a smaller "small" measured the bound filling, not growth with the
    // data (5,000 against 50,000 registrations gave 1.29 once on Node 24 with the suite beside it).
    createDemoDatabase(small, { records: 25_000 });
    createDemoDatabase(large, { records: 250_000 });
    // With the main connection alone, then with two background readers.
    // The lower of two runs each: on a loaded machine (the rest of the suite beside it) one run's peak
    // can be high by chance, as the garbage collector runs late.
    const peak = async (db: string, out: string, env: NodeJS.ProcessEnv): Promise<{ rows: number; peakRssBytes: number }> => {
      const a = await exportProcess(db, out, dir, env);
      const b = await exportProcess(db, out, dir, env);
      return { rows: a.rows, peakRssBytes: Math.min(a.peakRssBytes, b.peakRssBytes) };
    };
    for (const readers of ['1', '2']) {
      const env = { ...process.env, SCRIPTORIUM_READERS: readers };
      const s = await peak(small, path.join(dir, 'small.ndjson'), env);
      const l = await peak(large, path.join(dir, 'large.ndjson'), env);
      expect(l.rows).toBeGreaterThanOrEqual(9.5 * s.rows);
      expect(l.peakRssBytes / s.peakRssBytes, `${readers} reader(s)`).toBeLessThan(1.2);
    }
  });
});
