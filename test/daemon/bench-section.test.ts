/**
 * `scriptorium bench --only daemon --quick`: the daemon section runs on its own (real daemon and serve
 * processes) and writes its report with every figure and target; an unknown section is refused.
 * The figures themselves are measurements, not asserted here beyond being measured.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonBench } from '../../src/bench/daemon.js';
import { cliAsync, needDist, ROOT } from './helpers.js';

describe('bench --only daemon', () => {
  const out = mkdtempSync(join(tmpdir(), 'scriptorium-bench-daemon-test-'));
  beforeAll(needDist);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('measures idle RSS and CPU, page latency with 10,000 operations and a short soak, and writes <date>-daemon.md/.json', async () => {
    const r = await cliAsync(ROOT, 'bench', '--only', 'daemon', '--quick', '--out', out, '-q');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const files = readdirSync(out).sort();
    expect(files.map((f) => f.replace(/^\d{4}-\d{2}-\d{2}/, 'DATE'))).toEqual(['DATE-daemon.json', 'DATE-daemon.md']);
    const report = JSON.parse(readFileSync(join(out, files[0]!), 'utf8')) as DaemonBench;
    expect(report.historyOperations).toBe(10_000);
    expect(report.idle.rssMaxBytes).toBeGreaterThan(10 << 20);
    expect(Number.isFinite(report.idle.cpuPercent)).toBe(true);
    expect(report.pages.map((p) => p.path)).toEqual(['/', '/app.js', '/api/jobs', '/api/operations?limit=200', '/api/operations?limit=500&kind=backup', '/api/alerts', '/api/operations?limit=10000']);
    expect(report.pages.find((p) => p.path === '/api/operations?limit=10000')!.bytes).toBeGreaterThan(1 << 20); // all 10,000 served
    for (const p of report.pages) expect(p.p95Ms).toBeGreaterThanOrEqual(p.medianMs);
    expect(report.soak.runs).toBeGreaterThan(0);
    expect(report.soak.sseClients).toBeGreaterThan(0);
    expect(report.targets.map((t) => t.required)).toEqual(['< 60 MB', 'near 0 % (< 1 %)', '< 50 ms', '< +6 MiB']);
    const md = readFileSync(join(out, files[1]!), 'utf8');
    expect(md).toContain('## Daemon and dashboard (issue 17)');
    expect(md).toContain('Reproduce: `npm run build && node dist/cli/main.js bench --only daemon --quick');
  }, 180_000);

  it('refuses an unknown section with a clear message and a non-zero exit', async () => {
    const r = await cliAsync(ROOT, 'bench', '--only', 'nope', '--out', out);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/unknown section nope \(sections: daemon, s3, postgres, pgcross, encryption\)/);
  });
});
