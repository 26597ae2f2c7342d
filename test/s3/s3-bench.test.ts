/**
 * The benchmark's `s3` section (`bench --only s3`) on a tiny database: it starts moto_server itself,
 * writes `<date>-s3.md/.json`, and reports the requests of each backup; the unchanged one within the
 * request-economy target. Times are not asserted (the benchmark measures them, not a test).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { MOTO, MOTO_MISSING } from './moto.js';

const CLI = join(__dirname, '..', '..', 'dist', 'cli', 'main.js');

it.skipIf(!MOTO)('bench --only s3 measures S3 beside a local repository and counts the requests of each backup', async () => {
  const out = mkdtempSync(join(tmpdir(), 'scriptorium-s3-bench-'));
  try {
    await promisify(execFile)(process.execPath, [CLI, 'bench', '--only', 's3', '--sizes', '1000', '--out', join(out, 'r'), '--work-dir', join(out, 'w'), '-q'], { maxBuffer: 16 << 20 });
    const files = readdirSync(join(out, 'r')).sort();
    expect(files.map((f) => f.replace(/^\d{4}-\d{2}-\d{2}/, 'DATE'))).toEqual(['DATE-s3.json', 'DATE-s3.md']);
    const report = JSON.parse(readFileSync(join(out, 'r', files[0]!), 'utf8'));
    const byId = Object.fromEntries(report.runs.map((r: { id: string }) => [r.id, r]));
    for (const id of ['backup-local', 'backup-s3', 'backup-s3-unchanged', 'backup-s3-changed', 'restore-s3', 'restore-local']) expect(byId[id], id).toBeDefined();
    expect(byId['backup-s3-unchanged'].requests).toMatchObject({ LIST: 0 });
    expect(byId['backup-s3-unchanged'].requests.total).toBeLessThanOrEqual(6);
    expect(byId['backup-s3-changed'].requests.PUT).toBeGreaterThan(byId['backup-s3-unchanged'].requests.PUT);
    expect(report.ratios.backup).toBeGreaterThan(0);
    // The first backup and the restore ran in every round, each beside its local twin.
    expect(report.rounds).toBeGreaterThanOrEqual(3);
    for (const id of ['backup-local', 'backup-s3', 'restore-s3', 'restore-local']) expect(byId[id].times, id).toHaveLength(report.rounds);
    expect(report.spread.backup[0]).toBeLessThanOrEqual(report.ratios.backup);
    expect(report.spread.backup[1]).toBeGreaterThanOrEqual(report.ratios.backup);
    const md = readFileSync(join(out, 'r', files[1]!), 'utf8');
    expect(md).toContain('## S3 (moto_server on loopback)');
    expect(md).toMatch(/unchanged backup: \d+ requests, 0 LIST/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}, 180_000);

if (!MOTO) it.skip(MOTO_MISSING, () => undefined);
